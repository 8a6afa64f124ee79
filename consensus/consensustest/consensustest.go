// Package consensustest runs in-process raft clusters of consensus.Node
// for tests: in-memory transports and log stores, fast timeouts, and
// helpers that wait for conditions with deadlines instead of sleeping.
//
// It may be imported by tests of any package; non-test code must not
// import it.
package consensustest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// DefaultDeadline bounds the helpers' waits.
const DefaultDeadline = 10 * time.Second

// rpcTimeout is the in-memory transport's RPC timeout (10 times that for
// snapshots and leadership transfers).
const rpcTimeout = 250 * time.Millisecond

// WaitFor polls cond every few milliseconds until it returns true, and
// fails the test naming what it waited for when deadline passes. Call it
// from the test goroutine.
func WaitFor(t testing.TB, what string, cond func() bool, deadline time.Duration) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-timer.C:
			if cond() {
				return
			}
			t.Fatalf("timed out after %v waiting for %s", deadline, what)
		}
	}
}

// Options configures NewClusterWith.
type Options struct {
	// Voters is the number of voting nodes (at least 1); Nonvoters the
	// number of non-voting followers.
	Voters, Nonvoters int
	// SnapshotThreshold and TrailingLogs are passed to every node (0
	// keeps raft's defaults); small values make followers catch up from
	// snapshots.
	SnapshotThreshold, TrailingLogs uint64
	// LogLevel is the level of node logs sent to t.Log; nil means Warn.
	LogLevel slog.Leveler
}

// Cluster is a set of nodes on connected in-memory transports. Node 0
// bootstraps; the others join through AddVoter / AddNonvoter. Nodes are
// closed when the test ends.
type Cluster struct {
	t      testing.TB
	nodes  []*consensus.Node
	trans  []*raft.InmemTransport
	ids    []string
	killed []bool
	mu     sync.Mutex // guards killed
}

// NewCluster starts n voters and waits until all of them follow one
// leader.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return NewClusterWith(t, Options{Voters: n})
}

// NewClusterWith starts a cluster as described by opts and waits until
// every node knows the leader and the full membership.
func NewClusterWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Voters < 1 {
		t.Fatalf("consensustest: need at least one voter, got %d", opts.Voters)
	}
	level := opts.LogLevel
	if level == nil {
		level = slog.LevelWarn
	}
	lw := &testLogWriter{t: t}
	// Registered first so it runs last: no t.Log after the test ends.
	t.Cleanup(lw.stop)

	total := opts.Voters + opts.Nonvoters
	c := &Cluster{t: t, killed: make([]bool, total)}
	// Directories first: t.TempDir's cleanup must run after c.close.
	dirs := make([]string, total)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	for i := range total {
		id := fmt.Sprintf("n%d", i)
		_, tr := raft.NewInmemTransportWithTimeout(raft.ServerAddress(id), rpcTimeout)
		c.ids = append(c.ids, id)
		c.trans = append(c.trans, tr)
	}
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	t.Cleanup(c.close)
	for i, id := range c.ids {
		c.nodes = append(c.nodes, openNode(t, id, dirs[i], i == 0, c.trans[i], opts, lw, level))
	}
	WaitFor(t, "n0 to become leader", c.nodes[0].IsLeader, DefaultDeadline)
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDeadline)
	defer cancel()
	for i := 1; i < total; i++ {
		var err error
		if i < opts.Voters {
			err = c.nodes[0].AddVoter(ctx, c.ids[i], c.ids[i])
		} else {
			err = c.nodes[0].AddNonvoter(ctx, c.ids[i], c.ids[i])
		}
		if err != nil {
			t.Fatalf("consensustest: add %s: %v", c.ids[i], err)
		}
	}
	WaitFor(t, "every node to know the leader and all members", func() bool {
		for _, n := range c.nodes {
			st := n.Stats()
			if st.Leader == "" || len(st.Servers) != total {
				return false
			}
		}
		return true
	}, DefaultDeadline)
	return c
}

// Len returns the number of nodes, killed ones included.
func (c *Cluster) Len() int { return len(c.nodes) }

// Node returns node i.
func (c *Cluster) Node(i int) *consensus.Node { return c.nodes[i] }

// ID returns the server id (and transport address) of node i.
func (c *Cluster) ID(i int) string { return c.ids[i] }

// Transport returns node i's transport, for custom fault injection.
func (c *Cluster) Transport(i int) *raft.InmemTransport { return c.trans[i] }

func (c *Cluster) alive(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.killed[i]
}

// Leader returns the index of a live node that believes it is the
// leader, or -1.
func (c *Cluster) Leader() int {
	for i, n := range c.nodes {
		if c.alive(i) && n.IsLeader() {
			return i
		}
	}
	return -1
}

