package consensus

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"mirrord/consensus/state"
)

// Fleet counters (record type 9), stats history (11 and 12) and the
// features nodes announced (13). A snapshot written before
// they existed has none and restores with an empty history.

// statsRecord is one node's counters for one release.
type statsRecord struct {
	App      string         `json:"app"`
	Version  string         `json:"version"`
	Node     string         `json:"node"`
	Counters state.Counters `json:"counters"`
}

// historyRecord is one release's hourly buckets, oldest first.
type historyRecord struct {
	App     string         `json:"app"`
	Version string         `json:"version"`
	Buckets []state.Bucket `json:"buckets"`
}

// historyAtRecord is the newest report time an app's history has seen.
type historyAtRecord struct {
	App string `json:"app"`
	At  int64  `json:"at"`
}

// writeHistory writes the history records of app a.
func (sw *snapshotWriter) writeHistory(a *state.AppState) {
	for _, v := range slices.Sorted(maps.Keys(a.History)) {
		sw.record(recordHistory, historyRecord{App: a.App.ID, Version: v, Buckets: a.History[v]})
	}
	if a.HistoryAt != 0 {
		sw.record(recordHistoryAt, historyAtRecord{App: a.App.ID, At: a.HistoryAt})
	}
}

// readHistory adds a release's buckets.
func (sr *snapshotReader) readHistory(payload []byte) error {
	var rec historyRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	a, err := sr.app(rec.App)
	if err != nil {
		return err
	}
	if a.Releases[rec.Version] == nil {
		return fmt.Errorf("history for unknown release %q", rec.Version)
	}
	if _, dup := a.History[rec.Version]; dup {
		return fmt.Errorf("duplicate history for %q", rec.Version)
	}
	if err := checkBuckets(rec.Buckets); err != nil {
		return fmt.Errorf("history of %q: %w", rec.Version, err)
	}
	if a.History == nil {
		a.History = map[string][]state.Bucket{}
	}
	a.History[rec.Version] = rec.Buckets
	return nil
}

// checkBuckets accepts what the FSM builds: at least one bucket, hours
// aligned and strictly increasing, counts not negative.
func checkBuckets(bs []state.Bucket) error {
	if len(bs) == 0 {
		return errors.New("no buckets")
	}
	for i, b := range bs {
		switch {
		case b.Hour < 0 || b.Hour != state.HourOf(b.Hour):
			return fmt.Errorf("bucket hour %d is not the start of an hour", b.Hour)
		case i > 0 && b.Hour <= bs[i-1].Hour:
			return fmt.Errorf("bucket hour %d out of order", b.Hour)
		case b.Offered < 0 || b.Downloads < 0 || b.Installs < 0 || b.Failures < 0:
			return fmt.Errorf("bucket %d has a negative count", b.Hour)
		}
	}
	return nil
}

// featuresRecord is the features a node announced.
type featuresRecord struct {
	Node     string   `json:"node"`
	Features []string `json:"features"`
}

// writeFeatures writes the features records of the cluster.
func (sw *snapshotWriter) writeFeatures(c *state.Cluster) {
	for _, id := range slices.Sorted(maps.Keys(c.Features)) {
		sw.record(recordFeatures, featuresRecord{Node: id, Features: c.Features[id]})
	}
}

// readFeatures adds a node's features.
func (sr *snapshotReader) readFeatures(payload []byte) error {
	var rec featuresRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	c := sr.clusterForWrite()
	if rec.Node == "" || !slices.IsSorted(rec.Features) {
		return errors.New("features record with an empty node or unsorted features")
	}
	if _, dup := c.Features[rec.Node]; dup {
		return fmt.Errorf("duplicate features of %q", rec.Node)
	}
	if c.Features == nil {
		c.Features = map[string][]string{}
	}
	c.Features[rec.Node] = rec.Features
	return nil
}

// readHistoryAt sets an app's newest history time.
func (sr *snapshotReader) readHistoryAt(payload []byte) error {
	var rec historyAtRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	a, err := sr.app(rec.App)
	if err != nil {
		return err
	}
	if rec.At <= 0 || a.HistoryAt != 0 {
		return fmt.Errorf("bad or duplicate history time for %q", rec.App)
	}
	a.HistoryAt = rec.At
	return nil
}

// readStats adds a fleet counters record.
func (sr *snapshotReader) readStats(payload []byte) error {
	var rec statsRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	a, err := sr.app(rec.App)
	if err != nil {
		return err
	}
	if a.Releases[rec.Version] == nil || rec.Node == "" {
		return fmt.Errorf("stats for unknown release %q or empty node", rec.Version)
	}
	if a.Stats == nil {
		a.Stats = map[string]map[string]state.Counters{}
	}
	if a.Stats[rec.Version] == nil {
		a.Stats[rec.Version] = map[string]state.Counters{}
	}
	if _, dup := a.Stats[rec.Version][rec.Node]; dup {
		return fmt.Errorf("duplicate stats for %q on %q", rec.Version, rec.Node)
	}
	if len(rec.Counters.Failures) == 0 {
		rec.Counters.Failures = nil
	}
	a.Stats[rec.Version][rec.Node] = rec.Counters
	return nil
}
