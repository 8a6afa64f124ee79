package consensus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

// A node that restarts must answer devices from its last state at once,
// with or without a leader. hashicorp/raft restores the newest snapshot
// when it starts but applies the log entries after it only once a
// leader tells it they are committed, which never happens while the
// cluster has no quorum. So the node keeps a durable mark: the index of
// the last entry its FSM applied (an applied entry is committed) and the
// last time it knew a leader. On start, Open replays the local log up to
// that mark into the FSM itself, before raft has a leader; raft later
// delivers the same entries again and the FSM skips them (FSM.Apply).

// markKey is the stable-store key of the applied mark.
var markKey = []byte("mirrord_applied_mark")

// appliedMark is what the node persists about its progress.
type appliedMark struct {
	// Index is the last command entry the FSM applied.
	Index uint64 `json:"index"`
	// Contact is when (Unix ms) this node last knew a leader (itself or
	// another): the state it holds was current at least until then.
	Contact int64 `json:"contact"`
}

func readMark(st raft.StableStore) (appliedMark, error) {
	var m appliedMark
	b, err := st.Get(markKey)
	if err != nil {
		// raft-wal and the in-memory store answer a missing key with
		// an error ("not found"), which is the state of a node that
		// never ran this code.
		if strings.Contains(err.Error(), "not found") {
			return m, nil
		}
		return m, fmt.Errorf("consensus: read applied mark: %w", err)
	}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return appliedMark{}, fmt.Errorf("consensus: applied mark %q: %w", b, err)
	}
	return m, nil
}

func writeMark(st raft.StableStore, m appliedMark) error {
	b, _ := json.Marshal(m)
	if err := st.Set(markKey, b); err != nil {
		return fmt.Errorf("consensus: write applied mark: %w", err)
	}
	return nil
}

// markInterval is how often the mark's contact time is refreshed while
// a leader is known and nothing is applied; it bounds how much older the
// staleness a restarted node reports can be than the truth.
const markInterval = 10 * time.Second

// runMark persists the applied mark after every applied entry (writes
// coalesce: one fsync covers every entry applied while the previous one
// ran) and refreshes its contact time while a leader is known. It runs
// until ctx ends, then writes a last mark.
func (n *Node) runMark(ctx context.Context, ch <-chan uint64) {
	defer close(n.markDone)
	t := time.NewTicker(markInterval)
	defer t.Stop()
	last := n.mark
	flush := func() {
		m := appliedMark{Index: n.fsm.State().Index, Contact: n.leaderContact().UnixMilli()}
		if m == last {
			return
		}
		if err := writeMark(n.stable, m); err != nil {
			n.logger.Warn("cannot persist the applied mark; after a "+
				"restart without a leader this node may serve an older "+
				"state", "error", err)
			n.durable.fail()
			return
		}
		last = m
		n.durable.set(m.Index)
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return
		case <-ch:
		case <-t.C:
		}
		flush()
	}
}

// durableMark is the index of the last mark written, with a way to
// wait for it.
type durableMark struct {
	mu     sync.Mutex
	index  uint64
	failed bool          // the last write failed: nobody should wait
	ch     chan struct{} // closed and replaced on every change
}

func newDurableMark(index uint64) *durableMark {
	return &durableMark{index: index, ch: make(chan struct{})}
}

func (d *durableMark) set(index uint64) {
	d.mu.Lock()
	d.index, d.failed = index, false
	close(d.ch)
	d.ch = make(chan struct{})
	d.mu.Unlock()
}

func (d *durableMark) fail() {
	d.mu.Lock()
	d.failed = true
	close(d.ch)
	d.ch = make(chan struct{})
	d.mu.Unlock()
}

