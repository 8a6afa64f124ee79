package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/node"
	"mirrord/node/cluster"
)

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
