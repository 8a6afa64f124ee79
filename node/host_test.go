package node

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/consensus"
	"mirrord/consensus/consensustest"
)

func loopHost(t *testing.T, dir string, psk []byte) host.Host {
	t.Helper()
	h, err := NewHost(HostConfig{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, PSK: psk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestHostIdentityPersisted(t *testing.T) {
	dir := t.TempDir()
	h := loopHost(t, dir, nil)
	id := h.ID()
	h.Close()
	if h2 := loopHost(t, dir, nil); h2.ID() != id {
		t.Fatalf("peer id changed across restarts: %s -> %s", id, h2.ID())
	}
}

func TestPSK(t *testing.T) {
	psk := make([]byte, 32)
	psk[0] = 1
	other := make([]byte, 32)
	other[0] = 2
	a := loopHost(t, t.TempDir(), psk)
	b := loopHost(t, t.TempDir(), psk)
	c := loopHost(t, t.TempDir(), other)
	d := loopHost(t, t.TempDir(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatalf("same PSK: %v", err)
	}
	for name, h := range map[string]host.Host{"other PSK": c, "no PSK": d} {
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
		err := h.Connect(cctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()})
		ccancel()
		if err == nil {
			t.Errorf("%s: connected to a private network", name)
		}
	}
	if _, err := NewHost(HostConfig{Dir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, PSK: psk}); err == nil {
		t.Error("QUIC with a PSK was accepted")
	}
}

// TestRaftOverLibp2p runs a 3-voter raft group whose RPCs travel over
// libp2p streams on loopback.
func TestRaftOverLibp2p(t *testing.T) {
	const n = 3
	hosts := make([]host.Host, n)
	nodes := make([]*consensus.Node, n)
	for i := range hosts {
		hosts[i] = loopHost(t, t.TempDir(), nil)
	}
	for i := range hosts {
		for j := range hosts {
			if i != j {
				hosts[i].Peerstore().AddAddrs(hosts[j].ID(), hosts[j].Addrs(), time.Hour)
			}
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, h := range hosts {
		trans, err := NewRaftTransport(h, 5*time.Second, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg := consensus.DefaultConfig()
		cfg.NodeID = h.ID().String()
		cfg.Dir = filepath.Join(t.TempDir(), "raft")
		cfg.Bootstrap = i == 0
		cfg.Logger = log
		nd, err := consensus.Open(cfg, trans)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	defer func() {
		for i := n - 1; i >= 0; i-- {
			nodes[i].Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nodes[0].WaitForLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if err := nodes[0].AddVoter(ctx, hosts[i].ID().String(), hosts[i].ID().String()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nodes[0].Apply(ctx, consensus.AppCreate{ID: "com.example.app", CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	consensustest.WaitFor(t, "every node to apply the app", func() bool {
		for _, nd := range nodes {
			if nd.State().App("com.example.app") == nil {
				return false
			}
		}
		return true
	}, 20*time.Second)
}
