package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
)

// ClusterProtocol carries the node-to-node calls: writes forwarded to
// the leader, joins, removals and status reports. One JSON request per
// stream, answered by one or more JSON replies.
const ClusterProtocol protocol.ID = "/mirrord/cluster/1.0.0"

// DefaultVoters is how many voters a cluster grows to before joining
// nodes become non-voters.
const DefaultVoters = 3

const (
	maxRPCBytes = 32 << 20
	// maxMemberRPCBytes bounds a call from a cluster member: a forwarded
	// write carries one raft entry, base64 in JSON.
	maxMemberRPCBytes = consensus.MaxCommandBytes/3*4 + 1<<20
	rpcTimeout        = 30 * time.Second
)

// ClusterConfig configures a Cluster.
type ClusterConfig struct {
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
	// Progress reports this node's replication progress per release;
	// nil reports none.
	Progress func(ctx context.Context) []ReleaseProgress
	// PeersFile, if set, keeps the last known addresses of every node
	// across restarts: raft dials by peer id, and after a restart of the
	// whole cluster the addresses in the raft log are not applied until
	// a leader exists, which needs the addresses.
	PeersFile string
	// Exchange reports block exchange counters; nil reports none.
	Exchange func() (ExchangeStats, error)
	Log      *slog.Logger
}

// Cluster is a node's membership in the cluster: it forwards writes to
// the leader, admits joining nodes (on the leader), keeps connections
// to every other node, and gathers status from all of them.
type Cluster struct {
	cfg  ClusterConfig
	h    host.Host
	cons *consensus.Node
	log  *slog.Logger

	joinMu     sync.Mutex
	mu         sync.Mutex
	adminToken string
	trusted    map[peer.ID]bool // members learnt from a join reply
	dialing    map[peer.ID]time.Time
	// savedPeers is the PeersFile content last read or written (only
	// touched by NewCluster and the connect loop).
	savedPeers string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewCluster registers the cluster protocol on the host. Call Start to
// begin keeping connections, and Close to stop.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Voters <= 0 {
		cfg.Voters = DefaultVoters
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{cfg: cfg, h: cfg.Host, cons: cfg.Cons, log: cfg.Log,
		adminToken: cfg.AdminToken, trusted: map[peer.ID]bool{}, dialing: map[peer.ID]time.Time{}, ctx: ctx, cancel: cancel}
	c.h.SetStreamHandler(ClusterProtocol, c.handle)
	c.loadPeers()
	return c
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

// Start keeps a connection open to every node in the cluster state (raft
// dials by peer id, and block exchange only asks connected peers).
func (c *Cluster) Start() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ch, unsub := c.cons.Subscribe()
		defer unsub()
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			c.connectAll()
			select {
			case <-c.ctx.Done():
				return
			case <-ch:
			case <-t.C:
			}
		}
	}()
}

// Close stops the cluster's background work and its protocol handler.
func (c *Cluster) Close() error {
	c.h.RemoveStreamHandler(ClusterProtocol)
	c.cancel()
	c.wg.Wait()
	return nil
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
	f := c.cons.Raft().GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == p.String() {
			return true
		}
	}
	return false
}

// connectAll adds every known node's addresses to the peerstore and
// dials the ones not connected (at most one dial per peer per 5 s).
func (c *Cluster) connectAll() {
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
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
			defer cancel()
			if err := c.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: addrs}); err != nil {
				c.log.Debug("cannot reach cluster node", "node", p, "err", err)
			}
		}()
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

