package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"golang.org/x/sync/errgroup"

	"mirrord/configs"
	"mirrord/consensus"
	"mirrord/node"
	"mirrord/node/cluster"
)

func init() {
	register(command{name: "serve", help: "Run a mirrord node (no flags: a working single node on ./mirrord-data and 127.0.0.1:8080).", setup: withOptions(cmdServe)})
}

// serveOptions are serve's flags; each one given overrides its setting
// of the config file and the environment.
type serveOptions struct {
	config, data, http, publicURL, logLevel string
	p2p                                     []string
	pskFile, join, joinToken, inbox         string
}

func (o *serveOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "YAML config `file` (default: built-in single-node settings)")
	fs.StringVar(&o.data, "data", "", "data `dir` (overrides node.data)")
	fs.StringVar(&o.http, "http", "", "HTTP listen `addr` for devices and admin (overrides node.http)")
	fs.StringVar(&o.publicURL, "public-url", "", "base `URL` devices use to reach this node (overrides node.public_url)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn, error")
	fs.Func("p2p", "libp2p listen `multiaddr`, repeatable (default TCP and QUIC on all interfaces, port 4001)", func(v string) error {
		o.p2p = append(o.p2p, v)
		return nil
	})
	fs.StringVar(&o.pskFile, "psk-file", "", "private network key `file` (64 hex chars); peers without it cannot connect")
	fs.StringVar(&o.join, "join", "", "on first start, join the cluster through this node: its HTTP `URL` or its multiaddr ending in /p2p/PEER_ID")
	fs.StringVar(&o.joinToken, "join-token", "", "join `token` made by `mirrord cluster token`")
	fs.StringVar(&o.inbox, "inbox", "", "watch folder `dir`: bundle directories moved into it are published (overrides node.inbox)")
}

// apply sets the settings the flags name.
func (o *serveOptions) apply(cfg *configs.Config) {
	for _, f := range []struct {
		flag string
		dst  *string
	}{
		{o.data, &cfg.Node.Data}, {o.http, &cfg.Node.HTTP}, {o.publicURL, &cfg.Node.PublicURL},
		{o.pskFile, &cfg.Node.PSKFile}, {o.join, &cfg.Cluster.Join}, {o.joinToken, &cfg.Cluster.JoinToken},
		{o.inbox, &cfg.Node.Inbox},
	} {
		if f.flag != "" {
			*f.dst = f.flag
		}
	}
	if len(o.p2p) > 0 {
		cfg.Node.P2P = o.p2p
	}
}

