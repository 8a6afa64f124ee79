package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
)

// BenchmarkStatsIngestNode posts batches of 200 stats events (the
// plugin's batch) to a whole in-process node over loopback: parse,
// append to the on-disk event log, count per release, and report the
// counters through raft every 100ms. A bare net/http handler that reads
// the body and answers {"status":"ok"} is the baseline, in the same run.
// The metric is events/s per node.
func BenchmarkStatsIngestNode(b *testing.B) {
	vec := vectors(b)
	n := startNodeWith(b, "", func(c *configs.Config) {
		c.Stats.ReportInterval = configs.Duration(100 * time.Millisecond)
		c.Limits.StatsEventsPerSecond = 0 // one client address sends it all
	})
	const app = "com.example.bench"
	n.cli(b, "app", "create", app)
	n.cli(b, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	actions := []string{"set", "download_complete", "app_moved_to_foreground", "update_fail"}
	evs := make([]string, 200)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"platform":"android","device_id":"%08x-7a1e-4c0d-9e6f-000000000000","app_id":%q,"action":%q,"version_name":"1.0.1","old_version_name":"builtin","version_build":"1.0.0","version_code":"1","version_os":"14","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"timestamp":1700000000000}`,
			i, app, actions[i%len(actions)])
	}
	batch := []byte("[" + strings.Join(evs, ",") + "]")
	// The 200 devices check in first (a node counts only devices it
	// answered), so each of the 50 sending "set" counts one install; the
	// same events sent again are duplicates, kept apart.
	for i := range evs {
		body := fmt.Sprintf(`{"platform":"android","device_id":"%08x-7a1e-4c0d-9e6f-000000000000","app_id":%q,"version_name":"builtin","version_build":"1.0.0","version_code":"1","version_os":"14","plugin_version":"8.51.23","is_emulator":false,"is_prod":true}`, i, app)
		resp, err := http.Post(n.url+"/updates", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	}))
	defer bare.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DialContext: (&net.Dialer{}).DialContext}}
	var posted int64
	for _, tc := range []struct{ name, url string }{{"baseline-bare-nethttp", bare.URL}, {"mirrord-node", n.url}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := hc.Post(tc.url+"/stats", "application/json", bytes.NewReader(batch))
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
			if tc.url == n.url {
				posted += int64(b.N)
			}
		})
	}
	// Every device's install reached the cluster counters, once.
	want := min(posted, 1) * int64(len(evs)/len(actions))
	consensustest.WaitFor(b, "the counters", func() bool {
		return strings.Contains(n.cli(b, "stats", app, "--json"), fmt.Sprintf(`"installs": %d,`, want))
	}, 30*time.Second)
}
