package node

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"mirrord/content"
)

// HostConfig configures a node's libp2p host.
type HostConfig struct {
	// Dir holds the identity key (identity.key, created on first start).
	Dir string
	// Listen are multiaddrs to listen on; none means TCP and QUIC on all
	// interfaces at DefaultP2PPort.
	Listen []string
	// PSK, when set, makes a private network: peers without the same key
	// cannot complete a connection. libp2p's private networks work over
	// TCP only, so QUIC addresses are refused with a PSK.
	PSK []byte
}

// DefaultP2PPort is the fixed port a node listens on by default.
const DefaultP2PPort = 4001

// NewHost builds the node's libp2p host: a persisted Ed25519 identity,
// Noise, TCP (and QUIC without a PSK), a connection manager.
func NewHost(cfg HostConfig) (host.Host, error) {
	key, err := loadOrCreateIdentity(cfg.Dir)
	if err != nil {
		return nil, err
	}
	listen := cfg.Listen
	if len(listen) == 0 {
		listen = []string{fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", DefaultP2PPort)}
		if cfg.PSK == nil {
			listen = append(listen, fmt.Sprintf("/ip4/0.0.0.0/udp/%d/quic-v1", DefaultP2PPort))
		}
	}
	useQUIC := false
	for _, a := range listen {
		if strings.Contains(a, "/quic") {
			useQUIC = true
		}
	}
	if useQUIC && cfg.PSK != nil {
		return nil, errors.New("node: a private network key (PSK) works over TCP only: remove the QUIC --p2p addresses")
	}
	cm, err := connmgr.NewConnManager(64, 256, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("node: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.NoTransports,
		// No SO_REUSEPORT: two nodes must never share a listen port.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.ConnectionManager(cm),
	}
	if useQUIC {
		opts = append(opts, libp2p.Transport(libp2pquic.NewTransport))
	}
	if cfg.PSK != nil {
		if len(cfg.PSK) != 32 {
			return nil, fmt.Errorf("node: private network key must be 32 bytes, got %d", len(cfg.PSK))
		}
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(cfg.PSK)))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("node: libp2p host: %w", err)
	}
	return h, nil
}

// loadOrCreateIdentity keeps the node's private key in dir/identity.key
// (hex of the marshalled key, mode 0600) so the peer id never changes.
func loadOrCreateIdentity(dir string) (crypto.PrivKey, error) {
	p := filepath.Join(dir, "identity.key")
	b, err := os.ReadFile(p)
	if err == nil {
		raw, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("node: %s is not a hex key: %w", p, err)
		}
		k, err := crypto.UnmarshalPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("node: %s: %w", p, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("node: read identity: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node: generate identity: %w", err)
	}
	raw, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := content.WriteFileAtomic(p, []byte(hex.EncodeToString(raw)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("node: write identity: %w", err)
	}
	return k, nil
}

// PeerIDOf returns the peer id (the raft server id) of the node whose
// data directory is dir, without starting anything. It fails when the
// directory has no identity yet.
func PeerIDOf(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "identity.key")); err != nil {
		return "", fmt.Errorf("node: %s holds no node identity: %w", dir, err)
	}
	k, err := loadOrCreateIdentity(dir)
	if err != nil {
		return "", err
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return "", fmt.Errorf("node: peer id: %w", err)
	}
	return id.String(), nil
}
