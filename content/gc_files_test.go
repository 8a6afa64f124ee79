package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

func TestGCRemovesCacheCopies(t *testing.T) {
	s, dir := gcOpen(t)
	ctx := context.Background()
	a, b := gcData(60, 2<<20), gcData(61, 1<<20)
	ca, cb := gcAdd(t, s, a), gcAdd(t, s, b)
	pa, pb := gcCacheFile(t, s, ca), gcCacheFile(t, s, cb)
	other := filepath.Join(s.cacheDir, "not-a-cid")
	staleTmp := filepath.Join(s.cacheDir, ".tmp-stale")
	freshTmp := filepath.Join(s.cacheDir, ".tmp-fresh")
	for _, p := range []string{other, staleTmp, freshTmp} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	longAgo := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(staleTmp, longAgo, longAgo); err != nil {
		t.Fatal(err)
	}
	gcAgeAll(t, dir, longAgo)
	// keep names a by its CIDv0: still the same object.
	res, err := s.GC(ctx, []cid.Cid{cid.NewCidV0(ca.Hash())}, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.CacheFilesRemoved != 1 {
		t.Fatalf("result %+v, want 1 cache file removed", res)
	}
	for p, want := range map[string]bool{pa: true, pb: false, other: true, staleTmp: false, freshTmp: true,
		pa + digestSuffix: true, pb + digestSuffix: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	f, err := s.OpenCached(ctx, ca, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(OSFile); !ok {
		t.Fatal("kept object no longer served from its cache copy")
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("cached read: %v", err)
	}
}

func TestDiskUsage(t *testing.T) {
	s, dir := gcOpen(t)
	ctx := context.Background()
	du0, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	a, b := gcData(70, 3<<20), gcData(71, 2<<20)
	ca, cb := gcAdd(t, s, a), gcAdd(t, s, b)
	du1, _ := s.DiskUsage()
	if du1 < du0+int64(len(a)+len(b)) {
		t.Fatalf("after adds: %d, want at least %d", du1, du0+int64(len(a)+len(b)))
	}
	gcCacheFile(t, s, cb)
	du2, _ := s.DiskUsage()
	// The copy and its digest file (64 hex digits and a newline).
	if want := du1 + int64(len(b)) + 2*sha256.Size + 1; du2 != want {
		t.Fatalf("after cache copy: %d, want %d", du2, want)
	}
	gcAgeAll(t, dir, time.Now().Add(-2*time.Hour))
	res, err := s.GC(ctx, []cid.Cid{ca}, GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	du3, _ := s.DiskUsage()
	if du3 >= du2 || du3 != du2-res.BytesFreed || res.BytesFreed < int64(2*len(b)) {
		t.Fatalf("after GC: %d (was %d, freed %d)", du3, du2, res.BytesFreed)
	}
	s2 := gcReopen(t, s, dir)
	if du4, err := s2.DiskUsage(); err != nil || du4 != du3 {
		t.Fatalf("after reopen: %d %v, want %d", du4, err, du3)
	}
}

func TestDeleteBlock(t *testing.T) {
	data := gcData(80, 2<<20)
	for _, tc := range []struct {
		name      string
		pick      func(root cid.Cid, leaves []cid.Cid) cid.Cid
		dropCache bool
	}{
		{"leaf", func(_ cid.Cid, leaves []cid.Cid) cid.Cid { return leaves[0] }, false},
		{"root", func(root cid.Cid, _ []cid.Cid) cid.Cid { return root }, true},
		{"root named as raw", func(root cid.Cid, _ []cid.Cid) cid.Cid { return cid.NewCidV1(cid.Raw, root.Hash()) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := gcOpen(t)
			ctx := context.Background()
			root := gcAdd(t, s, data)
			var leaves []cid.Cid
			for _, c := range gcDAG(t, s, root) {
				if c.Type() == cid.Raw {
					leaves = append(leaves, c)
				}
			}
			if len(leaves) < 2 {
				t.Fatalf("want a multi-block object, got %d leaves", len(leaves))
			}
			cache := gcCacheFile(t, s, root)
			target := tc.pick(root, leaves)
			if err := s.DeleteBlock(ctx, target); err != nil {
				t.Fatal(err)
			}
			if gcComplete(t, s, root) {
				t.Fatal("complete after DeleteBlock")
			}
			if ok, _ := s.bs.Has(ctx, target); ok {
				t.Fatal("block still stored")
			}
			if _, err := os.Stat(cache); (err == nil) == tc.dropCache {
				t.Fatalf("cache copy exists=%v, want %v", err == nil, !tc.dropCache)
			}
			if !tc.dropCache {
				os.Remove(cache) // read from the blocks below
			}
			f, err := s.Open(ctx, root)
			if err == nil {
				_, err = io.ReadAll(f)
				f.Close()
			}
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("reading after DeleteBlock: %v, want ErrNotFound", err)
			}
			// Deleting again is fine; storing the object again repairs it.
			if err := s.DeleteBlock(ctx, target); err != nil {
				t.Fatal(err)
			}
			gcAdd(t, s, data)
			gcReadable(t, s, root, data)
		})
	}
}