// wait blocks until the mark is at least index, the mark cannot be
// written, or ctx ends.
func (d *durableMark) wait(ctx context.Context, index uint64) {
	for {
		d.mu.Lock()
		done, ch := d.index >= index || d.failed, d.ch
		d.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

// WaitDurable waits until this node would come back with a state at
// least at index after a crash, even without a leader: its applied mark
// reached index. It gives up (silently) when the mark cannot be written
// or ctx ends; the write itself is committed either way.
func (n *Node) WaitDurable(ctx context.Context, index uint64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n.durable.wait(ctx, index)
}

// leaderContact returns the last time this node knew a leader: now when
// it knows one, else the latest contact seen since start or persisted.
func (n *Node) leaderContact() time.Time {
	if n.raft != nil {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			now := time.Now()
			n.contact.Store(now.UnixMilli())
			return now
		}
	}
	ms := n.contact.Load()
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// snapshotCheck is what checkSnapshots found.
type snapshotCheck struct {
	// index of the snapshot raft will restore (0: none).
	index uint64
	// state decoded from it, handed to FSM.Restore.
	state *state.State
	// bad snapshots moved aside, with why.
	bad []string
}

// checkSnapshots reads the snapshots of the file store in dir, newest
// first, until one passes raft's CRC check and decodes. Unusable newer
// ones are moved to dir/snapshots-bad/ (kept for inspection, never
// deleted) so that raft restores the good one. It fails, changing
// nothing, when the log does not reach back to the snapshot it would
// fall back to: raft would then panic on the first entry it applies.
func checkSnapshots(snaps raft.SnapshotStore, logs raft.LogStore, dir string) (snapshotCheck, error) {
	var sc snapshotCheck
	metas, err := snaps.List()
	if err != nil {
		return sc, fmt.Errorf("consensus: list snapshots: %w", err)
	}
	var bad []*raft.SnapshotMeta
	var why []string
	for _, m := range metas {
		s, err := readStoredSnapshot(snaps, m.ID)
		if err == nil {
			sc.index, sc.state = m.Index, s
			break
		}
		bad = append(bad, m)
		why = append(why, fmt.Sprintf("snapshot %s (index %d): %v", m.ID, m.Index, err))
	}
	if len(bad) == 0 {
		return sc, nil
	}
	first, err := logs.FirstIndex()
	if err != nil {
		return sc, fmt.Errorf("consensus: read log: %w", err)
	}
	if first > sc.index+1 {
		from := "no usable older snapshot"
		if sc.state != nil {
			from = fmt.Sprintf("the newest usable snapshot is at index %d", sc.index)
		}
		return sc, fmt.Errorf("consensus: %s; %s and the raft log only starts at index %d, "+
			"so this node cannot rebuild its state (nothing was changed on disk). "+
			"If other members are healthy: run `mirrord cluster remove NODE_ID` on one of them, "+
			"move %s aside and start this node again with --join; "+
			"if this was the only copy, restore %s from a backup",
			strings.Join(why, "; "), from, first, dir, dir)
	}
	moved := filepath.Join(dir, "snapshots-bad")
	if err := os.MkdirAll(moved, 0o700); err != nil {
		return sc, fmt.Errorf("consensus: %w", err)
	}
	for i, m := range bad {
		if err := os.Rename(filepath.Join(dir, "snapshots", m.ID), filepath.Join(moved, m.ID)); err != nil {
			return sc, fmt.Errorf("consensus: move unusable snapshot aside: %w", err)
		}
		sc.bad = append(sc.bad, why[i]+"; moved to "+filepath.Join(moved, m.ID))
	}
	return sc, nil
}

// readStoredSnapshot opens (raft checks the CRC) and decodes one stored
// snapshot.
func readStoredSnapshot(snaps raft.SnapshotStore, id string) (*state.State, error) {
	_, rc, err := snaps.Open(id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return ReadSnapshot(rc)
}

// replay applies the local log's entries after the restored state up to
// upto, which are known to be committed, and returns how many it read.
func (n *Node) replay(logs raft.LogStore, snapIndex, upto uint64) (int, error) {
	from := max(n.fsm.State().Index, snapIndex) + 1
	if first, err := logs.FirstIndex(); err != nil {
		return 0, fmt.Errorf("consensus: replay: %w", err)
	} else if first > from {
		return 0, fmt.Errorf("consensus: replay: the log starts at %d, after the state's index %d", first, from-1)
	}
	count := 0
	for i := from; i <= upto; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return count, fmt.Errorf("consensus: replay: entry %d is missing from the log", i)
			}
			return count, fmt.Errorf("consensus: replay: entry %d: %w", i, err)
		}
		n.fsm.Apply(&l)
		count++
	}
	return count, nil
}
