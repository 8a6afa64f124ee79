package content

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
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
			s.forget(object)
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
		s.forget(n)
		for _, p := range []string{n, n + digestSuffix} {
			if err := os.Remove(filepath.Join(s.cacheDir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("content: delete cache copy of %s: %w", c, err)
			}
		}
	}
	return nil
}
