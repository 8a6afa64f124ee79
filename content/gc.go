package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	ipld "github.com/ipfs/go-ipld-format"
)

// GCOptions tunes GC.
type GCOptions struct {
	// Grace keeps unreferenced blocks written less than Grace ago: an
	// upload's blocks are stored before the release that references them
	// commits. A block's age counts from the last time it was stored,
	// including a store of a block that was already present (an upload
	// that shares blocks with an older object refreshes them). Blocks
	// of an Add still running are kept whatever their age, so Grace 0
	// is safe against a concurrent Add; but an object that Add returned
	// is then removed before its release can reference it.
	Grace time.Duration
}

// GCResult reports what GC did.
type GCResult struct {
	// BlocksKept counts the stored blocks left in place: reachable from
	// keep, or younger than the grace period.
	BlocksKept    int `json:"blocks_kept"`
	BlocksRemoved int `json:"blocks_removed"`
	// BytesFreed is the size of the removed blocks and cache files.
	BytesFreed int64 `json:"bytes_freed"`
	// CacheFilesRemoved counts removed cache copies of objects.
	CacheFilesRemoved int `json:"cache_files_removed"`
}

// gcSweepBatch is how many blocks GC deletes per hold of the write lock
// (which makes concurrent stores wait).
const gcSweepBatch = 128

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

// inflightBlock is a block stored by at least one running Add.
type inflightBlock struct {
	claims int    // running Adds that stored it
	last   uint64 // the Add that stored it last; 0 if anything else did
}

// addClaim records what one Add stored, so that when it fails its
// blocks become collectable at once instead of after the grace period.
// Its stores carry it in their context (see withClaim).
type addClaim struct {
	id     uint64
	mu     sync.Mutex
	stored map[string]claimedBlock // by multihash
}

// claimedBlock is the first store of a block by one Add.
type claimedBlock struct {
	c        cid.Cid
	created  bool      // the Add wrote it; else it refreshed a stored one
	prev     time.Time // the refreshed block's age before the refresh
	recorded bool      // the store looked at the block (see record)
}

type claimKey struct{}

func withClaim(ctx context.Context, cl *addClaim) context.Context {
	return context.WithValue(ctx, claimKey{}, cl)
}

func claimFrom(ctx context.Context) *addClaim {
	cl, _ := ctx.Value(claimKey{}).(*addClaim)
	return cl
}

// collectable is the age a failed Add gives the blocks it wrote: older
// than any grace period, so the next GC removes them unless a kept
// object reaches them.
var collectable = time.Unix(1, 0)

// beginAdd starts tracking the blocks of one Add.
func (g *gcBlockstore) beginAdd() *addClaim {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	g.lastClaim++
	return &addClaim{id: g.lastClaim, stored: map[string]claimedBlock{}}
}

// note registers the stores of bs before they happen: by cl (an Add)
// or, when cl is nil, by anything else (a fetch), which makes the
// blocks no longer any failed Add's to undo. Called with mu held for
// reading, so GC cannot sweep in between.
func (g *gcBlockstore) note(cl *addClaim, bs []blocks.Block) {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	if cl == nil {
		if len(g.inflight) == 0 {
			return
		}
		for _, b := range bs {
			if e := g.inflight[string(b.Cid().Hash())]; e != nil {
				e.last = 0
			}
		}
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if g.inflight == nil {
		g.inflight = map[string]*inflightBlock{}
	}
	for _, b := range bs {
		k := string(b.Cid().Hash())
		e := g.inflight[k]
		if e == nil {
			e = &inflightBlock{}
			g.inflight[k] = e
		}
		if _, again := cl.stored[k]; !again {
			e.claims++
			// record says what the store found; a block it never
			// looked at is left as it is when the Add fails.
			cl.stored[k] = claimedBlock{c: b.Cid()}
		}
		e.last = cl.id
	}
}

// record notes how cl's first store of a block found it.
func (cl *addClaim) record(c cid.Cid, created bool, prev time.Time) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	k := string(c.Hash())
	if cl.stored[k].recorded {
		// A repeated block of the same object: the first store tells
		// what the Add found.
		return
	}
	cl.stored[k] = claimedBlock{c: c, created: created, prev: prev, recorded: true}
}

