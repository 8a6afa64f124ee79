package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// gcOpen opens a store in a fresh directory, closed at the end of the test.
func gcOpen(t *testing.T) (*Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func gcData(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func gcAdd(t *testing.T, s *Store, data []byte) cid.Cid {
	t.Helper()
	obj, err := s.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return obj.CID
}

// gcReadable fails the test unless the object at c reads back as want.
func gcReadable(t *testing.T, s *Store, c cid.Cid, want []byte) {
	t.Helper()
	f, err := s.Open(context.Background(), c)
	if err != nil {
		t.Fatalf("open %s: %v", c, err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %s: %v, equal=%v", c, err, bytes.Equal(got, want))
	}
}

func gcComplete(t *testing.T, s *Store, c cid.Cid) bool {
	t.Helper()
	ok, err := s.Complete(context.Background(), c)
	if err != nil {
		t.Fatalf("complete %s: %v", c, err)
	}
	return ok
}

// gcDAG lists the locally present blocks of the DAG rooted at root.
func gcDAG(t *testing.T, s *Store, root cid.Cid) []cid.Cid {
	t.Helper()
	ctx := context.Background()
	var out []cid.Cid
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		blk, err := s.bs.Get(ctx, c)
		if err != nil {
			continue
		}
		out = append(out, c)
		links, err := blockLinks(c, blk)
		if err != nil {
			t.Fatal(err)
		}
		stack = append(stack, links...)
	}
	return out
}

// gcStored returns the multihashes of all stored blocks.
func gcStored(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	ch, err := s.bs.AllKeysChan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]bool)
	for c := range ch {
		out[string(c.Hash())] = true
	}
	return out
}

// gcAgeAll sets the modification time of every block file to at.
func gcAgeAll(t *testing.T, dir string, at time.Time) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".data" {
			return err
		}
		n++
		return os.Chtimes(p, at, at)
	})
	if err != nil || n == 0 {
		t.Fatalf("aging blocks: %v (%d files)", err, n)
	}
}

// gcAge sets the modification time of the blocks of one DAG to at.
func gcAge(t *testing.T, s *Store, root cid.Cid, at time.Time) {
	t.Helper()
	for _, c := range gcDAG(t, s, root) {
		if err := os.Chtimes(s.gbs.blockPath(c), at, at); err != nil {
			t.Fatal(err)
		}
	}
}

// gcReopen closes s and opens the store in dir again, as a restart
// does; the new store is closed when the test ends.
func gcReopen(t *testing.T, s *Store, dir string) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

// gcCacheFile assembles the cache copy of c and returns its path.
func gcCacheFile(t *testing.T, s *Store, c cid.Cid) string {
	t.Helper()
	f, err := s.OpenCached(context.Background(), c, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	s.wg.Wait()
	p := filepath.Join(s.cacheDir, c.String())
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("cache copy of %s not assembled: %v", c, err)
	}
	return p
}

func TestGCBlockPathMatchesFlatfs(t *testing.T) {
	s, _ := gcOpen(t)
	ctx := context.Background()
	gcAdd(t, s, gcData(1, 3<<20))
	gcAdd(t, s, []byte("small"))
	ch, err := s.bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for c := range ch {
		n++
		blk, err := s.gbs.Blockstore.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(s.gbs.blockPath(c))
		if err != nil {
			t.Fatalf("block %s not at %s: %v", c, s.gbs.blockPath(c), err)
		}
		if info.Size() != int64(len(blk.RawData())) {
			t.Fatalf("block %s: file has %d bytes, block %d", c, info.Size(), len(blk.RawData()))
		}
	}
	if n < 3 {
		t.Fatalf("only %d blocks", n)
	}
}

