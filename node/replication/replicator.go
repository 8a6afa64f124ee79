package replication

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/consensus/state"
	"mirrord/content"
)

// Zip replication policies.
const (
	// ZipsOnDemand: a release's zip is fetched by a node when a device
	// first downloads it there, if the release has a manifest (plugins
	// that support manifests fetch files, not the zip); zips of
	// releases without a manifest are replicated eagerly. This keeps
	// node-to-node deltas to the changed files: an encrypted zip is one
	// AES-CBC stream, so a change anywhere alters every later block.
	ZipsOnDemand = "on-demand"
	// ZipsEager replicates every zip to every node.
	ZipsEager = "eager"
)

// BlockStore is what replication needs of the block store.
type BlockStore interface {
	FetchWith(ctx context.Context, root cid.Cid, opt content.FetchOptions) (content.FetchStats, error)
	Complete(ctx context.Context, root cid.Cid) (bool, error)
	Verify(ctx context.Context, root cid.Cid) (bool, error)
	Count(ctx context.Context, root cid.Cid) (held, known int, err error)
	GC(ctx context.Context, keep []cid.Cid, opts content.GCOptions) (content.GCResult, error)
	DiskUsage() (int64, error)
	Space() (content.Space, error)
}

// StateSource is the replicated metadata replication follows.
type StateSource interface {
	State() *state.State
	Subscribe() (<-chan uint64, func())
}

// Config configures a Replicator.
type Config struct {
	Store BlockStore
	State StateSource
	// Zips is ZipsOnDemand (default) or ZipsEager.
	Zips string
	// Parallel is how many objects are fetched at once (default 8).
	Parallel int
	// Share, if set, gives this node's rank among the nodes and their
	// number, so that nodes fetching the same release at once first
	// fetch different parts of it (see content.FetchOptions).
	Share func() (rank, of int)
	// ScrubInterval is how often every eagerly replicated object is
	// re-read and checked against its CIDs (a corrupt block is dropped
	// and fetched again), and the store's download copies against
	// their digests; 0 means 6 hours, <0 never.
	ScrubInterval time.Duration
	// GCInterval is how often unreferenced blocks are removed; 0 means
	// 10 minutes, <0 never. GCGrace keeps blocks younger than that
	// (uploads waiting for their release): 0 means 1 hour.
	GCInterval time.Duration
	GCGrace    time.Duration
	// DiskBudget, when > 0, is the bytes the store should stay under;
	// exceeding it triggers a GC and a warning (and uploads are refused
	// by the admin API). Whether or not it is set, the store's file
	// system keeps content.Space.MinFree free: below it GC runs early,
	// uploads are refused and objects are not fetched.
	DiskBudget int64
	Log        *slog.Logger
}

// Replicator makes every committed release's blocks local: it watches
// the replicated state and fetches, over the store's block exchange,
// the objects each release references, retrying with backoff.
type Replicator struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	objects map[string]*objectState // by root CID
	kick    chan struct{}
	gcNow   chan struct{} // CollectSoon

	wg         sync.WaitGroup // fetches and cache scrubs started by Run
	cacheScrub atomic.Bool    // a ScrubCache runs
}

type objectState struct {
	root     cid.Cid
	done     bool
	running  bool
	failures int
	nextTry  time.Time
	lastErr  string
	fetched  content.FetchStats
	lastSeen uint64 // state index when last wanted
}

