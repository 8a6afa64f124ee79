package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkStatsServerSide times the /stats handler alone on the
// plugin's full batch of 200 events (a mix of installs, downloads,
// foreground events and failures of a release), without the network,
// and reports allocations: the per-request cost of validating,
// classifying and counting.
func BenchmarkStatsServerSide(b *testing.B) {
	f := newFixture(b, 10)
	evs := make([]string, 200)
	for i := range evs {
		evs[i] = fmt.Sprintf(statEv, []string{"set", "download_complete", "app_moved_to_foreground", "update_fail"}[i%4])
	}
	batch := []byte("[" + strings.Join(evs, ",") + "]")
	api := New(Config{MaxBodyBytes: 1 << 20, Counter: &countOnly{}}, f.api.state, f.store, discardStats{}, nil,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	api.Register(mux)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/stats", bytes.NewReader(batch))
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("HTTP %d %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}