// endAdd stops tracking cl. When the Add failed, each block it was the
// last to store and no other running Add stored goes back to the age it
// had before (refreshed blocks) or becomes collectable at once (blocks
// it wrote). A block that a kept object reaches stays whatever its age,
// so this never loses a block a committed release needs; one that an
// Add which returned stored after this one keeps that Add's age.
func (g *gcBlockstore) endAdd(cl *addClaim, failed bool) {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for k, cb := range cl.stored {
		e := g.inflight[k]
		if e == nil {
			continue
		}
		e.claims--
		mine := e.last == cl.id
		if mine {
			e.last = 0
		}
		if e.claims > 0 {
			// Another running Add stored it: it stays in flight.
			continue
		}
		delete(g.inflight, k)
		if !failed || !mine || !cb.recorded {
			continue
		}
		at := collectable
		if !cb.created {
			at = cb.prev
		}
		// Best effort: a block that is gone needs nothing, and one whose
		// age cannot be set back is only kept for the grace period.
		_ = os.Chtimes(g.blockPath(cb.c), at, at)
	}
	cl.stored = nil
}

// claimed reports whether a running Add stored the block (mu held).
func (g *gcBlockstore) claimed(c cid.Cid) bool {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	return g.inflight[string(c.Hash())] != nil
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

// GC removes every block not reachable from keep (roots of objects
// still referenced) and older than opts.Grace, and every cache copy
// (dir-cache/<cid>, with its digest <cid>.sha256) whose CID is not in
// keep. Reachability walks only blocks present locally (missing blocks
// are fine: replication may be incomplete). It is safe against
// concurrent Add: it never deletes a block written within Grace or
// stored by an Add still running. The blocks a failed Add wrote are
// older than any Grace (see endAdd).
//
// Blocks are compared by multihash, so a block shared by a kept and a
// dropped object stays. A kept internal node that is present but does
// not decode makes GC fail with ErrCorrupt before it deletes anything:
// its children cannot be told apart from garbage (DeleteBlock it, or
// let the repairing store fetch it again). Stale temporary files of
// cache copies (older than Grace) are removed too.
func (s *Store) GC(ctx context.Context, keep []cid.Cid, opts GCOptions) (GCResult, error) {
	g := s.gbs
	g.gcMu.Lock()
	defer g.gcMu.Unlock()
	var res GCResult

	// Mark: every locally present block reachable from keep. Blocks are
	// read without verification: following the links of a damaged node
	// can only keep more.
	marked := make(map[string]struct{})
	roots := make(map[cid.Cid]struct{}, len(keep))
	stack := make([]cid.Cid, 0, len(keep))
	for _, c := range keep {
		if !c.Defined() {
			return res, errors.New("content: gc: undefined CID in keep")
		}
		roots[cid.NewCidV1(c.Type(), c.Hash())] = struct{}{}
		stack = append(stack, c)
	}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := string(c.Hash())
		if _, ok := marked[k]; ok {
			continue
		}
		if c.Type() != cid.DagProtobuf {
			marked[k] = struct{}{}
			continue
		}
		blk, err := g.Blockstore.Get(ctx, c)
		if ipld.IsNotFound(err) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("content: gc: read %s: %w", c, err)
		}
		marked[k] = struct{}{}
		nd, err := merkledag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return res, fmt.Errorf("%w: gc: kept node %s does not decode: %v", ErrCorrupt, c, err)
		}
		for _, l := range nd.Links() {
			stack = append(stack, l.Cid)
		}
	}

	// Sweep candidates: stored blocks not marked. The listing finishes
	// before anything is deleted.
	var cands []cid.Cid
	err := g.allKeys(ctx, func(c cid.Cid) {
		if _, ok := marked[string(c.Hash())]; ok {
			res.BlocksKept++
			return
		}
		cands = append(cands, c)
	})
	if err != nil {
		return res, err
	}
	for start := 0; start < len(cands); start += gcSweepBatch {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := s.sweep(ctx, cands[start:min(start+gcSweepBatch, len(cands))], opts.Grace, &res); err != nil {
			return res, err
		}
	}

	if err := s.gcCache(roots, opts.Grace, &res); err != nil {
		return res, err
	}
	return res, nil
}

