package consensus_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
)

func ptr[T any](v T) *T { return &v }

func encodeState(t *testing.T, s *state.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := consensus.WriteSnapshot(&buf, s); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var commands = []consensus.Command{
	consensus.AppCreate{ID: "com.example.app", CreatedAt: 1},
	consensus.ReleaseCreate{Channel: "production", Release: state.Release{
		App: "com.example.app", Version: "1.0.0", ZipCID: "bafy1", CreatedAt: 2}},
	consensus.ChannelSet{App: "com.example.app", Name: "beta", CreatedAt: 3, ChannelPatch: state.ChannelPatch{Version: ptr("1.0.0"), AllowDeviceSelfSet: ptr(true)}},
	consensus.DeviceSet{App: "com.example.app", DeviceID: "DEV1", Channel: "beta"},
}

// TestClusterReplicates checks that commands applied on the leader reach
// every FSM of a 3-voter cluster, and that followers refuse writes.
func TestClusterReplicates(t *testing.T) {
	c := consensustest.NewCluster(t, 3)
	var last *state.State
	for _, cmd := range commands {
		last = c.MustApply(cmd)
	}
	c.WaitForIndex(last.Index)
	want := encodeState(t, last)
	for i := range c.Len() {
		if got := encodeState(t, c.Node(i).State()); !bytes.Equal(got, want) {
			t.Errorf("node %d state differs", i)
		}
	}

	leader := c.WaitForLeader()
	follower := (leader + 1) % c.Len()
	_, err := c.Node(follower).Apply(context.Background(), consensus.AppCreate{ID: "x"})
	if !errors.Is(err, consensus.ErrNotLeader) || errors.Is(err, consensus.ErrUnavailable) {
		t.Errorf("apply on follower: %v", err)
	}
	if _, id := c.Node(follower).Leader(); id != c.ID(leader) {
		t.Errorf("follower names leader %q, want %q", id, c.ID(leader))
	}
	st := c.Node(follower).Stats()
	if st.State != "Follower" || len(st.Servers) != 3 || st.LastContact.IsZero() {
		t.Errorf("follower stats %+v", st)
	}
}

// TestClusterFailover kills the leader of a 3-voter cluster and checks
// that a new leader takes writes and the survivors agree.
func TestClusterFailover(t *testing.T) {
	c := consensustest.NewCluster(t, 3)
	c.MustApply(commands[0])
	old := c.WaitForLeader()
	c.Kill(old)
	leader := c.WaitForLeader()
	if leader == old {
		t.Fatal("killed node is still the leader")
	}
	s := c.MustApply(commands[1])
	c.WaitForIndex(s.Index)
	for i := range c.Len() {
		if i != old && c.Node(i).State().App("com.example.app").Releases["1.0.0"] == nil {
			t.Errorf("node %d misses the release", i)
		}
	}
}

// TestClusterPartitionedLeader checks that a leader cut off from the
// majority stops accepting writes with ErrUnavailable or ErrNotLeader
// and keeps serving its last state.
func TestClusterPartitionedLeader(t *testing.T) {
	c := consensustest.NewCluster(t, 3)
	s := c.MustApply(commands[0])
	c.WaitForIndex(s.Index)
	old := c.WaitForLeader()
	c.Partition(old)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.Node(old).Apply(ctx, commands[1])
	if !errors.Is(err, consensus.ErrUnavailable) && !errors.Is(err, consensus.ErrNotLeader) {
		t.Errorf("write on a partitioned leader: %v", err)
	}
	if c.Node(old).State().App("com.example.app") == nil {
		t.Error("partitioned node lost its state")
	}
	c.Heal()
	s = c.MustApply(consensus.AppCreate{ID: "com.after.heal"})
	c.WaitForIndex(s.Index)
}

// TestClusterSnapshotCatchUp checks that a non-voter that missed more
// than TrailingLogs entries catches up from a snapshot.
func TestClusterSnapshotCatchUp(t *testing.T) {
	c := consensustest.NewClusterWith(t, consensustest.Options{
		Voters: 3, Nonvoters: 1, TrailingLogs: 2,
	})
	const lagging = 3
	c.Partition(lagging)
	c.MustApply(commands[0])
	var s *state.State
	for _, cmd := range commands[1:] {
		s = c.MustApply(cmd)
	}
	leader := c.WaitForLeader()
	if err := c.Node(leader).Snapshot(); err != nil {
		t.Fatal(err)
	}
	c.Heal()
	c.WaitForIndex(s.Index)
	if !bytes.Equal(encodeState(t, c.Node(lagging).State()), encodeState(t, s)) {
		t.Error("non-voter state differs after catch-up")
	}
	if st := c.Node(lagging).Stats(); st.State != "Follower" {
		t.Errorf("non-voter state %q", st.State)
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	consensustest.WaitFor(t, "n to reach 3", func() bool { n++; return n >= 3 }, time.Second)
	if n < 3 {
		t.Errorf("n = %d", n)
	}
}
