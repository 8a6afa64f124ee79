package state

import (
	"sort"
	"strings"
)

// MaxFailureKinds bounds the distinct failure actions kept per release
// and node; further kinds are added to OtherFailure. Actions come from
// devices, which are not authenticated.
const MaxFailureKinds = 64

// OtherFailure collects failure actions beyond MaxFailureKinds.
const OtherFailure = "other_fail"

// Counters are one node's cumulative device counts for one release. A
// node reports its whole counters for the releases that changed, so a
// report that is retried or replayed changes nothing; Seq orders the
// reports of one node and an older one never replaces a newer one.
type Counters struct {
	Seq uint64 `json:"seq"`
	// Offered counts update checks this node answered with the release.
	Offered int64 `json:"offered,omitempty"`
	// Downloads counts download_complete events.
	Downloads int64 `json:"downloads,omitempty"`
	// Installs counts "set" events: the release was installed.
	Installs int64 `json:"installs,omitempty"`
	// Failures counts failure events by action.
	Failures map[string]int64 `json:"failures,omitempty"`
	// At is the node's clock at the report (unix ms).
	At int64 `json:"at"`
}

// FailureTotal sums Failures.
func (c Counters) FailureTotal() int64 {
	var n int64
	for _, v := range c.Failures {
		n += v
	}
	return n
}

// Add adds o's counts to c (Seq and At are left alone). c.Failures is
// replaced by a fresh map, so c may share the old one.
func (c *Counters) Add(o Counters) {
	c.Offered += o.Offered
	c.Downloads += o.Downloads
	c.Installs += o.Installs
	if len(o.Failures) == 0 {
		return
	}
	f := make(map[string]int64, len(c.Failures)+len(o.Failures))
	for k, v := range c.Failures {
		f[k] = v
	}
	for k, v := range o.Failures {
		f[k] += v
	}
	c.Failures = f
}

// IsFailure reports whether a stats action counts as a failure for the
// halt policy: any "*_fail" action and app_launch_timeout (capgo-protocol
// section 6.3).
func IsFailure(action string) bool {
	return strings.HasSuffix(action, "_fail") || action == "app_launch_timeout"
}

// ReleaseCounters are a node's counters for one release of an app.
type ReleaseCounters struct {
	App      string   `json:"app"`
	Version  string   `json:"version"`
	Counters Counters `json:"counters"`
}

// ReportStats returns a new state at index with node's counters stored.
// Entries for unknown apps or releases, with a Seq not newer than the
// stored one, or with negative counts are skipped; ok is false when
// nothing changed (the caller then keeps the old state). It is the
// StatsReport command, which keeps no history.
func (s *State) ReportStats(index uint64, node string, entries []ReleaseCounters) (*State, bool) {
	return s.ReportStatsAt(index, node, 0, entries)
}

// ReportStatsAt is ReportStats that also adds, when at (the proposer's
// clock, unix ms) is positive, each stored entry's delta over the node's
// previous counters to the release's history bucket of that time (see
// Bucket).
func (s *State) ReportStatsAt(index uint64, node string, at int64, entries []ReleaseCounters) (*State, bool) {
	if node == "" {
		return s, false
	}
	apps := map[string]*appTxn{}
	deltas := map[string]map[string]Bucket{} // app -> version -> delta
	for _, e := range entries {
		if !validCounters(e.Counters) {
			continue
		}
		t := apps[e.App]
		if t == nil {
			var err error
			if t, err = s.editApp(e.App); err != nil {
				continue
			}
		}
		if _, ok := t.app.Releases[e.Version]; !ok {
			continue
		}
		old, seen := t.app.Stats[e.Version][node]
		if seen && old.Seq >= e.Counters.Seq {
			continue
		}
		t.setCounters(e.Version, node, e.Counters)
		apps[e.App] = t
		if at > 0 {
			if deltas[e.App] == nil {
				deltas[e.App] = map[string]Bucket{}
			}
			d := deltas[e.App][e.Version]
			d.Add(counterDelta(old, e.Counters))
			deltas[e.App][e.Version] = d
		}
	}
	if len(apps) == 0 {
		return s, false
	}
	next := cloneMap(s.apps())
	for id, t := range apps {
		t.addHistory(at, deltas[id])
		next[id] = t.app
	}
	return &State{Index: index, Apps: next, Cluster: s.cluster()}, true
}

func validCounters(c Counters) bool {
	if c.Offered < 0 || c.Downloads < 0 || c.Installs < 0 || len(c.Failures) > MaxFailureKinds+1 {
		return false
	}
	for _, v := range c.Failures {
		if v < 0 {
			return false
		}
	}
	return true
}

// setCounters stores c for (version, node), copying the maps on the way.
func (t *appTxn) setCounters(version, node string, c Counters) {
	if !t.ownStats {
		t.app.Stats = cloneMap(t.app.Stats)
		t.ownStats = true
	}
	nodes := cloneMap(t.app.Stats[version])
	if len(c.Failures) == 0 {
		c.Failures = nil
	}
	nodes[node] = c
	t.app.Stats[version] = nodes
}

// dropStats forgets the counters of a deleted release.
func (t *appTxn) dropStats(version string) {
	if _, ok := t.app.Stats[version]; !ok {
		return
	}
	if !t.ownStats {
		t.app.Stats = cloneMap(t.app.Stats)
		t.ownStats = true
	}
	delete(t.app.Stats, version)
}

// ReleaseStats returns the counters of a release summed over nodes.
func (a *AppState) ReleaseStats(version string) Counters {
	var sum Counters
	for _, id := range sortedNodeIDs(a.Stats[version]) {
		sum.Add(a.Stats[version][id])
	}
	return sum
}

// Tally returns the cluster-wide installs and failures of a release.
func (a *AppState) Tally(version string) Tally {
	var t Tally
	if a == nil {
		return t
	}
	for _, c := range a.Stats[version] {
		t.Installs += c.Installs
		t.Failures += c.FailureTotal()
	}
	return t
}

// StatsNodes returns the ids of the nodes with counters for a release,
// sorted.
func (a *AppState) StatsNodes(version string) []string {
	return sortedNodeIDs(a.Stats[version])
}

func sortedNodeIDs(m map[string]Counters) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
