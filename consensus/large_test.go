package consensus

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

// manyFiles returns release version with n manifest entries shaped like
// an encrypted bundle's: about 640 bytes each in a raft entry.
func manyFiles(version string, n int) state.Release {
	r := release(version, 30)
	hash := strings.Repeat("5e", 256) // a sealed hash is 512 hex
	r.Manifest = make([]state.ManifestFile, n)
	for i := range r.Manifest {
		r.Manifest[i] = state.ManifestFile{
			FileName: fmt.Sprintf("assets/chunk-group-%03d/module-%02d/component-%06d.js", i/200, i%7, i),
			FileHash: hash, CID: fmt.Sprintf("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s%05d", i), Size: int64(i),
		}
	}
	return r
}

// TestLargeRelease: a release of 50,000 encrypted files is one raft
// entry of about 33 MB. It is stored in the WAL, survives a reopen from
// the log and one from a snapshot; a command over MaxCommandBytes is
// refused before it is proposed, and the leader keeps leading (raft-wal
// cannot store such an entry, and a leader that fails to store one
// steps down).
func TestLargeRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 33 MB raft entry")
	}
	cfg := testConfig(t, t.TempDir())
	cfg.TrailingLogs = 1
	n := openNode(t, cfg)
	for _, cmd := range base {
		mustApply(t, n, cmd)
	}
	big := ReleaseCreate{Release: manyFiles("2.0.0", 50000), Channel: "beta"}
	data, err := Encode(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 30<<20 || len(data) > MaxCommandBytes {
		t.Fatalf("entry of %d bytes; want about 33 MB", len(data))
	}
	want := mustApply(t, n, big)

	term, index := n.raft.CurrentTerm(), want.Index
	huge := ReleaseCreate{Release: manyFiles("3.0.0", MaxCommandBytes/600)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.Apply(ctx, huge); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "ReleaseCreate") {
		t.Fatalf("apply of a release over MaxCommandBytes: %v", err)
	}
	if !n.IsLeader() || n.raft.CurrentTerm() != term || n.raft.LastIndex() != index {
		t.Fatalf("the refused entry changed raft: leader %v, term %d -> %d, last index %d -> %d",
			n.IsLeader(), term, n.raft.CurrentTerm(), index, n.raft.LastIndex())
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = openNode(t, cfg)
	// The release is the last command of the log: once Open returns, the
	// state must hold it (what a restarted node serves).
	if a := n.State().App(app); a == nil || a.Releases["2.0.0"] == nil {
		t.Fatalf("Open returned at state index %d, before the release's entry %d", n.State().Index, want.Index)
	}
	waitForState(t, n, want)
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	want = mustApply(t, n, DeviceSet{App: app, DeviceID: "D1", Channel: "beta"})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNode(t, cfg)
	defer n.Close()
	waitForState(t, n, want)
	if got := n.State().App(app).Releases["2.0.0"]; got == nil || len(got.Manifest) != 50000 {
		t.Fatal("the large release did not come back from the snapshot")
	}
}

func TestMaxRecordHoldsLargestCommand(t *testing.T) {
	if maxRecordSize < MaxCommandBytes {
		t.Fatalf("a release record may reach %d bytes but a snapshot record holds %d", MaxCommandBytes, maxRecordSize)
	}
}

// TestOpenErrorClosesStores: when the node cannot start from what is on
// disk (here a damaged snapshot, with the log compacted past it), Open
// returns the error and closes the stores it opened, so a second Open
// in this process does not hang on their locks.
func TestOpenErrorClosesStores(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.TrailingLogs = 1
	n := openNode(t, cfg)
	for _, cmd := range base {
		mustApply(t, n, cmd)
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, "snapshots", "*", "state.bin"))
	if len(snaps) != 1 {
		t.Fatalf("snapshots %v", snaps)
	}
	if err := os.WriteFile(snaps[0], []byte("MIRRORD-SNAPSHOT\x01"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, trans := raft.NewInmemTransport("")
		if n, err := Open(cfg, trans); err == nil {
			n.Close()
			t.Fatal("Open restored a damaged snapshot")
		}
	}
}
