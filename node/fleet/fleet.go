package fleet

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// Config configures a Fleet.
type Config struct {
	// Node is this node's id (its libp2p peer id).
	Node string
	// State returns the current local state.
	State func() *state.State
	// Apply proposes a command (forwarded to the leader).
	Apply func(ctx context.Context, cmd consensus.Command) (any, error)
	// Interval between reports; 0 means 2 s.
	Interval time.Duration
	Log      *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

type releaseKey struct{ app, version string }

// pendingCounts are counts not yet confirmed in the replicated state.
type pendingCounts struct {
	// fresh were counted since the last report was sent.
	fresh state.Counters
	// sent were in the last report, whose sequence number is sentSeq;
	// they are dropped once the state holds that report.
	sent    state.Counters
	sentSeq uint64
}

// Fleet counts device outcomes on this node and reports them.
type Fleet struct {
	cfg Config

	mu      sync.Mutex
	pending map[releaseKey]*pendingCounts
	lastSeq uint64
	// devices are the devices this node answered each release, with
	// what they counted; unverified counts what others reported.
	devices    map[releaseKey]*deviceSet
	unverified map[releaseKey]*Unverified
	// seed keys the device hash: random per process, so device ids
	// cannot be chosen to collide with a real device's.
	seed maphash.Seed

	kick chan struct{}
}

// New returns a Fleet; it does no I/O. Run reports.
func New(cfg Config) *Fleet {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Fleet{cfg: cfg, pending: map[releaseKey]*pendingCounts{}, kick: make(chan struct{}, 1),
		devices: map[releaseKey]*deviceSet{}, unverified: map[releaseKey]*Unverified{}, seed: maphash.MakeSeed()}
}

// known reports whether version is a release of app in the local state;
// only releases are counted, so the counters stay bounded against
// whatever devices report.
func (f *Fleet) known(app, version string) bool {
	a := f.cfg.State().App(app)
	return a != nil && a.Releases[version] != nil
}

// CountCheck records an update check of a device for app: it remembers
// the device as one that checked in for the app on this node and, when
// the check was answered with a release (version not ""), counts the
// check and remembers the device for that release. The caller resolved
// the release on the current state, so it is not looked up again here;
// should it be deleted meanwhile, Report drops it.
func (f *Fleet) CountCheck(app, version, device string) {
	h := f.hash(device)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remember(releaseKey{app: app}, h)
	if version == "" {
		return
	}
	f.entry(app, version).fresh.Offered++
	f.remember(releaseKey{app, version}, h)
}

// remember adds a device to a release's set (version "": the app's);
// f.mu is held.
func (f *Fleet) remember(k releaseKey, h uint64) {
	set := f.devices[k]
	if set == nil {
		set = newDeviceSet()
		f.devices[k] = set
	}
	set.add(h)
}

// hash is the device's keyed 64-bit hash; ids are compared without
// case, as cohorts do.
func (f *Fleet) hash(device string) uint64 {
	return maphash.String(f.seed, strings.ToLower(device))
}

// CountEvent judges a device stats event (state.JudgeEvent) and counts
// it if it is about a release of the app and its device checked in for
// that release on this node: download_complete, set, and failures, each
// once per device. File-level failures name "version:file"; the file
// part is dropped. Events of other devices are counted apart, as
// unverified (Unverified), and never reach the cluster's counters.
func (f *Fleet) CountEvent(app, version, action, device string) state.EventVerdict {
	if i := strings.IndexByte(version, ':'); i >= 0 {
		version = version[:i]
	}
	h := f.hash(device)
	if !f.known(app, version) {
		// About no release (builtin, a native version): nothing to
		// count, but kept with the others if the device checked in.
		f.mu.Lock()
		defer f.mu.Unlock()
		if set := f.devices[releaseKey{app: app}]; set != nil {
			if _, ok := set.get(h); ok {
				return state.VerdictNotCounted
			}
		}
		return state.VerdictUnverified
	}
	k := releaseKey{app, version}
	f.mu.Lock()
	defer f.mu.Unlock()
	var marks state.DeviceMarks
	set := f.devices[k]
	seen := false
	if set != nil {
		marks, seen = set.get(h)
	}
	v, next := state.JudgeEvent(seen, marks, action)
	switch v {
	case state.VerdictCounted:
		set.mark(h, next)
		countAction(&f.entry(app, version).fresh, action)
	case state.VerdictUnverified, state.VerdictDuplicate:
		f.unverifiedEntry(k).count(v, action)
	}
	return v
}

// countAction adds one event of a counted action to c.
func countAction(c *state.Counters, action string) {
	switch state.OutcomeMark(action) {
	case state.MarkInstall:
		c.Installs++
	case state.MarkDownload:
		c.Downloads++
	case state.MarkFailure:
		if c.Failures == nil {
			c.Failures = map[string]int64{}
		}
		if _, ok := c.Failures[action]; !ok && len(c.Failures) >= state.MaxFailureKinds {
			action = state.OtherFailure
		}
		c.Failures[action]++
	}
}

// Unverified are the events of one release this node did not count
// because of their device, since it started: kept on this node only,
// never in the halt decision.
type Unverified struct {
	// Installs, Failures and Downloads come from devices that did not
	// check in for the release on this node.
	Installs, Failures, Downloads int64
	// Duplicates repeat an outcome their device already counted.
	Duplicates int64
}

func (u *Unverified) count(v state.EventVerdict, action string) {
	if v == state.VerdictDuplicate {
		u.Duplicates++
		return
	}
	switch state.OutcomeMark(action) {
	case state.MarkInstall:
		u.Installs++
	case state.MarkDownload:
		u.Downloads++
	case state.MarkFailure:
		u.Failures++
	}
}

// unverifiedEntry returns the unverified counts of a release; f.mu is
// held.
func (f *Fleet) unverifiedEntry(k releaseKey) *Unverified {
	u := f.unverified[k]
	if u == nil {
		u = &Unverified{}
		f.unverified[k] = u
	}
	return u
}

// UnverifiedCounts returns what this node did not count for a release
// (see Unverified) and how many devices checked in for it here.
func (f *Fleet) UnverifiedCounts(app, version string) (Unverified, int) {
	k := releaseKey{app, version}
	f.mu.Lock()
	defer f.mu.Unlock()
	var u Unverified
	if p := f.unverified[k]; p != nil {
		u = *p
	}
	n := 0
	if s := f.devices[k]; s != nil {
		n = s.len()
	}
	return u, n
}

// entry returns the pending counts of a release; f.mu is held.
func (f *Fleet) entry(app, version string) *pendingCounts {
	k := releaseKey{app, version}
	p := f.pending[k]
	if p == nil {
		p = &pendingCounts{}
		f.pending[k] = p
	}
	return p
}

// Kick asks Run to report now rather than at the next tick.
func (f *Fleet) Kick() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run reports every interval until ctx ends. It does not make a last
// report: call Report after Run returned for one.
func (f *Fleet) Run(ctx context.Context) error {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-f.kick:
		}
		if err := f.Report(ctx); err != nil && ctx.Err() == nil {
			f.cfg.Log.Debug("stats report failed; retrying at the next interval", "err", err)
		}
	}
}

