package node

import (
	"context"
	"fmt"

	"github.com/ipfs/boxo/bitswap"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// NewExchange starts bitswap on the node's host over bs. It has no
// content router: it asks the connected peers (the cluster's nodes),
// which is what a mirror wants. serve, if non-nil, limits who may fetch
// blocks from this node (cluster members).
func NewExchange(ctx context.Context, h host.Host, bs blockstore.Blockstore, serve func(peer.ID) bool) *bitswap.Bitswap {
	opts := []bitswap.Option{
		// Bigger per-peer windows keep the pipe to a single peer full
		// on fast links (the default is 1 MiB).
		bitswap.MaxOutstandingBytesPerPeer(8 << 20),
		bitswap.EngineTaskWorkerCount(16),
		bitswap.TaskWorkerCount(16),
	}
	if serve != nil {
		opts = append(opts, bitswap.WithPeerBlockRequestFilter(func(p peer.ID, _ cid.Cid) bool { return serve(p) }))
	}
	return bitswap.New(ctx, bsnet.NewFromIpfsHost(h), nil, bs, opts...)
}

// ExchangeStats counts blocks and bytes moved by bitswap on this node.
type ExchangeStats struct {
	BlocksReceived uint64 `json:"blocks_received"`
	BytesReceived  uint64 `json:"bytes_received"`
	DupBlocks      uint64 `json:"dup_blocks_received"`
	BlocksSent     uint64 `json:"blocks_sent"`
	BytesSent      uint64 `json:"bytes_sent"`
	Peers          int    `json:"peers"`
}

// ExchangeStatsOf reads bitswap's counters.
func ExchangeStatsOf(bs *bitswap.Bitswap) (ExchangeStats, error) {
	st, err := bs.Stat()
	if err != nil {
		return ExchangeStats{}, fmt.Errorf("node: bitswap stat: %w", err)
	}
	return ExchangeStats{BlocksReceived: st.BlocksReceived, BytesReceived: st.DataReceived,
		DupBlocks: st.DupBlksReceived, BlocksSent: st.BlocksSent, BytesSent: st.DataSent, Peers: len(st.Peers)}, nil
}
