package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/node/adminapi"
	"mirrord/node/cluster"
)

// startNodeWith starts an in-process node with a changed config.
func startNodeWith(t testing.TB, data string, mod func(*configs.Config)) *testNode {
	t.Helper()
	if data == "" {
		data = t.TempDir()
	}
	cfg := configs.Default()
	cfg.Node.Data = data
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.P2P = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Stats.FlushInterval = configs.Duration(50 * time.Millisecond)
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	n := &testNode{data: data, cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", filepath.Base(data))
	}
	go func() { n.done <- serve(ctx, cfg, log, ready) }()
	select {
	case addr := <-ready:
		n.url = "http://" + addr
	case err := <-n.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(150 * time.Second):
		t.Fatal("node did not become ready within 150s")
	}
	b, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	n.token = strings.TrimSpace(string(b))
	t.Cleanup(n.stop)
	return n
}

// joinNode starts a node that joins through via with a join token.
func joinNode(t *testing.T, via, token string, mod func(*configs.Config)) *testNode {
	t.Helper()
	return startNodeWith(t, "", func(c *configs.Config) {
		c.Cluster.Join, c.Cluster.JoinToken = via, token
		if mod != nil {
			mod(c)
		}
	})
}

func (n *testNode) status(t *testing.T) adminapi.Status {
	t.Helper()
	var st adminapi.Status
	out := n.cli(t, "status", "--json")
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	return st
}

// readyEverywhere reports whether every node in the status says the
// release is ready.
func readyEverywhere(st adminapi.Status, app, version string, nodes int) bool {
	if len(st.Nodes) != nodes {
		return false
	}
	for _, n := range st.Nodes {
		ok := false
		for _, p := range n.Releases {
			ok = ok || (p.App == app && p.Version == version && p.Ready)
		}
		if !ok {
			return false
		}
	}
	return true
}