// Report proposes this node's counters for every release with counts not
// yet in the replicated state. It returns nil when there is nothing to
// report.
func (f *Fleet) Report(ctx context.Context) error {
	st := f.cfg.State()
	if !st.ClusterInfo().HasFeature(f.cfg.Node, state.FeatureStatsHistory) {
		// An older leader refuses the announcement (it cannot decode
		// it): the counters still go out, as StatsReport, and the
		// announcement is tried again at the next report.
		if err := f.announce(ctx); err != nil {
			f.cfg.Log.Debug("announcing the stats history feature failed", "err", err)
		}
		st = f.cfg.State()
	}
	timed := st.AllHaveFeature(f.cfg.Node, state.FeatureStatsHistory)
	f.mu.Lock()
	now := f.cfg.Now()
	seq := uint64(now.UnixNano())
	if seq <= f.lastSeq {
		seq = f.lastSeq + 1
	}
	var entries []state.ReleaseCounters
	for k, p := range f.pending {
		a := st.App(k.app)
		if a == nil || a.Releases[k.version] == nil {
			delete(f.pending, k) // release deleted
			continue
		}
		stored := a.Stats[k.version][f.cfg.Node]
		if p.sentSeq != 0 && stored.Seq >= p.sentSeq {
			p.sent, p.sentSeq = state.Counters{}, 0 // the last report landed
		}
		if isZero(p.fresh) && isZero(p.sent) {
			delete(f.pending, k)
			continue
		}
		// The new total is what the state holds plus everything not yet
		// in it. Should the previous report still land after this one
		// was built, this one carries its counts too and, being newer,
		// replaces it.
		p.sent.Add(p.fresh) // Add makes fresh maps: nothing is shared
		p.fresh = state.Counters{}
		p.sentSeq = seq
		total := stored
		total.Add(p.sent)
		total.Seq, total.At = seq, now.UnixMilli()
		entries = append(entries, state.ReleaseCounters{App: k.app, Version: k.version, Counters: total})
	}
	if len(entries) > 0 {
		f.lastSeq = seq
	}
	f.forgetDeleted(st)
	f.mu.Unlock()
	if len(entries) == 0 {
		return nil
	}
	// At places the counts in the cluster's hourly history: the FSM
	// adds each entry's growth over the stored counters to the bucket of
	// this time, on every node alike. Until every node has announced
	// that it applies StatsReportAt (a rolling upgrade), the older
	// command keeps the counters going without history.
	var cmd consensus.Command = consensus.StatsReport{Node: f.cfg.Node, Releases: entries}
	if timed {
		cmd = consensus.StatsReportAt{Node: f.cfg.Node, At: now.UnixMilli(), Releases: entries}
	}
	_, err := f.cfg.Apply(ctx, cmd)
	if err != nil {
		return errors.Join(errors.New("node: stats report"), err)
	}
	return nil
}

// announce tells the cluster that this node's build applies
// StatsReportAt (a NodeFeatures entry, which older builds skip).
func (f *Fleet) announce(ctx context.Context) error {
	_, err := f.cfg.Apply(ctx, consensus.NodeFeatures{Node: f.cfg.Node, Features: []string{state.FeatureStatsHistory}})
	if err != nil {
		return errors.Join(errors.New("node: announce features"), err)
	}
	return nil
}

// forgetDeleted drops the devices and unverified counts of releases
// that are gone; f.mu is held.
func (f *Fleet) forgetDeleted(st *state.State) {
	gone := func(k releaseKey) bool {
		a := st.App(k.app)
		return a == nil || k.version != "" && a.Releases[k.version] == nil
	}
	for k := range f.devices {
		if gone(k) {
			delete(f.devices, k)
		}
	}
	for k := range f.unverified {
		if gone(k) {
			delete(f.unverified, k)
		}
	}
}

func isZero(c state.Counters) bool {
	return c.Offered == 0 && c.Downloads == 0 && c.Installs == 0 && len(c.Failures) == 0
}
