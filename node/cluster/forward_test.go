package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"mirrord/consensus"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
)

// bigRelease returns a release of app whose manifest has files entries
// shaped like an encrypted bundle's (512-hex sealed hashes, raw CIDs).
func bigRelease(app, version string, files int) state.Release {
	r := state.Release{App: app, Version: version, ZipCID: "bafkreizip", ZipSize: 16, Checksum: "c", CreatedAt: 1}
	hash := strings.Repeat("ab", 256)
	r.Manifest = make([]state.ManifestFile, files)
	for i := range r.Manifest {
		r.Manifest[i] = state.ManifestFile{
			FileName: fmt.Sprintf("assets/chunk-group-%03d/module-%02d/component-%06d.generated.js", i/200, i%7, i),
			FileHash: hash, CID: fmt.Sprintf("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s%05d", i), Size: 42,
		}
	}
	return r
}

// TestForwardLargeWrite: a write taken by a follower travels to the
// leader in a cluster call and back to the follower as a raft entry,
// both over libp2p. A release of 60,000 encrypted files (about 40 MB
// as a raft entry, more than a call could carry before) goes through;
// one over consensus.MaxCommandBytes is refused on the follower with
// consensus.ErrTooLarge, without costing the cluster its leader.
func TestForwardLargeWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("moves a 40 MB raft entry")
	}
	// Moving and decoding a 40 MB entry on a busy machine can hold a
	// heartbeat past the default 250 ms lease; this test is about sizes,
	// not about how much load a lease survives.
	slow := func(cfg *consensus.Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 3*time.Second, 3*time.Second, 3*time.Second
	}
	ns := []*testNode{startNode(t, nodeOptions{bootstrap: true, raft: slow}), startNode(t, nodeOptions{raft: slow})}
	hosts := []host.Host{ns[0].h, ns[1].h}
	hosts[0].Peerstore().AddAddrs(hosts[1].ID(), hosts[1].Addrs(), time.Hour)
	hosts[1].Peerstore().AddAddrs(hosts[0].ID(), hosts[0].Addrs(), time.Hour)
	// Added as a voter by hand rather than joined: the follower admits
	// the leader's raft traffic once it trusts it.
	ns[1].cl.Trust(hosts[0].ID())
	nodes := []*consensus.Node{ns[0].cons, ns[1].cons}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := nodes[0].WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].AddVoter(ctx, hosts[1].ID().String(), hosts[1].ID().String()); err != nil {
		t.Fatal(err)
	}
	const app = "com.example.big"
	if _, err := nodes[0].Apply(ctx, consensus.AppCreate{ID: app, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].WaitForIndex(ctx, nodes[0].State().Index); err != nil {
		t.Fatal(err)
	}
	follower := ns[1].cl

	cmd := consensus.ReleaseCreate{Release: bigRelease(app, "1.0.0", 60000), Channel: "production"}
	data, err := consensus.Encode(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 3*maxRPCBytes/4 || len(data) > consensus.MaxCommandBytes {
		t.Fatalf("the test entry is %d bytes; want one a non-member call could not carry but raft can", len(data))
	}
	if _, err := follower.Apply(ctx, cmd); err != nil {
		t.Fatalf("forwarding a %d-byte entry: %v", len(data), err)
	}
	consensustest.WaitFor(t, "the release on both nodes", func() bool {
		for _, nd := range nodes {
			a := nd.State().App(app)
			if a == nil || a.Releases["1.0.0"] == nil || len(a.Releases["1.0.0"].Manifest) != 60000 {
				return false
			}
		}
		return true
	}, 30*time.Second)

	term := nodes[0].Stats().Term
	index := nodes[0].State().Index
	huge := consensus.ReleaseCreate{Release: bigRelease(app, "2.0.0", 100000)}
	if _, err := follower.Apply(ctx, huge); !errors.Is(err, consensus.ErrTooLarge) {
		t.Fatalf("a release over MaxCommandBytes on the follower: %v", err)
	}
	if _, err := nodes[0].Apply(ctx, huge); !errors.Is(err, consensus.ErrTooLarge) {
		t.Fatalf("a release over MaxCommandBytes on the leader: %v", err)
	}
	if !nodes[0].IsLeader() || nodes[0].Stats().Term != term || nodes[0].State().Index != index {
		t.Fatalf("refusing the entry changed the cluster: leader %v, term %d -> %d, index %d -> %d",
			nodes[0].IsLeader(), term, nodes[0].Stats().Term, index, nodes[0].State().Index)
	}
	if _, err := follower.Apply(ctx, consensus.ChannelSet{App: app, Name: "beta", CreatedAt: 2}); err != nil {
		t.Fatalf("a small write after the refusal: %v", err)
	}
}
