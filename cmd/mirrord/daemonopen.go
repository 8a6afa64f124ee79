package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ipfs/boxo/bitswap"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/configs"
	"mirrord/consensus"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/adminapi"
	"mirrord/node/cluster"
	"mirrord/node/fleet"
	"mirrord/node/replication"
	"mirrord/node/statslog"
)

// daemon is a node while serve runs it.
type daemon struct {
	cfg     configs.Config
	log     *slog.Logger
	data    string
	closers closers
	parts   *parts

	ln      net.Listener
	httpURL string
	// internalLn is node.internal_http's listener (nil when not set).
	internalLn net.Listener
	// tls is node.http's TLS config (nil: plain HTTP); certs keeps its
	// certificate current (reloads the files, or runs ACME).
	tls     *tls.Config
	certs   func(context.Context) error
	psk     []byte
	store   *content.Store
	stats   *statslog.Log
	h       host.Host
	trans   raft.Transport
	bsw     *bitswap.Bitswap
	cons    *consensus.Node
	joining bool
	// member is the cluster once made: raft and block traffic are only
	// for its members.
	member  atomic.Pointer[cluster.Cluster]
	cluster *cluster.Cluster
	repl    *replication.Replicator
	fleet   *fleet.Fleet
	guard   *fleet.RolloutGuard
	admin   *adminapi.API

	token   string
	created bool
	// serving says whether this node has a state to answer devices
	// from. A node that restarts has one at once: consensus.Open
	// restored its snapshot and replayed its committed log, leader or
	// not. A new node has one once it bootstrapped or caught up with the
	// cluster it joined.
	serving atomic.Bool
}

// isMember admits raft and block traffic from cluster members only.
func (d *daemon) isMember(p peer.ID) bool {
	c := d.member.Load()
	return c != nil && c.IsMember(p)
}

