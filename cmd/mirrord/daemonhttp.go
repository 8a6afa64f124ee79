package main

import (
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"time"

	"mirrord/consensus"
	"mirrord/node"
	"mirrord/node/adminapi"
	"mirrord/resolver/httpapi"
)

// newHTTPServers builds the HTTP API: devices, admin, dashboard, peer
// info, metrics, health and readiness on node.http; with
// node.internal_http set, peer info and metrics move to a second server
// there, which has health and readiness too.
func (d *daemon) newHTTPServers() (dev, internal *http.Server, err error) {
	cfg := d.cfg
	met, err := newMetrics(cfg, d.h.ID().String(), d.cons, d.store, d.bsw, d.repl, d.log.With("component", "metrics"))
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	devAPI := httpapi.New(httpapi.Config{PublicURL: cfg.Node.PublicURL, MaxBodyBytes: int64(cfg.Limits.MaxRequestBytes),
		Serving: d.serving.Load, Counter: d.fleet, Observer: met,
		StatsLimit: httpapi.RateLimit{Rate: float64(cfg.Limits.StatsEventsPerSecond), Burst: 10 * cfg.Limits.StatsEventsPerSecond}},
		d.cons, d.store, d.stats, node.Overrides{Cons: d.cluster}, d.log.With("component", "devices"))
	devAPI.Register(mux)
	adminAPI := adminapi.New(adminapi.Config{Token: d.token, MaxBodyBytes: int64(cfg.Limits.MaxAdminBodyBytes),
		MaxUploadBytes: int64(cfg.Limits.MaxUploadBytes), Cluster: d.cluster, Budget: d.repl.CheckBudget,
		Barrier: d.cluster.Barrier, GC: d.repl.Collect, Reclaim: d.repl.CollectSoon, Disk: d.repl.Disk,
		Rotated: d.cluster.ShareAdminToken},
		d.cluster, d.store, d.log.With("component", "admin"))
	adminAPI.Register(mux)
	d.admin = adminAPI
	registerDashboard(mux, adminAPI, devAPI)
	ops := mux
	if d.internalLn != nil {
		ops = http.NewServeMux()
		d.healthRoutes(ops)
		internal = &http.Server{Handler: ops, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
			MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	}
	ops.Handle("GET /cluster/v1/peer", d.cluster.PeerInfoHandler())
	switch cfg.Node.Metrics {
	case "open":
		ops.Handle("GET /metrics", met.Handler())
	case "token":
		ops.Handle("GET /metrics", adminAPI.Protect(met.Handler(), false))
	}
	d.healthRoutes(mux)
	return &http.Server{
		Handler: met.Middleware(node.BodyTimeouts{Total: time.Duration(cfg.Limits.DeviceBodyTimeout),
			Idle: time.Duration(cfg.Limits.AdminBodyIdleTimeout)}.Wrap(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}, internal, nil
}

// healthRoutes adds /healthz and /readyz to mux.
func (d *daemon) healthRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /readyz", readyHandler(d.cons, d.serving.Load))
}

// readyHandler serves GET /readyz: 200 while this node answers devices
// from a state (also without a leader: then "leader" is empty and
// "stale_seconds" says how long ago it last knew one), 503 while it has
// none yet. With ?leader=1 it also answers 503 without a leader, for
// checks that need admin writes to work.
func readyHandler(cons *consensus.Node, serving func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := cons.Stats()
		ready := serving()
		status := http.StatusOK
		if !ready || (r.URL.Query().Get("leader") != "" && !st.HasLeader()) {
			status = http.StatusServiceUnavailable
		}
		body := map[string]any{"ready": ready, "leader": st.LeaderID, "state_index": st.StateIndex,
			"applied_index": st.AppliedIndex}
		if !st.HasLeader() {
			body["no_leader"] = "devices are answered from this node's last state; admin writes answer 503"
			if !st.LeaderContact.IsZero() {
				body["leader_last_known"] = st.LeaderContact.UTC().Format(time.RFC3339)
				body["stale_seconds"] = math.Round(st.Staleness(time.Now()).Seconds())
			}
		}
		if len(st.Warnings) > 0 {
			body["warnings"] = st.Warnings
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
	})
}
