package content

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

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

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Rank and Of split the fetch for swarming: when Of > 1 this node
	// first fetches its share (every Of-th block of a level, starting at
	// Rank, in an order all nodes agree on) and then the rest in a new
	// block-exchange session. Nodes fetching the same object at once
	// then hold different blocks early, and the second session, which
	// has no preference for the peer that served the first, spreads its
	// requests over every peer that has them, not only the origin.
	Rank, Of int
	// Progress, if set, is called after each batch.
	Progress func(FetchStats)
	// Room, if set, is asked before each batch of blocks is requested,
	// with the most bytes the batch can take; an error stops the fetch,
	// so that a fetch stops short of filling the disk.
	Room func(n int64) error
}

// maxBlock bounds the size of the blocks Add makes: leaves are buzhash
// chunks of at most 512 KiB, internal nodes a few KiB of links.
const maxBlock = 512 << 10

// fetchBatch is how many blocks one request to the exchange names.
const fetchBatch = 256

// Fetch makes every block of the object rooted at root local, asking the
// block exchange for the missing ones, and verifies each block against
// its CID on arrival (the exchange does) and when it is read back.
// Blocks fetched are synced to disk before it returns.
func (s *Store) Fetch(ctx context.Context, root cid.Cid, progress func(FetchStats)) (FetchStats, error) {
	return s.FetchWith(ctx, root, FetchOptions{Progress: progress})
}

// FetchWith is Fetch with options.
//
// The block service writes fetched blocks and, when a write fails, only
// logs it and stops delivering; so a fetch that saw a store fail for want
// of space stops at once with ErrNoSpace instead of waiting for blocks
// that will never be written.
func (s *Store) FetchWith(ctx context.Context, root cid.Cid, opt FetchOptions) (FetchStats, error) {
	ns := s.gbs.noSpace.Load()
	st, err := s.fetchWith(ctx, root, opt, ns)
	if err != nil && !errors.Is(err, ErrNoSpace) && s.gbs.noSpace.Load() != ns {
		err = fmt.Errorf("%w: fetch %s: %w", ErrNoSpace, root, err)
	}
	return st, noSpace(err)
}

func (s *Store) fetchWith(ctx context.Context, root cid.Cid, opt FetchOptions, ns int64) (FetchStats, error) {
	var st FetchStats
	level := []cid.Cid{root}
	for len(level) > 0 {
		var next, missing []cid.Cid
		for _, c := range level {
			st.Blocks++
			if c.Type() == cid.Raw {
				ok, err := s.bs.Has(ctx, c)
				if err != nil {
					return st, mapErr(c, err)
				}
				if !ok {
					missing = append(missing, c)
				}
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
		groups := [][]cid.Cid{missing}
		if opt.Of > 1 && len(missing) >= 2*opt.Of {
			mine, rest := splitShare(missing, opt.Rank, opt.Of)
			groups = [][]cid.Cid{mine, rest}
		}
		for _, g := range groups {
			links, err := s.fetchGroup(ctx, root, g, &st, opt, ns)
			if err != nil {
				return st, err
			}
			next = append(next, links...)
		}
		level = next
	}
	if st.Fetched > 0 {
		if err := s.sync(); err != nil {
			return st, err
		}
	}
	return st, nil
}

// splitShare returns this node's share of cs (every of-th CID in CID
// order, from rank) and the rest, each shuffled.
func splitShare(cs []cid.Cid, rank, of int) (mine, rest []cid.Cid) {
	sorted := slices.Clone(cs)
	slices.SortFunc(sorted, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	for i, c := range sorted {
		if i%of == rank%of {
			mine = append(mine, c)
		} else {
			rest = append(rest, c)
		}
	}
	shuffle(mine)
	shuffle(rest)
	return mine, rest
}

func shuffle(cs []cid.Cid) {
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
}

// stallTimeout is how long a fetch waits without receiving any block
// before it starts a new exchange session for what is still missing.
// Under load a bitswap session now and then loses a few wants and waits
// on them for a long time (seen here with 4 nodes fetching 100 MiB at
// once on 2 cores); a new session asks again. stallRetries rounds in a
// row without any block fail the fetch (the replicator retries later).
var (
	stallTimeout = 3 * time.Second
	stallRetries = 3
)

// fetchGroup fetches missing blocks in one session, in a random order,
// and returns the links of the internal nodes among them.
func (s *Store) fetchGroup(ctx context.Context, root cid.Cid, missing []cid.Cid, st *FetchStats, opt FetchOptions, ns int64) ([]cid.Cid, error) {
	if len(missing) == 0 {
		return nil, nil
	}
	shuffle(missing)
	var next []cid.Cid
	stalls := 0
	for len(missing) > 0 {
		got, links, err := s.fetchRound(ctx, missing, st, opt)
		if err != nil {
			return nil, err
		}
		next = append(next, links...)
		if len(got) == 0 {
			stalls++
		} else {
			stalls = 0
		}
		rest := missing[:0:0]
		for _, c := range missing {
			if !got[c] {
				rest = append(rest, c)
			}
		}
		missing = rest
		if len(missing) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("content: fetch %s: %d blocks still missing: %w", root, len(missing), err)
		}
		if s.gbs.noSpace.Load() != ns {
			return nil, fmt.Errorf("%w: fetch %s: %d blocks could not be written", ErrNoSpace, root, len(missing))
		}
		if stalls >= stallRetries {
			return nil, fmt.Errorf("%w: fetch %s: %d blocks not received from any peer", ErrNotFound, root, len(missing))
		}
	}
	return next, nil
}

// fetchRound asks one new session for missing, batch by batch, until
// everything arrived or no block came for stallTimeout.
func (s *Store) fetchRound(ctx context.Context, missing []cid.Cid, st *FetchStats, opt FetchOptions) (map[cid.Cid]bool, []cid.Cid, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ses := blockservice.NewSession(rctx, s.bserv)
	got := make(map[cid.Cid]bool, len(missing))
	var next []cid.Cid
	stall := time.NewTimer(stallTimeout)
	defer stall.Stop()
	for start := 0; start < len(missing); start += fetchBatch {
		batch := missing[start:min(start+fetchBatch, len(missing))]
		if opt.Room != nil {
			if err := opt.Room(int64(len(batch)) * maxBlock); err != nil {
				return nil, nil, err
			}
		}
		want := make(map[cid.Cid]bool, len(batch))
		for _, c := range batch {
			want[c] = true
		}
		ch := ses.GetBlocks(rctx, batch)
	recv:
		for len(want) > 0 {
			select {
			case blk, ok := <-ch:
				if !ok {
					break recv
				}
				if !want[blk.Cid()] {
					continue
				}
				delete(want, blk.Cid())
				got[blk.Cid()] = true
				st.Fetched++
				st.Bytes += int64(len(blk.RawData()))
				if blk.Cid().Type() != cid.Raw {
					links, err := blockLinks(blk.Cid(), blk)
					if err != nil {
						return nil, nil, err
					}
					next = append(next, links...)
				}
				stall.Reset(stallTimeout)
			case <-stall.C:
				return got, next, nil
			}
		}
		if len(want) > 0 {
			return got, next, nil
		}
		if opt.Progress != nil {
			opt.Progress(*st)
		}
	}
	return got, next, nil
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