func TestGCKeepSet(t *testing.T) {
	datas := [][]byte{gcData(10, 3<<20), gcData(11, 2<<20+7), []byte("one small block"), {}}
	for _, tc := range []struct {
		name string
		keep []int // indexes into datas
	}{
		{"keep none", nil},
		{"keep one", []int{0}},
		{"keep small and empty", []int{2, 3}},
		{"keep all", []int{0, 1, 2, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := gcOpen(t)
			ctx := context.Background()
			roots := make([]cid.Cid, len(datas))
			for i, d := range datas {
				roots[i] = gcAdd(t, s, d)
			}
			gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
			total := len(gcStored(t, s))
			kept := make(map[int]bool)
			var keep []cid.Cid
			wantKept := 0
			for _, i := range tc.keep {
				kept[i] = true
				keep = append(keep, roots[i])
				wantKept += len(gcDAG(t, s, roots[i]))
			}
			res, err := s.GC(ctx, keep, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if res.BlocksKept != wantKept || res.BlocksRemoved != total-wantKept {
				t.Fatalf("result %+v, want %d kept of %d", res, wantKept, total)
			}
			if left := len(gcStored(t, s)); left != wantKept {
				t.Fatalf("%d blocks left, want %d", left, wantKept)
			}
			// Kept objects read back byte for byte, also after a restart.
			for i, d := range datas {
				if kept[i] {
					gcReadable(t, s, roots[i], d)
				} else if gcComplete(t, s, roots[i]) {
					t.Fatalf("dropped object %d still complete", i)
				}
			}
			s2 := gcReopen(t, s, dir)
			for _, i := range tc.keep {
				gcReadable(t, s2, roots[i], datas[i])
			}
			// A second GC finds nothing more to remove.
			res, err = s2.GC(ctx, keep, GCOptions{Grace: time.Hour})
			if err != nil || res.BlocksRemoved != 0 || res.BlocksKept != wantKept {
				t.Fatalf("second GC: %+v %v", res, err)
			}
		})
	}
}

func TestGCSharedBlocksSurvive(t *testing.T) {
	// b shares its first 3 MiB with a: content-defined chunks make most
	// of those leaves identical blocks.
	a := gcData(20, 4<<20)
	b := append(append([]byte{}, a[:3<<20]...), gcData(21, 1<<20)...)
	for _, tc := range []struct {
		name  string
		keepA bool
		keep  []byte
	}{
		{"keep a drop b", true, a},
		{"keep b drop a", false, b},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := gcOpen(t)
			ca, cb := gcAdd(t, s, a), gcAdd(t, s, b)
			keepRoot, dropRoot := cb, ca
			if tc.keepA {
				keepRoot, dropRoot = ca, cb
			}
			inKeep := make(map[string]bool)
			for _, c := range gcDAG(t, s, keepRoot) {
				inKeep[string(c.Hash())] = true
			}
			shared, dropOnly := 0, 0
			for _, c := range gcDAG(t, s, dropRoot) {
				if inKeep[string(c.Hash())] {
					shared++
				} else {
					dropOnly++
				}
			}
			if shared == 0 || dropOnly == 0 {
				t.Fatalf("test needs shared and unshared blocks: %d shared, %d not", shared, dropOnly)
			}
			gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
			res, err := s.GC(context.Background(), []cid.Cid{keepRoot}, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if res.BlocksRemoved != dropOnly || res.BlocksKept != len(inKeep) {
				t.Fatalf("result %+v, want %d removed, %d kept", res, dropOnly, len(inKeep))
			}
			gcReadable(t, s, keepRoot, tc.keep)
			if gcComplete(t, s, dropRoot) {
				t.Fatal("dropped object still complete")
			}
		})
	}
}

func TestGCGrace(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		age, grace  time.Duration
		wantRemoved bool
	}{
		{"just written", 0, time.Hour, false},
		{"inside grace", 59 * time.Minute, time.Hour, false},
		{"at grace", time.Hour, time.Hour, true},
		{"past grace", 61 * time.Minute, time.Hour, true},
		{"no grace", 0, 0, true},
		{"written in the future (clock skew)", -time.Hour, time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := gcOpen(t)
			data := gcData(30, 2<<20)
			c := gcAdd(t, s, data)
			gcAgeAll(t, dir, t0)
			s.gbs.now = func() time.Time { return t0.Add(tc.age) }
			n := len(gcDAG(t, s, c))
			res, err := s.GC(context.Background(), nil, GCOptions{Grace: tc.grace})
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantRemoved {
				if res.BlocksRemoved != n || gcComplete(t, s, c) {
					t.Fatalf("result %+v, want all %d blocks removed", res, n)
				}
				return
			}
			if res.BlocksKept != n || res.BlocksRemoved != 0 {
				t.Fatalf("result %+v, want all %d blocks kept", res, n)
			}
			gcReadable(t, s, c, data)
		})
	}
}

