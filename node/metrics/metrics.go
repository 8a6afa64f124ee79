package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/replication"
)

// Namespace starts every metric name of this package.
const Namespace = "mirrord"

// Other is the label value of an outcome, action or route outside the
// known set.
const Other = "other"

// Config says what to measure. Every function is optional: without it,
// its series are left out. The functions are called at scrape time, from
// the scraping goroutine, and must be safe for concurrent use.
type Config struct {
	// NodeID, if set, is exported as mirrord_node_info{node}.
	NodeID string
	// CheckOutcomes are the update check outcomes counted under their
	// own label value; any other outcome counts as "other".
	CheckOutcomes []string
	// StatActions are the stats actions counted under their own label
	// value; any other action counts as "other".
	StatActions []string

	// Raft returns the node's raft status.
	Raft func() consensus.NodeStats
	// State returns the local replicated state (rollouts).
	State func() *state.State
	// Exchange returns bitswap's counters.
	Exchange func() (node.ExchangeStats, error)
	// Progress returns the replication progress per release. It walks
	// the stored blocks of every release, so its result is reused while
	// State returns the same snapshot and it is younger than
	// ProgressMaxAge.
	Progress func(ctx context.Context) []replication.ReleaseProgress
	// ProgressMaxAge is how long a Progress result may be reused; 0
	// calls Progress on every scrape.
	ProgressMaxAge time.Duration
	// ProgressTimeout bounds one Progress call (default 10s).
	ProgressTimeout time.Duration
	// DiskUsage returns the bytes used by the block store and its cache.
	DiskUsage func() (int64, error)
	// DiskBudget is replication.disk_budget; 0 (no cap) leaves
	// mirrord_disk_budget_bytes out.
	DiskBudget int64
	// DiskSpace returns the free space on the block store's file system
	// and the margin the node keeps free.
	DiskSpace func() (content.Space, error)

	// Log receives collection errors; nil discards them.
	Log *slog.Logger
}

// Indexes of the route label's values, chosen by path (see routeOf).
const (
	routeUpdates = iota
	routeStats
	routeChannelSelf
	routeDownload
	routeAdmin
	routeCluster
	routeProbe
	routeMetrics
	routeOther
	numRoutes
)

// Routes lists every value of the route label: the device endpoints
// (/updates, /stats, /channel_self, /dl/...), /admin/..., /cluster/...,
// the probes /healthz and /readyz, /metrics, and other.
var Routes = [numRoutes]string{
	routeUpdates: "updates", routeStats: "stats", routeChannelSelf: "channel_self",
	routeDownload: "download", routeAdmin: "admin", routeCluster: "cluster",
	routeProbe: "probe", routeMetrics: "metrics", routeOther: Other,
}

// codeClasses lists every value of the code label, in index order.
var codeClasses = [...]string{"2xx", "3xx", "4xx", "5xx"}

// checkBuckets spread over what an update check costs: tens of
// microseconds from the local snapshot, up to a slow disk or a starved
// CPU.
var checkBuckets = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1}

// Metrics holds a node's registry and the series updated on the request
// path. It is safe for concurrent use. Its maps are written only in New.
type Metrics struct {
	reg     *prometheus.Registry
	handler http.Handler

	checks       map[string]prometheus.Counter
	checkOther   prometheus.Counter
	checkSeconds prometheus.Histogram
	stats        map[string]prometheus.Counter
	statOther    prometheus.Counter
	requests     [numRoutes][len(codeClasses)]prometheus.Counter
	respBytes    [numRoutes][len(codeClasses)]prometheus.Counter
}

