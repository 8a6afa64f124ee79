package content

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
)

// repairingBlockstore turns a block that fails its CID check into a
// missing one once the store is online (has a block exchange): the bad
// copy is deleted, so the block service fetches a good one from a peer
// instead of failing every read. Offline, the mismatch is reported.
type repairingBlockstore struct {
	blockstore.Blockstore
	online   atomic.Bool
	repaired atomic.Int64
}

func (r *repairingBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	b, err := r.Blockstore.Get(ctx, c)
	if err != nil && errors.Is(err, blockstore.ErrHashMismatch) && r.online.Load() {
		if derr := r.Blockstore.DeleteBlock(ctx, c); derr != nil {
			return nil, fmt.Errorf("%w: %s (and deleting it failed: %v)", ErrCorrupt, c, derr)
		}
		r.repaired.Add(1)
		return nil, ipld.ErrNotFound{Cid: c}
	}
	return b, err
}

// Repaired counts corrupt blocks deleted so that they are fetched again.
func (s *Store) Repaired() int64 { return s.rbs.repaired.Load() }

// FetchStats reports one Fetch.
type FetchStats struct {
	Blocks  int   // blocks of the DAG
	Fetched int   // blocks that were missing and came from peers
	Bytes   int64 // bytes of the fetched blocks
}

// fetchBatch is how many blocks one Fetch asks the exchange for at once.
const fetchBatch = 256

// Fetch makes every block of the object rooted at root local, asking the
// block exchange for the missing ones within one session, and verifies
// each block against its CID on arrival (the exchange does) and when it
// is read back. Sibling blocks are requested in a random order, so that
// nodes fetching the same object at the same time hold different blocks
// early and can serve each other, not only the origin. progress, if
// non-nil, is called after each batch.
func (s *Store) Fetch(ctx context.Context, root cid.Cid, progress func(FetchStats)) (FetchStats, error) {
	var st FetchStats
	ses := blockservice.NewSession(ctx, s.bserv)
	level := []cid.Cid{root}
	for len(level) > 0 {
		rand.Shuffle(len(level), func(i, j int) { level[i], level[j] = level[j], level[i] })
		var next []cid.Cid
		for start := 0; start < len(level); start += fetchBatch {
			batch := level[min(start, len(level)):min(start+fetchBatch, len(level))]
			var missing []cid.Cid
			for _, c := range batch {
				st.Blocks++
				if c.Type() == cid.Raw {
					ok, err := s.bs.Has(ctx, c)
					if err != nil {
						return st, mapErr(c, err)
					}
					if ok {
						continue
					}
					missing = append(missing, c)
					continue
				}
				// Internal nodes are read (verifying them) to learn their
				// links; a missing or corrupt one is fetched.
				blk, err := s.bs.Get(ctx, c)
				switch {
				case err == nil:
					links, err := blockLinks(c, blk)
					if err != nil {
						return st, err
					}
					next = append(next, links...)
				case ipld.IsNotFound(err):
					missing = append(missing, c)
				default:
					return st, mapErr(c, err)
				}
			}
			if len(missing) == 0 {
				continue
			}
			want := make(map[cid.Cid]bool, len(missing))
			for _, c := range missing {
				want[c] = true
			}
			for blk := range ses.GetBlocks(ctx, missing) {
				if !want[blk.Cid()] {
					continue
				}
				delete(want, blk.Cid())
				st.Fetched++
				st.Bytes += int64(len(blk.RawData()))
				if blk.Cid().Type() != cid.Raw {
					links, err := blockLinks(blk.Cid(), blk)
					if err != nil {
						return st, err
					}
					next = append(next, links...)
				}
			}
			if len(want) > 0 {
				if err := ctx.Err(); err != nil {
					return st, fmt.Errorf("content: fetch %s: %d blocks still missing: %w", root, len(want), err)
				}
				return st, fmt.Errorf("%w: fetch %s: %d blocks not received", ErrNotFound, root, len(want))
			}
			if progress != nil {
				progress(st)
			}
		}
		level = next
	}
	return st, nil
}

func blockLinks(c cid.Cid, blk blocks.Block) ([]cid.Cid, error) {
	if c.Type() != cid.DagProtobuf {
		return nil, nil
	}
	nd, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, c, err)
	}
	out := make([]cid.Cid, 0, len(nd.Links()))
	for _, l := range nd.Links() {
		out = append(out, l.Cid)
	}
	return out, nil
}

// Count reports how many blocks of the object rooted at root are stored
// here (held) out of those known (known: the blocks reachable through
// stored internal nodes; equal to the DAG's size once it is complete).
// Leaves are checked for presence only.
func (s *Store) Count(ctx context.Context, root cid.Cid) (held, known int, err error) {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		known++
		if c.Type() == cid.Raw {
			ok, err := s.bs.Has(ctx, c)
			if err != nil {
				return held, known, mapErr(c, err)
			}
			if ok {
				held++
			}
			continue
		}
		blk, err := s.bs.Get(ctx, c)
		if ipld.IsNotFound(err) {
			continue
		}
		if err != nil {
			return held, known, mapErr(c, err)
		}
		held++
		links, err := blockLinks(c, blk)
		if err != nil {
			return held, known, err
		}
		stack = append(stack, links...)
	}
	return held, known, nil
}
