package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"

	"mirrord/content/contenttest"
)

var errMidway = errors.New("test: the upload broke off")

// cancelAfter reads r and cancels ctx once n bytes were read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	if c.n -= k; c.n <= 0 {
		c.cancel()
	}
	return k, err
}

// addFails runs an Add that must fail and returns its error.
func addFails(t *testing.T, s *Store, ctx context.Context, r io.Reader) error {
	t.Helper()
	obj, err := s.Add(ctx, r)
	if err == nil {
		t.Fatalf("add succeeded (%s), want a failure", obj.CID)
	}
	return err
}

// stallingReader serves data, then blocks until released (and then
// ends). It closes waiting when it first blocks: the Add reading it has
// then stored every block it made so far (the importer stores a leaf
// before it reads the next chunk).
type stallingReader struct {
	data    []byte
	waiting chan struct{}
	release chan struct{}
}

func newStallingReader(data []byte) *stallingReader {
	return &stallingReader{data: data, waiting: make(chan struct{}), release: make(chan struct{})}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	select {
	case <-r.waiting:
	default:
		close(r.waiting)
	}
	<-r.release
	return 0, io.EOF
}

// waitBlocked waits until the Add reading r has read all of r's data.
func (r *stallingReader) waitBlocked(t *testing.T) {
	t.Helper()
	select {
	case <-r.waiting:
	case <-time.After(30 * time.Second):
		t.Fatal("the running Add did not read its data within 30s")
	}
}