// TestClusterFiveNodes is the first must-show: 3 voters and 2
// non-voters joined through HTTP URLs and a multiaddr; a release
// published on a follower is answered and served byte-identically by
// every node, and installs from each; the first node's admin token works
// everywhere; a corrupted block is noticed and fetched again.
func TestClusterFiveNodes(t *testing.T) {
	vec := vectors(t)
	a := startNode(t, "")
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	if len(tok) != 64 {
		t.Fatalf("join token %q", tok)
	}
	b := joinNode(t, a.url, tok, nil)
	c := joinNode(t, b.url, tok, nil)
	// D joins through A's multiaddr (peer id + address from /cluster/v1/peer).
	var pi cluster.PeerInfo
	_, body := httpGet(t, a.url+"/cluster/v1/peer", nil)
	if err := json.Unmarshal(body, &pi); err != nil {
		t.Fatal(err)
	}
	var maddr string
	for _, ad := range pi.Addrs {
		if strings.HasPrefix(ad, "/ip4/127.0.0.1/tcp/") {
			maddr = ad + "/p2p/" + pi.ID
		}
	}
	d := joinNode(t, maddr, tok, nil)
	e := joinNode(t, c.url, tok, nil)
	nodes := []*testNode{a, b, c, d, e}

	// One token for the cluster: A's token works on E, and E stored it.
	if e.token != a.token {
		t.Fatalf("joined node's admin token differs from the first node's")
	}
	st := e.status(t)
	if len(st.Nodes) != 5 {
		t.Fatalf("status lists %d nodes: %+v", len(st.Nodes), st.Nodes)
	}
	voters := 0
	for _, n := range st.Nodes {
		if n.Voter {
			voters++
		}
		if n.Error != "" {
			t.Errorf("node %s: %s", n.ID, n.Error)
		}
	}
	if voters != 3 {
		t.Fatalf("%d voters, want 3: %+v", voters, st.Nodes)
	}
	// A negative token lifetime is refused.
	if _, err := a.cliErr("cluster", "token", "--ttl", "-1s"); err == nil {
		t.Error("negative ttl accepted")
	}

	// Publish on a follower.
	var follower *testNode
	leaderID := st.Node.LeaderID
	for _, n := range nodes {
		if n.status(t).Node.ID != leaderID {
			follower = n
			break
		}
	}
	const app = "com.example.cluster"
	pub, _ := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	follower.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"))
	follower.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	consensustest.WaitFor(t, "1.0.2 ready on all 5 nodes", func() bool {
		return readyEverywhere(a.status(t), app, "1.0.2", 5)
	}, 60*time.Second)

	// Every node answers the check and serves identical bytes.
	var zips [][]byte
	for i, n := range nodes {
		dev := newDevice(t, n, app, pub)
		ans, status, err := dev.Check(context.Background())
		if err != nil || status != 200 || ans["version"] != "1.0.2" {
			t.Fatalf("node %d check: %v %d %v", i, err, status, ans)
		}
		if !strings.HasPrefix(ans["url"].(string), n.url) {
			t.Errorf("node %d answers with another node's url: %v", i, ans["url"])
		}
		resp, zip := httpGet(t, ans["url"].(string), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("node %d zip: HTTP %d", i, resp.StatusCode)
		}
		zips = append(zips, zip)
		res, err := dev.Update(context.Background())
		if err != nil || res.Installed != "1.0.2" {
			t.Fatalf("node %d install: %v %+v", i, err, res)
		}
		sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())
	}
	for i := range zips {
		if !bytes.Equal(zips[i], zips[0]) {
			t.Fatalf("node %d serves different zip bytes", i)
		}
	}

	// Corrupt a stored block on D (and drop its assembled copies, so
	// downloads read blocks): D notices the CID mismatch, fetches the
	// block again from a peer, and serves the right bytes.
	blockFile, orig := largestBlock(t, filepath.Join(d.data, "blocks"))
	bad := bytes.Clone(orig)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(blockFile, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	cache, _ := filepath.Glob(filepath.Join(d.data, "blocks-cache", "*"))
	for _, f := range cache {
		os.Remove(f)
	}
	dev := newDevice(t, d, app, pub)
	dev.DeviceID = "11111111-2222-3333-4444-555555555555"
	res, err := dev.Update(context.Background())
	if err != nil || res.Installed != "1.0.2" {
		t.Fatalf("install from D after corruption: %v %+v", err, res)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())
	for _, u := range objectURLs(t, d, app, "1.0.2") {
		resp, got := httpGet(t, u, nil)
		_, want := httpGet(t, strings.Replace(u, d.url, a.url, 1), nil)
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("D answered %s with HTTP %d and %d bytes (identical: %v)", u, resp.StatusCode, len(got), bytes.Equal(got, want))
		}
	}
	consensustest.WaitFor(t, "the corrupt block to be replaced by a good copy", func() bool {
		now, err := os.ReadFile(blockFile)
		return err == nil && bytes.Equal(now, orig)
	}, 30*time.Second)
}

