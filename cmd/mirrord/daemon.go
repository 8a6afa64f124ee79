package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/configs"
	"mirrord/consensus"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/adminapi"
	"mirrord/node/statslog"
	"mirrord/resolver/httpapi"
)

func init() {
	register(command{name: "serve", help: "Run a mirrord node (no flags: a working single node on ./mirrord-data and 127.0.0.1:8080).", run: cmdServe})
	flagSetups["serve"] = func(fs *flag.FlagSet) {
		fs.String("config", "", "YAML config `file` (default: built-in single-node settings)")
		fs.String("data", "", "data `dir` (overrides node.data)")
		fs.String("http", "", "HTTP listen `addr` for devices and admin (overrides node.http)")
		fs.String("public-url", "", "base `URL` devices use to reach this node (overrides node.public_url)")
		fs.String("log-level", "info", "log `level`: debug, info, warn, error")
		fs.Func("p2p", "libp2p listen `multiaddr`, repeatable (default TCP and QUIC on all interfaces, port 4001)", func(v string) error {
			p2pFlags = append(p2pFlags, v)
			return nil
		})
		fs.String("psk-file", "", "private network key `file` (64 hex chars); peers without it cannot connect")
		fs.String("join", "", "on first start, join the cluster through this node: its HTTP `URL` or its multiaddr ending in /p2p/PEER_ID")
		fs.String("join-token", "", "join `token` made by `mirrord cluster token`")
		fs.String("inbox", "", "watch folder `dir`: bundle directories moved into it are published (overrides node.inbox)")
	}
}

// p2pFlags collects the repeatable --p2p flag of serve.
var p2pFlags []string

func cmdServe(ctx context.Context, env *cmdEnv) error {
	defer func() { p2pFlags = nil }()
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	// Precedence, lowest first: defaults, file, environment, flags.
	loaded, err := loadConfig(flagString(env.fs, "config"), os.Environ())
	if err != nil {
		return err
	}
	cfg := loaded.cfg
	if v := flagString(env.fs, "data"); v != "" {
		cfg.Node.Data = v
	}
	if v := flagString(env.fs, "http"); v != "" {
		cfg.Node.HTTP = v
	}
	if v := flagString(env.fs, "public-url"); v != "" {
		cfg.Node.PublicURL = v
	}
	if len(p2pFlags) > 0 {
		cfg.Node.P2P = p2pFlags
	}
	if v := flagString(env.fs, "psk-file"); v != "" {
		cfg.Node.PSKFile = v
	}
	if v := flagString(env.fs, "join"); v != "" {
		cfg.Cluster.Join = v
	}
	if v := flagString(env.fs, "join-token"); v != "" {
		cfg.Cluster.JoinToken = v
	}
	if v := flagString(env.fs, "inbox"); v != "" {
		cfg.Node.Inbox = v
	}
	if err := cfg.Validate(); err != nil {
		return loaded.invalidServe(err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(flagString(env.fs, "log-level"))); err != nil {
		return usagef("--log-level: %v", err)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: level}))
	if len(loaded.vars) > 0 {
		log.Info("settings from the environment", "vars", strings.Join(loaded.vars, ","))
	}
	return serve(ctx, cfg, log, nil)
}