// TestGCReuseRefreshesAge: an upload that stores blocks already present
// (from an object being dropped) protects them for the grace period, as
// if it had written them.
func TestGCReuseRefreshesAge(t *testing.T) {
	old := gcData(40, 4<<20)
	for _, tc := range []struct {
		name string
		neu  []byte
	}{
		{"same bytes again", old},
		{"shares a prefix", append(append([]byte{}, old[:3<<20]...), gcData(41, 1<<20)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := gcOpen(t)
			gcAdd(t, s, old)
			gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
			neu := gcAdd(t, s, tc.neu) // not committed yet: not in keep
			res, err := s.GC(context.Background(), nil, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			gcReadable(t, s, neu, tc.neu)
			if want := len(gcDAG(t, s, neu)); res.BlocksKept != want {
				t.Fatalf("result %+v, want %d kept", res, want)
			}
			// The refreshed age survives a restart.
			s2 := gcReopen(t, s, dir)
			if res, err := s2.GC(context.Background(), nil, GCOptions{Grace: time.Hour}); err != nil || res.BlocksRemoved != 0 {
				t.Fatalf("GC after restart: %+v %v", res, err)
			}
			gcReadable(t, s2, neu, tc.neu)
		})
	}
}

// TestGCConcurrentAdd runs GC while the same old, unreferenced object is
// added again: whichever goes first, the object is complete afterwards.
func TestGCConcurrentAdd(t *testing.T) {
	s, _ := gcOpen(t)
	ctx := context.Background()
	data := gcData(50, 3<<20)
	c := gcAdd(t, s, data)
	for i := 0; i < 10; i++ {
		// Age only what is stored: an earlier GC may have removed it all.
		gcAge(t, s, c, time.Now().Add(-2*time.Hour))
		var wg sync.WaitGroup
		var addErr, gcErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, addErr = s.Add(ctx, bytes.NewReader(data))
		}()
		go func() {
			defer wg.Done()
			_, gcErr = s.GC(ctx, nil, GCOptions{Grace: time.Hour})
		}()
		wg.Wait()
		if addErr != nil || gcErr != nil {
			t.Fatalf("add: %v, gc: %v", addErr, gcErr)
		}
		if !gcComplete(t, s, c) {
			t.Fatalf("round %d: GC removed blocks of a concurrent Add", i)
		}
	}
	gcReadable(t, s, c, data)
}

// TestGCPartialKeptDAG: kept objects whose blocks are partly (or not at
// all) here do not make GC fail; what is present of them stays.
func TestGCPartialKeptDAG(t *testing.T) {
	s, dir := gcOpen(t)
	ctx := context.Background()
	a, c, d := gcData(90, 3<<20), gcData(91, 2<<20), gcData(92, 1<<20)
	ca, cc, cd := gcAdd(t, s, a), gcAdd(t, s, c), gcAdd(t, s, d)
	// a lacks two leaves, c its root (so its leaves are unreachable).
	var aLeaves []cid.Cid
	for _, x := range gcDAG(t, s, ca) {
		if x.Type() == cid.Raw {
			aLeaves = append(aLeaves, x)
		}
	}
	for _, x := range []cid.Cid{aLeaves[0], aLeaves[1], cc} {
		if err := s.DeleteBlock(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	dBlocks := len(gcDAG(t, s, cd))
	cLeft := len(gcStored(t, s)) - len(gcDAG(t, s, ca)) - dBlocks
	heldBefore, known, err := s.Count(ctx, ca)
	if err != nil || heldBefore != known-2 {
		t.Fatalf("count before: %d/%d %v", heldBefore, known, err)
	}
	gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
	never, _ := ParseCID("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	neverPB := cid.NewCidV1(cid.DagProtobuf, never.Hash())
	res, err := s.GC(ctx, []cid.Cid{ca, cc, never, neverPB}, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatalf("GC with partial kept DAGs: %v", err)
	}
	if want := cLeft + dBlocks; cLeft == 0 || res.BlocksRemoved != want {
		t.Fatalf("result %+v, want %d removed", res, want)
	}
	if held, _, _ := s.Count(ctx, ca); held != heldBefore {
		t.Fatalf("GC removed present blocks of a kept object: held %d, was %d", held, heldBefore)
	}
	gcAdd(t, s, a) // replication completes it
	gcReadable(t, s, ca, a)
}

func TestGCErrorsRemoveNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(s *Store, kept cid.Cid) (GCResult, error)
		want error
	}{
		{"undecodable kept node", func(s *Store, kept cid.Cid) (GCResult, error) {
			if err := os.WriteFile(s.gbs.blockPath(kept), []byte{0xff, 0xff, 0xff}, 0o644); err != nil {
				return GCResult{}, err
			}
			return s.GC(context.Background(), []cid.Cid{kept}, GCOptions{Grace: time.Hour})
		}, ErrCorrupt},
		{"undefined keep", func(s *Store, kept cid.Cid) (GCResult, error) {
			return s.GC(context.Background(), []cid.Cid{kept, cid.Undef}, GCOptions{Grace: time.Hour})
		}, nil},
		{"canceled", func(s *Store, kept cid.Cid) (GCResult, error) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return s.GC(ctx, []cid.Cid{kept}, GCOptions{Grace: time.Hour})
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := gcOpen(t)
			kept := gcAdd(t, s, gcData(100, 2<<20))
			gcAdd(t, s, gcData(101, 2<<20))
			gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
			before := len(gcStored(t, s))
			res, err := tc.run(s, kept)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if res.BlocksRemoved != 0 || len(gcStored(t, s)) != before {
				t.Fatalf("removed blocks despite the error: %+v", res)
			}
		})
	}
}
