package consensus

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"mirrord/consensus/state"
)

func testConfig(t testing.TB, dir string) Config {
	cfg := DefaultConfig()
	cfg.NodeID = "node1"
	cfg.Dir = dir
	cfg.Bootstrap = true
	cfg.HeartbeatTimeout = 50 * time.Millisecond
	cfg.ElectionTimeout = 50 * time.Millisecond
	cfg.LeaderLeaseTimeout = 50 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(&tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return cfg
}

// tWriter logs to t; nodes are closed before their test ends.
type tWriter struct{ t testing.TB }

func (w *tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// openNode opens a node on a fresh in-memory transport and waits until
// it leads.
func openNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	_, trans := raft.NewInmemTransport("")
	n, err := Open(cfg, trans)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitForLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	if !n.IsLeader() {
		n.Close()
		t.Fatal("single bootstrapped node is not the leader")
	}
	return n
}

func mustApply(t *testing.T, n *Node, cmd Command) *state.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := n.Apply(ctx, cmd)
	if err != nil {
		t.Fatalf("Apply(%T): %v", cmd, err)
	}
	s, ok := resp.(*state.State)
	if !ok {
		t.Fatalf("Apply(%T) response %T", cmd, resp)
	}
	return s
}

// waitForState waits until n's state encodes like want.
func waitForState(t *testing.T, n *Node, want *state.State) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitForIndex(ctx, want.Index); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, n.State()), snapshotBytes(t, want)) {
		t.Fatalf("state after reopen differs:\n%#v\nwant\n%#v", n.State(), want)
	}
}

// TestNodeReopen applies commands on a real node, closes it and reopens
// it from the same directory: first the state comes back from the WAL,
// then, after a snapshot with log compaction, from the snapshot plus the
// remaining log.
func TestNodeReopen(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.TrailingLogs = 1

	n := openNode(t, cfg)
	for _, cmd := range base {
		mustApply(t, n, cmd)
	}
	want := mustApply(t, n, DeviceSet{App: app, DeviceID: "D1", Channel: "production"})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	waitForState(t, n, want)
	// The state was replayed from the log at Open; let raft deliver the
	// entries too, or it has nothing new to snapshot.
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	want = mustApply(t, n, ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// The snapshot exists and the log before it is gone, so the state
	// below can only come from the snapshot.
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot on disk")
	}
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(filepath.Join(dir, "wal"), raftwal.WithMetaStore(meta))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := wal.FirstIndex()
	wal.Close()
	meta.Close()
	if first <= 2 {
		t.Fatalf("log not compacted: first index %d", first)
	}

	n = openNode(t, cfg)
	defer n.Close()
	waitForState(t, n, want)
}

func TestNodeApplyErrors(t *testing.T) {
	n := openNode(t, testConfig(t, t.TempDir()))
	mustApply(t, n, base[0])
	ctx := context.Background()

	_, err := n.Apply(ctx, AppCreate{ID: app})
	var be *Error
	if !errors.As(err, &be) || be.Code != CodeConflict || !errors.Is(err, ErrConflict) {
		t.Errorf("duplicate app: %v", err)
	}
	if _, err := n.Apply(ctx, bogusCommand{}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("bogus command: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := n.Apply(cctx, AppCreate{ID: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}

	st := n.Stats()
	if st.ID != "node1" || st.State != "Leader" || st.LeaderID != "node1" ||
		st.StateIndex != n.State().Index || st.LastIndex < st.StateIndex ||
		len(st.Servers) != 1 || !st.Servers[0].Voter {
		t.Errorf("stats %+v", st)
	}
	if addr, id := n.Leader(); id != "node1" || addr == "" {
		t.Errorf("Leader() = %q, %q", addr, id)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Apply(ctx, AppCreate{ID: "y"}); !errors.Is(err, ErrUnavailable) ||
		!errors.Is(err, raft.ErrRaftShutdown) {
		t.Errorf("apply after close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.NodeID, ok.Dir = "n", "/tmp/x"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	zero := Config{NodeID: "n", Dir: "d"}
	if err := zero.Validate(); err != nil {
		t.Errorf("zero timeouts (raft defaults): %v", err)
	}
	// Only the heartbeat is set: the defaulted lease and election follow.
	fast := Config{NodeID: "n", Dir: "d", HeartbeatTimeout: 100 * time.Millisecond}
	if err := fast.Validate(); err != nil {
		t.Errorf("heartbeat only: %v", err)
	}
	tests := map[string]func(*Config){
		"no id":              func(c *Config) { c.NodeID = "" },
		"no dir":             func(c *Config) { c.Dir = "" },
		"negative":           func(c *Config) { c.CommitTimeout = -1 },
		"lease > heartbeat":  func(c *Config) { c.LeaderLeaseTimeout = time.Hour },
		"election < heartb.": func(c *Config) { c.ElectionTimeout = time.Millisecond * 10 },
		"too small":          func(c *Config) { c.HeartbeatTimeout = time.Millisecond },
	}
	for name, mod := range tests {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), "consensus: ") {
			t.Errorf("%s: Validate() = %v", name, err)
		}
	}
	if _, err := Open(Config{}, nil); err == nil {
		t.Error("Open with an empty config succeeded")
	}
}

// TestLeaderLease: the lease a leader keeps without hearing from a
// quorum is the heartbeat timeout unless set. A shorter lease made
// leaders step down during large publishes although no follower would
// have started an election (docs/BENCHMARKS.md, "Publish and raft").
func TestLeaderLease(t *testing.T) {
	def := DefaultConfig()
	tests := []struct {
		name      string
		heartbeat time.Duration
		lease     time.Duration
		want      time.Duration
	}{
		{"mirrord's defaults", def.HeartbeatTimeout, def.LeaderLeaseTimeout, 500 * time.Millisecond},
		{"a longer heartbeat timeout", 2 * time.Second, 0, 2 * time.Second},
		{"a shorter heartbeat timeout", 300 * time.Millisecond, 0, 300 * time.Millisecond},
		{"an explicit lease", 500 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := def
			c.NodeID, c.Dir = "n", "d"
			c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = tc.heartbeat, tc.heartbeat, tc.lease
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := c.raftConfig().LeaderLeaseTimeout; got != tc.want {
				t.Errorf("lease %v, want %v", got, tc.want)
			}
		})
	}
}
