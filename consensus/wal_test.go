package consensus

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// TestWALTailTruncationReopens pins a raft-wal bug that the fault
// harness hit (tools/faults, a follower restarted after the leader had
// replaced the end of its log): raft-wal v0.4.0 marked a segment sealed
// when a tail truncation went back into it without writing its index
// block, so the node panicked on its next start with "sealed segment
// has no index block". v0.4.1 seals it properly.
func TestWALTailTruncationReopens(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.WALSegmentSize = 64 << 10
	payload := bytes.Repeat([]byte("x"), 4<<10)
	open := func() (raft.LogStore, func()) {
		var st Stores
		closers, err := openDiskStores(cfg, newHCLogger(cfg.Logger), &st)
		if err != nil {
			t.Fatal(err)
		}
		return st.Log, func() {
			for _, c := range closers {
				c.Close()
			}
		}
	}
	store := func(logs raft.LogStore, from, to, term uint64) {
		t.Helper()
		var batch []*raft.Log
		for i := from; i <= to; i++ {
			batch = append(batch, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: payload})
		}
		for len(batch) > 0 { // one entry per call: segments roll over between them
			if err := logs.StoreLogs(batch[:1]); err != nil {
				t.Fatal(err)
			}
			batch = batch[1:]
		}
	}

	logs, closeAll := open()
	store(logs, 1, 60, 1) // several 64 KiB segments
	// A new leader's log differs from entry 58 on: raft deletes the
	// suffix, which lies in the open tail segment, and appends.
	if err := logs.DeleteRange(58, 60); err != nil {
		t.Fatal(err)
	}
	store(logs, 58, 62, 2)
	closeAll()

	logs, closeAll = open()
	defer closeAll()
	for i := uint64(1); i <= 62; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after reopening: %v", i, err)
		}
		want := uint64(1)
		if i >= 58 {
			want = 2
		}
		if l.Term != want {
			t.Fatalf("entry %d has term %d, want %d", i, l.Term, want)
		}
	}
}