// openStores locks the data directory, takes the HTTP port and opens
// the block store and the stats log. The HTTP port is taken first, so
// that a busy port fails before anything else starts and the node knows
// its own URL.
func (d *daemon) openStores() error {
	if err := os.MkdirAll(d.data, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	unlock, err := node.LockDataDir(d.data)
	if err != nil {
		return err
	}
	d.closers.add("data dir lock", func() error { _ = unlock(); return nil })
	if d.cfg.Node.PSKFile != "" {
		if d.psk, err = readPSK(d.cfg.Node.PSKFile); err != nil {
			return err
		}
	}
	if d.ln, err = net.Listen("tcp", d.cfg.Node.HTTP); err != nil {
		return fmt.Errorf("listen on %s: %w (is another mirrord running? use --http to pick another address)", d.cfg.Node.HTTP, err)
	}
	d.closers.add("http listener", func() error { _ = d.ln.Close(); return nil })
	if err := d.listenInternal(); err != nil {
		return err
	}
	d.httpURL = d.cfg.Node.PublicURL
	if d.httpURL == "" {
		d.httpURL = d.scheme() + "://" + d.ln.Addr().String()
	}
	if d.store, err = content.OpenStore(filepath.Join(d.data, "blocks")); err != nil {
		return err
	}
	d.store.SetMinFree(int64(d.cfg.Replication.MinFree))
	d.closers.add("block store", d.store.Close)
	st := d.cfg.Stats
	d.stats, err = statslog.Open(statslog.Config{
		Dir: filepath.Join(d.data, "stats"), MaxBytes: int64(st.MaxBytes), SegmentBytes: int64(st.SegmentBytes),
		FlushInterval: time.Duration(st.FlushInterval), Retention: time.Duration(st.Retention),
	})
	if err != nil {
		return err
	}
	d.closers.add("stats log", d.stats.Close)
	return nil
}

// startP2P starts the node's one libp2p host (raft, block exchange and
// cluster calls share it) and the raft transport over it.
func (d *daemon) startP2P() error {
	h, err := node.NewHost(node.HostConfig{Dir: d.data, Listen: d.cfg.Node.P2P, PSK: d.psk})
	if err != nil && len(d.cfg.Node.P2P) == 0 && d.cfg.Cluster.Join == "" {
		// The default port is taken: a node without peers still works on
		// any port, so say so and carry on.
		d.log.Warn("default p2p port busy; listening on a random port (use --p2p to choose)", "port", node.DefaultP2PPort, "err", err)
		listen := []string{"/ip4/0.0.0.0/tcp/0"}
		if d.psk == nil {
			listen = append(listen, "/ip4/0.0.0.0/udp/0/quic-v1")
		}
		h, err = node.NewHost(node.HostConfig{Dir: d.data, Listen: listen, PSK: d.psk})
	}
	if err != nil {
		return err
	}
	d.h = h
	d.closers.add("libp2p host", h.Close)
	trans, err := node.NewRaftTransport(h, 10*time.Second, slogWriter{d.log}, d.isMember)
	if err != nil {
		return err
	}
	d.trans = trans
	d.closers.add("raft transport", trans.Close)
	return nil
}

// openConsensus opens the raft node (bootstrapping a new cluster unless
// told to join one) and starts the block exchange.
func (d *daemon) openConsensus() error {
	cons, err := consensus.Open(consensusConfig(d.cfg, d.h.ID().String(), d.log), d.trans)
	if err != nil {
		return err
	}
	d.cons = cons
	d.closers.add("consensus", cons.Close)
	d.serving.Store(cons.HadState())
	d.joining = d.cfg.Cluster.Join != "" && !cons.HadState()
	if d.cfg.Cluster.Join != "" && !d.joining {
		d.log.Info("this node is already a cluster member; --join is ignored", "data", d.data)
	}
	xctx, xcancel := context.WithCancel(context.Background())
	d.closers.add("block exchange", func() error { xcancel(); return nil })
	d.bsw = node.NewExchange(xctx, d.h, d.store.Blockstore(), d.isMember)
	d.store.SetExchange(d.bsw) // store.Close closes bitswap too
	d.store.SetDownloads(content.DownloadConfig{MaxFetches: d.cfg.Limits.DownloadFetches,
		FetchStall: time.Duration(d.cfg.Limits.DownloadFetchStall), Log: d.log.With("component", "store")})
	return nil
}

// consensusConfig maps the node's settings to consensus.Config.
func consensusConfig(cfg configs.Config, nodeID string, log *slog.Logger) consensus.Config {
	ccfg := consensus.DefaultConfig()
	ccfg.NodeID = nodeID
	ccfg.Dir = filepath.Join(cfg.Node.Data, "raft")
	ccfg.Bootstrap = cfg.Cluster.Join == ""
	ccfg.Logger = log
	r := cfg.Raft
	if r.HeartbeatTimeout > 0 {
		ccfg.HeartbeatTimeout = time.Duration(r.HeartbeatTimeout)
	}
	if r.ElectionTimeout > 0 {
		ccfg.ElectionTimeout = time.Duration(r.ElectionTimeout)
	}
	if r.SnapshotThreshold > 0 {
		ccfg.SnapshotThreshold = r.SnapshotThreshold
	}
	if r.SnapshotInterval > 0 {
		ccfg.SnapshotInterval = time.Duration(r.SnapshotInterval)
	}
	if r.TrailingLogs > 0 {
		ccfg.TrailingLogs = r.TrailingLogs
	}
	ccfg.WALSegmentSize = int(r.WALSegmentSize)
	return ccfg
}

// newServices makes the cluster membership, replication, fleet counters
// and rollout guard; nothing runs yet.
func (d *daemon) newServices() error {
	cfg := d.cfg
	d.repl = replication.New(replication.Config{
		Store: d.store, State: d.cons, Zips: cfg.Replication.Zips, Parallel: cfg.Replication.Parallel,
		ScrubInterval: time.Duration(cfg.Replication.ScrubInterval), GCInterval: time.Duration(cfg.Replication.GCInterval),
		GCGrace: time.Duration(cfg.Replication.GCGrace), DiskBudget: int64(cfg.Replication.DiskBudget),
		Share: func() (int, int) { return d.cluster.Share() },
		Log:   d.log.With("component", "replication"),
	})
	d.cluster = cluster.New(cluster.Config{
		Host: d.h, Cons: d.cons, HTTP: d.httpURL, Voters: cfg.Cluster.Voters,
		Progress: d.repl.Progress, PeersFile: filepath.Join(d.data, "peers.json"), TokenDir: d.data,
		Exchange: func() (node.ExchangeStats, error) { return node.ExchangeStatsOf(d.bsw) },
		Log:      d.log.With("component", "cluster"),
	})
	d.member.Store(d.cluster)
	d.fleet = fleet.New(fleet.Config{
		Node: d.h.ID().String(), State: d.cons.State, Apply: d.cluster.Apply,
		Interval: time.Duration(cfg.Stats.ReportInterval), Log: d.log.With("component", "fleet"),
	})
	d.guard = fleet.NewRolloutGuard(fleet.GuardConfig{
		State: d.cons.State, Subscribe: d.cons.Subscribe, IsLeader: d.cons.IsLeader, Apply: d.cluster.Apply,
		Interval: time.Duration(cfg.Stats.HaltCheckInterval), Log: d.log.With("component", "rollouts"),
	})
	return nil
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
