package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/bitswap"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node"
)

// testPeer is a libp2p host with an on-disk store exchanging blocks
// over bitswap, as in a node.
type testPeer struct {
	h     host.Host
	store *content.Store
	bs    *bitswap.Bitswap
	dir   string
}

func newTestPeer(tb testing.TB) *testPeer {
	tb.Helper()
	return newTestPeerIn(tb, tb.TempDir())
}

// newTestPeerIn is newTestPeer with its key and blocks in dir.
func newTestPeerIn(tb testing.TB, dir string) *testPeer {
	tb.Helper()
	h, err := node.NewHost(node.HostConfig{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		tb.Fatal(err)
	}
	st, err := content.OpenStore(filepath.Join(dir, "blocks"))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bs := node.NewExchange(ctx, h, st.Blockstore(), nil)
	st.SetExchange(bs)
	tb.Cleanup(func() {
		st.Close() // closes bitswap through the block service
		cancel()
		h.Close()
	})
	return &testPeer{h: h, store: st, bs: bs, dir: dir}
}

// start runs r until the returned stop is called or the test ends.
func start(tb testing.TB, r *Replicator) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				tb.Errorf("replicator: %v", err)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}

func connectPeers(tb testing.TB, peers ...*testPeer) {
	tb.Helper()
	for i, a := range peers {
		for _, b := range peers[i+1:] {
			if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

func randomBytes(tb testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

func (p *testPeer) add(tb testing.TB, data []byte) content.Object {
	tb.Helper()
	obj, err := p.store.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	return obj
}

func readAll(tb testing.TB, p *testPeer, obj content.Object) []byte {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := p.store.Open(ctx, obj.CID)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// stateBox is a settable StateSource.
type stateBox struct {
	mu   sync.Mutex
	st   *state.State
	subs map[chan uint64]bool
}

func newStateBox() *stateBox { return &stateBox{st: state.Empty(), subs: map[chan uint64]bool{}} }

func (b *stateBox) State() *state.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

func (b *stateBox) Subscribe() (<-chan uint64, func()) {
	ch := make(chan uint64, 1)
	b.mu.Lock()
	b.subs[ch] = true
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// publish adds a release naming the given objects (zip first, then
// manifest files).
func (b *stateBox) publish(app, version string, zip content.Object, files ...content.Object) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next := &state.State{Index: b.st.Index + 1, Apps: map[string]*state.AppState{}}
	for k, v := range b.st.Apps {
		next.Apps[k] = v
	}
	old := next.Apps[app]
	as := &state.AppState{App: state.App{ID: app}, Releases: map[string]*state.Release{}}
	if old != nil {
		for k, v := range old.Releases {
			as.Releases[k] = v
		}
	}
	rel := &state.Release{App: app, Version: version, ZipCID: zip.CID.String(), ZipSize: zip.Size}
	for i, f := range files {
		rel.Manifest = append(rel.Manifest, state.ManifestFile{FileName: "f" + string(rune('a'+i)), CID: f.CID.String(), Size: f.Size})
	}
	as.Releases[version] = rel
	next.Apps[app] = as
	b.st = next
	for ch := range b.subs {
		select {
		case ch <- next.Index:
		default:
		}
	}
}

// TestStreamThrough: a node that does not hold an object yet serves it
// by fetching the missing blocks on demand.
func TestStreamThrough(t *testing.T) {
	a, b := newTestPeer(t), newTestPeer(t)
	connectPeers(t, a, b)
	data := randomBytes(t, 3<<20)
	obj := a.add(t, data)
	if ok, _ := b.store.Complete(context.Background(), obj.CID); ok {
		t.Fatal("b holds the object before fetching")
	}
	if got := readAll(t, b, obj); !bytes.Equal(got, data) {
		t.Fatal("streamed bytes differ")
	}
	if ok, _ := b.store.Complete(context.Background(), obj.CID); !ok {
		t.Fatal("blocks streamed through were not kept")
	}
}

// TestReplicatorFetchesAndRepairs: committed releases are fetched from
// whichever peer has them (eager files, on-demand zips), progress is
// reported, and a corrupt block is dropped by scrub and fetched again.
func TestReplicatorFetchesAndRepairs(t *testing.T) {
	origin, mid, edge := newTestPeer(t), newTestPeer(t), newTestPeer(t)
	connectPeers(t, origin, mid)
	connectPeers(t, mid, edge) // edge reaches origin's blocks only through mid
	zip := origin.add(t, randomBytes(t, 2<<20))
	f1 := origin.add(t, randomBytes(t, 1<<20))
	f2 := origin.add(t, randomBytes(t, 100<<10))

	boxes := map[*testPeer]*stateBox{}
	repls := map[*testPeer]*Replicator{}
	for _, p := range []*testPeer{mid, edge} {
		boxes[p] = newStateBox()
		repls[p] = New(Config{Store: p.store, State: boxes[p], GCInterval: -1, ScrubInterval: -1})
		start(t, repls[p])
	}
	for _, box := range boxes {
		box.publish("app", "1.0.0", zip, f1, f2)
	}
	for p, r := range repls {
		consensustest.WaitFor(t, "release ready", func() bool { return r.Ready("app", "1.0.0") }, 30*time.Second)
		for _, o := range []content.Object{f1, f2} {
			if ok, _ := p.store.Complete(context.Background(), o.CID); !ok {
				t.Fatal("a manifest file is not complete after ready")
			}
		}
		// The zip of a release with a manifest is on demand.
		if ok, _ := p.store.Complete(context.Background(), zip.CID); ok && p == mid {
			t.Error("the zip was replicated eagerly under the on-demand policy")
		}
		prog := r.Progress(context.Background())
		if len(prog) != 1 || !prog[0].Ready || prog[0].BlocksHeld == 0 {
			t.Fatalf("progress %+v", prog)
		}
	}
	// The edge got its blocks from mid (it is not connected to origin).
	if es, _ := node.ExchangeStatsOf(mid.bs); es.BlocksSent == 0 {
		t.Error("mid sent no blocks to edge")
	}

	// Corrupt one of edge's blocks: scrub notices, the block is fetched
	// again, and reads return the right bytes.
	path, orig := biggestFile(t, filepath.Join(edge.dir, "blocks"))
	bad := bytes.Clone(orig)
	bad[10] ^= 1
	if err := os.WriteFile(path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if n := repls[edge].Scrub(context.Background()); n != 1 {
		t.Fatalf("scrub found %d bad objects, want 1", n)
	}
	consensustest.WaitFor(t, "ready again after repair", func() bool {
		now, _ := os.ReadFile(path)
		return repls[edge].Ready("app", "1.0.0") && bytes.Equal(now, orig)
	}, 30*time.Second)
	if edge.store.Repaired() == 0 {
		t.Error("no repair counted")
	}
}

func biggestFile(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	var best string
	var size int64
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && !de.IsDir() && strings.HasSuffix(p, ".data") {
			if info, err := de.Info(); err == nil && info.Size() > size {
				best, size = p, info.Size()
			}
		}
		return nil
	})
	b, err := os.ReadFile(best)
	if err != nil {
		t.Fatal(err)
	}
	return best, b
}

// TestReplicatorScrubsDownloadCopies: the scrub also re-hashes the
// store's assembled download copies and removes one whose bytes rotted.
func TestReplicatorScrubsDownloadCopies(t *testing.T) {
	p := newTestPeer(t)
	obj := p.add(t, randomBytes(t, 1<<20))
	f, err := p.store.OpenCached(context.Background(), obj.CID, content.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	copyPath := filepath.Join(p.dir, "blocks-cache", obj.CID.String())
	consensustest.WaitFor(t, "download copy assembled", func() bool {
		_, err := os.Stat(copyPath)
		return err == nil
	}, 10*time.Second)
	b, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	b[100] ^= 1
	if err := os.WriteFile(copyPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(Config{Store: p.store, State: newStateBox(), GCInterval: -1, ScrubInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		r.wg.Wait()
	})
	r.scrubCache(ctx)
	consensustest.WaitFor(t, "rotten copy removed", func() bool {
		_, err := os.Stat(copyPath)
		return errors.Is(err, fs.ErrNotExist)
	}, 10*time.Second)
}
