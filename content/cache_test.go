package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"mirrord/content/contenttest"
)

// cacheCopy assembles the cache copy of c, checks it is complete, and
// returns its path.
func cacheCopy(t *testing.T, s *Store, c cid.Cid) string {
	t.Helper()
	return gcCacheFile(t, s, c)
}

// serve opens c as a download would and reads it whole. fromCache tells
// whether the cache copy was used.
func serve(t *testing.T, s *Store, c cid.Cid) (data []byte, fromCache bool, err error) {
	t.Helper()
	f, err := s.OpenCached(context.Background(), c, OpenOptions{})
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	_, fromCache = f.(OSFile)
	data, err = io.ReadAll(f)
	return data, fromCache, err
}

func TestCacheCopyFlippedByteNeverServed(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(80, 1<<20+77)
	c := gcAdd(t, s, data)
	p := cacheCopy(t, s, c)
	contenttest.FlipByte(t, p, int64(len(data)/2))

	got, fromCache, err := serve(t, s, c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("download after the copy was corrupted: %v, equal=%v", err, bytes.Equal(got, data))
	}
	if fromCache {
		t.Fatal("the corrupt copy was served")
	}
	// The copy is assembled again from the blocks, and served once
	// verified.
	s.wg.Wait()
	got, fromCache, err = serve(t, s, c)
	if err != nil || !bytes.Equal(got, data) || !fromCache {
		t.Fatalf("rebuilt copy: %v, equal=%v, from cache=%v", err, bytes.Equal(got, data), fromCache)
	}
}

// TestCacheCopyFlipAfterVerifiedServe: the copy is served (verified),
// then a byte flips. The next download must not send the flipped byte,
// whether the flip moved the file's ctime (remembered verification) or
// came within the same timestamp tick (racy copy, hashed on each use).
func TestCacheCopyFlipAfterVerifiedServe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window time.Duration
		tick   bool // wait for the file clock to move before the flip
	}{
		{"racy window", cacheRacyWindow, false},
		{"remembered", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(w time.Duration) { cacheRacyWindow = w }(cacheRacyWindow)
			cacheRacyWindow = tc.window
			s, _ := gcOpen(t)
			data := gcData(81, 700<<10+3)
			c := gcAdd(t, s, data)
			p := cacheCopy(t, s, c)
			got, fromCache, err := serve(t, s, c)
			if err != nil || !bytes.Equal(got, data) || !fromCache {
				t.Fatalf("first download: %v, equal=%v, from cache=%v", err, bytes.Equal(got, data), fromCache)
			}
			_, remembered := s.verified.Load(c.String())
			if remembered != (tc.window == 0) {
				t.Fatalf("verification remembered=%v with racy window %s", remembered, tc.window)
			}
			if tc.tick {
				waitFileClock(t, p)
			}
			contenttest.FlipByte(t, p, 12345)
			got, fromCache, err = serve(t, s, c)
			if err != nil || !bytes.Equal(got, data) || fromCache {
				t.Fatalf("download after the flip: %v, equal=%v, from cache=%v", err, bytes.Equal(got, data), fromCache)
			}
		})
	}
}

// waitFileClock waits until a file written now gets a ctime later than
// the file at p has: file times come from a coarse clock.
func waitFileClock(t *testing.T, p string) {
	t.Helper()
	var old unix.Stat_t
	if err := unix.Stat(p, &old); err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(t.TempDir(), "probe")
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := os.WriteFile(probe, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(probe, &st); err != nil {
			t.Fatal(err)
		}
		if st.Ctim.Nano() > old.Ctim.Nano() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("file clock did not move in 10s")
		}
	}
}

func TestCacheCopyWithoutDigestIsRebuilt(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(82, 300<<10)
	c := gcAdd(t, s, data)
	p := cacheCopy(t, s, c)
	if err := os.Remove(p + digestSuffix); err != nil {
		t.Fatal(err)
	}
	got, fromCache, err := serve(t, s, c)
	if err != nil || !bytes.Equal(got, data) || fromCache {
		t.Fatalf("copy without digest: %v, equal=%v, from cache=%v", err, bytes.Equal(got, data), fromCache)
	}
	s.wg.Wait()
	if _, err := os.Stat(p + digestSuffix); err != nil {
		t.Fatalf("digest not recorded on rebuild: %v", err)
	}
	if _, fromCache, err := serve(t, s, c); err != nil || !fromCache {
		t.Fatalf("rebuilt copy not served: %v %v", err, fromCache)
	}
}