// New builds the registry with every series Config allows.
func New(cfg Config) (*Metrics, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.ProgressTimeout <= 0 {
		cfg.ProgressTimeout = 10 * time.Second
	}
	m := &Metrics{reg: prometheus.NewRegistry()}

	checks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "update_checks_total",
		Help: "Update checks (POST /updates) answered, by outcome: ok, revert, bad_request, a Capgo error code, or other.",
	}, []string{"outcome"})
	m.checks, m.checkOther = children(checks, cfg.CheckOutcomes)
	m.checkSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "update_check_duration_seconds",
		Help:    "Time the update check handler took, from reading the body to writing the answer.",
		Buckets: checkBuckets,
	})
	stats := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "stats_events_total",
		Help: "Stats events (POST /stats) accepted, by action; actions the plugin does not send count as other.",
	}, []string{"action"})
	m.stats, m.statOther = children(stats, cfg.StatActions)
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_requests_total",
		Help: "HTTP requests served, by route and status class.",
	}, []string{"route", "code"})
	respBytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "http_response_bytes_total",
		Help: "HTTP response body bytes written, by route and status class (counted when the response ends).",
	}, []string{"route", "code"})
	for i, r := range Routes {
		for j, c := range codeClasses {
			m.requests[i][j] = requests.WithLabelValues(r, c)
			m.respBytes[i][j] = respBytes.WithLabelValues(r, c)
		}
	}

	cs := []prometheus.Collector{checks, m.checkSeconds, stats, requests, respBytes,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newScrapeCollector(cfg),
	}
	for _, c := range cs {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: printLogger{cfg.Log},
		// A component that fails to report (bitswap closing, a disk
		// error) must not hide every other series.
		ErrorHandling: promhttp.ContinueOnError,
		// /metrics shares the device port: bound concurrent scrapes.
		MaxRequestsInFlight: 4,
	})
	return m, nil
}

// children makes one counter per known label value, plus "other".
func children(v *prometheus.CounterVec, known []string) (map[string]prometheus.Counter, prometheus.Counter) {
	out := make(map[string]prometheus.Counter, len(known))
	for _, k := range known {
		if k != "" {
			out[k] = v.WithLabelValues(k)
		}
	}
	return out, v.WithLabelValues(Other)
}

// Registry returns the private registry (tests, or extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler { return m.handler }

// ObserveCheck counts one update check and its duration. An outcome
// outside Config.CheckOutcomes counts as "other".
func (m *Metrics) ObserveCheck(outcome string, d time.Duration) {
	c, ok := m.checks[outcome]
	if !ok {
		c = m.checkOther
	}
	c.Inc()
	m.checkSeconds.Observe(d.Seconds())
}

// ObserveStat counts one accepted stats event. An action outside
// Config.StatActions counts as "other".
func (m *Metrics) ObserveStat(action string) {
	c, ok := m.stats[action]
	if !ok {
		c = m.statOther
	}
	c.Inc()
}

// Middleware counts every request next serves and its response body
// bytes, by route and status class, once the response ends. The wrapped
// ResponseWriter keeps io.ReaderFrom (so downloads still use sendfile),
// http.Flusher, and Unwrap for http.ResponseController.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route, class := routeOf(r.URL.Path), classOf(rec.status)
		m.requests[route][class].Inc()
		if rec.bytes > 0 {
			m.respBytes[route][class].Add(float64(rec.bytes))
		}
	})
}

// routeOf maps a request path to an index in Routes.
func routeOf(p string) int {
	switch p {
	case "/updates":
		return routeUpdates
	case "/stats":
		return routeStats
	case "/channel_self":
		return routeChannelSelf
	case "/healthz", "/readyz":
		return routeProbe
	case "/metrics":
		return routeMetrics
	}
	switch {
	case strings.HasPrefix(p, "/dl/"):
		return routeDownload
	case strings.HasPrefix(p, "/admin/"):
		return routeAdmin
	case strings.HasPrefix(p, "/cluster/"):
		return routeCluster
	}
	return routeOther
}

// classOf maps a status to an index in codeClasses; 0 (nothing
// written) is 200, 1xx (101 Switching Protocols) counts as 2xx.
func classOf(status int) int {
	switch {
	case status < 300:
		return 0
	case status < 400:
		return 1
	case status < 500:
		return 2
	}
	return 3
}

// recorder notes the status and body bytes of a response.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	// Informational answers (100 Continue, 103 Early Hints) come before
	// the final status.
	if r.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// ReadFrom keeps net/http's sendfile path for downloads of plain files.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{r.ResponseWriter}, src)
	}
	r.bytes += n
	return n, err
}

// Flush sends buffered data to the client, if the writer can.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the server's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	_ io.ReaderFrom = (*recorder)(nil)
	_ http.Flusher  = (*recorder)(nil)
)

// writerOnly hides a writer's other methods from io.Copy.
type writerOnly struct{ io.Writer }

// printLogger sends promhttp's error lines to slog.
type printLogger struct{ log *slog.Logger }

func (l printLogger) Println(v ...any) {
	l.log.Warn("metrics: collecting or serving failed", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