// sweep deletes the candidates older than grace. The age is checked with
// the write lock held, so a concurrent store of the same block either
// refreshed it before (and it stays) or finds it gone (and writes it).
func (s *Store) sweep(ctx context.Context, cands []cid.Cid, grace time.Duration, res *GCResult) error {
	g := s.gbs
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, c := range cands {
		info, err := os.Stat(g.blockPath(c))
		if errors.Is(err, fs.ErrNotExist) {
			// Deleted meanwhile, or the flatfs layout is not what
			// blockPath assumes: then ages cannot be read, so stop.
			if ok, herr := g.Blockstore.Has(ctx, c); herr == nil && ok {
				return fmt.Errorf("content: gc: block %s is stored but not at %s", c, g.blockPath(c))
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("content: gc: %w", err)
		}
		if now.Sub(info.ModTime()) < grace || g.claimed(c) {
			res.BlocksKept++
			continue
		}
		if err := g.Blockstore.DeleteBlock(ctx, c); err != nil {
			return fmt.Errorf("content: gc: delete %s: %w", c, err)
		}
		res.BlocksRemoved++
		res.BytesFreed += info.Size()
	}
	return nil
}

// gcCache removes cache copies of objects not in keep (by CIDv1) and
// temporary files older than grace left by interrupted assemblies.
// Files whose names are not CIDs are left alone.
func (s *Store) gcCache(keep map[cid.Cid]struct{}, grace time.Duration, res *GCResult) error {
	entries, err := os.ReadDir(s.cacheDir)
	if err != nil {
		return fmt.Errorf("content: gc: list cache: %w", err)
	}
	now := s.gbs.now()
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		name := e.Name()
		tmp := strings.HasPrefix(name, ".tmp-")
		object, digest := strings.CutSuffix(name, digestSuffix)
		if !tmp {
			c, err := cid.Decode(object)
			if err != nil {
				continue
			}
			if _, ok := keep[cid.NewCidV1(c.Type(), c.Hash())]; ok {
				continue
			}
			s.verified.Delete(object)
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("content: gc: cache: %w", err)
		}
		if tmp && now.Sub(info.ModTime()) < grace {
			continue
		}
		if err := os.Remove(filepath.Join(s.cacheDir, name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("content: gc: cache: %w", err)
		}
		res.BytesFreed += info.Size()
		if !tmp && !digest {
			res.CacheFilesRemoved++
		}
	}
	return nil
}

// DiskUsage returns bytes used by blocks plus cache copies. The block
// part is flatfs's running total (kept up to date on every write and
// delete, persisted across restarts; it also counts flatfs's own small
// files); the cache part sums the files in the cache directory.
func (s *Store) DiskUsage() (int64, error) {
	du, err := s.ds.DiskUsage(context.Background())
	if err != nil {
		return 0, fmt.Errorf("content: disk usage: %w", err)
	}
	total := int64(du)
	entries, err := os.ReadDir(s.cacheDir)
	if err != nil {
		return 0, fmt.Errorf("content: disk usage: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("content: disk usage: %w", err)
		}
		total += info.Size()
	}
	return total, nil
}

// DeleteBlock removes one block (used to drop a block that failed CID
// verification so it can be fetched again); also removes any cache copy
// named by c. Blocks are stored by multihash, so this removes the block
// whatever c's codec. Deleting a block that is not stored is not an
// error.
func (s *Store) DeleteBlock(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return errors.New("content: delete block: undefined CID")
	}
	if err := s.gbs.Blockstore.DeleteBlock(ctx, c); err != nil {
		return fmt.Errorf("content: delete block %s: %w", c, err)
	}
	names := []string{c.String()}
	if v1 := cid.NewCidV1(c.Type(), c.Hash()).String(); v1 != names[0] {
		names = append(names, v1)
	}
	for _, n := range names {
		s.verified.Delete(n)
		for _, p := range []string{n, n + digestSuffix} {
			if err := os.Remove(filepath.Join(s.cacheDir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("content: delete cache copy of %s: %w", c, err)
			}
		}
	}
	return nil
}
