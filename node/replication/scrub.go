package replication

import (
	"context"

	"mirrord/content"
)

// Scrub re-reads every eagerly replicated object, checking each block
// against its CID. A corrupt block is dropped by the store (once it has
// a block exchange) and the object fetched again.
func (r *Replicator) Scrub(ctx context.Context) int {
	r.mu.Lock()
	roots := make([]*objectState, 0, len(r.objects))
	for _, o := range r.objects {
		if o.done {
			roots = append(roots, o)
		}
	}
	r.mu.Unlock()
	bad := 0
	for _, o := range roots {
		ok, err := r.cfg.Store.Verify(ctx, o.root)
		if ok && err == nil {
			continue
		}
		if ctx.Err() != nil {
			return bad
		}
		bad++
		r.log.Warn("scrub found a missing or corrupt block; fetching it again", "cid", o.root, "err", err)
		r.mu.Lock()
		o.done = false
		r.mu.Unlock()
	}
	if bad > 0 {
		r.Kick()
	}
	return bad
}

// cacheScrubber is a store that keeps assembled copies of objects for
// downloads (content.Store).
type cacheScrubber interface {
	ScrubCache(ctx context.Context, bytesPerSec int64) (content.CacheScrubResult, error)
}

// scrubCache re-hashes the store's download copies in the background:
// it is paced to bound its disk reads, so it may take long, and must
// not hold up replication.
func (r *Replicator) scrubCache(ctx context.Context) {
	cs, ok := r.cfg.Store.(cacheScrubber)
	if !ok || !r.cacheScrub.CompareAndSwap(false, true) {
		return
	}
	r.wg.Go(func() {
		defer r.cacheScrub.Store(false)
		res, err := cs.ScrubCache(ctx, 0)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("scrub of download copies failed", "err", err)
			return
		}
		r.log.Debug("scrubbed download copies", "checked", res.Checked, "removed", res.Removed, "bytes", res.Bytes)
	})
}
