package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/node"
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

// objectURLs lists the download URLs of a release's objects on node n.
func objectURLs(t *testing.T, n *testNode, app, version string) []string {
	t.Helper()
	var rels []adminapi.ReleaseInfo
	out := n.cli(t, "release", "list", app, "--json")
	if err := json.Unmarshal([]byte(out), &rels); err != nil {
		t.Fatalf("release list: %v\n%s", err, out)
	}
	var urls []string
	for _, r := range rels {
		if r.Version != version {
			continue
		}
		urls = append(urls, n.url+"/dl/"+r.ZipCID+"/bundle.zip")
		for _, f := range r.Manifest {
			urls = append(urls, n.url+"/dl/"+f.CID+"/"+f.FileName)
		}
	}
	if len(urls) == 0 {
		t.Fatalf("release %s not listed", version)
	}
	return urls
}

// largestBlock returns the path and bytes of the biggest block file.
func largestBlock(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	var best string
	var size int64
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".data") {
			return err
		}
		if info, err := de.Info(); err == nil && info.Size() > size {
			best, size = p, info.Size()
		}
		return nil
	})
	if err != nil || best == "" {
		t.Fatalf("no block files in %s: %v", dir, err)
	}
	b, err := os.ReadFile(best)
	if err != nil {
		t.Fatal(err)
	}
	return best, b
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// checker sends update checks to nodes in a loop and counts failures.
type checker struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	lastErr    string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startChecker(t *testing.T, urls []string, app string) *checker {
	c := &checker{stop: make(chan struct{})}
	body := fmt.Sprintf(`{"app_id":%q,"device_id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","version_name":"builtin","version_build":"1.0.0","version_code":"1","version_os":"14","platform":"android","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"defaultChannel":""}`, app)
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-c.stop:
					return
				default:
				}
				resp, err := hc.Post(u+"/updates", "application/json", strings.NewReader(body))
				if err == nil {
					var ans map[string]any
					err = json.NewDecoder(resp.Body).Decode(&ans)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || ans["version"] == nil) {
						err = fmt.Errorf("HTTP %d %v", resp.StatusCode, ans)
					}
				}
				if err != nil {
					c.failed.Add(1)
					c.mu.Lock()
					c.lastErr = err.Error()
					c.mu.Unlock()
				} else {
					c.ok.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return c
}

func (c *checker) finish() { close(c.stop); c.wg.Wait() }

