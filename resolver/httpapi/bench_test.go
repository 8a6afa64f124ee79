package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

// latencies collects per-request durations from parallel workers.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	b.ReportMetric(float64(l.d[len(l.d)*50/100].Microseconds()), "p50-µs")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds()), "p99-µs")
}

func loopbackClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256,
		DialContext: (&net.Dialer{}).DialContext}}
}

// BenchmarkUpdateCheck compares POST /updates end to end over loopback
// with a bare net/http handler that reads the body and returns the same
// answer bytes.
func BenchmarkUpdateCheck(b *testing.B) {
	f := newFixture(b, 1000)
	answer := f.do("POST", "/updates", deviceBody).Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		_, _ = w.Write(answer)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"baseline-bare-nethttp", bare}, {"mirrord", f.h}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			c := loopbackClient()
			var lat latencies
			body := []byte(deviceBody)
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					t0 := time.Now()
					resp, err := c.Post(srv.URL+"/updates", "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("HTTP %d", resp.StatusCode)
						return
					}
					mine = append(mine, time.Since(t0))
				}
				lat.add(mine)
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
			lat.report(b)
		})
	}
}

// BenchmarkUpdateCheckServerSide times the handler alone (decode, resolve,
// encode), without the network: the server-side latency of a check.
func BenchmarkUpdateCheckServerSide(b *testing.B) {
	f := newFixture(b, 1000)
	var lat []time.Duration
	body := []byte(deviceBody)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/updates", bytes.NewReader(body))
		w := httptest.NewRecorder()
		t0 := time.Now()
		f.h.ServeHTTP(w, req)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	l := latencies{d: lat}
	l.report(b)
}

// BenchmarkDownload compares a 64 MiB zip download from the block store
// with http.ServeFile of the same bytes from a plain file.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	f := newFixture(b, size)
	p := filepath.Join(b.TempDir(), "bundle.zip")
	if err := os.WriteFile(p, f.zip, 0o644); err != nil {
		b.Fatal(err)
	}
	serveFile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, p) })
	for _, tc := range []struct {
		name, path string
		h          http.Handler
	}{{"baseline-http.ServeFile", "/bundle.zip", serveFile}, {"mirrord", "/dl/" + f.rel.ZipCID + "/1.0.1.zip", f.h}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			c := loopbackClient()
			b.SetBytes(size)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				resp, err := c.Get(srv.URL + tc.path)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if n != size {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}
