package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mirrord/consensus/state"
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

// countOnly is a Counter that only counts, as cheap as the node's.
type countOnly struct{ checks, events atomic.Int64 }

func (c *countOnly) CountCheck(string, string, string) { c.checks.Add(1) }
func (c *countOnly) CountEvent(string, string, string, string) state.EventVerdict {
	c.events.Add(1)
	return state.VerdictCounted
}

type discardStats struct{}

func (discardStats) Append([]json.RawMessage) error                { return nil }
func (discardStats) AppendIgnored(string, []json.RawMessage) error { return nil }

// BenchmarkUpdateCheckTargeting compares the server-side cost of an
// update check on a plain channel with the same check while the channel
// has a rollout at 50% and the app has 10,000 device overrides (a third
// of them pinned releases). The devices asking are 1,024 ids, none
// overridden, half of them in the rollout's cohort.
func BenchmarkUpdateCheckTargeting(b *testing.B) {
	f := newFixture(b, 1000)
	plain := f.api.state.State()
	app := *plain.Apps["com.example.app"]
	r2 := *f.rel
	r2.Version = "1.0.2"
	app.Releases = map[string]*state.Release{"1.0.1": f.rel, "1.0.2": &r2}
	prod := *app.Channels["production"]
	prod.Rollout = &state.Rollout{ID: "com.example.app/production/1.0.2#1", Version: "1.0.2",
		BasisPoints: 5000, State: state.RolloutActive}
	app.Channels = map[string]*state.Channel{"production": &prod, "beta": app.Channels["beta"]}
	app.Devices = make(map[string]state.DeviceOverride, 10000)
	for i := range 10000 {
		o := state.DeviceOverride{Channel: "beta"}
		if i%3 == 0 {
			o = state.DeviceOverride{Version: "1.0.1"}
		}
		app.Devices[fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i)] = o
	}
	targeted := &state.State{Index: plain.Index + 1, Apps: map[string]*state.AppState{"com.example.app": &app}}

	bodies := make([][]byte, 1024)
	for i := range bodies {
		bodies[i] = []byte(strings.Replace(deviceBody, "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f",
			fmt.Sprintf("eeeeeeee-0000-4000-8000-%012d", i), 1))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name string
		st   *state.State
	}{{"plain-channel", plain}, {"rollout-50pct+10k-overrides", targeted}} {
		b.Run(tc.name, func(b *testing.B) {
			api := New(Config{MaxBodyBytes: 64 << 10, Counter: &countOnly{}}, fixedState{tc.st}, f.store, discardStats{}, nil, log)
			mux := http.NewServeMux()
			api.Register(mux)
			got := map[string]int{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("POST", "/updates", bytes.NewReader(bodies[i%len(bodies)]))
				w := httptest.NewRecorder()
				mux.ServeHTTP(w, req)
				if i < len(bodies) {
					var ans struct{ Version string }
					_ = json.Unmarshal(w.Body.Bytes(), &ans)
					got[ans.Version]++
				}
			}
			b.StopTimer()
			if tc.st == targeted && b.N >= len(bodies) && (got["1.0.2"] < 400 || got["1.0.1"] < 400) {
				b.Fatalf("cohort split %v", got)
			}
		})
	}
}

// BenchmarkStatsIngest posts batches of 200 events (the plugin's batch)
// to /stats over loopback and reports events per second, beside a bare
// net/http handler that reads the body and answers {"status":"ok"}.
// The node-level figure, with the on-disk log and raft counters, is
// BenchmarkStatsIngestNode in cmd/mirrord.
func BenchmarkStatsIngest(b *testing.B) {
	f := newFixture(b, 10)
	evs := make([]string, 200)
	for i := range evs {
		evs[i] = fmt.Sprintf(statEv, []string{"set", "download_complete", "app_moved_to_foreground", "update_fail"}[i%4])
	}
	batch := []byte("[" + strings.Join(evs, ",") + "]")
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(okBody)
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	api := New(Config{MaxBodyBytes: 1 << 20, Counter: &countOnly{}}, f.api.state, f.store, discardStats{}, nil, log)
	mux := http.NewServeMux()
	api.Register(mux)
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"baseline-bare-nethttp", bare}, {"mirrord-handler", mux}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			c := loopbackClient()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := c.Post(srv.URL+"/stats", "application/json", bytes.NewReader(batch))
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
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