// Announce makes sure the cluster state holds this node's current record
// and the digest of its admin token, retrying until ctx ends. Run it in
// the background after start: it needs a leader.
func (c *Cluster) Announce(ctx context.Context) {
	self := c.Self()
	tok := c.token()
	digest := TokenDigest(tok)
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
		if err == nil && tok != "" && !st.AdminTokenValid(digest) {
			_, err = c.Apply(ctx, consensus.AdminTokenAdd{Digest: digest, CreatedAt: time.Now().UnixMilli()})
		}
		if err == nil {
			return
		}
		c.log.Debug("announcing this node to the cluster; will retry", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// TokenDigest is the lowercase hex SHA-256 of a token, as stored in the
// cluster state.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// ---- wire ----

type rpcRequest struct {
	Op string `json:"op"` // apply, join, remove, status
	// Command is a consensus.Encode'd command (apply).
	Command []byte `json:"command,omitempty"`
	// Token is the join token (join); Node the joining node (join).
	Token string          `json:"token,omitempty"`
	Node  *state.NodeInfo `json:"node,omitempty"`
	// ID is the node to remove (remove).
	ID string `json:"id,omitempty"`
	// Forwarded is set by a follower relaying the call to the leader,
	// so that a call is relayed at most once.
	Forwarded bool `json:"forwarded,omitempty"`
}

type rpcError struct {
	// Kind is business (Code/Message from consensus), unavailable,
	// forbidden, invalid or internal.
	Kind    string `json:"kind"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

type rpcReply struct {
	Error *rpcError `json:"error,omitempty"`
	// Index is the state index after an applied command.
	Index uint64 `json:"index,omitempty"`
	// Members (join, first reply) are the nodes the joiner must trust.
	Members []state.NodeInfo `json:"members,omitempty"`
	// Done marks the last reply of a join.
	Done       bool        `json:"done,omitempty"`
	Voter      bool        `json:"voter,omitempty"`
	AdminToken string      `json:"admin_token,omitempty"`
	Status     *NodeReport `json:"status,omitempty"`
}

func errReply(kind, format string, args ...any) rpcReply {
	return rpcReply{Error: &rpcError{Kind: kind, Message: fmt.Sprintf(format, args...)}}
}

// replyFor turns a local error into a reply.
func replyFor(err error) rpcReply {
	var be *consensus.Error
	switch {
	case errors.As(err, &be):
		return rpcReply{Error: &rpcError{Kind: "business", Code: be.Code, Message: be.Msg}}
	case errors.Is(err, consensus.ErrUnavailable), errors.Is(err, consensus.ErrNotLeader):
		return errReply("unavailable", "%v", err)
	}
	return errReply("internal", "%v", err)
}

// asError turns a reply's error back into a Go error that matches the
// consensus sentinels.
func (e *rpcError) asError(leader string) error {
	switch e.Kind {
	case "business":
		return &consensus.Error{Code: e.Code, Msg: e.Message}
	case "unavailable":
		return fmt.Errorf("%w: leader %s: %s", consensus.ErrUnavailable, leader, e.Message)
	case "forbidden":
		return fmt.Errorf("%w: %s", ErrForbidden, e.Message)
	}
	return fmt.Errorf("node: %s (%s)", e.Message, e.Kind)
}

// ErrForbidden means a peer refused a call: a wrong or expired join
// token, or a caller that is not a cluster member.
var ErrForbidden = errors.New("node: refused")

// ---- server side ----

func (c *Cluster) handle(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(2 * rpcTimeout))
	enc := json.NewEncoder(s)
	remote := s.Conn().RemotePeer()
	member := c.IsMember(remote)
	limit := int64(maxRPCBytes)
	if member {
		limit = maxMemberRPCBytes
	}
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(s, limit)).Decode(&req); err != nil {
		_ = enc.Encode(errReply("invalid", "bad request: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, rpcTimeout)
	defer cancel()
	switch req.Op {
	case "status":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		r := c.Report(ctx)
		_ = enc.Encode(rpcReply{Status: &r})
	case "index":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		if !c.cons.IsLeader() {
			_ = enc.Encode(errReply("unavailable", "not the leader"))
			return
		}
		_ = enc.Encode(rpcReply{Index: c.cons.State().Index})
	case "apply", "remove":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		c.onLeader(ctx, s, enc, req)
	case "join":
		if req.Node == nil || req.Node.ID == "" {
			_ = enc.Encode(errReply("invalid", "join without a node"))
			return
		}
		// A joiner speaks for itself; members may relay for it.
		if !member && req.Node.ID != remote.String() {
			_ = enc.Encode(errReply("forbidden", "a node can only join as itself"))
			return
		}
		if req.Node.ID == remote.String() {
			// Remember how the joiner was reached, in case it
			// advertises only unroutable addresses.
			req.Node.Addrs = mergeAddrs(req.Node.Addrs, s.Conn().RemoteMultiaddr().String())
		}
		c.onLeader(ctx, s, enc, req)
	default:
		_ = enc.Encode(errReply("invalid", "unknown op %q", req.Op))
	}
}

func mergeAddrs(addrs []string, extra string) []string {
	if slices.Contains(addrs, extra) {
		return addrs
	}
	return append(slices.Clone(addrs), extra)
}

// onLeader runs req here if this node leads, or relays it to the leader
// once.
func (c *Cluster) onLeader(ctx context.Context, s network.Stream, enc *json.Encoder, req rpcRequest) {
	if c.cons.IsLeader() {
		switch req.Op {
		case "apply":
			_ = enc.Encode(c.leaderApply(ctx, req))
		case "remove":
			_ = enc.Encode(c.leaderRemove(ctx, req.ID))
		case "join":
			c.leaderJoin(ctx, enc, req)
		}
		return
	}
	_, leader := c.cons.Leader()
	if leader == "" || req.Forwarded {
		_ = enc.Encode(errReply("unavailable", "no raft leader reachable (quorum lost?)"))
		return
	}
	lp, err := peer.Decode(leader)
	if err != nil {
		_ = enc.Encode(errReply("internal", "leader id %q: %v", leader, err))
		return
	}
	req.Forwarded = true
	ls, err := c.open(ctx, lp, req)
	if err != nil {
		_ = enc.Encode(errReply("unavailable", "relay to leader %s: %v", leader, err))
		return
	}
	defer ls.Close()
	_, _ = io.Copy(s, io.LimitReader(ls, maxRPCBytes))
}

func (c *Cluster) leaderApply(ctx context.Context, req rpcRequest) rpcReply {
	_, cmd, err := consensus.Decode(req.Command)
	if err != nil {
		return errReply("invalid", "%v", err)
	}
	res, err := c.cons.Apply(ctx, cmd.(consensus.Command))
	if err != nil {
		return replyFor(err)
	}
	rep := rpcReply{}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	return rep
}

func (c *Cluster) leaderRemove(ctx context.Context, id string) rpcReply {
	if err := c.cons.RemoveServer(ctx, id); err != nil {
		return replyFor(err)
	}
	res, err := c.cons.Apply(ctx, consensus.NodeDelete{ID: id})
	var be *consensus.Error
	if errors.As(err, &be) && be.Code == consensus.CodeNotFound {
		err = nil
	}
	if err != nil {
		return replyFor(err)
	}
	rep := rpcReply{Done: true}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	return rep
}

func (c *Cluster) leaderJoin(ctx context.Context, enc *json.Encoder, req rpcRequest) {
	st := c.cons.State()
	if !st.JoinTokenValid(TokenDigest(req.Token), time.Now().UnixMilli()) {
		_ = enc.Encode(errReply("forbidden", "join token is wrong or expired: make one with `mirrord cluster token` on any node"))
		return
	}
	n := *req.Node
	p, err := peer.Decode(n.ID)
	if err != nil {
		_ = enc.Encode(errReply("invalid", "node id %q is not a peer id", n.ID))
		return
	}
	c.h.Peerstore().AddAddrs(p, parseAddrs(n.Addrs), peerstore.PermanentAddrTTL)
	c.Trust(p)
	members := c.members()
	if err := enc.Encode(rpcReply{Members: members}); err != nil {
		return
	}
	// Joins are admitted one at a time, so that two nodes joining at
	// once cannot both take the last voter seat.
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	voters, isVoter, present := 0, false, false
	if f := c.cons.Raft().GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
			if string(s.ID) == n.ID {
				present, isVoter = true, s.Suffrage == raft.Voter
			}
		}
	}
	if !present {
		isVoter = voters < c.cfg.Voters
		if isVoter {
			err = c.cons.AddVoter(ctx, n.ID, n.ID)
		} else {
			err = c.cons.AddNonvoter(ctx, n.ID, n.ID)
		}
		if err != nil {
			_ = enc.Encode(replyFor(err))
			return
		}
	}
	n.JoinedAt = time.Now().UnixMilli()
	if old, ok := st.ClusterInfo().Nodes[n.ID]; ok {
		n.JoinedAt = old.JoinedAt
	}
	res, err := c.cons.Apply(ctx, consensus.NodeSet{Node: n})
	if err != nil {
		_ = enc.Encode(replyFor(err))
		return
	}
	rep := rpcReply{Done: true, Voter: isVoter, AdminToken: c.token()}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	c.log.Info("node joined", "node", n.ID, "voter", isVoter, "addrs", strings.Join(n.Addrs, " "))
	_ = enc.Encode(rep)
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
	if f := c.cons.Raft().GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			id := string(s.ID)
			if seen[id] {
				continue
			}
			n := state.NodeInfo{ID: id}
			if id == c.h.ID().String() {
				n = c.Self()
			} else if p, err := peer.Decode(id); err == nil {
				for _, a := range c.h.Peerstore().Addrs(p) {
					n.Addrs = append(n.Addrs, a.String())
				}
			}
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ---- client side ----

// open starts a call to p and sends req.
func (c *Cluster) open(ctx context.Context, p peer.ID, req rpcRequest) (network.Stream, error) {
	return openRPC(ctx, c.h, p, req)
}

func openRPC(ctx context.Context, h host.Host, p peer.ID, req rpcRequest) (network.Stream, error) {
	s, err := h.NewStream(ctx, p, ClusterProtocol)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	} else {
		_ = s.SetDeadline(time.Now().Add(2 * rpcTimeout))
	}
	if err := json.NewEncoder(s).Encode(req); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

// call makes a one-reply call.
func (c *Cluster) call(ctx context.Context, p peer.ID, req rpcRequest) (rpcReply, error) {
	s, err := c.open(ctx, p, req)
	if err != nil {
		return rpcReply{}, err
	}
	defer s.Close()
	var rep rpcReply
	if err := json.NewDecoder(io.LimitReader(s, maxRPCBytes)).Decode(&rep); err != nil {
		return rpcReply{}, fmt.Errorf("read reply: %w", err)
	}
	return rep, nil
}

// leaderWait is how long Apply waits for a leader when none is known.
const leaderWait = 3 * time.Second

// Apply proposes cmd: on the leader directly, on a follower through the
// leader, then waits until this node's state includes it (so a client
// reads its own write from this node). Errors match consensus's: a
// business *consensus.Error, or ErrUnavailable without a reachable
// leader or quorum.
func (c *Cluster) Apply(ctx context.Context, cmd consensus.Command) (any, error) {
	if _, leader := c.cons.Leader(); leader == "" {
		// An election or a restart is under way: a leader usually comes
		// within a second, so wait a little rather than fail a write
		// that would succeed. Nothing was proposed yet, so this cannot
		// apply a command twice.
		wctx, cancel := context.WithTimeout(ctx, leaderWait)
		_ = c.cons.WaitForLeader(wctx)
		cancel()
	}
	res, err := c.cons.Apply(ctx, cmd)
	if err == nil || errors.Is(err, consensus.ErrUnavailable) || !errors.Is(err, consensus.ErrNotLeader) {
		return res, err
	}
	_, leader := c.cons.Leader()
	if leader == "" {
		return nil, fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
	}
	lp, err := peer.Decode(leader)
	if err != nil {
		return nil, fmt.Errorf("node: leader id %q: %w", leader, err)
	}
	data, err := consensus.Encode(cmd)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
	}
	rep, err := c.call(ctx, lp, rpcRequest{Op: "apply", Command: data})
	if err != nil {
		return nil, fmt.Errorf("%w: forward to leader %s: %w", consensus.ErrUnavailable, leader, err)
	}
	if rep.Error != nil {
		return nil, rep.Error.asError(leader)
	}
	if err := c.cons.WaitForIndex(ctx, rep.Index); err != nil {
		return nil, fmt.Errorf("node: the leader applied the change but this node has not caught up: %w", err)
	}
	c.cons.WaitDurable(ctx, rep.Index)
	return c.cons.State(), nil
}

// State is the local replicated state.
func (c *Cluster) State() *state.State { return c.cons.State() }

// Stats is the local raft status.
func (c *Cluster) Stats() consensus.NodeStats { return c.cons.Stats() }

// Barrier waits (briefly) until this node's state includes everything
// the leader had applied when asked, so that an operator who wrote
// through one node reads the write on another. Without a reachable
// leader it returns at once with an error; the local state still
// serves.
func (c *Cluster) Barrier(ctx context.Context) error {
	if c.cons.IsLeader() {
		return nil
	}
	_, leader := c.cons.Leader()
	lp, err := peer.Decode(leader)
	if leader == "" || err != nil {
		return fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rep, err := c.call(ctx, lp, rpcRequest{Op: "index"})
	if err != nil {
		return err
	}
	if rep.Error != nil {
		return rep.Error.asError(leader)
	}
	return c.cons.WaitForIndex(ctx, rep.Index)
}

// Remove takes node id out of the cluster (through the leader).
func (c *Cluster) Remove(ctx context.Context, id string) error {
	if _, err := peer.Decode(id); err != nil {
		return fmt.Errorf("%w: %q is not a node id (see `mirrord status`)", ErrInvalid, id)
	}
	known := false
	for _, n := range c.members() {
		known = known || n.ID == id
	}
	if !known {
		return &consensus.Error{Code: consensus.CodeNotFound, Msg: fmt.Sprintf("node %q is not in the cluster", id)}
	}
	var rep rpcReply
	var err error
	if c.cons.IsLeader() && id == c.h.ID().String() {
		// A leader that removed itself from raft would step down before
		// it could delete its own node record: hand leadership over and
		// let the new leader do the removal.
		if err := c.handOver(ctx); err != nil {
			return err
		}
	}
	if c.cons.IsLeader() {
		rep = c.leaderRemove(ctx, id)
	} else {
		_, leader := c.cons.Leader()
		lp, derr := peer.Decode(leader)
		if leader == "" || derr != nil {
			return fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
		}
		if rep, err = c.call(ctx, lp, rpcRequest{Op: "remove", ID: id}); err != nil {
			return fmt.Errorf("%w: forward to leader %s: %w", consensus.ErrUnavailable, leader, err)
		}
	}
	if rep.Error != nil {
		return rep.Error.asError("")
	}
	if id == c.h.ID().String() {
		// This node is out of the raft group now: it will not see
		// that index.
		return nil
	}
	return c.cons.WaitForIndex(ctx, rep.Index)
}

// handOver transfers leadership to another voter and waits until
// another node leads.
func (c *Cluster) handOver(ctx context.Context) error {
	if err := c.cons.TransferLeadership(ctx); err != nil {
		return fmt.Errorf("%w: this node leads and cannot hand leadership to another voter before removing itself: %w",
			consensus.ErrUnavailable, err)
	}
	self := c.h.ID().String()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, leader := c.cons.Leader(); leader != "" && leader != self {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for a new leader: %w", consensus.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

// ErrInvalid marks bad input to a cluster operation.
var ErrInvalid = errors.New("node: invalid")

// NewJoinToken creates a join token valid for ttl and records its digest
// in the cluster state.
func (c *Cluster) NewJoinToken(ctx context.Context, ttl time.Duration) (token string, expires time.Time, err error) {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	token, err = randomHex(32)
	if err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	expires = now.Add(ttl)
	_, err = c.Apply(ctx, consensus.JoinTokenAdd{Digest: TokenDigest(token),
		CreatedAt: now.UnixMilli(), ExpiresAt: expires.UnixMilli()})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, expires, nil
}

// ---- join (the new node's side) ----

// PeerInfo is what GET /cluster/v1/peer answers: how to reach a node
// over libp2p.
type PeerInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// PeerInfoHandler serves GET /cluster/v1/peer. It needs no token: a peer
// id and addresses are not secrets, and joining needs a join token.
func (c *Cluster) PeerInfoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(PeerInfo{ID: c.h.ID().String(), Addrs: hostAddrs(c.h)})
	})
}

// JoinResult is what a join returns to the new node.
type JoinResult struct {
	Via        peer.ID
	Members    []state.NodeInfo
	Voter      bool
	AdminToken string
	// Index is the leader's state index after the join: the new node
	// has caught up once its state reaches it.
	Index uint64
}

// Join asks the cluster reachable at target (a multiaddr ending in
// /p2p/PEER_ID, or the HTTP URL of a node) to add this node, using a
// join token. trust is called with every member before the leader
// starts replicating to this node.
func Join(ctx context.Context, h host.Host, target, token string, self state.NodeInfo, trust func(peer.ID)) (JoinResult, error) {
	ai, err := resolveJoinTarget(ctx, target)
	if err != nil {
		return JoinResult{}, err
	}
	if err := h.Connect(ctx, ai); err != nil {
		return JoinResult{}, fmt.Errorf("node: connect to %s: %w", target, err)
	}
	trust(ai.ID)
	s, err := openRPC(ctx, h, ai.ID, rpcRequest{Op: "join", Token: token, Node: &self})
	if err != nil {
		return JoinResult{}, fmt.Errorf("node: join via %s: %w", target, err)
	}
	defer s.Close()
	dec := json.NewDecoder(io.LimitReader(s, maxRPCBytes))
	res := JoinResult{Via: ai.ID}
	for {
		var rep rpcReply
		if err := dec.Decode(&rep); err != nil {
			return res, fmt.Errorf("node: join via %s: read reply: %w", target, err)
		}
		if rep.Error != nil {
			return res, fmt.Errorf("node: join via %s: %w", target, rep.Error.asError(""))
		}
		for _, m := range rep.Members {
			p, err := peer.Decode(m.ID)
			if err != nil || p == h.ID() {
				continue
			}
			h.Peerstore().AddAddrs(p, parseAddrs(m.Addrs), peerstore.PermanentAddrTTL)
			trust(p)
			res.Members = append(res.Members, m)
		}
		if rep.Done {
			res.Voter, res.AdminToken, res.Index = rep.Voter, rep.AdminToken, rep.Index
			return res, nil
		}
	}
}

func resolveJoinTarget(ctx context.Context, target string) (peer.AddrInfo, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/cluster/v1/peer", nil)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: --join %s: %w", target, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: ask %s for its peer id: %w", target, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return peer.AddrInfo{}, fmt.Errorf("node: ask %s for its peer id: HTTP %s (is it a mirrord node?)", target, resp.Status)
		}
		var pi PeerInfo
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pi); err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: peer info from %s: %w", target, err)
		}
		id, err := peer.Decode(pi.ID)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: peer info from %s: %w", target, err)
		}
		return peer.AddrInfo{ID: id, Addrs: parseAddrs(pi.Addrs)}, nil
	}
	a, err := ma.NewMultiaddr(target)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("node: --join %q is neither an http(s) URL nor a multiaddr: %w", target, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("node: --join %s: a multiaddr must end in /p2p/PEER_ID: %w", target, err)
	}
	return *ai, nil
}

// ---- status ----

// ReleaseProgress is how much of one release a node holds.
type ReleaseProgress struct {
	App     string `json:"app"`
	Version string `json:"version"`
	// BlocksHeld of BlocksKnown: blocks stored here, of those known
	// here (a node that lacks an object's root knows one block of it).
	BlocksHeld  int `json:"blocks_held"`
	BlocksKnown int `json:"blocks_known"`
	// Ready: every object this node replicates eagerly is complete.
	Ready bool `json:"ready"`
	// Error is the last replication error, if any.
	Error string `json:"error,omitempty"`
}

// NodeReport is one node's view of itself, for status pages.
type NodeReport struct {
	ID           string            `json:"id"`
	Addrs        []string          `json:"addrs"`
	HTTP         string            `json:"http,omitempty"`
	Role         string            `json:"role"` // Leader, Follower, Candidate
	Voter        bool              `json:"voter"`
	Leader       string            `json:"leader"`
	Term         uint64            `json:"term"`
	AppliedIndex uint64            `json:"applied_index"`
	LastContact  *time.Time        `json:"last_contact,omitempty"`
	Releases     []ReleaseProgress `json:"releases"`
	Exchange     *ExchangeStats    `json:"exchange,omitempty"`
	// Error is set when the node could not be asked.
	Error string `json:"error,omitempty"`
}

// Report describes this node.
func (c *Cluster) Report(ctx context.Context) NodeReport {
	st := c.cons.Stats()
	r := NodeReport{ID: st.ID, Addrs: hostAddrs(c.h), HTTP: c.cfg.HTTP, Role: st.State,
		Leader: st.LeaderID, Term: st.Term, AppliedIndex: st.AppliedIndex, Releases: []ReleaseProgress{}}
	for _, s := range st.Servers {
		if s.ID == st.ID {
			r.Voter = s.Voter
		}
	}
	if !st.LastContact.IsZero() {
		lc := st.LastContact
		r.LastContact = &lc
	}
	if c.cfg.Progress != nil {
		r.Releases = c.cfg.Progress(ctx)
	}
	if c.cfg.Exchange != nil {
		if es, err := c.cfg.Exchange(); err == nil {
			r.Exchange = &es
		}
	}
	return r
}

// Reports asks every member for its report (at most a few seconds); a
// member that does not answer is listed with its error.
func (c *Cluster) Reports(ctx context.Context) []NodeReport {
	members := c.members()
	voters := map[string]bool{}
	if f := c.cons.Raft().GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			voters[string(s.ID)] = s.Suffrage == raft.Voter
		}
	}
	out := make([]NodeReport, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == c.h.ID().String() {
			out[i] = c.Report(ctx)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			rep := rpcReply{}
			p, err := peer.Decode(m.ID)
			if err == nil {
				rep, err = c.call(cctx, p, rpcRequest{Op: "status"})
			}
			switch {
			case err != nil:
				msg := strings.Join(strings.Fields(err.Error()), " ")
				out[i] = NodeReport{ID: m.ID, Addrs: m.Addrs, HTTP: m.HTTP, Voter: voters[m.ID], Role: "unreachable", Error: msg}
			case rep.Error != nil:
				out[i] = NodeReport{ID: m.ID, Addrs: m.Addrs, HTTP: m.HTTP, Voter: voters[m.ID], Role: "unreachable", Error: rep.Error.Message}
			default:
				out[i] = *rep.Status
			}
		}()
	}
	wg.Wait()
	return out
}
