package state

import (
	"maps"
	"slices"
	"sort"
)

// Stats history: per release, the cluster-wide counts of each hour.
//
// The FSM derives it from StatsReportAt entries only, so every node
// holds the same buckets: a report carries its proposer's clock (At,
// unix ms), and each accepted entry adds its delta over the node's
// previous counters for that release to the bucket of the hour At
// falls in. Retention follows the newest At the app has seen (never a
// local clock): buckets older than HistoryRetention before the hour of
// that time are dropped. So a release holds at most MaxHistoryBuckets
// buckets, and an app that receives no reports keeps its last ones
// until a report comes (readers choose their window).
const (
	// HistoryBucketMillis is the width of a bucket: one hour.
	HistoryBucketMillis int64 = 3_600_000
	// HistoryRetention is how far back buckets are kept, in ms, counted
	// from the hour of the newest report time seen: eight days.
	HistoryRetention = 8 * 24 * HistoryBucketMillis
	// MaxHistoryBuckets bounds the buckets of one release.
	MaxHistoryBuckets = int(HistoryRetention/HistoryBucketMillis) + 1
)

// Bucket is one hour of a release's counts, summed over nodes.
type Bucket struct {
	// Hour is the start of the hour, unix ms (a multiple of
	// HistoryBucketMillis).
	Hour      int64 `json:"hour"`
	Offered   int64 `json:"offered,omitempty"`
	Downloads int64 `json:"downloads,omitempty"`
	Installs  int64 `json:"installs,omitempty"`
	Failures  int64 `json:"failures,omitempty"`
}

// IsZero reports whether the bucket counts nothing.
func (b Bucket) IsZero() bool {
	return b.Offered == 0 && b.Downloads == 0 && b.Installs == 0 && b.Failures == 0
}

// Add adds o's counts to b (Hour is left alone).
func (b *Bucket) Add(o Bucket) {
	b.Offered += o.Offered
	b.Downloads += o.Downloads
	b.Installs += o.Installs
	b.Failures += o.Failures
}

// HourOf returns the start of the bucket holding ms (unix ms, >= 0).
func HourOf(ms int64) int64 { return ms - ms%HistoryBucketMillis }

// historyCutoff is the oldest bucket hour kept when newest is the newest
// report time seen.
func historyCutoff(newest int64) int64 { return HourOf(newest) - HistoryRetention }

// counterDelta is what cur counts beyond prev, each field at least 0
// (counters only grow; a smaller value changes nothing).
func counterDelta(prev, cur Counters) Bucket {
	return Bucket{
		Offered:   max(0, cur.Offered-prev.Offered),
		Downloads: max(0, cur.Downloads-prev.Downloads),
		Installs:  max(0, cur.Installs-prev.Installs),
		Failures:  max(0, cur.FailureTotal()-prev.FailureTotal()),
	}
}

// addHistory records deltas (version -> counts) at time at, then drops
// buckets that fell out of retention. at <= 0 records nothing.
func (t *appTxn) addHistory(at int64, deltas map[string]Bucket) {
	if at <= 0 {
		return
	}
	prevCutoff := historyCutoff(t.app.HistoryAt)
	if at > t.app.HistoryAt {
		t.app.HistoryAt = at
	}
	cutoff := historyCutoff(t.app.HistoryAt)
	if cutoff > prevCutoff {
		t.pruneHistory(cutoff)
	}
	hour := HourOf(at)
	if hour < cutoff {
		return // older than what is kept
	}
	for _, v := range slices.Sorted(maps.Keys(deltas)) {
		d := deltas[v]
		if d.IsZero() {
			continue
		}
		d.Hour = hour
		t.history()[v] = withBucket(t.app.History[v], d)
	}
}

// withBucket returns a new slice: old with d added to its hour's bucket
// (inserted in order when missing). old is never written.
func withBucket(old []Bucket, d Bucket) []Bucket {
	i := sort.Search(len(old), func(i int) bool { return old[i].Hour >= d.Hour })
	if i < len(old) && old[i].Hour == d.Hour {
		out := slices.Clone(old)
		out[i].Add(d)
		return out
	}
	out := make([]Bucket, 0, len(old)+1)
	out = append(out, old[:i]...)
	out = append(out, d)
	return append(out, old[i:]...)
}

// pruneHistory drops the buckets before cutoff from every release.
func (t *appTxn) pruneHistory(cutoff int64) {
	for _, v := range slices.Sorted(maps.Keys(t.app.History)) {
		b := t.app.History[v]
		i := sort.Search(len(b), func(i int) bool { return b[i].Hour >= cutoff })
		switch {
		case i == 0:
		case i == len(b):
			delete(t.history(), v)
		default:
			t.history()[v] = slices.Clone(b[i:])
		}
	}
	if len(t.app.History) == 0 {
		t.app.History = nil
	}
}

// dropHistory forgets the buckets of a deleted release.
func (t *appTxn) dropHistory(version string) {
	if _, ok := t.app.History[version]; !ok {
		return
	}
	delete(t.history(), version)
	if len(t.app.History) == 0 {
		t.app.History = nil
	}
}

func (t *appTxn) history() map[string][]Bucket {
	if !t.ownHistory || t.app.History == nil {
		t.app.History = cloneMap(t.app.History)
		t.ownHistory = true
	}
	return t.app.History
}

// HistorySince returns the buckets of a release from hour from (unix
// ms) on, oldest first. The slice is shared with the state: read only.
func (a *AppState) HistorySince(version string, from int64) []Bucket {
	if a == nil {
		return nil
	}
	b := a.History[version]
	i := sort.Search(len(b), func(i int) bool { return b[i].Hour >= HourOf(max(from, 0)) })
	return b[i:]
}
