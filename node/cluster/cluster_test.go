package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/consensus"
	"mirrord/consensus/consensustest"
	"mirrord/node"
)

// testNode is a node as the daemon wires it: a libp2p host on
// 127.0.0.1, raft over it (gated by cluster membership), on-disk
// consensus and a running Cluster.
type testNode struct {
	h    host.Host
	cons *consensus.Node
	cl   *Cluster
}

func (n *testNode) id() string { return n.h.ID().String() }

// target is the multiaddr a joining node dials.
func (n *testNode) target() string { return fmt.Sprintf("%s/p2p/%s", n.h.Addrs()[0], n.h.ID()) }

type nodeOptions struct {
	bootstrap  bool
	voters     int
	adminToken string
	raft       func(*consensus.Config)
}

func startNode(t *testing.T, o nodeOptions) *testNode {
	t.Helper()
	dir := t.TempDir()
	h, err := node.NewHost(node.HostConfig{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	var cl atomic.Pointer[Cluster]
	member := func(p peer.ID) bool { c := cl.Load(); return c != nil && c.IsMember(p) }
	trans, err := node.NewRaftTransport(h, 10*time.Second, io.Discard, member)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	cfg := consensus.DefaultConfig()
	cfg.NodeID = h.ID().String()
	cfg.Dir = filepath.Join(dir, "raft")
	cfg.Bootstrap = o.bootstrap
	cfg.Logger = log
	if o.raft != nil {
		o.raft(&cfg)
	}
	cons, err := consensus.Open(cfg, trans)
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{h: h, cons: cons, cl: New(Config{Host: h, Cons: cons, Voters: o.voters, AdminToken: o.adminToken,
		HTTP: "http://" + h.ID().String() + ".test", PeersFile: filepath.Join(dir, "peers.json"), Log: log})}
	cl.Store(n.cl)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.cl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cluster run: %v", err)
		}
		_ = cons.Close()
		_ = trans.Close()
		_ = h.Close()
	})
	return n
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// leaderNode starts a node that bootstraps a new cluster and waits until
// it leads.
func leaderNode(t *testing.T, ctx context.Context, o nodeOptions) *testNode {
	t.Helper()
	o.bootstrap = true
	n := startNode(t, o)
	if err := n.cons.WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// join makes a new node join the cluster through via with a fresh
// join token made on maker, and waits until it caught up.
func join(t *testing.T, ctx context.Context, maker *testNode, via string) (*testNode, JoinResult) {
	t.Helper()
	tok, _, err := maker.cl.NewJoinToken(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, nodeOptions{})
	res, err := Join(ctx, n.h, via, tok, n.cl.Self(), n.cl.Trust)
	if err != nil {
		t.Fatalf("join via %s: %v", via, err)
	}
	n.cl.SetAdminToken(res.AdminToken)
	if err := n.cons.WaitForIndex(ctx, res.Index); err != nil {
		t.Fatal(err)
	}
	return n, res
}

// voter reports whether id is in n's raft configuration, and as a voter.
func voter(t *testing.T, n *testNode, id string) (present, isVoter bool) {
	t.Helper()
	servers, err := n.cons.Configuration()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range servers {
		if s.ID == id {
			return true, s.Voter
		}
	}
	return false, false
}

// TestJoin: a node joins with a join token, through the leader's
// multiaddr and through a follower's HTTP URL (the follower relays the
// join to the leader); it becomes a voter up to Voters and a non-voter
// after, learns the admin token and appears in the cluster state. A
// wrong token is refused with ErrForbidden and changes nothing.
func TestJoin(t *testing.T) {
	ctx := testContext(t)
	a := leaderNode(t, ctx, nodeOptions{voters: 2, adminToken: "admin-token-0123456789"})

	b, res := join(t, ctx, a, a.target())
	if !res.Voter || res.AdminToken != "admin-token-0123456789" || res.Via != a.h.ID() {
		t.Fatalf("join result: voter %v, admin token %q, via %s", res.Voter, res.AdminToken, res.Via)
	}
	if present, isVoter := voter(t, a, b.id()); !present || !isVoter {
		t.Fatalf("b in the leader's configuration: present %v, voter %v", present, isVoter)
	}
	if _, ok := b.cons.State().ClusterInfo().Nodes[b.id()]; !ok {
		t.Fatal("b's record is not in the state b caught up with")
	}

	srv := httptest.NewServer(b.cl.PeerInfoHandler())
	defer srv.Close()
	c, res := join(t, ctx, a, srv.URL)
	if res.Voter || res.Via != b.h.ID() {
		t.Fatalf("third node with voters=2: voter %v via %s, want a non-voter via b", res.Voter, res.Via)
	}
	if present, isVoter := voter(t, a, c.id()); !present || isVoter {
		t.Fatalf("c in the leader's configuration: present %v, voter %v", present, isVoter)
	}

	d := startNode(t, nodeOptions{})
	before := a.cons.State().Index
	_, err := Join(ctx, d.h, a.target(), "not-a-token", d.cl.Self(), d.cl.Trust)
	if !errors.Is(err, ErrForbidden) {
		t.Fatalf("join with a wrong token: %v, want ErrForbidden", err)
	}
	if present, _ := voter(t, a, d.id()); present || a.cons.State().Index != before {
		t.Fatalf("a refused join changed the cluster: in configuration %v, index %d -> %d", present, before, a.cons.State().Index)
	}

	reports := a.cl.Reports(ctx)
	if len(reports) != 3 {
		t.Fatalf("reports: %d, want 3", len(reports))
	}
	for _, r := range reports {
		if r.Error != "" || (r.Role != "Leader" && r.Role != "Follower") {
			t.Errorf("report of %s: role %q, error %q", r.ID, r.Role, r.Error)
		}
	}
}

// TestForwardWrite: a write made on a follower reaches the leader over
// the cluster protocol and is in the follower's state when Apply
// returns; business errors come back as *consensus.Error; a follower's
// Barrier makes a write taken by the leader visible on it.
func TestForwardWrite(t *testing.T) {
	ctx := testContext(t)
	a := leaderNode(t, ctx, nodeOptions{})
	b, _ := join(t, ctx, a, a.target())

	const app = "com.example.forward"
	if _, err := b.cl.Apply(ctx, consensus.AppCreate{ID: app, CreatedAt: 1}); err != nil {
		t.Fatalf("apply on the follower: %v", err)
	}
	if b.cons.IsLeader() || b.cons.State().App(app) == nil || a.cons.State().App(app) == nil {
		t.Fatalf("after a forwarded write: follower leads %v, app on follower %v, on leader %v",
			b.cons.IsLeader(), b.cons.State().App(app) != nil, a.cons.State().App(app) != nil)
	}
	_, err := b.cl.Apply(ctx, consensus.AppCreate{ID: app, CreatedAt: 2})
	if !errors.Is(err, consensus.ErrConflict) {
		t.Fatalf("creating the app twice through the follower: %v, want ErrConflict", err)
	}

	if _, err := a.cons.Apply(ctx, consensus.ChannelSet{App: app, Name: "beta", CreatedAt: 3}); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.Barrier(ctx); err != nil {
		t.Fatalf("barrier on the follower: %v", err)
	}
	if b.cons.State().Index < a.cons.State().Index {
		t.Fatalf("after the barrier the follower is at %d, the leader at %d", b.cons.State().Index, a.cons.State().Index)
	}
}

// threeVoters starts a cluster of three voters; a leads.
func threeVoters(t *testing.T, ctx context.Context) (a, b, c *testNode) {
	a = leaderNode(t, ctx, nodeOptions{})
	b, _ = join(t, ctx, a, a.target())
	c, _ = join(t, ctx, a, a.target())
	return a, b, c
}

// TestRemove: a follower removes another node through the leader: it
// leaves the raft configuration and its record leaves the state.
// Unknown and malformed ids are refused.
func TestRemove(t *testing.T) {
	ctx := testContext(t)
	a, b, c := threeVoters(t, ctx)
	if err := b.cl.Remove(ctx, c.id()); err != nil {
		t.Fatalf("remove c through b: %v", err)
	}
	if present, _ := voter(t, a, c.id()); present {
		t.Fatal("c is still in the leader's configuration")
	}
	if _, ok := b.cons.State().ClusterInfo().Nodes[c.id()]; ok {
		t.Fatal("c's record is still in b's state after Remove returned")
	}
	if err := b.cl.Remove(ctx, c.id()); !errors.Is(err, consensus.ErrNotFound) {
		t.Fatalf("removing c again: %v, want ErrNotFound", err)
	}
	if err := b.cl.Remove(ctx, "not-a-peer-id"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("removing a malformed id: %v, want ErrInvalid", err)
	}
}

// TestLeaderRemovesItself: a leader asked to remove itself hands
// leadership to another voter, which removes it from the configuration
// and the state.
func TestLeaderRemovesItself(t *testing.T) {
	ctx := testContext(t)
	a, b, c := threeVoters(t, ctx)
	if err := a.cl.Remove(ctx, a.id()); err != nil {
		t.Fatalf("the leader removes itself: %v", err)
	}
	consensustest.WaitFor(t, "a new leader without a", func() bool {
		for _, n := range []*testNode{b, c} {
			if !n.cons.IsLeader() {
				continue
			}
			present, _ := voter(t, n, a.id())
			_, recorded := n.cons.State().ClusterInfo().Nodes[a.id()]
			return !present && !recorded
		}
		return false
	}, 30*time.Second)
	if a.cons.IsLeader() {
		t.Fatal("the removed node still leads")
	}
}
