package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// RaftProtocol is the libp2p protocol raft's RPCs travel on, so one port
// serves raft, block exchange and everything else.
const RaftProtocol protocol.ID = "/mirrord/raft/1.0.0"

// streamLayer is a raft.StreamLayer over libp2p streams. Raft server
// addresses are peer ids; the host's peerstore knows how to reach them.
type streamLayer struct {
	h host.Host
	net.Listener
}

// NewRaftTransport returns a raft transport over h's streams. allow, if
// non-nil, admits inbound raft streams only from the peers it accepts
// (cluster members): anyone else could otherwise pose as a leader.
func NewRaftTransport(h host.Host, timeout time.Duration, logOut io.Writer, allow func(peer.ID) bool) (*raft.NetworkTransport, error) {
	ln, err := gostream.Listen(h, RaftProtocol)
	if err != nil {
		return nil, fmt.Errorf("node: raft listener: %w", err)
	}
	if allow != nil {
		ln = &gatedListener{Listener: ln, allow: allow}
	}
	sl := &streamLayer{h: h, Listener: ln}
	return raft.NewNetworkTransport(sl, 3, timeout, logOut), nil
}

// Dial opens a stream to the peer named by address (a peer id).
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	pid, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("node: raft address %q is not a peer id: %w", address, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return gostream.Dial(ctx, s.h, pid, RaftProtocol)
}

// Addr is this node's raft address: its peer id.
func (s *streamLayer) Addr() net.Addr { return peerAddr(s.h.ID()) }

type peerAddr peer.ID

func (a peerAddr) Network() string { return "libp2p" }
func (a peerAddr) String() string  { return peer.ID(a).String() }

// gatedListener drops inbound streams from peers that allow refuses.
type gatedListener struct {
	net.Listener
	allow func(peer.ID) bool
}

func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		p, perr := peer.Decode(c.RemoteAddr().String())
		if perr == nil && l.allow(p) {
			return c, nil
		}
		c.Close()
	}
}