// WaitForLeader waits until exactly one live node is leader and every
// live node names it, and returns its index.
func (c *Cluster) WaitForLeader() int {
	c.t.Helper()
	leader := -1
	WaitFor(c.t, "a single leader known to every live node", func() bool {
		leader = -1
		for i, n := range c.nodes {
			if !c.alive(i) || !n.IsLeader() {
				continue
			}
			if leader >= 0 {
				return false
			}
			leader = i
		}
		if leader < 0 {
			return false
		}
		for i, n := range c.nodes {
			if _, id := n.Leader(); c.alive(i) && id != c.ids[leader] {
				return false
			}
		}
		return true
	}, DefaultDeadline)
	return leader
}

// Apply proposes cmd on the current leader, retrying while there is
// none or leadership moves, until ctx ends. A retry after
// ErrUnavailable may apply a command twice, so use it for commands
// whose repetition the test tolerates (most fail harmlessly the second
// time with a conflict).
func (c *Cluster) Apply(ctx context.Context, cmd consensus.Command) (any, error) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if i := c.Leader(); i >= 0 {
			resp, err := c.nodes[i].Apply(ctx, cmd)
			if !errors.Is(err, consensus.ErrNotLeader) &&
				!errors.Is(err, consensus.ErrUnavailable) {
				return resp, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("consensustest: apply %s: %w",
				cmd.CommandType(), ctx.Err())
		case <-tick.C:
		}
	}
}

// MustApply is Apply with a DefaultDeadline that fails the test on any
// error, business errors included, and returns the resulting state.
func (c *Cluster) MustApply(cmd consensus.Command) *state.State {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultDeadline)
	defer cancel()
	resp, err := c.Apply(ctx, cmd)
	if err != nil {
		c.t.Fatalf("consensustest: apply %s: %v", cmd.CommandType(), err)
	}
	s, ok := resp.(*state.State)
	if !ok {
		c.t.Fatalf("consensustest: apply %s: response %T", cmd.CommandType(), resp)
	}
	return s
}

// WaitForIndex waits until every live node's state has reached index.
func (c *Cluster) WaitForIndex(index uint64) {
	c.t.Helper()
	WaitFor(c.t, fmt.Sprintf("every live node to apply index %d", index), func() bool {
		for i, n := range c.nodes {
			if c.alive(i) && n.State().Index < index {
				return false
			}
		}
		return true
	}, DefaultDeadline)
}

// Partition cuts node i off from every other node, both ways.
func (c *Cluster) Partition(i int) {
	for j, tr := range c.trans {
		if j == i {
			tr.DisconnectAll()
			continue
		}
		tr.Disconnect(c.trans[i].LocalAddr())
	}
}

// openNode opens one in-memory node of a test cluster.
func openNode(t testing.TB, id, dir string, bootstrap bool, trans raft.Transport, opts Options, lw io.Writer, level slog.Leveler) *consensus.Node {
	t.Helper()
	cfg := consensus.Config{
		NodeID:             id,
		Dir:                dir,
		Bootstrap:          bootstrap,
		HeartbeatTimeout:   100 * time.Millisecond,
		ElectionTimeout:    100 * time.Millisecond,
		LeaderLeaseTimeout: 50 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotThreshold:  opts.SnapshotThreshold,
		TrailingLogs:       opts.TrailingLogs,
		Logger: slog.New(slog.NewTextHandler(lw,
			&slog.HandlerOptions{Level: level})).With("node", id),
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatalf("consensustest: snapshot store: %v", err)
	}
	store := raft.NewInmemStore()
	n, err := consensus.OpenWith(cfg, trans, consensus.Stores{
		Log: store, Stable: store, Snapshots: snaps,
	})
	if err != nil {
		t.Fatalf("consensustest: open %s: %v", id, err)
	}
	return n
}

// Heal reconnects every pair of nodes.
func (c *Cluster) Heal() {
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

// Kill stops node i abruptly: it is partitioned and its raft shut down
// without a leadership transfer. It stays killed for the test.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	c.killed[i] = true
	c.mu.Unlock()
	c.Partition(i)
	if err := c.nodes[i].Halt(); err != nil {
		c.t.Fatalf("consensustest: kill %s: %v", c.ids[i], err)
	}
}

// close shuts the nodes down one by one, leader first, cutting each
// off once it is closed. The order matters with in-memory transports:
// an RPC to a node whose raft has stopped blocks the sender until the
// transport timeout, and raft does not wait for the goroutine of a
// leadership transfer on shutdown. Closing the leader while its
// followers are alive lets its transfer finish at once, and a closed,
// disconnected node makes later RPCs to it fail fast.
func (c *Cluster) close() {
	order := make([]int, 0, len(c.nodes))
	if l := c.Leader(); l >= 0 {
		order = append(order, l)
	}
	for i := range c.nodes {
		if len(order) == 0 || i != order[0] {
			order = append(order, i)
		}
	}
	for _, i := range order {
		if err := c.nodes[i].Close(); err != nil {
			c.t.Errorf("consensustest: close %s: %v", c.ids[i], err)
		}
		c.Partition(i)
	}
	for _, tr := range c.trans {
		_ = tr.Close()
	}
}

// testLogWriter sends log lines to t.Log until stop.
type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

var _ io.Writer = (*testLogWriter)(nil)

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}