// TestClusterFailover runs three real processes: the leader is killed
// with SIGKILL while devices keep checking the others; a new leader
// takes over and publishing works; then with 2 of 3 voters down the last
// node serves checks and downloads but refuses admin writes with 503;
// the killed nodes come back and everything converges.
func TestClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	vec := vectors(t)
	type member struct {
		data, p2p string
		p         *proc
	}
	ms := make([]*member, 3)
	for i := range ms {
		ms[i] = &member{data: t.TempDir(), p2p: fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t))}
	}
	ms[0].p = startProcArgs(t, ms[0].data, "--p2p", ms[0].p2p)
	tokb, _ := os.ReadFile(filepath.Join(ms[0].data, "admin.token"))
	admin := strings.TrimSpace(string(tokb))
	join := strings.Fields(mustCLI(t, ms[0].p.url, admin, "cluster", "token"))[0]
	for _, m := range ms[1:] {
		m.p = startProcArgs(t, m.data, "--p2p", m.p2p, "--join", ms[0].p.url, "--join-token", join)
	}
	const app = "com.example.failover"
	mustCLI(t, ms[1].p.url, admin, "app", "create", app)
	mustCLI(t, ms[2].p.url, admin, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", filepath.Join(vec, "src-1.0.2"))
	consensustest.WaitFor(t, "1.0.2 on all nodes", func() bool {
		st, err := statusAt(t, ms[0].p.url, admin)
		return err == nil && readyEverywhere(st, app, "1.0.2", 3)
	}, 60*time.Second)

	// Find the leader's process.
	st, err := statusAt(t, ms[0].p.url, admin)
	if err != nil {
		t.Fatal(err)
	}
	byURL := map[string]*member{}
	for _, m := range ms {
		byURL[m.p.url] = m
	}
	var leader *member
	var others []*member
	for _, n := range st.Nodes {
		if n.ID == st.Node.LeaderID {
			leader = byURL[n.HTTP]
		} else {
			others = append(others, byURL[n.HTTP])
		}
	}
	if leader == nil || len(others) != 2 || others[0] == nil || others[1] == nil {
		t.Fatalf("cannot map nodes to processes: %+v", st.Nodes)
	}

	chk := startChecker(t, []string{others[0].p.url, others[1].p.url}, app)
	consensustest.WaitFor(t, "checks flowing", func() bool { return chk.ok.Load() > 20 }, 10*time.Second)
	oldLeader := st.Node.LeaderID
	killed := time.Now()
	leader.p.kill(t)
	var failover time.Duration
	consensustest.WaitFor(t, "a new leader", func() bool {
		for _, o := range others {
			var rz struct {
				Leader string `json:"leader"`
			}
			resp, err := http.Get(o.p.url + "/readyz")
			if err != nil {
				continue
			}
			err = json.NewDecoder(resp.Body).Decode(&rz)
			resp.Body.Close()
			if err == nil && rz.Leader != "" && rz.Leader != oldLeader {
				failover = time.Since(killed)
				return true
			}
		}
		return false
	}, 15*time.Second)
	t.Logf("new leader %s after the leader was killed", failover.Round(time.Millisecond))
	mustCLI(t, others[1].p.url, admin, "publish", "--app", app, "--version", "1.0.3", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	chk.finish()
	if f := chk.failed.Load(); f != 0 {
		t.Fatalf("%d of %d update checks failed during failover; last: %s", f, f+chk.ok.Load(), chk.lastErr)
	}
	t.Logf("%d update checks answered during failover, none failed", chk.ok.Load())

	// Two of three voters down: the last one keeps serving devices.
	last, down := others[0], others[1]
	consensustest.WaitFor(t, "1.0.3 on both survivors", func() bool {
		st, err := statusAt(t, last.p.url, admin)
		return err == nil && countReady(st, app, "1.0.3") == 2
	}, 30*time.Second)
	down.p.kill(t)
	chk = startChecker(t, []string{last.p.url}, app)
	dev := newDevice(t, &testNode{url: last.p.url}, app, nil)
	res, err := dev.Update(context.Background())
	if err != nil || res.Installed != "1.0.3" {
		t.Fatalf("install from the last node without quorum: %v %+v", err, res)
	}
	if _, err := cliAt(last.p.url, admin, "channel", "set", app, "beta"); err == nil || !strings.Contains(err.Error(), "admin writes are unavailable") {
		t.Fatalf("admin write without quorum: %v", err)
	}
	req, _ := http.NewRequest("PUT", last.p.url+"/admin/v1/apps/"+app+"/channels/beta", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("admin write without quorum: HTTP %d, want 503", resp.StatusCode)
	}
	chk.finish()
	if f := chk.failed.Load(); f != 0 {
		t.Fatalf("%d update checks failed without quorum; last: %s", f, chk.lastErr)
	}

	// Heal: both come back on their data dirs; nothing is lost.
	leader.p = startProcArgs(t, leader.data, "--p2p", leader.p2p)
	down.p = startProcArgs(t, down.data, "--p2p", down.p2p)
	consensustest.WaitFor(t, "1.0.3 everywhere after healing", func() bool {
		st, err := statusAt(t, last.p.url, admin)
		return err == nil && st.Node.LeaderID != "" && readyEverywhere(st, app, "1.0.3", 3) && readyEverywhere(st, app, "1.0.2", 3)
	}, 60*time.Second)
	mustCLI(t, leader.p.url, admin, "channel", "set", app, "beta", "--version", "1.0.2")
	for _, m := range ms {
		dev := newDevice(t, &testNode{url: m.p.url}, app, nil)
		res, err := dev.Update(context.Background())
		if err != nil || res.Installed != "1.0.3" {
			t.Fatalf("install from %s after healing: %v %+v", m.p.url, err, res)
		}
		sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())
	}
}

// countReady counts the nodes whose report says the release is ready.
func countReady(st adminapi.Status, app, version string) int {
	n := 0
	for _, r := range st.Nodes {
		for _, p := range r.Releases {
			if p.App == app && p.Version == version && p.Ready {
				n++
			}
		}
	}
	return n
}
