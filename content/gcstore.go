package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
)

// gcBlockstore is the blockstore directly on flatfs. It gives blocks an
// age GC can trust across restarts: the modification time of the
// block's flatfs file. Storing a block that is already present (the
// block service writes through to it, see setExchange) refreshes that
// time, durably, instead of doing nothing, so an upload that reuses old
// blocks protects them for the grace period like the ones it writes.
// Stores hold mu for reading; GC holds it for writing while it
// re-checks ages and deletes, so no block is deleted between a store
// refreshing it and the store returning.
type gcBlockstore struct {
	blockstore.Blockstore // boxo blockstore on the flatfs datastore

	dir   string           // flatfs root
	shard flatfs.ShardFunc // flatfs key -> shard directory
	now   func() time.Time // the clock (tests move it)

	mu   sync.RWMutex // Put/PutMany: R; GC deletions: W
	gcMu sync.Mutex   // one GC at a time

	// inflight holds the blocks stored by Adds that have not ended, by
	// multihash. GC keeps them whatever their age, and a failed Add
	// undoes its stores only of the blocks no one stored after it.
	claimMu   sync.Mutex
	inflight  map[string]*inflightBlock
	lastClaim uint64

	// noSpace counts stores that failed for want of space (ENOSPC or
	// EDQUOT), so that a fetch whose blocks the block service could
	// not write can say why (see FetchWith).
	noSpace atomic.Int64
}

func newGCBlockstore(dir string, fds *flatfs.Datastore) (*gcBlockstore, error) {
	id, err := flatfs.ParseShardFunc(fds.ShardStr())
	if err != nil {
		return nil, fmt.Errorf("content: flatfs shard function: %w", err)
	}
	return &gcBlockstore{
		Blockstore: blockstore.NewBlockstore(fds, blockstore.NoPrefix()),
		dir:        dir,
		shard:      id.Func(),
		now:        time.Now,
	}, nil
}

// blockPath is the flatfs file holding the block with c's multihash
// (flatfs: <dir>/<shard(key)>/<key>.data, key without its leading '/').
func (g *gcBlockstore) blockPath(c cid.Cid) string {
	key := dshelp.MultihashToDsKey(c.Hash()).String()[1:]
	return filepath.Join(g.dir, g.shard(key), key+".data")
}

// touch refreshes the modification time of a stored block and syncs it.
// It reports false if the block is not stored.
func (g *gcBlockstore) touch(c cid.Cid) (bool, error) {
	p := g.blockPath(c)
	now := g.now()
	if err := os.Chtimes(p, now, now); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("content: refresh block %s: %w", c, err)
	}
	// The store is fsynced: an upload that reused this block must still
	// protect it after a crash.
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, fmt.Errorf("content: refresh block %s: %w", c, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("content: refresh block %s: %w", c, err)
	}
	return true, nil
}

func (g *gcBlockstore) Put(ctx context.Context, b blocks.Block) error {
	return g.put(ctx, []blocks.Block{b})
}

func (g *gcBlockstore) PutMany(ctx context.Context, bs []blocks.Block) error {
	return g.put(ctx, bs)
}

// put stores the blocks that are missing and refreshes the age of those
// already stored. The stores of an Add are recorded in its claim.
func (g *gcBlockstore) put(ctx context.Context, bs []blocks.Block) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	cl := claimFrom(ctx)
	g.note(cl, bs)
	missing := make([]blocks.Block, 0, len(bs))
	for _, b := range bs {
		var prev time.Time
		if cl != nil {
			info, err := os.Stat(g.blockPath(b.Cid()))
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("content: store block %s: %w", b.Cid(), err)
			}
			if err == nil {
				prev = info.ModTime()
			}
		}
		ok, err := g.touch(b.Cid())
		if err != nil {
			return g.failed(err)
		}
		if cl != nil {
			cl.record(b.Cid(), !ok, prev)
		}
		if !ok {
			missing = append(missing, b)
		}
	}
	var err error
	switch len(missing) {
	case 0:
		return nil
	case 1:
		err = g.Blockstore.Put(ctx, missing[0])
	default:
		err = g.Blockstore.PutMany(ctx, missing)
	}
	return g.failed(err)
}

// failed counts a store that failed for want of space.
func (g *gcBlockstore) failed(err error) error {
	if IsNoSpace(err) {
		g.noSpace.Add(1)
	}
	return err
}

// allKeys lists the stored blocks (as raw CIDv1s of their multihashes).
// It fails if the listing ended early.
func (g *gcBlockstore) allKeys(ctx context.Context, fn func(cid.Cid)) error {
	var (
		ch   <-chan cid.Cid
		errf func() error
		err  error
	)
	if ae, ok := g.Blockstore.(blockstore.AllKeysChanWithErrer); ok {
		ch, errf, err = ae.AllKeysChanWithErr(ctx)
	} else {
		ch, err = g.Blockstore.AllKeysChan(ctx)
	}
	if err != nil {
		return fmt.Errorf("content: list blocks: %w", err)
	}
	for c := range ch {
		fn(c)
	}
	if errf != nil {
		if err := errf(); err != nil {
			return fmt.Errorf("content: list blocks: %w", err)
		}
	}
	return ctx.Err()
}
