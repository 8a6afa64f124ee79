package replication

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/content"
	"mirrord/content/contenttest"
)

// spaceStore is a real block store whose file system reports the given
// space (statfs cannot be made to say arbitrary numbers).
type spaceStore struct {
	*content.Store
	sp content.Space
}

func (s spaceStore) Space() (content.Space, error) { return s.sp, nil }

// TestCheckBudget: uploads are refused when they would pass the disk
// budget or leave less than the margin free, whether or not a budget is
// set, and the refusal says what to do.
func TestCheckBudget(t *testing.T) {
	st, err := content.OpenStore(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	used, err := st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	const gib = int64(1 << 30)
	cases := []struct {
		name            string
		budget          int64
		free, minFree   int64
		n               int64
		want            error
		mustMentionKnob string
	}{
		{"no budget, room to spare", 0, 10 * gib, gib, gib, nil, ""},
		{"no budget, ends exactly at the margin", 0, 2 * gib, gib, gib, nil, ""},
		{"no budget, would eat into the margin", 0, 3 * gib / 2, gib, 600 << 20, ErrLowSpace, "replication.min_free"},
		{"no budget, unknown length, already below", 0, gib / 2, gib, 0, ErrLowSpace, "replication.min_free"},
		{"budget, under it", used + 10*gib, 20 * gib, gib, gib, nil, ""},
		{"budget, past it", used + 100, 20 * gib, gib, 200, ErrOverBudget, "replication.disk_budget"},
		{"budget, under it, disk below the margin", used + 10*gib, gib / 2, gib, 1 << 20, ErrLowSpace, "replication.min_free"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New(Config{
				Store:      spaceStore{st, content.Space{Size: 100 * gib, Free: tc.free, MinFree: tc.minFree}},
				State:      newStateBox(),
				DiskBudget: tc.budget,
			})
			err := r.CheckBudget(tc.n)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("CheckBudget(%d): %v, want %v", tc.n, err, tc.want)
			}
			if err != nil && (!strings.Contains(err.Error(), "mirrord gc") || !strings.Contains(err.Error(), tc.mustMentionKnob)) {
				t.Errorf("refusal does not say what to do: %v", err)
			}
			if d := r.Disk(); d.Free != tc.free || d.MinFree != tc.minFree || d.Budget != tc.budget || d.Error != "" {
				t.Errorf("disk status %+v", d)
			}
		})
	}
}

// TestReplicationOnFullDisk: on a node whose disk (a real tmpfs) fills
// up, a fetch stops at once with content.ErrNoSpace; the replicator
// keeps running, does not fetch below the free-space margin and says
// why the release is not ready; and the objects the node holds are
// still served.
func TestReplicationOnFullDisk(t *testing.T) {
	origin := newTestPeer(t)
	edge := newTestPeerIn(t, contenttest.MountTmpfs(t, "16m"))
	connectPeers(t, origin, edge)
	held := randomBytes(t, 200<<10)
	heldObj := edge.add(t, held)
	big := origin.add(t, randomBytes(t, 32<<20))
	zip := origin.add(t, randomBytes(t, 100<<10))

	// A fetch without a free-space check runs into the full disk.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := edge.store.FetchWith(ctx, big.CID, content.FetchOptions{}); !errors.Is(err, content.ErrNoSpace) {
		t.Fatalf("fetch of 32 MiB onto 16 MiB: %v, want ErrNoSpace", err)
	}

	box := newStateBox()
	r := New(Config{Store: edge.store, State: box, GCInterval: -1, ScrubInterval: -1})
	start(t, r)
	box.publish("app", "1.0.0", zip, big)
	var why string
	consensustest.WaitFor(t, "the free-space margin reported in the release's progress", func() bool {
		for _, p := range r.Progress(context.Background()) {
			if strings.Contains(p.Error, "min_free") {
				why = p.Error
				return true
			}
		}
		return false
	}, 60*time.Second)
	if !strings.Contains(why, "mirrord gc") {
		t.Errorf("progress error does not say what to do: %s", why)
	}
	if r.Ready("app", "1.0.0") {
		t.Fatal("a release bigger than the disk is ready")
	}
	// What the node holds is still served, also through the download
	// path that would make a cache copy.
	for range 2 {
		f, err := edge.store.OpenCached(context.Background(), heldObj.CID, content.OpenOptions{})
		if err != nil {
			t.Fatalf("open a held object on a full disk: %v", err)
		}
		got := new(bytes.Buffer)
		_, err = got.ReadFrom(f)
		f.Close()
		if err != nil || !bytes.Equal(got.Bytes(), held) {
			t.Fatalf("read a held object on a full disk: %v", err)
		}
	}
}
