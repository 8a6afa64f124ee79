package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/replication"
)

// DefaultVoters is how many voters a cluster grows to before joining
// nodes become non-voters.
const DefaultVoters = 3

// Config configures a Cluster.
type Config struct {
	Host host.Host
	Cons *consensus.Node
	// HTTP is the base URL of this node's HTTP API, recorded in the
	// cluster state so that status pages can link nodes.
	HTTP string
	// Voters is how many voters the cluster grows to; DefaultVoters if 0.
	Voters int
	// AdminToken is this node's admin token; the leader hands it to
	// joining nodes, so that one token works everywhere.
	AdminToken string
	// TokenDir, if set, is the data directory whose admin.token is
	// rewritten when the first admin token is rotated (ShareAdminToken).
	TokenDir string
	// Progress reports this node's replication progress per release;
	// nil reports none.
	Progress func(ctx context.Context) []replication.ReleaseProgress
	// PeersFile, if set, keeps the last known addresses of every node
	// across restarts: raft dials by peer id, and after a restart of the
	// whole cluster the addresses in the raft log are not applied until
	// a leader exists, which needs the addresses.
	PeersFile string
	// Exchange reports block exchange counters; nil reports none.
	Exchange func() (node.ExchangeStats, error)
	Log      *slog.Logger
}

// Cluster is a node's membership in the cluster: it forwards writes to
// the leader, admits joining nodes (on the leader), keeps connections
// to every other node, and gathers status from all of them.
type Cluster struct {
	cfg  Config
	h    host.Host
	cons *consensus.Node
	log  *slog.Logger

	joinMu     sync.Mutex
	mu         sync.Mutex
	adminToken string
	trusted    map[peer.ID]bool // members learnt from a join reply
	dialing    map[peer.ID]time.Time
	// savedPeers is the PeersFile content last read or written (only
	// touched by Run).
	savedPeers string
}

// New returns a Cluster; it does no I/O. Run serves the cluster
// protocol and keeps the connections; Apply, Join and the other calls
// work without it (as clients of other nodes).
func New(cfg Config) *Cluster {
	if cfg.Voters <= 0 {
		cfg.Voters = DefaultVoters
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Cluster{cfg: cfg, h: cfg.Host, cons: cfg.Cons, log: cfg.Log,
		adminToken: cfg.AdminToken, trusted: map[peer.ID]bool{}, dialing: map[peer.ID]time.Time{}}
}

// Run puts the addresses saved in PeersFile into the peerstore, serves
// ClusterProtocol and keeps a connection open to every node in the
// cluster state (raft dials by peer id, and block exchange only asks
// connected peers) until ctx ends. It then removes the protocol handler
// and waits for its dials to end.
func (c *Cluster) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	c.loadPeers()
	// A call being served when Run returns ends with ctx.
	c.h.SetStreamHandler(ClusterProtocol, func(s network.Stream) { c.handle(ctx, s) })
	defer c.h.RemoveStreamHandler(ClusterProtocol)
	ch, unsub := c.cons.Subscribe()
	defer unsub()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		c.connectAll(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
		case <-t.C:
		}
	}
}

// loadPeers puts the addresses saved in PeersFile into the peerstore.
func (c *Cluster) loadPeers() {
	if c.cfg.PeersFile == "" {
		return
	}
	b, err := os.ReadFile(c.cfg.PeersFile)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("cannot read saved peer addresses", "err", err)
		}
		return
	}
	var nodes []state.NodeInfo
	if err := json.Unmarshal(b, &nodes); err != nil {
		c.log.Warn("saved peer addresses are unreadable; ignoring them", "file", c.cfg.PeersFile, "err", err)
		return
	}
	for _, n := range nodes {
		if p, err := peer.Decode(n.ID); err == nil && p != c.h.ID() {
			c.h.Peerstore().AddAddrs(p, parseAddrs(n.Addrs), peerstore.PermanentAddrTTL)
			c.Trust(p)
		}
	}
	c.savedPeers = string(b)
}

// savePeers writes the known nodes to PeersFile when they changed.
func (c *Cluster) savePeers(nodes []state.NodeInfo) {
	if c.cfg.PeersFile == "" || len(nodes) == 0 {
		return
	}
	b, err := json.MarshalIndent(nodes, "", "  ")
	if err != nil || string(b) == c.savedPeers {
		return
	}
	if err := content.WriteFileAtomic(c.cfg.PeersFile, b, 0o600); err != nil {
		c.log.Warn("cannot save peer addresses", "err", err)
		return
	}
	c.savedPeers = string(b)
}

// SetAdminToken sets the admin token (a joined node learns it from the
// join reply).
func (c *Cluster) SetAdminToken(t string) {
	c.mu.Lock()
	c.adminToken = t
	c.mu.Unlock()
}

func (c *Cluster) token() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adminToken
}