// serve runs a node until ctx is done. ready, if non-nil, receives the
// HTTP address once the node answers (used by tests).
func serve(ctx context.Context, cfg configs.Config, log *slog.Logger, ready chan<- string) (err error) {
	data := cfg.Node.Data
	if err := os.MkdirAll(data, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := node.LockDataDir(data)
	if err != nil {
		return err
	}
	defer unlock()
	var psk []byte
	if cfg.Node.PSKFile != "" {
		if psk, err = readPSK(cfg.Node.PSKFile); err != nil {
			return err
		}
	}
	// The HTTP port is taken first, so that a busy port fails before
	// anything else starts and the node knows its own URL.
	ln, err := net.Listen("tcp", cfg.Node.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another mirrord running? use --http to pick another address)", cfg.Node.HTTP, err)
	}
	defer ln.Close()
	httpURL := cfg.Node.PublicURL
	if httpURL == "" {
		httpURL = "http://" + ln.Addr().String()
	}

	// Start order: stores, libp2p, consensus, exchange, replication,
	// HTTP. Deferred closes run in reverse.
	store, err := content.OpenStore(filepath.Join(data, "blocks"))
	if err != nil {
		return err
	}
	store.SetMinFree(int64(cfg.Replication.MinFree))
	defer closeLogged(log, "block store", store.Close)
	stats, err := statslog.Open(statslog.Config{
		Dir: filepath.Join(data, "stats"), MaxBytes: int64(cfg.Stats.MaxBytes),
		SegmentBytes: int64(cfg.Stats.SegmentBytes), FlushInterval: time.Duration(cfg.Stats.FlushInterval),
		Retention: time.Duration(cfg.Stats.Retention),
	})
	if err != nil {
		return err
	}
	defer closeLogged(log, "stats log", stats.Close)

	// One libp2p host per node: raft, block exchange and cluster calls
	// share it.
	h, err := node.NewHost(node.HostConfig{Dir: data, Listen: cfg.Node.P2P, PSK: psk})
	if err != nil && len(cfg.Node.P2P) == 0 && cfg.Cluster.Join == "" {
		// The default port is taken: a node without peers still works on
		// any port, so say so and carry on.
		log.Warn("default p2p port busy; listening on a random port (use --p2p to choose)", "port", node.DefaultP2PPort, "err", err)
		listen := []string{"/ip4/0.0.0.0/tcp/0"}
		if psk == nil {
			listen = append(listen, "/ip4/0.0.0.0/udp/0/quic-v1")
		}
		h, err = node.NewHost(node.HostConfig{Dir: data, Listen: listen, PSK: psk})
	}
	if err != nil {
		return err
	}
	defer closeLogged(log, "libp2p host", h.Close)
	nodeID := h.ID().String()
	// Raft and block traffic are only for cluster members; the cluster
	// (made below) decides who they are.
	var cl atomic.Pointer[node.Cluster]
	member := func(p peer.ID) bool {
		c := cl.Load()
		return c != nil && c.IsMember(p)
	}
	trans, err := node.NewRaftTransport(h, 10*time.Second, slogWriter{log}, member)
	if err != nil {
		return err
	}
	defer closeLogged(log, "raft transport", trans.Close)
	ccfg := consensus.DefaultConfig()
	ccfg.NodeID = nodeID
	ccfg.Dir = filepath.Join(data, "raft")
	ccfg.Bootstrap = cfg.Cluster.Join == ""
	ccfg.Logger = log
	if cfg.Raft.HeartbeatTimeout > 0 {
		ccfg.HeartbeatTimeout = time.Duration(cfg.Raft.HeartbeatTimeout)
	}
	if cfg.Raft.ElectionTimeout > 0 {
		ccfg.ElectionTimeout = time.Duration(cfg.Raft.ElectionTimeout)
	}
	if cfg.Raft.SnapshotThreshold > 0 {
		ccfg.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	}
	if cfg.Raft.SnapshotInterval > 0 {
		ccfg.SnapshotInterval = time.Duration(cfg.Raft.SnapshotInterval)
	}
	if cfg.Raft.TrailingLogs > 0 {
		ccfg.TrailingLogs = cfg.Raft.TrailingLogs
	}
	ccfg.WALSegmentSize = int(cfg.Raft.WALSegmentSize)
	cons, err := consensus.Open(ccfg, trans)
	if err != nil {
		return err
	}
	defer closeLogged(log, "consensus", cons.Close)
	joining := cfg.Cluster.Join != "" && !cons.HadState()
	if cfg.Cluster.Join != "" && !joining {
		log.Info("this node is already a cluster member; --join is ignored", "data", data)
	}

	xctx, xcancel := context.WithCancel(context.Background())
	defer xcancel()
	bsw := node.NewExchange(xctx, h, store.Blockstore(), member)
	store.SetExchange(bsw) // store.Close closes bitswap too
	store.SetDownloads(content.DownloadConfig{MaxFetches: cfg.Limits.DownloadFetches,
		FetchStall: time.Duration(cfg.Limits.DownloadFetchStall), Log: log.With("component", "store")})
	repl := node.NewReplicator(node.ReplicatorConfig{
		Store: store, State: cons, Zips: cfg.Replication.Zips, Parallel: cfg.Replication.Parallel,
		ScrubInterval: time.Duration(cfg.Replication.ScrubInterval), GCInterval: time.Duration(cfg.Replication.GCInterval),
		GCGrace: time.Duration(cfg.Replication.GCGrace), DiskBudget: int64(cfg.Replication.DiskBudget),
		Share: func() (int, int) { return cl.Load().Share() },
		Log:   log.With("component", "replication"),
	})
	cluster := node.NewCluster(node.ClusterConfig{
		Host: h, Cons: cons, HTTP: httpURL, Voters: cfg.Cluster.Voters,
		Progress: repl.Progress, PeersFile: filepath.Join(data, "peers.json"),
		Exchange: func() (node.ExchangeStats, error) { return node.ExchangeStatsOf(bsw) },
		Log:      log.With("component", "cluster"),
	})
	cl.Store(cluster)
	defer closeLogged(log, "cluster", cluster.Close)

	var token string
	created := false
	// serving says whether this node has a state to answer devices
	// from. A node that restarts has one at once: consensus.Open
	// restored its snapshot and replayed its committed log, leader or
	// not. A new node has one once it bootstrapped or caught up with the
	// cluster it joined.
	var serving atomic.Bool
	serving.Store(cons.HadState())
	if joining {
		res, err := joinCluster(ctx, log, h, cluster, cfg.Cluster.Join, cfg.Cluster.JoinToken)
		if err != nil {
			return err
		}
		if err := node.WriteToken(data, res.AdminToken); err != nil {
			return err
		}
		token = res.AdminToken
		role := "non-voter"
		if res.Voter {
			role = "voter"
		}
		log.Info("joined the cluster", "via", cfg.Cluster.Join, "role", role, "members", len(res.Members))
		cluster.SetAdminToken(token)
		cluster.Start()
		// A first start has nothing to serve before it caught up with
		// the state the leader had when it admitted this node.
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = cons.WaitForIndex(wctx, res.Index)
		cancel()
		if err != nil {
			return fmt.Errorf("catching up with the cluster: %w", err)
		}
		serving.Store(true)
	} else {
		if token, created, err = node.EnsureToken(data); err != nil {
			return err
		}
		cluster.SetAdminToken(token)
		cluster.Start()
		if !cons.HadState() {
			// A new cluster of one: its first election takes a moment,
			// and its first admin writes should not meet a 503.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := cons.WaitForLeader(wctx)
			cancel()
			if err != nil {
				return fmt.Errorf("waiting for the new cluster's first leader: %w", err)
			}
			serving.Store(true)
		}
	}
	repl.Start()
	defer closeLogged(log, "replication", repl.Close)
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	// Fleet counters and the rollout guard write to the cluster from
	// what the state says, so they start only once this node has caught
	// up with a leader: a report built on a state that missed this
	// node's own last report would replace newer counts with older ones.
	// Until then devices are answered and counted from the local state.
	fleet := node.NewFleet(node.FleetConfig{
		Node: nodeID, State: cons.State, Apply: cluster.Apply,
		Interval: time.Duration(cfg.Stats.ReportInterval), Log: log.With("component", "fleet"),
	})
	guard := node.NewRolloutGuard(node.GuardConfig{
		State: cons.State, Subscribe: cons.Subscribe, IsLeader: cons.IsLeader, Apply: cluster.Apply,
		Interval: time.Duration(cfg.Stats.HaltCheckInterval), Log: log.With("component", "rollouts"),
	})
	var bg sync.WaitGroup
	var fleetRunning atomic.Bool
	defer func() {
		acancel()
		bg.Wait()
		if !fleetRunning.Load() {
			return
		}
		// A last report on a clean stop, so counts since the last
		// interval are not lost.
		fctx, fcancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer fcancel()
		if err := fleet.Report(fctx); err != nil {
			log.Info("last stats report not written", "err", err)
		}
	}()
	bg.Go(func() {
		if err := catchUp(actx, log, cons, cluster); err != nil {
			return
		}
		serving.Store(true)
		fleetRunning.Store(true)
		bg.Go(func() { cluster.Announce(actx) })
		bg.Go(func() { guard.Run(actx) })
		fleet.Run(actx)
	})

	met, err := newMetrics(cfg, nodeID, cons, store, bsw, repl, log.With("component", "metrics"))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	devAPI := httpapi.New(httpapi.Config{PublicURL: cfg.Node.PublicURL, MaxBodyBytes: int64(cfg.Limits.MaxRequestBytes),
		Serving: serving.Load, Counter: fleet, Observer: met},
		cons, store, stats, node.Overrides{Cons: cluster}, log.With("component", "devices"))
	devAPI.Register(mux)
	adminAPI := adminapi.New(adminapi.Config{Token: token, MaxBodyBytes: int64(cfg.Limits.MaxAdminBodyBytes),
		MaxUploadBytes: int64(cfg.Limits.MaxUploadBytes), Cluster: cluster, Budget: repl.CheckBudget, Barrier: cluster.Barrier,
		GC: repl.Collect, Reclaim: repl.CollectSoon, Disk: repl.Disk},
		cluster, store, log.With("component", "admin"))
	adminAPI.Register(mux)
	registerDashboard(mux, adminAPI, devAPI)
	mux.Handle("GET /cluster/v1/peer", cluster.PeerInfoHandler())
	switch cfg.Node.Metrics {
	case "open":
		mux.Handle("GET /metrics", met.Handler())
	case "token":
		mux.Handle("GET /metrics", adminAPI.Protect(met.Handler(), false))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.Handle("GET /readyz", readyHandler(cons, serving.Load))

	srv := &http.Server{
		Handler: met.Middleware(node.BodyTimeouts{Total: time.Duration(cfg.Limits.DeviceBodyTimeout),
			Idle: time.Duration(cfg.Limits.AdminBodyIdleTimeout)}.Wrap(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	addr := ln.Addr().String()
	if cfg.Node.Inbox != "" {
		w, stop, err := startInbox(ctx, cfg.Node.Inbox, filepath.Join(data, "inbox.json"), adminAPI, log.With("component", "inbox"))
		if err != nil {
			return err
		}
		defer stop()
		if testHookInbox != nil {
			testHookInbox(w)
		}
	}
	tokenPath := filepath.Join(data, node.TokenFile)
	if created {
		log.Info("created admin token", "file", tokenPath)
	}
	log.Info("mirrord node ready", "http", "http://"+addr, "node", nodeID, "data", data, "admin_token_file", tokenPath, "p2p", fmt.Sprint(h.Addrs()))
	if ready != nil {
		ready <- addr
	}

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	return nil
}

// joinCluster asks the cluster at target to admit this node, retrying
// while the answer may change (no leader yet, a node restarting) and
// giving up at once on a refused token.
func joinCluster(ctx context.Context, log *slog.Logger, h host.Host, cl *node.Cluster, target, token string) (node.JoinResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		actx, acancel := context.WithTimeout(ctx, 45*time.Second)
		res, err := node.Join(actx, h, target, token, cl.Self(), cl.Trust)
		acancel()
		if err == nil {
			return res, nil
		}
		if errors.Is(err, node.ErrForbidden) {
			return res, fmt.Errorf("join refused: %w", err)
		}
		log.Warn("cannot join yet; retrying", "via", target, "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("join via %s: %w (last error: %v)", target, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// catchUp waits until a leader is known and this node's state holds
// everything the leader had applied, logging now and then while the
// cluster has no leader. It fails only when ctx ends.
func catchUp(ctx context.Context, log *slog.Logger, cons *consensus.Node, cl *node.Cluster) error {
	start := time.Now()
	warned := start
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := cons.WaitForLeader(wctx)
		if err == nil && cons.IsLeader() {
			err = cons.Barrier(wctx)
		} else if err == nil {
			err = cl.Barrier(wctx)
		}
		cancel()
		if err == nil {
			if time.Since(start) > time.Second {
				log.Info("caught up with the cluster leader", "after", time.Since(start).Round(time.Millisecond),
					"state_index", cons.State().Index)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(warned) >= 30*time.Second {
			warned = time.Now()
			st := cons.Stats()
			log.Warn("no raft leader reachable: devices are answered from this node's last state; admin writes answer 503",
				"state_index", st.StateIndex, "leader_last_known", st.LeaderContact, "waiting", time.Since(start).Round(time.Second), "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
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

// readPSK reads a private network key: 64 hex characters.
func readPSK(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("psk file: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("psk file %s: want 64 hex characters (make one with `openssl rand -hex 32`)", path)
	}
	return k, nil
}

// slogWriter sends raft transport log lines to slog at debug level.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "component", "raft-transport")
	return len(p), nil
}

func closeLogged(log *slog.Logger, what string, fn func() error) {
	if err := fn(); err != nil {
		log.Warn("close "+what, "err", err)
	}
}

func flagString(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

func flagBool(fs *flag.FlagSet, name string) bool {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String() == "true"
	}
	return false
}

// flagSet reports whether a flag was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}