func cmdServe(ctx context.Context, env *cmdEnv, o *serveOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	// Precedence, lowest first: defaults, file, environment, flags.
	loaded, err := loadConfig(o.config, os.Environ())
	if err != nil {
		return err
	}
	cfg := loaded.cfg
	o.apply(&cfg)
	if err := cfg.Validate(); err != nil {
		return loaded.invalidServe(err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
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
//
// Start order: the HTTP port, the stores, libp2p, consensus, the
// services, HTTP. Stop order: HTTP, the services (last started
// first), then what was opened, in reverse: consensus, libp2p, the
// stores, the port.
func serve(ctx context.Context, cfg configs.Config, log *slog.Logger, ready chan<- string) error {
	d := &daemon{cfg: cfg, log: log, data: cfg.Node.Data, closers: closers{log: log}, parts: newParts()}
	defer d.closers.close()
	steps := []func() error{d.openStores, d.openTLS, d.startP2P, d.openConsensus, d.newServices}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return d.run(ctx, ready)
}

// run runs the services and HTTP until ctx is done (or the HTTP server
// or a service fails), then stops them in order: HTTP, the inbox, the
// services last started first.
func (d *daemon) run(ctx context.Context, ready chan<- string) (err error) {
	defer func() { err = errors.Join(err, d.parts.stop()) }()
	d.parts.start("cluster", d.cluster.Run)
	if err := d.admit(ctx); err != nil {
		return err
	}
	d.parts.start("replication", d.repl.Run)
	d.parts.start("fleet", d.runCaughtUp)
	srv, err := d.startHTTP()
	if err != nil {
		return err
	}
	if err := d.startInbox(); err != nil {
		return err
	}
	d.logReady()
	if ready != nil {
		ready <- d.ln.Addr().String()
	}
	select {
	case <-ctx.Done():
	case err := <-srv.errc:
		return fmt.Errorf("http server: %w", err)
	case <-d.parts.failed.Done():
	}
	d.log.Info("shutting down")
	srv.shutdown(d)
	return nil
}

// logReady logs that the node answers, and where.
func (d *daemon) logReady() {
	tokenPath := filepath.Join(d.data, node.TokenFile)
	if d.created {
		d.log.Info("created admin token", "file", tokenPath)
	}
	args := []any{"http", d.scheme() + "://" + d.ln.Addr().String(), "node", d.h.ID().String(), "data", d.data,
		"admin_token_file", tokenPath, "p2p", fmt.Sprint(d.h.Addrs())}
	if d.internalLn != nil {
		args = append(args, "internal_http", "http://"+d.internalLn.Addr().String())
	}
	d.log.Info("mirrord node ready", args...)
}

// admit makes this node a member with an admin token: on first start
// with --join it joins and catches up with the cluster's state; else it
// makes (or reads) its token and, on a first start, waits for its new
// cluster's first leader.
func (d *daemon) admit(ctx context.Context) error {
	if d.joining {
		return d.join(ctx)
	}
	var err error
	if d.token, d.created, err = node.EnsureToken(d.data); err != nil {
		return err
	}
	d.cluster.SetAdminToken(d.token)
	if !d.cons.HadState() {
		// A new cluster of one: its first election takes a moment,
		// and its first admin writes should not meet a 503.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.cons.WaitForLeader(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("waiting for the new cluster's first leader: %w", err)
		}
		d.serving.Store(true)
	}
	return nil
}

// join joins the cluster at --join and waits until this node's state
// holds what the leader had when it admitted the node: a first start
// has nothing to serve before.
func (d *daemon) join(ctx context.Context) error {
	res, err := joinCluster(ctx, d.log, d.h, d.cluster, d.cfg.Cluster.Join, d.cfg.Cluster.JoinToken)
	if err != nil {
		return err
	}
	if err := node.WriteToken(d.data, res.AdminToken); err != nil {
		return err
	}
	d.token = res.AdminToken
	role := "non-voter"
	if res.Voter {
		role = "voter"
	}
	d.log.Info("joined the cluster", "via", d.cfg.Cluster.Join, "role", role, "members", len(res.Members))
	d.cluster.SetAdminToken(d.token)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = d.cons.WaitForIndex(wctx, res.Index)
	cancel()
	if err != nil {
		return fmt.Errorf("catching up with the cluster: %w", err)
	}
	d.serving.Store(true)
	return nil
}

// runCaughtUp waits until this node caught up with a leader, then runs
// the fleet counters, the rollout guard and the announcer until ctx
// ends, and makes a last fleet report so counts since the last interval
// are not lost. Fleet counters and the rollout guard write to the
// cluster from what the state says, so they start only once this node
// has caught up: a report built on a state that missed this node's own
// last report would replace newer counts with older ones. Until then
// devices are answered and counted from the local state.
func (d *daemon) runCaughtUp(ctx context.Context) error {
	if err := catchUp(ctx, d.log, d.cons, d.cluster); err != nil {
		return nil // ctx ended first
	}
	d.serving.Store(true)
	var g errgroup.Group
	g.Go(func() error { return d.cluster.Announce(ctx) })
	g.Go(func() error { return d.guard.Run(ctx) })
	g.Go(func() error { return d.fleet.Run(ctx) })
	err := g.Wait()
	fctx, fcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer fcancel()
	if err := d.fleet.Report(fctx); err != nil {
		d.log.Info("last stats report not written", "err", err)
	}
	return err
}

// joinCluster asks the cluster at target to admit this node, retrying
// while the answer may change (no leader yet, a node restarting) and
// giving up at once on a refused token.
func joinCluster(ctx context.Context, log *slog.Logger, h host.Host, cl *cluster.Cluster, target, token string) (cluster.JoinResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		actx, acancel := context.WithTimeout(ctx, 45*time.Second)
		res, err := cluster.Join(actx, h, target, token, cl.Self(), cl.Trust)
		acancel()
		if err == nil {
			return res, nil
		}
		if errors.Is(err, cluster.ErrForbidden) {
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
func catchUp(ctx context.Context, log *slog.Logger, cons *consensus.Node, cl *cluster.Cluster) error {
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

func closeLogged(log *slog.Logger, what string, fn func() error) {
	if err := fn(); err != nil {
		log.Warn("close "+what, "err", err)
	}
}