// cliAt runs a mirrord command in process against url with token.
func cliAt(url, token string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	full := append(append([]string{}, args...), "--server", url, "--token", token)
	err := run(context.Background(), full, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func mustCLI(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	out, err := cliAt(url, token, args...)
	if err != nil {
		t.Fatalf("mirrord %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func statusAt(t *testing.T, url, token string) (adminapi.Status, error) {
	t.Helper()
	var st adminapi.Status
	out, err := cliAt(url, token, "status", "--json")
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, out)
	}
	return st, json.Unmarshal([]byte(out), &st)
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

// TestClusterLateJoinerPSK: a node joining a private network late
// catches up from a raft snapshot plus blocks and serves; a host without
// the network key cannot even connect; `cluster remove` takes it out.
func TestClusterLateJoinerPSK(t *testing.T) {
	vec := vectors(t)
	psk := filepath.Join(t.TempDir(), "psk")
	if err := os.WriteFile(psk, []byte(strings.Repeat("5a", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	small := func(c *configs.Config) {
		c.Node.PSKFile = psk
		c.Raft.SnapshotThreshold = 4
		c.Raft.SnapshotInterval = configs.Duration(50 * time.Millisecond)
		c.Raft.TrailingLogs = 1
		// Small log segments, so that compaction really drops the head
		// of the log and the joiner must be sent a snapshot.
		c.Raft.WALSegmentSize = 4 << 10
	}
	a := startNodeWith(t, "", small)
	const app = "com.example.late"
	pub, _ := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	a.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"))
	enc := readEncrypt(t, vec, "1.0.1")
	a.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production",
		"--session-key", enc.IVSessionKey, "--checksum", enc.Checksum, filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))
	a.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	a.cli(t, "channel", "set", app, "beta", "--version", "1.0.1")
	for i := range 6 {
		a.cli(t, "device", "set", app, fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), "--channel", "beta")
	}
	consensustest.WaitFor(t, "a raft snapshot on the first node", func() bool {
		return len(doneSnapshots(a.data)) > 0
	}, 30*time.Second)

	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	// The joiner takes no snapshots of its own (default threshold), so
	// a snapshot in its data dir can only have come from the leader.
	b := joinNode(t, a.url, tok, func(c *configs.Config) { c.Node.PSKFile = psk })
	consensustest.WaitFor(t, "both releases ready on both nodes", func() bool {
		st := b.status(t)
		return readyEverywhere(st, app, "1.0.1", 2) && readyEverywhere(st, app, "1.0.2", 2)
	}, 60*time.Second)
	if len(doneSnapshots(b.data)) == 0 {
		ents, _ := filepath.Glob(filepath.Join(b.data, "raft", "snapshots", "*", "*"))
		aents, _ := filepath.Glob(filepath.Join(a.data, "raft", "snapshots", "*", "*"))
		t.Errorf("the late joiner did not receive a raft snapshot: %v (leader has %v)", ents, aents)
	}
	dev := newDevice(t, b, app, pub)
	if res, err := dev.Update(context.Background()); err != nil || res.Installed != "1.0.2" {
		t.Fatalf("install from the late joiner: %v %+v", err, res)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())
	dev.DeviceID = "00000000-0000-4000-8000-000000000003" // overridden to beta: the snapshot carried it
	if res, err := dev.Update(context.Background()); err != nil || res.Installed != "1.0.1" {
		t.Fatalf("beta device on the late joiner: %v %+v", err, res)
	}

	// A libp2p host without the key cannot connect to a node.
	var pi cluster.PeerInfo
	_, body := httpGet(t, a.url+"/cluster/v1/peer", nil)
	if err := json.Unmarshal(body, &pi); err != nil {
		t.Fatal(err)
	}
	h, err := node.NewHost(node.HostConfig{Dir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ai, err := peerAddrInfo(pi)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Connect(ctx, ai); err == nil {
		t.Fatal("a host without the PSK connected to a private-network node")
	}

	// Remove the joiner.
	bid := b.status(t).Node.ID
	a.cli(t, "cluster", "remove", bid)
	st := a.status(t)
	if len(st.Nodes) != 1 || st.Nodes[0].ID == bid {
		t.Fatalf("after remove: %+v", st.Nodes)
	}
	if _, err := a.cliErr("cluster", "remove", "not-a-peer-id"); err == nil {
		t.Error("removing a bad id succeeded")
	}
}

func peerAddrInfo(pi cluster.PeerInfo) (peer.AddrInfo, error) {
	id, err := peer.Decode(pi.ID)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	ai := peer.AddrInfo{ID: id}
	for _, s := range pi.Addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return ai, err
		}
		ai.Addrs = append(ai.Addrs, a)
	}
	return ai, nil
}

// TestGCAndDiskBudget: deleting a release frees its blocks at the next
// GC (blocks shared with a kept release stay), and past the disk
// budget uploads are refused with 507.
func TestGCAndDiskBudget(t *testing.T) {
	vec := vectors(t)
	n := startNodeWith(t, "", func(c *configs.Config) {
		c.Replication.GCGrace = configs.Duration(time.Millisecond)
		c.Replication.DiskBudget = 3 << 20
	})
	const app = "com.example.gc"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	big := t.TempDir()
	if err := os.WriteFile(filepath.Join(big, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	blob := make([]byte, 1<<20)
	if _, err := rand.Read(blob); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(big, "big.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	n.cli(t, "publish", "--app", app, "--version", "2.0.0", big)
	n.cli(t, "release", "delete", app, "2.0.0")
	var res struct {
		BlocksRemoved int   `json:"blocks_removed"`
		BytesFreed    int64 `json:"bytes_freed"`
	}
	if err := json.Unmarshal([]byte(n.cli(t, "gc", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.BlocksRemoved == 0 || res.BytesFreed < 1<<20 {
		t.Fatalf("gc after deleting 2.0.0: %+v", res)
	}
	// 1.0.1 is intact.
	dev := newDevice(t, n, app, nil)
	if r, err := dev.Update(context.Background()); err != nil || r.Installed != "1.0.1" {
		t.Fatalf("install after gc: %v %+v", err, r)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())

	// Over the 3 MiB budget: the upload is refused with 507.
	huge := t.TempDir()
	os.WriteFile(filepath.Join(huge, "index.html"), []byte("<!doctype html>"), 0o644)
	big4 := make([]byte, 4<<20)
	if _, err := rand.Read(big4); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(huge, "a.bin"), big4, 0o644)
	out, err := n.cliErr("publish", "--app", app, "--version", "3.0.0", huge)
	if err == nil || !strings.Contains(out+err.Error(), "disk budget") {
		t.Fatalf("publish past the disk budget: %v\n%s", err, out)
	}
	req, _ := http.NewRequest("POST", n.url+"/admin/v1/objects", bytes.NewReader(big4))
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("upload past the budget: HTTP %d, want 507", resp.StatusCode)
	}
}

// TestJoinRefused: a wrong join token stops the new node at once with a
// message that says what to do.
func TestJoinRefused(t *testing.T) {
	a := startNode(t, "")
	cfg := configs.Default()
	cfg.Node.Data = t.TempDir()
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.P2P = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.Cluster.Join, cfg.Cluster.JoinToken = a.url, strings.Repeat("0", 64)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	err := serve(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err == nil || !strings.Contains(err.Error(), "join token is wrong or expired") {
		t.Fatalf("serve with a bad join token: %v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("refusal took %s", d)
	}
	if st := a.status(t); len(st.Nodes) != 1 {
		t.Fatalf("the refused node shows up: %+v", st.Nodes)
	}
}

// doneSnapshots lists the completed raft snapshots of a data dir (raft
// writes a snapshot in NAME.tmp and renames it when done).
func doneSnapshots(data string) []string {
	var out []string
	metas, _ := filepath.Glob(filepath.Join(data, "raft", "snapshots", "*", "meta.json"))
	for _, m := range metas {
		if !strings.HasSuffix(filepath.Dir(m), ".tmp") {
			out = append(out, m)
		}
	}
	return out
}
