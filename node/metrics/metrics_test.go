package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/replication"
)

// scrape fetches h's /metrics and parses the text format.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", w.Code, w.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(w.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of name with exactly labels
// (name=value pairs), and whether it exists.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func want(t *testing.T, fams map[string]*dto.MetricFamily, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(fams, name, labels...)
	switch {
	case !ok:
		t.Errorf("%s%v: missing", name, labels)
	case got != v && !(math.IsInf(v, 1) && math.IsInf(got, 1)):
		t.Errorf("%s%v = %v, want %v", name, labels, got, v)
	}
}

func TestRequestPathSeries(t *testing.T) {
	m, err := New(Config{CheckOutcomes: []string{"ok", "no_new_version_available"}, StatActions: []string{"set", "update_fail"}})
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveCheck("ok", 80*time.Microsecond)
	m.ObserveCheck("ok", 3*time.Millisecond)
	m.ObserveCheck("no_new_version_available", time.Microsecond)
	m.ObserveCheck("made_up_by_a_device", time.Microsecond)
	m.ObserveStat("set")
	m.ObserveStat("set")
	m.ObserveStat("anything at all")

	mux := http.NewServeMux()
	mux.HandleFunc("POST /updates", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "12345") })
	mux.HandleFunc("GET /dl/{cid}/{name}", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "gone", http.StatusNotFound) })
	mux.HandleFunc("GET /admin/v1/apps", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /healthz", func(http.ResponseWriter, *http.Request) {})
	mux.Handle("GET /metrics", m.Handler())
	h := m.Middleware(mux)
	for _, r := range []struct{ method, path string }{
		{"POST", "/updates"}, {"POST", "/updates"}, {"GET", "/dl/x/y.zip"}, {"GET", "/admin/v1/apps"},
		{"GET", "/healthz"}, {"GET", "/nowhere"}, {"GET", "/metrics"},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.path, nil))
	}

	fams := scrape(t, h)
	want(t, fams, 2, "mirrord_update_checks_total", "outcome", "ok")
	want(t, fams, 1, "mirrord_update_checks_total", "outcome", "no_new_version_available")
	want(t, fams, 1, "mirrord_update_checks_total", "outcome", "other")
	want(t, fams, 4, "mirrord_update_check_duration_seconds")
	if h := fams["mirrord_update_check_duration_seconds"].Metric[0].Histogram; h.GetSampleSum() < 0.003 || h.GetSampleSum() > 0.0031 {
		t.Errorf("check duration sum %v", h.GetSampleSum())
	}
	want(t, fams, 2, "mirrord_stats_events_total", "action", "set")
	want(t, fams, 0, "mirrord_stats_events_total", "action", "update_fail")
	want(t, fams, 1, "mirrord_stats_events_total", "action", "other")
	if _, ok := value(fams, "mirrord_stats_events_total", "action", "anything at all"); ok {
		t.Error("an unknown action got its own series")
	}
	want(t, fams, 2, "mirrord_http_requests_total", "route", "updates", "code", "2xx")
	want(t, fams, 10, "mirrord_http_response_bytes_total", "route", "updates", "code", "2xx")
	want(t, fams, 1, "mirrord_http_requests_total", "route", "download", "code", "4xx")
	want(t, fams, 1, "mirrord_http_requests_total", "route", "admin", "code", "5xx")
	want(t, fams, 1, "mirrord_http_requests_total", "route", "probe", "code", "2xx")
	want(t, fams, 1, "mirrord_http_requests_total", "route", "other", "code", "4xx")
	want(t, fams, 1, "mirrord_http_requests_total", "route", "metrics", "code", "2xx")
	if n := len(fams["mirrord_http_requests_total"].Metric); n != len(Routes)*len(codeClasses) {
		t.Errorf("%d request series, want %d", n, len(Routes)*len(codeClasses))
	}
	lint(t, fams)
}

// lint runs Prometheus's own metric lint over every family of ours.
func lint(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	var mine []*dto.MetricFamily
	for name, f := range fams {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, Namespace+"_") {
			t.Errorf("metric %s does not start with %s_", name, Namespace)
		}
		mine = append(mine, f)
	}
	problems, err := promlint.NewWithMetricFamilies(mine).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMiddlewareKeepsSendfile serves a file through the middleware on a
