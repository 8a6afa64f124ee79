package consensus

import (
	"errors"
	"fmt"

	"mirrord/consensus/state"
)

// Stats history records (types 11 and 12). A snapshot written before
// they existed has none and restores with an empty history.

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
	for _, v := range sortedKeys(a.History) {
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