// gcLeaves lists the leaves of the DAG rooted at root in file order.
func gcLeaves(t *testing.T, s *Store, root cid.Cid) []cid.Cid {
	t.Helper()
	if root.Type() == cid.Raw {
		return []cid.Cid{root}
	}
	blk, err := s.bs.Get(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	links, err := blockLinks(root, blk)
	if err != nil {
		t.Fatal(err)
	}
	var out []cid.Cid
	for _, l := range links {
		out = append(out, gcLeaves(t, s, l)...)
	}
	return out
}

// TestFailedAddIsCollectable: whatever makes an Add fail (the body
// breaks off, the client goes away, the body is too large), the blocks
// it wrote are removed by the next GC despite a one-hour grace period,
// and the store takes the next object as before.
func TestFailedAddIsCollectable(t *testing.T) {
	data := gcData(80, 3<<20)
	cases := []struct {
		name   string
		reader func(cancel context.CancelFunc) io.Reader
	}{
		{"body breaks off", func(context.CancelFunc) io.Reader {
			return io.MultiReader(bytes.NewReader(data), iotestErr{errMidway})
		}},
		{"client gone", func(cancel context.CancelFunc) io.Reader {
			return &cancelAfter{r: bytes.NewReader(data), n: 2 << 20, cancel: cancel}
		}},
		{"body too large", func(context.CancelFunc) io.Reader {
			return http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(data)), 2<<20)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := gcOpen(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addFails(t, s, ctx, tc.reader(cancel))
			if len(gcStored(t, s)) == 0 {
				t.Fatal("the failed Add stored no block: the test shows nothing")
			}
			res, err := s.GC(context.Background(), nil, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if left := gcStored(t, s); len(left) != 0 || res.BlocksRemoved == 0 {
				t.Fatalf("after GC with a 1h grace: %d blocks of the failed Add left (%+v)", len(left), res)
			}
			small := gcData(81, 1<<20)
			gcReadable(t, s, gcAdd(t, s, small), small)
		})
	}
}

type iotestErr struct{ err error }

func (r iotestErr) Read([]byte) (int, error) { return 0, r.err }

// TestFailedAddKeepsOthersBlocks: the cleanup of a failed Add never
// costs another object a block. Blocks are content-addressed, so the
// failed Add shares blocks with: a kept (released) object; a kept
// object whose block was missing here and that the failed Add wrote; a
// recent upload awaiting its release; an old abandoned upload (which
// the failed Add must not make young again).
func TestFailedAddKeepsOthersBlocks(t *testing.T) {
	s, _ := gcOpen(t)
	ctx := context.Background()
	kept := gcData(90, 2<<20)
	recent := gcData(91, 2<<20)
	abandoned := gcData(92, 2<<20)
	ck, cr, ca := gcAdd(t, s, kept), gcAdd(t, s, recent), gcAdd(t, s, abandoned)
	gcAge(t, s, ck, time.Now().Add(-2*time.Hour))
	gcAge(t, s, ca, time.Now().Add(-2*time.Hour))
	// A kept object that misses a leaf here (replication unfinished):
	// the failed Add writes that leaf.
	partial := gcData(93, 2<<20)
	cp := gcAdd(t, s, partial)
	// A leaf in the middle: the chunks at the ends of each part differ
	// in the failed Add's body, the ones inside are the same.
	leaves := gcLeaves(t, s, cp)
	if err := s.DeleteBlock(ctx, leaves[len(leaves)/2]); err != nil {
		t.Fatal(err)
	}
	if gcComplete(t, s, cp) {
		t.Fatal("partial object complete after deleting a leaf")
	}

	body := io.MultiReader(bytes.NewReader(kept), bytes.NewReader(recent), bytes.NewReader(abandoned),
		bytes.NewReader(partial), bytes.NewReader(gcData(94, 1<<20)), iotestErr{errMidway})
	if err := addFails(t, s, ctx, body); !errors.Is(err, errMidway) {
		t.Fatalf("add: %v, want the reader's error", err)
	}
	if !gcComplete(t, s, cp) {
		t.Fatal("the failed Add did not write the missing leaf: the test shows nothing")
	}
	if _, err := s.GC(ctx, []cid.Cid{ck, cp}, GCOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	gcReadable(t, s, ck, kept)
	gcReadable(t, s, cp, partial)
	gcReadable(t, s, cr, recent)
	if gcComplete(t, s, ca) {
		t.Error("the failed Add made an abandoned upload young again: GC kept it")
	}
	want := map[string]bool{}
	for _, root := range []cid.Cid{ck, cp, cr} {
		for _, c := range gcDAG(t, s, root) {
			want[string(c.Hash())] = true
		}
	}
	got := gcStored(t, s)
	extra := 0
	for k := range got {
		if !want[k] {
			extra++
		}
	}
	if extra > 0 || len(got) != len(want) {
		t.Errorf("%d blocks stored after GC, %d of them in no kept or recent object; want the %d of those objects",
			len(got), extra, len(want))
	}
}

// TestFailedAddSparesRunningAdd: an Add still running keeps its blocks
// through the failure of another Add that shares them and through GC
// with no grace at all; an Add that finished after the failed one
// stored a block keeps that block's age.
func TestFailedAddSparesRunningAdd(t *testing.T) {
	s, _ := gcOpen(t)
	ctx := context.Background()
	shared := gcData(100, 3<<20)
	type result struct {
		obj Object
		err error
	}

	// Add B runs: it has stored the blocks of shared and waits for more.
	rest := gcData(101, 1<<20)
	running := newStallingReader(shared)
	done := make(chan result, 1)
	go func() {
		obj, err := s.Add(ctx, io.MultiReader(running, bytes.NewReader(rest)))
		done <- result{obj, err}
	}()
	running.waitBlocked(t)
	// Add A stores the same blocks, then fails.
	addFails(t, s, ctx, io.MultiReader(bytes.NewReader(shared), iotestErr{errMidway}))
	// GC with no grace: only B's claim keeps the shared blocks.
	if _, err := s.GC(ctx, nil, GCOptions{Grace: 0}); err != nil {
		t.Fatal(err)
	}
	close(running.release)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !gcComplete(t, s, r.obj.CID) {
		t.Fatal("GC removed blocks of a running Add")
	}
	gcReadable(t, s, r.obj.CID, append(append([]byte{}, shared...), rest...))

	// A fails after C, which stored the same blocks later, succeeded:
	// C's object awaits its release and keeps its age.
	s2, _ := gcOpen(t)
	first := newStallingReader(shared)
	failed := make(chan error, 1)
	go func() {
		_, err := s2.Add(ctx, io.MultiReader(first, iotestErr{errMidway}))
		failed <- err
	}()
	first.waitBlocked(t)
	cc := gcAdd(t, s2, shared)
	close(first.release)
	if err := <-failed; !errors.Is(err, errMidway) {
		t.Fatalf("add: %v, want the reader's error", err)
	}
	if _, err := s2.GC(ctx, nil, GCOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	gcReadable(t, s2, cc, shared)
}

// TestAddDiskFull: on a real full file system Add fails with
// ErrNoSpace, the space comes back at the next GC despite the grace
// period, and the next object is stored; Space reports the file system.
func TestAddDiskFull(t *testing.T) {
	mnt := contenttest.MountTmpfs(t, "8m")
	s, err := OpenStore(filepath.Join(mnt, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	sp, err := s.Space()
	if err != nil {
		t.Fatal(err)
	}
	if sp.Size != 8<<20 || sp.Free <= 0 || sp.Free > sp.Size || sp.MinFree != 2<<20 {
		t.Fatalf("space of an 8 MiB tmpfs: %+v (want the default margin capped at a quarter)", sp)
	}
	s.SetMinFree(1 << 20)
	if sp, _ := s.Space(); sp.MinFree != 1<<20 {
		t.Fatalf("min free after SetMinFree: %+v", sp)
	}

	_, err = s.Add(ctx, bytes.NewReader(gcData(110, 16<<20)))
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) || !IsNoSpace(err) {
		t.Fatalf("add of 16 MiB on 8 MiB: %v, want ErrNoSpace wrapping ENOSPC", err)
	}
	if sp, _ := s.Space(); sp.Free > 1<<20 {
		t.Fatalf("the disk did not fill up (%d bytes free): the test shows nothing", sp.Free)
	}
	if _, err := s.GC(ctx, nil, GCOptions{Grace: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s.Space(); after.Free < 6<<20 {
		t.Fatalf("after GC only %d bytes free: the failed upload's blocks stayed", after.Free)
	}
	data := gcData(111, 1<<20)
	gcReadable(t, s, gcAdd(t, s, data), data)
}

// TestCacheCopyKeepsMargin: a download serves from the blocks and makes
// no cache copy when the copy would leave less than the margin free;
// with room it makes one.
func TestCacheCopyKeepsMargin(t *testing.T) {
	s, _ := gcOpen(t)
	data := gcData(120, 1<<20)
	c := gcAdd(t, s, data)
	p := filepath.Join(s.cacheDir, c.String())
	sp, err := s.Space()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		minFree int64
		copied  bool
	}{
		{"no room", sp.Free, false},
		{"room", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.SetMinFree(tc.minFree)
			f, err := s.OpenCached(context.Background(), c, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(f)
			f.Close()
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read: %v", err)
			}
			s.wg.Wait()
			if _, err := os.Stat(p); (err == nil) != tc.copied {
				t.Fatalf("cache copy present: %v, want %v", err == nil, tc.copied)
			}
		})
	}
}

// TestDefaultMinFree: 5% of the file system, at least 1 GiB, at most a
// quarter of it.
func TestDefaultMinFree(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct{ size, want int64 }{
		{0, 0},
		{8 << 20, 2 << 20},
		{2 * gib, gib / 2},
		{4 * gib, gib},
		{10 * gib, gib},
		{20 * gib, gib},
		{100 * gib, 5 * gib},
		{4000 * gib, 200 * gib},
	} {
		if got := DefaultMinFree(tc.size); got != tc.want {
			t.Errorf("DefaultMinFree(%d) = %d, want %d", tc.size, got, tc.want)
		}
	}
}