// TestScrubCacheFindsRot: bit rot leaves a file's stamp as it was, so
// only the scrub's hash finds it. The rot is simulated by flipping a
// byte and then recording the new stamp as verified.
func TestScrubCacheFindsRot(t *testing.T) {
	s, _ := gcOpen(t)
	good, bad := gcData(83, 400<<10), gcData(84, 500<<10)
	cg, cb := gcAdd(t, s, good), gcAdd(t, s, bad)
	cacheCopy(t, s, cg)
	pb := cacheCopy(t, s, cb)
	contenttest.FlipByte(t, pb, 9)
	f, err := os.Open(pb)
	if err != nil {
		t.Fatal(err)
	}
	st, err := stampOf(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	s.verified.Store(cb.String(), st)

	res, err := s.ScrubCache(context.Background(), 0)
	if err != nil || res.Checked != 2 || res.Removed != 1 || res.Bytes != int64(len(good)+len(bad)) {
		t.Fatalf("scrub: %+v %v", res, err)
	}
	if _, err := os.Stat(pb); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("rotten copy still there: %v", err)
	}
	got, _, err := serve(t, s, cb)
	if err != nil || !bytes.Equal(got, bad) {
		t.Fatalf("after scrub: %v", err)
	}
	if got, fromCache, err := serve(t, s, cg); err != nil || !fromCache || !bytes.Equal(got, good) {
		t.Fatalf("good copy after scrub: %v %v", err, fromCache)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ScrubCache(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled scrub: %v", err)
	}
}

// TestRememberRacy: a verification is remembered only when the copy's
// ctime is older than the verification's start by the racy window.
func TestRememberRacy(t *testing.T) {
	start := time.Unix(1_000_000, 0)
	for _, tc := range []struct {
		ctime time.Duration // relative to start
		want  bool
	}{
		{-time.Hour, true},
		{-cacheRacyWindow - time.Nanosecond, true},
		{-cacheRacyWindow, false},
		{-time.Millisecond, false},
		{0, false},
		{time.Second, false},
	} {
		s := &Store{}
		st := cacheStamp{ino: 1, size: 5, ctime: unix.NsecToTimespec(start.Add(tc.ctime).UnixNano())}
		s.remember("x", st, start)
		if got := s.knownGood("x", st); got != tc.want {
			t.Errorf("ctime start%+v: remembered %v, want %v", tc.ctime, got, tc.want)
		}
		if s.knownGood("x", cacheStamp{ino: 2, size: 5, ctime: st.ctime}) {
			t.Errorf("another inode passed as verified")
		}
	}
}

func TestOpenCachedLocalOnly(t *testing.T) {
	s, _ := gcOpen(t)
	ctx := context.Background()
	data := gcData(85, 600<<10)
	c := gcAdd(t, s, data)
	missing, _ := ParseCID("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	for _, opt := range []OpenOptions{{}, {Remote: true}} {
		if _, err := s.OpenCached(ctx, missing, opt); !errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: missing object: %v, want ErrNotFound", opt, err)
		}
	}
	// A partial object (one leaf gone) is not served without Remote.
	f, _ := s.OpenCached(ctx, c, OpenOptions{})
	f.Close()
	s.wg.Wait()
	if err := os.Remove(filepath.Join(s.cacheDir, c.String())); err != nil {
		t.Fatal(err)
	}
	var leaf cid.Cid
	for _, b := range gcDAG(t, s, c) {
		if b.Type() == cid.Raw {
			leaf = b
		}
	}
	if err := s.gbs.Blockstore.DeleteBlock(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenCached(ctx, c, OpenOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("partial object: %v, want ErrNotFound", err)
	}
}