// Trust admits p's raft and block traffic before it shows up in this
// node's raft configuration (the members named by a join reply).
func (c *Cluster) Trust(p peer.ID) {
	c.mu.Lock()
	c.trusted[p] = true
	c.mu.Unlock()
}

// IsMember reports whether p may talk raft, forward writes and fetch
// blocks: it is in the raft configuration or the cluster state, or was
// named by a join reply.
func (c *Cluster) IsMember(p peer.ID) bool {
	if p == c.h.ID() {
		return true
	}
	c.mu.Lock()
	ok := c.trusted[p]
	c.mu.Unlock()
	if ok {
		return true
	}
	if _, ok := c.cons.State().ClusterInfo().Nodes[p.String()]; ok {
		return true
	}
	servers, err := c.cons.Configuration()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == p.String() {
			return true
		}
	}
	return false
}

// connectAll adds every known node's addresses to the peerstore and
// dials the ones not connected (at most one dial per peer per 5 s).
func (c *Cluster) connectAll(ctx context.Context, wg *sync.WaitGroup) {
	self := c.h.ID()
	nodes := c.cons.State().ClusterInfo().Nodes
	if len(nodes) > 0 {
		c.savePeers(c.members())
	}
	for id, n := range nodes {
		p, err := peer.Decode(id)
		if err != nil || p == self {
			continue
		}
		addrs := parseAddrs(n.Addrs)
		c.h.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
		c.h.ConnManager().Protect(p, "mirrord-cluster")
		if c.h.Network().Connectedness(p) == network.Connected {
			continue
		}
		c.mu.Lock()
		last := c.dialing[p]
		if time.Since(last) < 5*time.Second {
			c.mu.Unlock()
			continue
		}
		c.dialing[p] = time.Now()
		c.mu.Unlock()
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := c.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs}); err != nil {
				c.log.Debug("cannot reach cluster node", "node", p, "err", err)
			}
		})
	}
}

func parseAddrs(ss []string) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, s := range ss {
		if a, err := ma.NewMultiaddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Share is this node's rank among the cluster's nodes (by id) and their
// number, for content.FetchOptions.
func (c *Cluster) Share() (rank, of int) {
	nodes := c.cons.State().ClusterInfo().Nodes
	self := c.h.ID().String()
	for id := range nodes {
		if id < self {
			rank++
		}
	}
	return rank, max(len(nodes), 1)
}

// Self returns this node's record: peer id, listen addresses, HTTP URL.
func (c *Cluster) Self() state.NodeInfo {
	return state.NodeInfo{ID: c.h.ID().String(), Addrs: hostAddrs(c.h), HTTP: c.cfg.HTTP}
}

func hostAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out
}

// members lists the nodes of the cluster: those in the state, plus raft
// servers without a record yet (with the addresses the peerstore has).
func (c *Cluster) members() []state.NodeInfo {
	nodes := c.cons.State().ClusterInfo().Nodes
	out := make([]state.NodeInfo, 0, len(nodes)+1)
	seen := map[string]bool{}
	for _, n := range nodes {
		out = append(out, n)
		seen[n.ID] = true
	}
	servers, _ := c.cons.Configuration()
	for _, s := range servers {
		if seen[s.ID] {
			continue
		}
		n := state.NodeInfo{ID: s.ID}
		if s.ID == c.h.ID().String() {
			n = c.Self()
		} else if p, err := peer.Decode(s.ID); err == nil {
			for _, a := range c.h.Peerstore().Addrs(p) {
				n.Addrs = append(n.Addrs, a.String())
			}
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Announce makes sure the cluster state holds this node's current record
// and, in a cluster without an admin token, the digest of its own,
// retrying until ctx ends. Run it in
// the background after start: it needs a leader. It returns nil once
// the state holds the record, or when ctx ends.
func (c *Cluster) Announce(ctx context.Context) error {
	self := c.Self()
	tok := c.token()
	digest := node.TokenDigest(tok)
	for wait := 200 * time.Millisecond; ; wait = min(wait*2, 10*time.Second) {
		st := c.cons.State()
		cur, ok := st.ClusterInfo().Nodes[self.ID]
		var err error
		if !ok || !slices.Equal(cur.Addrs, self.Addrs) || cur.HTTP != self.HTTP {
			if !ok {
				self.JoinedAt = time.Now().UnixMilli()
			}
			_, err = c.Apply(ctx, consensus.NodeSet{Node: self})
		}
		// The node's token is added only to a cluster that knows no
		// admin token yet (its first start): a rotated or revoked token
		// left in a file must not come back.
		if err == nil && tok != "" && !st.HasAdminToken() {
			_, err = c.Apply(ctx, consensus.AdminTokenAdd{Digest: digest, CreatedAt: time.Now().UnixMilli()})
		}
		if err == nil {
			return nil
		}
		c.log.Debug("announcing this node to the cluster; will retry", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
