package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
)

// promScrape is one parsed GET /metrics of a node.
type promScrape map[string]*dto.MetricFamily

func scrapeMetrics(t *testing.T, nodeURL string) promScrape {
	t.Helper()
	resp, err := http.Get(nodeURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// get returns the value of the series name{labels} (name=value pairs;
// the series may have more labels), summed over matches; for a
// histogram, its sample count. ok is false when no series matches.
func (s promScrape) get(name string, labels ...string) (v float64, ok bool) {
	f := s[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v, ok
}

func (s promScrape) val(name string, labels ...string) float64 {
	v, _ := s.get(name, labels...)
	return v
}

// TestMetricsEndpoint is the node's /metrics end to end: the series move
// with update checks, stats, HTTP traffic, raft writes, a publish and a
// rollout, and every metric the Grafana dashboard queries is served.
func TestMetricsEndpoint(t *testing.T) {
	n := startNodeWith(t, "", func(c *configs.Config) {
		fastStats(c)
		c.Replication.DiskBudget = 1 << 30
	})
	before := scrapeMetrics(t, n.url)
	for _, name := range []string{"mirrord_raft_term", "mirrord_raft_applied_index", "mirrord_raft_leader_known",
		"mirrord_bitswap_bytes_total", "mirrord_disk_used_bytes", "mirrord_disk_budget_bytes", "mirrord_node_info", "go_goroutines"} {
		if _, ok := before.get(name); !ok {
			t.Errorf("%s missing from a fresh node", name)
		}
	}
	if v := before.val("mirrord_raft_state", "state", "leader"); v != 1 {
		t.Errorf("single node: raft_state{leader} = %v", v)
	}
	if v := before.val("mirrord_disk_budget_bytes"); v != 1<<30 {
		t.Errorf("disk budget %v", v)
	}

	app := "com.example.metrics"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vectors(t), "src-1.0.1"))
	fc := newFleetClient(t, app)
	if got := fc.check(n.url, deviceID(1), "builtin"); got != "1.0.1" {
		t.Fatalf("check from builtin: %q", got)
	}
	if got := fc.check(n.url, deviceID(2), "1.0.1"); got != "no_new_version_available" {
		t.Fatalf("check on 1.0.1: %q", got)
	}
	fc.check(n.url, deviceID(3), "1.0.1")
	fc.stat(n.url, deviceID(1), "download_complete", "1.0.1")
	fc.stat(n.url, deviceID(1), "set", "1.0.1")
	fc.stat(n.url, deviceID(1), "made_up_action", "1.0.1")

	after := scrapeMetrics(t, n.url)
	delta := func(name string, labels ...string) float64 {
		return after.val(name, labels...) - before.val(name, labels...)
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"mirrord_update_checks_total", []string{"outcome", "ok"}, 1},
		{"mirrord_update_checks_total", []string{"outcome", "no_new_version_available"}, 2},
		{"mirrord_update_check_duration_seconds", nil, 3},
		{"mirrord_stats_events_total", []string{"action", "download_complete"}, 1},
		{"mirrord_stats_events_total", []string{"action", "set"}, 1},
		{"mirrord_stats_events_total", []string{"action", "other"}, 1},
		{"mirrord_http_requests_total", []string{"route", "updates", "code", "2xx"}, 3},
		{"mirrord_http_requests_total", []string{"route", "stats", "code", "2xx"}, 3},
		// The first scrape is counted once it has been written.
		{"mirrord_http_requests_total", []string{"route", "metrics", "code", "2xx"}, 1},
	} {
		if got := delta(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if delta("mirrord_http_requests_total", "route", "admin") < 2 {
		t.Errorf("admin requests moved by %v, want the CLI's calls", delta("mirrord_http_requests_total", "route", "admin"))
	}
	if delta("mirrord_http_response_bytes_total", "route", "updates") <= 0 {
		t.Error("no response bytes counted for updates")
	}
	if delta("mirrord_raft_applied_index") < 2 {
		t.Errorf("raft applied index moved by %v after app create and publish", delta("mirrord_raft_applied_index"))
	}
	if delta("mirrord_disk_used_bytes") <= 0 {
		t.Errorf("disk used moved by %v after a publish", delta("mirrord_disk_used_bytes"))
	}
	if _, ok := after.get("mirrord_stats_events_total", "action", "made_up_action"); ok {
		t.Error("a device-chosen action got its own series")
	}
	// A single node holds what it was sent: no lag, release ready.
	var s promScrape
	consensustest.WaitFor(t, "replication series of 1.0.1", func() bool {
		s = scrapeMetrics(t, n.url)
		_, ok := s.get("mirrord_replication_blocks_missing", "app", app, "version", "1.0.1")
		return ok && s.val("mirrord_replication_release_ready", "app", app, "version", "1.0.1") == 1
	}, 10*time.Second)
	if v := s.val("mirrord_replication_blocks_missing", "app", app, "version", "1.0.1"); v != 0 {
		t.Errorf("blocks missing on the publishing node: %v", v)
	}
	if v := s.val("mirrord_replication_blocks_known", "app", app, "version", "1.0.1"); v < 1 {
		t.Errorf("blocks known: %v", v)
	}

	// A rollout, and failures of its release since the baseline.
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", filepath.Join(vectors(t), "src-1.0.2"))
	n.cli(t, "rollout", "start", app, "production", "--version", "1.0.2", "--percent", "10")
	ch := []string{"app", app, "channel", "production"}
	s = scrapeMetrics(t, n.url)
	if v := s.val("mirrord_rollout_state", append(ch, "state", "active")...); v != 1 {
		t.Errorf("rollout_state{active} = %v", v)
	}
	if v := s.val("mirrord_rollout_state", append(ch, "state", "paused")...); v != 0 {
		t.Errorf("rollout_state{paused} = %v", v)
	}
	if v := s.val("mirrord_rollout_basis_points", ch...); v != 1000 {
		t.Errorf("rollout basis points %v", v)
	}
	if _, ok := s.get("mirrord_rollout_info", append(ch, "version", "1.0.2", "stable", "1.0.1")...); !ok {
		t.Error("rollout_info missing")
	}
	// Devices in the rollout's cohort, answered 1.0.2 by the node (it
	// counts only those).
	devs := checkedInDevices(t, fc, n.url, "1.0.2", 100, 4)
	fc.stat(n.url, devs[0], "set", "1.0.2")
	fc.stat(n.url, devs[1], "set", "1.0.2")
	fc.stat(n.url, devs[2], "set", "1.0.2")
	fc.stat(n.url, devs[3], "update_fail", "1.0.2")
	consensustest.WaitFor(t, "the rollout's failure rate from the fleet report", func() bool {
		s = scrapeMetrics(t, n.url)
		return s.val("mirrord_rollout_events_since_baseline", append(ch, "kind", "failures")...) == 1 &&
			s.val("mirrord_rollout_events_since_baseline", append(ch, "kind", "installs")...) == 3
	}, 10*time.Second)
	if v := s.val("mirrord_rollout_failure_rate_basis_points", ch...); v != 2500 {
		t.Errorf("failure rate %v bp, want 2500 (1 of 4)", v)
	}

	// Every metric the dashboard queries is served.
	for _, name := range dashboardMetrics(t) {
		if _, ok := s[name]; !ok {
			t.Errorf("configs/grafana-dashboard.json queries %s, which /metrics does not serve", name)
		}
	}
}

// dashboardMetrics returns the metric families the Grafana dashboard's
// queries use (histogram series names map to their family).
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "configs", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	re := regexp.MustCompile(`\b(?:mirrord|go|process)_[a-zA-Z0-9_]*`)
	seen := map[string]bool{}
	for _, p := range doc.Panels {
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					if base, ok := strings.CutSuffix(name, suffix); ok && strings.HasSuffix(base, "_seconds") {
						name = base
					}
				}
				seen[name] = true
			}
		}
	}
	var out []string
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("only %d metrics found in the dashboard: %v", len(out), out)
	}
	return out
}

// TestMetricsAccess: node.metrics open, token and off.
func TestMetricsAccess(t *testing.T) {
	for _, tc := range []struct {
		mode            string
		anon, withToken int
	}{{"open", 200, 200}, {"token", 401, 200}, {"off", 404, 404}} {
		t.Run(tc.mode, func(t *testing.T) {
			n := startNodeWith(t, "", func(c *configs.Config) { c.Node.Metrics = tc.mode })
			if resp, _ := httpGet(t, n.url+"/metrics", nil); resp.StatusCode != tc.anon {
				t.Errorf("without a token: HTTP %d, want %d", resp.StatusCode, tc.anon)
			}
			if resp, body := httpGet(t, n.url+"/metrics", map[string]string{"Authorization": "Bearer " + n.token}); resp.StatusCode != tc.withToken ||
				(tc.withToken == 200 && !strings.Contains(string(body), "mirrord_raft_term")) {
				t.Errorf("with the admin token: HTTP %d, want %d", resp.StatusCode, tc.withToken)
			}
		})
	}
}