// New returns a replicator; it does no I/O. Run runs it.
func New(cfg Config) *Replicator {
	if cfg.Zips == "" {
		cfg.Zips = ZipsOnDemand
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	if cfg.ScrubInterval == 0 {
		cfg.ScrubInterval = 6 * time.Hour
	}
	if cfg.GCInterval == 0 {
		cfg.GCInterval = 10 * time.Minute
	}
	if cfg.GCGrace == 0 {
		cfg.GCGrace = time.Hour
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Replicator{cfg: cfg, log: cfg.Log, objects: map[string]*objectState{},
		kick: make(chan struct{}, 1), gcNow: make(chan struct{}, 1)}
}

// eagerRoots lists the objects of rel this node fetches without waiting
// for a device.
func (r *Replicator) eagerRoots(rel *state.Release) []string {
	var out []string
	if rel.ZipCID != "" && (r.cfg.Zips == ZipsEager || len(rel.Manifest) == 0) {
		out = append(out, rel.ZipCID)
	}
	for _, f := range rel.Manifest {
		out = append(out, f.CID)
	}
	return out
}

// Run fetches, scrubs and collects until ctx ends, then waits for the
// fetches it started to end.
func (r *Replicator) Run(ctx context.Context) error {
	defer r.wg.Wait()
	r.loop(ctx)
	return nil
}

// Kick makes the loop look at the state now.
func (r *Replicator) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// CollectSoon makes the loop run a GC now, whatever the interval: an
// upload failed, and the blocks it wrote (collectable at once, see
// content.Store.Add) should give their space back before the next one.
func (r *Replicator) CollectSoon() {
	select {
	case r.gcNow <- struct{}{}:
	default:
	}
}

func (r *Replicator) loop(ctx context.Context) {
	ch, unsub := r.cfg.State.Subscribe()
	defer unsub()
	scrubEvery, gcEvery := r.cfg.ScrubInterval, r.cfg.GCInterval
	nextScrub := time.Now().Add(max(scrubEvery, time.Minute))
	nextGC := time.Now().Add(time.Minute)
	var lastGC time.Time
	gcAsked := false
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		if scrubEvery > 0 && now.After(nextScrub) {
			r.Scrub(ctx)
			r.scrubCache(ctx)
			nextScrub = now.Add(scrubEvery)
		}
		// Over the disk budget GC runs early, but at most once a minute.
		if gcAsked || (gcEvery > 0 && now.After(nextGC)) || (now.After(lastGC.Add(time.Minute)) && r.overBudget()) {
			gcAsked = false
			if _, err := r.GC(ctx); err != nil && ctx.Err() == nil {
				r.log.Warn("block garbage collection failed", "err", err)
			}
			lastGC = time.Now()
			nextGC = lastGC.Add(max(gcEvery, time.Minute))
		}
		wake := r.schedule(ctx)
		timer.Reset(max(time.Until(wake), 10*time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-r.kick:
		case <-r.gcNow:
			gcAsked = true
		case <-timer.C:
		}
	}
}

// schedule starts fetches for wanted objects that are not done and not
// backing off, and returns when it wants to run next.
func (r *Replicator) schedule(ctx context.Context) time.Time {
	st := r.cfg.State.State()
	wake := time.Now().Add(30 * time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	running := 0
	for _, o := range r.objects {
		if o.running {
			running++
		}
	}
	for _, app := range st.Apps {
		for _, rel := range app.Releases {
			for _, s := range r.eagerRoots(rel) {
				o := r.objects[s]
				if o == nil {
					c, err := cid.Decode(s)
					if err != nil {
						continue
					}
					o = &objectState{root: c}
					r.objects[s] = o
				}
				o.lastSeen = st.Index
				if o.done || o.running {
					continue
				}
				if time.Now().Before(o.nextTry) {
					if o.nextTry.Before(wake) {
						wake = o.nextTry
					}
					continue
				}
				if running >= r.cfg.Parallel {
					continue
				}
				running++
				o.running = true
				r.wg.Go(func() { r.fetch(ctx, o) })
			}
		}
	}
	// Forget objects no release wants any more.
	for s, o := range r.objects {
		if o.lastSeen != st.Index && !o.running {
			delete(r.objects, s)
		}
	}
	return wake
}

func (r *Replicator) fetch(runCtx context.Context, o *objectState) {
	defer r.Kick()
	ctx, cancel := context.WithTimeout(runCtx, 10*time.Minute)
	defer cancel()
	ok, err := r.cfg.Store.Complete(ctx, o.root)
	var fs content.FetchStats
	if err == nil && !ok {
		// Fetching into the last free space would leave none for the
		// raft log and uploads; retry once GC or the operator made room.
		err = r.checkFree(0, "fetching more")
	}
	if err == nil && !ok {
		start := time.Now()
		opt := content.FetchOptions{Progress: func(p content.FetchStats) {
			r.mu.Lock()
			o.fetched = p
			r.mu.Unlock()
		}, Room: func(n int64) error {
			return r.checkFree(n, "fetching "+iec(n)+" more")
		}}
		if r.cfg.Share != nil {
			opt.Rank, opt.Of = r.cfg.Share()
		}
		fs, err = r.cfg.Store.FetchWith(ctx, o.root, opt)
		if err == nil {
			r.log.Debug("replicated object", "cid", o.root, "blocks", fs.Blocks, "fetched", fs.Fetched,
				"bytes", fs.Bytes, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o.running = false
	o.fetched = fs
	if err != nil {
		if runCtx.Err() != nil {
			return
		}
		o.failures++
		backoff := min(time.Second<<min(o.failures-1, 6), time.Minute)
		o.nextTry = time.Now().Add(backoff)
		o.lastErr = err.Error()
		r.log.Warn("replication of an object failed; will retry", "cid", o.root, "attempt", o.failures, "retry_in", backoff, "err", err)
		return
	}
	o.done, o.failures, o.lastErr = true, 0, ""
}
