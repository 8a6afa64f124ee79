package consensus

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

// diskCluster is three voters with on-disk stores on in-memory
// transports, so that any of them can be closed and reopened alone.
type diskCluster struct {
	t     *testing.T
	dirs  []string
	nodes []*Node
}

func (c *diskCluster) config(i int) Config {
	cfg := testConfig(c.t, c.dirs[i])
	cfg.NodeID = nodeName(i)
	cfg.Bootstrap = i == 0
	return cfg
}

func nodeName(i int) string { return "n" + string(rune('0'+i)) }

// connectedTransports returns n in-memory transports named as the
// nodes, each connected to every other.
func connectedTransports(n int) []*raft.InmemTransport {
	var trans []*raft.InmemTransport
	for i := range n {
		_, tr := raft.NewInmemTransport(raft.ServerAddress(nodeName(i)))
		trans = append(trans, tr)
	}
	for i := range trans {
		for j := range trans {
			if i != j {
				trans[i].Connect(trans[j].LocalAddr(), trans[j])
			}
		}
	}
	return trans
}

func newDiskCluster(t *testing.T) *diskCluster {
	t.Helper()
	c := &diskCluster{t: t}
	for range 3 {
		c.dirs = append(c.dirs, t.TempDir())
	}
	trans := connectedTransports(3)
	for i := range 3 {
		n, err := Open(c.config(i), trans[i])
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
		t.Cleanup(func() { n.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.nodes[0].WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		if err := c.nodes[0].AddVoter(ctx, nodeName(i), nodeName(i)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestRestartWithoutQuorumServesLastState is issue 10's first fault:
// every node of a three-voter cluster stops, one starts again alone.
// It has no leader and can get none, yet its state must be everything
// it had applied, at once, not only its last snapshot.
func TestRestartWithoutQuorumServesLastState(t *testing.T) {
	for _, snapshotFirst := range []bool{false, true} {
		name := "log only"
		if snapshotFirst {
			name = "snapshot and log"
		}
		t.Run(name, func(t *testing.T) {
			c := newDiskCluster(t)
			leader := c.nodes[0]
			for _, cmd := range base {
				mustApply(t, leader, cmd)
			}
			if snapshotFirst {
				for _, n := range c.nodes {
					waitForState(t, n, leader.State())
					if err := n.raft.Snapshot().Error(); err != nil {
						t.Fatal(err)
					}
				}
			}
			mustApply(t, leader, DeviceSet{App: app, DeviceID: "D1", Channel: "production"})
			want := mustApply(t, leader, ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}})
			for _, n := range c.nodes {
				waitForState(t, n, want)
			}
			for _, n := range c.nodes {
				if err := n.Close(); err != nil {
					t.Fatal(err)
				}
			}

			// Node 2 comes back alone: no peer answers it.
			_, trans := raft.NewInmemTransport(raft.ServerAddress(nodeName(2)))
			n, err := Open(c.config(2), trans)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if got := n.State(); !bytes.Equal(snapshotBytes(t, got), snapshotBytes(t, want)) {
				t.Fatalf("state after a restart without quorum is at index %d, want %d", got.Index, want.Index)
			}
			st := n.Stats()
			if st.HasLeader() {
				t.Fatalf("a lone voter of three has a leader: %+v", st)
			}
			if st.LeaderContact.IsZero() || st.Staleness(time.Now()) < 0 {
				t.Fatalf("no last leader contact after restart: %+v", st)
			}
		})
	}
}

// TestRestartedStateRejoins checks that the entries a node replayed
// itself are not applied a second time when a leader delivers them,
// and that new writes still arrive.
func TestRestartedStateRejoins(t *testing.T) {
	c := newDiskCluster(t)
	for _, cmd := range base {
		mustApply(t, c.nodes[0], cmd)
	}
	want := mustApply(t, c.nodes[0], DeviceSet{App: app, DeviceID: "D1", Channel: "production"})
	for _, n := range c.nodes {
		waitForState(t, n, want)
	}
	for _, n := range c.nodes {
		n.Close()
	}
	trans := connectedTransports(3)
	var nodes []*Node
	for i := range 3 {
		n, err := Open(c.config(i), trans[i])
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
		if n.State().Index != want.Index {
			t.Fatalf("node %d: state index %d after Open, want %d", i, n.State().Index, want.Index)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[0].WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var leader *Node
	for leader == nil {
		for _, n := range nodes {
			if n.IsLeader() {
				leader = n
			}
		}
		if ctx.Err() != nil {
			t.Fatal("no leader")
		}
	}
	if err := leader.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want = mustApply(t, leader, ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}})
	for _, n := range nodes {
		waitForState(t, n, want)
	}
}

// writeSnapshots makes a node with two snapshots and a log that reaches
// back past the older one, and returns its directory and final state.
func writeSnapshots(t *testing.T, trailing uint64) (Config, *state.State) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.TrailingLogs = trailing
	n := openNode(t, cfg)
	defer n.Close()
	for _, cmd := range base[:2] {
		mustApply(t, n, cmd)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range base[2:] {
		mustApply(t, n, cmd)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	want := mustApply(t, n, DeviceSet{App: app, DeviceID: "D1", Channel: "production"})
	return cfg, want
}

// corruptNewestSnapshot flips a byte in the newest snapshot's state.
func corruptNewestSnapshot(t *testing.T, dir string) string {
	t.Helper()
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) == 0 {
		t.Fatal("no snapshot")
	}
	newest := snaps[len(snaps)-1] // ids sort by term, index, time
	b, err := os.ReadFile(newest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(newest, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(filepath.Dir(newest))
}

func TestCorruptSnapshot(t *testing.T) {
	t.Run("falls back to the older snapshot and the log", func(t *testing.T) {
		cfg, want := writeSnapshots(t, 1000)
		id := corruptNewestSnapshot(t, cfg.Dir)
		n := openNode(t, cfg)
		defer n.Close()
		waitForState(t, n, want)
		if w := n.Stats().Warnings; len(w) != 1 || !strings.Contains(w[0], id) {
			t.Fatalf("warnings %q do not name the bad snapshot %s", w, id)
		}
		if _, err := os.Stat(filepath.Join(cfg.Dir, "snapshots-bad", id)); err != nil {
			t.Fatalf("bad snapshot not kept aside: %v", err)
		}
	})
	t.Run("refuses clearly when the log does not reach back", func(t *testing.T) {
		cfg, _ := writeSnapshots(t, 1)
		// Both snapshots bad: nothing to fall back to.
		corruptNewestSnapshot(t, cfg.Dir)
		snaps, _ := filepath.Glob(filepath.Join(cfg.Dir, "snapshots", "*", "state.bin"))
		b, _ := os.ReadFile(snaps[0])
		b[len(b)/2] ^= 0x20
		os.WriteFile(snaps[0], b, 0o600)
		_, trans := raft.NewInmemTransport("")
		n, err := Open(cfg, trans)
		if err == nil {
			n.Close()
			t.Fatal("Open succeeded without a usable snapshot or log")
		}
		for _, want := range []string{"CRC", "log only starts at", "--join"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if got, _ := filepath.Glob(filepath.Join(cfg.Dir, "snapshots", "*")); len(got) != 2 {
			t.Errorf("a refused Open moved snapshots: %v", got)
		}
	})
}

// TestWALCutShort truncates the raft log behind the node's back (as a
// full disk or a torn write would): the node starts, says so, and
// serves what it still has.
func TestWALCutShort(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	n := openNode(t, cfg)
	for _, cmd := range base {
		mustApply(t, n, cmd)
	}
	n.Close()
	segs, _ := filepath.Glob(filepath.Join(cfg.Dir, "wal", "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	// The last command entry is the last frame of the segment; find the
	// end of the data and cut into it.
	b, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	if err := os.Truncate(segs[0], int64(end-8)); err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("")
	n, err = Open(cfg, trans)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	w := n.Stats().Warnings
	if len(w) != 1 || !strings.Contains(w[0], "cut short") {
		t.Fatalf("warnings %q", w)
	}
}

// TestOpenErrorIsReturned: a raft log that cannot be created (a disk
// too small for one segment) is an error naming the cause, not a panic.
func TestOpenErrorIsReturned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	cfg := testConfig(t, dir)
	cfg.WALSegmentSize = 64 << 20
	_, trans := raft.NewInmemTransport("")
	n, err := Open(cfg, trans)
	if err == nil {
		n.Close()
		t.Fatal("Open succeeded on a disk without room for a log segment")
	}
	if !strings.Contains(err.Error(), "wal") || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("error %q does not name the log and the cause", err)
	}
}
