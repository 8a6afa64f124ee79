package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
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

// ReplicatorConfig configures a Replicator.
type ReplicatorConfig struct {
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
	cfg ReplicatorConfig
	log *slog.Logger

	mu      sync.Mutex
	objects map[string]*objectState // by root CID
	kick    chan struct{}
	gcNow   chan struct{} // CollectSoon

	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	cacheScrub atomic.Bool // a ScrubCache runs
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

// NewReplicator returns a replicator; Start runs it.
func NewReplicator(cfg ReplicatorConfig) *Replicator {
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
	ctx, cancel := context.WithCancel(context.Background())
	return &Replicator{cfg: cfg, log: cfg.Log, objects: map[string]*objectState{},
		kick: make(chan struct{}, 1), gcNow: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
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

// Start runs the replication loop until Close.
func (r *Replicator) Start() {
	r.wg.Add(1)
	go r.loop()
}

// Close stops replication and waits for running fetches to end.
func (r *Replicator) Close() error {
	r.cancel()
	r.wg.Wait()
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

func (r *Replicator) loop() {
	defer r.wg.Done()
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
			r.Scrub(r.ctx)
			r.scrubCache()
			nextScrub = now.Add(scrubEvery)
		}
		// Over the disk budget GC runs early, but at most once a minute.
		if gcAsked || (gcEvery > 0 && now.After(nextGC)) || (now.After(lastGC.Add(time.Minute)) && r.overBudget()) {
			gcAsked = false
			if _, err := r.GC(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Warn("block garbage collection failed", "err", err)
			}
			lastGC = time.Now()
			nextGC = lastGC.Add(max(gcEvery, time.Minute))
		}
		wake := r.schedule()
		timer.Reset(max(time.Until(wake), 10*time.Millisecond))
		select {
		case <-r.ctx.Done():
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
func (r *Replicator) schedule() time.Time {
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
				r.wg.Add(1)
				go r.fetch(o)
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

func (r *Replicator) fetch(o *objectState) {
	defer r.wg.Done()
	defer r.Kick()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Minute)
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
		if r.ctx.Err() != nil {
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
func (r *Replicator) scrubCache() {
	cs, ok := r.cfg.Store.(cacheScrubber)
	if !ok || !r.cacheScrub.CompareAndSwap(false, true) {
		return
	}
	r.wg.Go(func() {
		defer r.cacheScrub.Store(false)
		res, err := cs.ScrubCache(r.ctx, 0)
		if err != nil && r.ctx.Err() == nil {
			r.log.Warn("scrub of download copies failed", "err", err)
			return
		}
		r.log.Debug("scrubbed download copies", "checked", res.Checked, "removed", res.Removed, "bytes", res.Bytes)
	})
}

// GC removes blocks that no release references (keeping recent uploads
// for GCGrace).
func (r *Replicator) GC(ctx context.Context) (content.GCResult, error) {
	return r.Collect(ctx, -1)
}

// Collect is GC with another grace period; grace < 0 means GCGrace.
// Grace 0 also removes objects uploaded for a release not created yet
// (a publish running at that moment fails at its release step), not
// those of uploads still running.
func (r *Replicator) Collect(ctx context.Context, grace time.Duration) (content.GCResult, error) {
	if grace < 0 {
		grace = r.cfg.GCGrace
	}
	st := r.cfg.State.State()
	var keep []cid.Cid
	for _, app := range st.Apps {
		for _, rel := range app.Releases {
			for _, s := range rel.CIDs() {
				if c, err := cid.Decode(s); err == nil {
					keep = append(keep, c)
				}
			}
		}
	}
	res, err := r.cfg.Store.GC(ctx, keep, content.GCOptions{Grace: grace})
	if err != nil {
		return res, err
	}
	if res.BlocksRemoved > 0 || res.CacheFilesRemoved > 0 {
		r.log.Info("removed unreferenced blocks", "blocks", res.BlocksRemoved, "bytes", res.BytesFreed, "cache_files", res.CacheFilesRemoved)
	}
	if r.overBudget() {
		d := r.Disk()
		r.log.Warn("block store is over its disk budget or its file system below its free-space margin after GC: uploads are refused until releases are deleted or space is freed",
			"used", d.Used, "budget", d.Budget, "free", d.Free, "min_free", d.MinFree)
	}
	return res, nil
}

// overBudget reports whether the store is past its disk budget or its
// file system has less than the margin free.
func (r *Replicator) overBudget() bool {
	if r.cfg.DiskBudget > 0 {
		if used, err := r.cfg.Store.DiskUsage(); err == nil && used > r.cfg.DiskBudget {
			return true
		}
	}
	sp, err := r.cfg.Store.Space()
	return err == nil && sp.Free < sp.MinFree
}

// ErrOverBudget is returned by CheckBudget when the store is full.
var ErrOverBudget = errors.New("node: block store is over its disk budget")

// ErrLowSpace is returned by CheckBudget when storing would leave less
// than the free-space margin on the store's file system.
var ErrLowSpace = errors.New("node: too little free space on the block store's file system")

// CheckBudget returns ErrOverBudget if storing n more bytes would exceed
// the disk budget, and ErrLowSpace if it would leave less than the
// margin free on the file system (whether or not a budget is set). If
// usage or free space cannot be read it lets the store try.
func (r *Replicator) CheckBudget(n int64) error {
	if r.cfg.DiskBudget > 0 {
		used, err := r.cfg.Store.DiskUsage()
		if err == nil && used+n > r.cfg.DiskBudget {
			return fmt.Errorf("%w: %s used + %s new > budget %s: delete old releases and run `mirrord gc`, or raise replication.disk_budget",
				ErrOverBudget, iec(used), iec(n), iec(r.cfg.DiskBudget))
		}
	}
	what := "storing more"
	if n > 0 {
		what = "storing " + iec(n)
	}
	return r.checkFree(n, what)
}

// checkFree returns ErrLowSpace if storing n more bytes would leave less
// than the margin free; what names the store in the message.
func (r *Replicator) checkFree(n int64, what string) error {
	sp, err := r.cfg.Store.Space()
	if err != nil || sp.Free-n >= sp.MinFree {
		return nil
	}
	return fmt.Errorf("%w: %s free of %s, and %s would leave less than the %s kept free (replication.min_free) for the node's own logs: "+
		"free space on that disk, delete old releases and run `mirrord gc` (--grace 0 also drops uploads no release uses), "+
		"or lower replication.min_free", ErrLowSpace, iec(sp.Free), iec(sp.Size), what, iec(sp.MinFree))
}

// iec formats a byte count for people.
func iec(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for (f >= unit || f <= -unit) && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

// DiskStatus is the block store's use of its disk.
type DiskStatus struct {
	Used   int64 `json:"used_bytes"`             // blocks and cache copies
	Budget int64 `json:"budget_bytes,omitempty"` // replication.disk_budget; 0: none
	content.Space
	Error string `json:"error,omitempty"`
}

// Disk reports the block store's use of its disk.
func (r *Replicator) Disk() DiskStatus {
	d := DiskStatus{Budget: r.cfg.DiskBudget}
	var errs []error
	used, err := r.cfg.Store.DiskUsage()
	errs = append(errs, err)
	d.Used = used
	d.Space, err = r.cfg.Store.Space()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		d.Error = err.Error()
	}
	return d
}

// Progress reports, per release, the blocks held here and whether every
// eagerly replicated object is complete.
func (r *Replicator) Progress(ctx context.Context) []ReleaseProgress {
	st := r.cfg.State.State()
	var out []ReleaseProgress
	for _, id := range st.AppIDs() {
		app := st.Apps[id]
		for _, v := range app.ReleaseVersions() {
			rel := app.Releases[v]
			p := ReleaseProgress{App: id, Version: v, Ready: true}
			for _, s := range rel.CIDs() {
				c, err := cid.Decode(s)
				if err != nil {
					continue
				}
				held, known, err := r.cfg.Store.Count(ctx, c)
				if err != nil {
					p.Error = err.Error()
				}
				p.BlocksHeld += held
				p.BlocksKnown += known
			}
			r.mu.Lock()
			for _, s := range r.eagerRoots(rel) {
				o := r.objects[s]
				if o == nil || !o.done {
					p.Ready = false
				}
				if o != nil && o.lastErr != "" {
					p.Error = o.lastErr
				}
			}
			r.mu.Unlock()
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Ready reports whether every eagerly replicated object of app@version
// is complete here.
func (r *Replicator) Ready(app, version string) bool {
	a := r.cfg.State.State().App(app)
	if a == nil || a.Releases[version] == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.eagerRoots(a.Releases[version]) {
		if o := r.objects[s]; o == nil || !o.done {
			return false
		}
	}
	return true
}
