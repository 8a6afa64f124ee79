package content

import (
	"bytes"
	"context"
	"os"
	"testing"

	"mirrord/content/contenttest"
)

// TestMemCacheSecondUse: a small object enters memory on the second use
// of its verified cache copy, and is then served from memory, equal.
func TestMemCacheSecondUse(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(90, 12<<10+5)
	c := gcAdd(t, s, data)
	cacheCopy(t, s, c)
	for i, wantMem := range []bool{false, true, true} {
		got, fromCache, err := serve(t, s, c)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("download %d: %v, equal=%v", i, err, bytes.Equal(got, data))
		}
		b, inMem := s.CachedBytes(c.String())
		if inMem != wantMem || (inMem && !bytes.Equal(b, data)) {
			t.Fatalf("after download %d: in memory=%v (want %v), equal=%v", i, inMem, wantMem, bytes.Equal(b, data))
		}
		// The third download comes from memory, not the file.
		if i == 2 && fromCache {
			t.Fatal("third download opened the cache file")
		}
	}
}

// TestMemCacheRotBeforeLoadNeverServed: a byte of the copy flips after
// its verification in a way its file stamp does not show (bit rot). The
// load into memory hashes the bytes, so they are neither kept nor
// served, and the copy is dropped.
func TestMemCacheRotBeforeLoadNeverServed(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(91, 9<<10)
	c := gcAdd(t, s, data)
	p := cacheCopy(t, s, c)
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stampOf(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.mem.wants(c.String(), st.size) // the first use
	contenttest.FlipByte(t, p, 100)
	f, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	rotten, err := stampOf(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.verified.Store(c.String(), rotten) // as if verified, stamp unchanged

	got, fromCache, err := serve(t, s, c)
	if err != nil || !bytes.Equal(got, data) || fromCache {
		t.Fatalf("download of the rotten copy: %v, equal=%v, from cache=%v", err, bytes.Equal(got, data), fromCache)
	}
	if _, ok := s.CachedBytes(c.String()); ok {
		t.Fatal("rotten bytes kept in memory")
	}
	if _, err := os.Stat(p); err == nil {
		// Only a new copy, assembled from the blocks, may be there.
		s.wg.Wait()
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, data) {
			t.Fatalf("cache copy after the rot: %v, equal=%v", err, bytes.Equal(b, data))
		}
	}
}

// TestMemCacheForgottenWithBlock: deleting the object's block (as a
// failed verification or GC does) drops it from memory too.
func TestMemCacheForgottenWithBlock(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(92, 3<<10)
	c := gcAdd(t, s, data)
	cacheCopy(t, s, c)
	serve(t, s, c)
	serve(t, s, c)
	if _, ok := s.CachedBytes(c.String()); !ok {
		t.Fatal("not in memory after two uses")
	}
	if err := s.DeleteBlock(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.CachedBytes(c.String()); ok {
		t.Fatal("still in memory after its block was deleted")
	}
	if _, _, err := serve(t, s, c); err == nil {
		t.Fatal("served after its block was deleted")
	}
}

func TestMemCacheBudget(t *testing.T) {
	m := memCache{budget: 100}
	for _, tc := range []struct {
		name string
		size int64
		want bool
	}{
		{"a", 60, false}, // first sighting
		{"a", 60, true},
		{"big", 101, false},
		{"big", 101, false},
		{"huge", memObjectMax + 1, false},
	} {
		if got := m.wants(tc.name, tc.size); got != tc.want {
			t.Fatalf("wants(%s, %d) = %v, want %v", tc.name, tc.size, got, tc.want)
		}
	}
	m.put("a", make([]byte, 60))
	m.put("b", make([]byte, 60))
	if _, ok := m.get("b"); !ok || m.bytes != 60 {
		t.Fatalf("after a second object over the budget: b held=%v, bytes=%d", ok, m.bytes)
	}
	if m.wants("b", 60) {
		t.Fatal("wants an object it holds")
	}
	m.drop("b")
	if _, ok := m.get("b"); ok || m.bytes != 0 {
		t.Fatalf("after drop: held=%v, bytes=%d", ok, m.bytes)
	}
}
