package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/node"
)

// TestRecoverLostQuorum: a 3-voter cluster loses two voters for good.
// After `mirrord recover` on the survivor (stopped), it restarts as the
// only voter with all its state, takes writes, and removes the lost
// nodes.
func TestRecoverLostQuorum(t *testing.T) {
	vec := vectors(t)
	a := startNode(t, "")
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := joinNode(t, a.url, tok, nil)
	c := joinNode(t, b.url, tok, nil)
	const app = "com.example.recover"
	a.cli(t, "app", "create", app)
	a.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	if st := a.status(t); len(st.Nodes) != 3 {
		t.Fatalf("%d nodes", len(st.Nodes))
	}
	aID, _ := node.PeerIDOf(a.data)
	bID, _ := node.PeerIDOf(b.data)
	cID, _ := node.PeerIDOf(c.data)

	if out, err := cliNoServer("recover", "--data", a.data); err == nil || !strings.Contains(err.Error()+out, "stop the node first") {
		t.Fatalf("recover on a running node: %v %s", err, out)
	}

	// b and c are gone with their disks; a is stopped.
	b.stop()
	c.stop()
	os.RemoveAll(b.data)
	os.RemoveAll(c.data)
	a.stop()

	// recover refuses a data dir without a node.
	if _, err := cliNoServer("recover", "--data", t.TempDir()); err == nil {
		t.Fatal("recover accepted an empty data dir")
	}
	out, err := cliNoServer("recover", "--data", a.data)
	if err != nil || !strings.Contains(out, "voters "+aID) {
		t.Fatalf("recover: %v\n%s", err, out)
	}

	a = startNode(t, a.data)
	// The node serves at once from its state; it elects itself soon.
	consensustest.WaitFor(t, "the recovered node to lead", func() bool { return a.status(t).Node.LeaderID == aID }, 10*time.Second)
	if out := a.cli(t, "release", "list", app); !strings.Contains(out, "1.0.1") {
		t.Fatalf("state lost:\n%s", out)
	}
	a.cli(t, "app", "create", "com.example.after")
	for _, id := range []string{bID, cID} {
		a.cli(t, "cluster", "remove", id)
	}
	consensustest.WaitFor(t, "one node in the status", func() bool { return len(a.status(t).Nodes) == 1 }, 10*time.Second)
	// A new node can join the recovered cluster.
	tok = strings.Fields(a.cli(t, "cluster", "token"))[0]
	d := joinNode(t, a.url, tok, nil)
	consensustest.WaitFor(t, "the new node ready", func() bool { return readyEverywhere(d.status(t), app, "1.0.1", 2) }, 30*time.Second)
}

// cliNoServer runs a mirrord command that needs no node.
func cliNoServer(args ...string) (string, error) {
	var out strings.Builder
	err := run(context.Background(), args, &out, &out)
	return out.String(), err
}

// TestRemoveLeader: `cluster remove` of the leader itself hands
// leadership over first, so its node record goes too.
func TestRemoveLeader(t *testing.T) {
	a := startNode(t, "")
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := joinNode(t, a.url, tok, nil)
	c := joinNode(t, b.url, tok, nil)
	nodes := map[string]*testNode{}
	for _, n := range []*testNode{a, b, c} {
		id, _ := node.PeerIDOf(n.data)
		nodes[id] = n
	}
	leaderID := a.status(t).Node.LeaderID
	leader := nodes[leaderID]
	if leader == nil {
		t.Fatalf("leader %q unknown", leaderID)
	}
	leader.cli(t, "cluster", "remove", leaderID)
	var other *testNode
	for id, n := range nodes {
		if id != leaderID {
			other = n
		}
	}
	consensustest.WaitFor(t, "two nodes left, the old leader gone", func() bool {
		st := other.status(t)
		if len(st.Nodes) != 2 || st.Node.LeaderID == leaderID || st.Node.LeaderID == "" {
			return false
		}
		for _, n := range st.Nodes {
			if n.ID == leaderID {
				return false
			}
		}
		return true
	}, 20*time.Second)
	other.cli(t, "app", "create", "com.example.after-remove")
}