// real server: the wrapper must offer io.ReaderFrom (net/http's sendfile
// path) and count the bytes that went that way.
func TestMiddlewareKeepsSendfile(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "obj")
	body := bytes.Repeat([]byte("0123456789abcdef"), 64<<10)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	var readerFrom, flushed atomic.Bool
	srv := httptest.NewServer(m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/dl/flush" {
			_, _ = io.WriteString(w, "x")
			flushed.Store(http.NewResponseController(w).Flush() == nil)
			return
		}
		_, ok := w.(io.ReaderFrom)
		readerFrom.Store(ok)
		f, err := os.Open(path)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f)
	})))
	defer srv.Close()
	for _, p := range []string{"/dl/a/b.zip", "/dl/flush"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !readerFrom.Load() || !flushed.Load() {
		t.Errorf("wrapped writer: io.ReaderFrom %v, Flush through ResponseController %v", readerFrom.Load(), flushed.Load())
	}
	want(t, scrape(t, m.Handler()), float64(len(body)+1), "mirrord_http_response_bytes_total", "route", "download", "code", "2xx")
}

func TestScrapeTimeSeries(t *testing.T) {
	prod := state.NewChannel("production")
	prod.Version = "1.0.1"
	prod.Rollout = &state.Rollout{ID: "a/production/1.0.2#1", Version: "1.0.2", BasisPoints: 1000,
		State: state.RolloutPaused, Baseline: state.Tally{Installs: 5, Failures: 1}}
	beta := state.NewChannel("beta")
	st := &state.State{Index: 7, Apps: map[string]*state.AppState{"a": {
		App:      state.App{ID: "a"},
		Channels: map[string]*state.Channel{"production": &prod, "beta": &beta},
		Stats: map[string]map[string]state.Counters{"1.0.2": {
			"n1": {Installs: 10, Failures: map[string]int64{"update_fail": 2}},
			"n2": {Installs: 1, Failures: map[string]int64{"set_fail": 2}},
		}},
	}}}
	var cur atomic.Pointer[state.State]
	cur.Store(st)
	var walks atomic.Int32
	exchangeErr := errors.New("bitswap closed")
	var failExchange atomic.Bool
	m, err := New(Config{
		NodeID: "12D3KooWTest",
		Raft: func() consensus.NodeStats {
			return consensus.NodeStats{State: "Follower", LeaderID: "L", Term: 3, AppliedIndex: 41, CommitIndex: 42, LastIndex: 43,
				LastContact: time.Now().Add(-2 * time.Second),
				Servers:     []consensus.Server{{ID: "L", Voter: true}, {ID: "me", Voter: true}, {ID: "edge"}}}
		},
		State: cur.Load,
		Exchange: func() (node.ExchangeStats, error) {
			if failExchange.Load() {
				return node.ExchangeStats{}, exchangeErr
			}
			return node.ExchangeStats{BlocksReceived: 4, BytesReceived: 4096, DupBlocks: 1, BlocksSent: 2, BytesSent: 100, Peers: 2}, nil
		},
		Progress: func(context.Context) []replication.ReleaseProgress {
			walks.Add(1)
			return []replication.ReleaseProgress{{App: "a", Version: "1.0.1", BlocksHeld: 3, BlocksKnown: 10}, {App: "a", Version: "1.0.2", BlocksHeld: 5, BlocksKnown: 5, Ready: true}}
		},
		ProgressMaxAge: time.Hour,
		DiskUsage:      func() (int64, error) { return 12345, nil },
		DiskBudget:     1 << 30,
		DiskSpace: func() (content.Space, error) {
			return content.Space{Size: 100 << 30, Free: 7 << 30, MinFree: 5 << 30}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m.Handler())
	want(t, fams, 1, "mirrord_node_info", "node", "12D3KooWTest")
	want(t, fams, 1, "mirrord_raft_state", "state", "follower")
	want(t, fams, 0, "mirrord_raft_state", "state", "leader")
	want(t, fams, 3, "mirrord_raft_term")
	want(t, fams, 41, "mirrord_raft_applied_index")
	want(t, fams, 42, "mirrord_raft_commit_index")
	want(t, fams, 43, "mirrord_raft_last_index")
	want(t, fams, 1, "mirrord_raft_leader_known")
	want(t, fams, 2, "mirrord_raft_servers", "suffrage", "voter")
	want(t, fams, 1, "mirrord_raft_servers", "suffrage", "nonvoter")
	if v, _ := value(fams, "mirrord_raft_last_contact_seconds"); v < 2 || v > 60 {
		t.Errorf("last contact %v s, want about 2", v)
	}
	want(t, fams, 4, "mirrord_bitswap_blocks_total", "direction", "received")
	want(t, fams, 2, "mirrord_bitswap_blocks_total", "direction", "sent")
	want(t, fams, 4096, "mirrord_bitswap_bytes_total", "direction", "received")
	want(t, fams, 100, "mirrord_bitswap_bytes_total", "direction", "sent")
	want(t, fams, 1, "mirrord_bitswap_duplicate_blocks_total")
	want(t, fams, 2, "mirrord_bitswap_peers")
	want(t, fams, 7, "mirrord_replication_blocks_missing", "app", "a", "version", "1.0.1")
	want(t, fams, 0, "mirrord_replication_blocks_missing", "app", "a", "version", "1.0.2")
	want(t, fams, 10, "mirrord_replication_blocks_known", "app", "a", "version", "1.0.1")
	want(t, fams, 1, "mirrord_replication_release_ready", "app", "a", "version", "1.0.2")
	want(t, fams, 1, "mirrord_rollout_info", "app", "a", "channel", "production", "version", "1.0.2", "stable", "1.0.1")
	want(t, fams, 1, "mirrord_rollout_state", "app", "a", "channel", "production", "state", "paused")
	want(t, fams, 0, "mirrord_rollout_state", "app", "a", "channel", "production", "state", "active")
	want(t, fams, 1000, "mirrord_rollout_basis_points", "app", "a", "channel", "production")
	// Since the baseline: 11-5 = 6 installs, 4-1 = 3 failures: 3/9.
	want(t, fams, 6, "mirrord_rollout_events_since_baseline", "app", "a", "channel", "production", "kind", "installs")
	want(t, fams, 3, "mirrord_rollout_events_since_baseline", "app", "a", "channel", "production", "kind", "failures")
	if v, _ := value(fams, "mirrord_rollout_failure_rate_basis_points", "app", "a", "channel", "production"); math.Abs(v-10000.0/3) > 1e-6 {
		t.Errorf("failure rate %v bp, want 3333.33", v)
	}
	if _, ok := value(fams, "mirrord_rollout_basis_points", "app", "a", "channel", "beta"); ok {
		t.Error("a channel without a rollout has rollout series")
	}
	want(t, fams, 12345, "mirrord_disk_used_bytes")
	want(t, fams, 1<<30, "mirrord_disk_budget_bytes")
	want(t, fams, 7<<30, "mirrord_disk_free_bytes")
	want(t, fams, 5<<30, "mirrord_disk_min_free_bytes")
	lint(t, fams)

	// The replication walk is reused for the same state, redone for a
	// new one.
	scrape(t, m.Handler())
	if n := walks.Load(); n != 1 {
		t.Errorf("%d progress walks for one state, want 1", n)
	}
	next := *st
	next.Index++
	cur.Store(&next)
	scrape(t, m.Handler())
	if n := walks.Load(); n != 2 {
		t.Errorf("%d progress walks after a state change, want 2", n)
	}

	// A failing source loses its own series only.
	failExchange.Store(true)
	fams = scrape(t, m.Handler())
	if _, ok := fams["mirrord_bitswap_blocks_total"]; ok {
		t.Error("bitswap series served while bitswap fails")
	}
	want(t, fams, 12345, "mirrord_disk_used_bytes")
}

func TestLeaderAndNoContact(t *testing.T) {
	stats := consensus.NodeStats{State: "Leader", LeaderID: "me"}
	m, err := New(Config{Raft: func() consensus.NodeStats { return stats }})
	if err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, m.Handler())
	want(t, fams, 0, "mirrord_raft_last_contact_seconds")
	want(t, fams, 1, "mirrord_raft_state", "state", "leader")
	if _, ok := fams["mirrord_disk_budget_bytes"]; ok {
		t.Error("disk budget served without a budget")
	}
	stats = consensus.NodeStats{State: "Candidate"}
	fams = scrape(t, m.Handler())
	want(t, fams, math.Inf(1), "mirrord_raft_last_contact_seconds")
	want(t, fams, 0, "mirrord_raft_leader_known")
}

func TestObserveAllocs(t *testing.T) {
	m, err := New(Config{CheckOutcomes: []string{"ok"}, StatActions: []string{"set"}})
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		m.ObserveCheck("ok", time.Millisecond)
		m.ObserveCheck("unknown", time.Millisecond)
		m.ObserveStat("set")
		m.ObserveStat("unknown")
	}); n != 0 {
		t.Errorf("%v allocations per observation", n)
	}
}
