package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/content/contenttest"
	"mirrord/node"
)

// waitCacheCopy waits until the assembled copy of the fixture's zip is
// on disk and returns its path.
func waitCacheCopy(t *testing.T, f *fixture) string {
	t.Helper()
	p := filepath.Join(f.dir+"-cache", f.rel.ZipCID)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("assembled copy not written within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// checkNotCorrupt fails if a download answered 200 (or 206) with bytes
// other than want: an error answer is acceptable, wrong bytes marked
// immutable are not.
func checkNotCorrupt(t *testing.T, what string, w *httptest.ResponseRecorder, want []byte) {
	t.Helper()
	if (w.Code == 200 || w.Code == 206) && !bytes.Equal(w.Body.Bytes(), want) {
		t.Fatalf("%s: %d with %d wrong bytes (Cache-Control %q)", what, w.Code, w.Body.Len(), w.Header().Get("Cache-Control"))
	}
	if w.Code != 200 && w.Code != 206 {
		t.Fatalf("%s: %d, want the right bytes from the blocks", what, w.Code)
	}
}

// TestCorruptCacheCopyNeverServed flips one byte of the assembled copy
// on disk: the download must still send the right bytes.
func TestCorruptCacheCopyNeverServed(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serveBefore bool // one download from the verified copy before the flip
	}{
		{"flip before first use", false},
		{"flip after a verified download", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1<<20+5)
			path := "/dl/" + f.rel.ZipCID + "/1.0.1.zip"
			if w := f.do("GET", path, ""); !bytes.Equal(w.Body.Bytes(), f.zip) {
				t.Fatal("first download differs")
			}
			p := waitCacheCopy(t, f)
			if tc.serveBefore {
				if w := f.do("GET", path, ""); w.Code != 200 || !bytes.Equal(w.Body.Bytes(), f.zip) {
					t.Fatalf("download from the copy: %d", w.Code)
				}
			}
			contenttest.FlipByte(t, p, 1500)
			checkNotCorrupt(t, "range", f.do("GET", path, "", "Range", "bytes=1000-1999"), f.zip[1000:2000])
			checkNotCorrupt(t, "whole", f.do("GET", path, ""), f.zip)
			// The copy is assembled again and served.
			waitCacheCopy(t, f)
			checkNotCorrupt(t, "rebuilt", f.do("GET", path, ""), f.zip)
		})
	}
}

// netNode is a block store on a libp2p host with bitswap, as in a node.
type netNode struct {
	h     host.Host
	store *content.Store
	dir   string // the block store
}

func newNetNode(t *testing.T) *netNode {
	t.Helper()
	dir := t.TempDir()
	h, err := node.NewHost(node.HostConfig{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := content.OpenStore(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.SetExchange(node.NewExchange(ctx, h, st.Blockstore(), nil))
	t.Cleanup(func() {
		st.Close()
		cancel()
		h.Close()
	})
	return &netNode{h: h, store: st, dir: filepath.Join(dir, "blocks")}
}

// logBuf collects log lines for assertions.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// netFixture is a device API over a node (store online, connected by
// bitswap to a peer) behind a real HTTP server.
type netFixture struct {
	a, b   *netNode
	srv    *httptest.Server
	client *http.Client
	logs   *logBuf
}

// newNetFixture serves a's store with the releases rels gives (it may
// add objects to b first); a and b are connected.
func newNetFixture(t *testing.T, cfg content.DownloadConfig, rels func(b *netNode) []*state.Release) *netFixture {
	t.Helper()
	a, b := newNetNode(t), newNetNode(t)
	if err := a.h.Connect(context.Background(), peer.AddrInfo{ID: b.h.ID(), Addrs: b.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	logs := &logBuf{}
	cfg.Log = slog.New(slog.NewTextHandler(logs, nil))
	a.store.SetDownloads(cfg)
	app := &state.AppState{App: state.App{ID: "com.example.app"}, Releases: map[string]*state.Release{}}
	if rels != nil {
		for _, r := range rels(b) {
			app.Releases[r.Version] = r
		}
	}
	st := &state.State{Index: 1, Apps: map[string]*state.AppState{app.App.ID: app}}
	api := New(Config{}, fixedState{st}, a.store, nil, nil, slog.New(slog.NewTextHandler(logs, nil)))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		srv.Close()
	})
	return &netFixture{a: a, b: b, srv: srv, client: &http.Client{Transport: tr}, logs: logs}
}

func (n *netFixture) get(ctx context.Context, c string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", n.srv.URL+"/dl/"+c+"/x.zip", nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// randomCID is a well-formed CID of bytes nobody has.
func randomCID(t *testing.T) cid.Cid {
	t.Helper()
	b := make([]byte, 32)
	rand.Read(b)
	mh, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// goroutineSlack absorbs goroutines the libp2p hosts and the HTTP
// server start and stop on their own; a download that leaks leaves
// several goroutines per request, hundreds here.
const goroutineSlack = 25

// waitGoroutines waits until the goroutine count is back to at most
// base plus goroutineSlack.
func waitGoroutines(t *testing.T, base int, client *http.Client) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; {
		client.CloseIdleConnections()
		n := runtime.NumGoroutine()
		if n <= base+goroutineSlack {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines 15s after the downloads, %d before:\n%.20000s", n, base, buf)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// baseline warms the server and client up and counts goroutines.
func (n *netFixture) baseline(t *testing.T) int {
	t.Helper()
	if _, _, err := n.get(context.Background(), "bad"); err != nil {
		t.Fatal(err)
	}
	n.client.CloseIdleConnections()
	return runtime.NumGoroutine()
}

// TestUnreferencedDownloadsAreCheap: a download of a well-formed CID that
// no release references is answered 404 from the local store, without
// asking peers: it must neither wait nor leave goroutines behind, and it
// is not an error worth a log line.
func TestUnreferencedDownloadsAreCheap(t *testing.T) {
	n := newNetFixture(t, content.DownloadConfig{}, nil)
	base := n.baseline(t)
	const requests, workers = 300, 16
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= requests && ctx.Err() == nil {
				// A client that waited 10s has waited on the network.
				rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
				resp, _, err := n.get(rctx, randomCID(t).String())
				rcancel()
				if err == nil && resp.StatusCode != http.StatusNotFound {
					err = fmt.Errorf("status %d, want 404", resp.StatusCode)
				}
				if err != nil {
					errc <- err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		t.Fatalf("unreferenced download: %v", err)
	}
	waitGoroutines(t, base, n.client)
	if n.a.store.Fetching() != 0 {
		t.Fatalf("%d downloads still fetching", n.a.store.Fetching())
	}
	if strings.Contains(n.logs.String(), "level=ERROR") {
		t.Fatalf("404s logged errors:\n%.2000s", n.logs.String())
	}
}

// TestReferencedMissingObjectTimesOut: a release references an object no
// peer has. The download asks the peers, gives up after the stall
// timeout with 503 and Retry-After, and leaves nothing running.
func TestReferencedMissingObjectTimesOut(t *testing.T) {
	defer func(d time.Duration) { faultLogEvery = d }(faultLogEvery)
	faultLogEvery = time.Hour // the whole test is one burst
	lost := randomCID(t)
	n := newNetFixture(t, content.DownloadConfig{FetchStall: 200 * time.Millisecond}, func(*netNode) []*state.Release {
		return []*state.Release{{App: "com.example.app", Version: "1.0.0", ZipCID: lost.String(), ZipSize: 10}}
	})
	base := n.baseline(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			resp, _, err := n.get(ctx, lost.String())
			switch {
			case err != nil:
				errs[i] = err
			case resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "":
				errs[i] = fmt.Errorf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base, n.client)
	if n.a.store.Fetching() != 0 {
		t.Fatalf("%d downloads still fetching", n.a.store.Fetching())
	}
	// 20 timeouts in a burst: the warning is rate-limited.
	if c := strings.Count(n.logs.String(), "no peer sent the object in time"); c != 1 {
		t.Fatalf("%d timeout warnings, want 1:\n%s", c, n.logs.String())
	}
}

// TestDownloadFetchesFromPeerWithinCap: a referenced object only a peer
// holds is fetched while it streams. Past the cap of concurrent fetches
// a download gets 503 at once; a client that goes away frees its slot
// and its goroutines, and is not logged as an error.
func TestDownloadFetchesFromPeerWithinCap(t *testing.T) {
	lost := randomCID(t)
	data := make([]byte, 2<<20+9)
	rand.Read(data)
	var obj content.Object
	n := newNetFixture(t, content.DownloadConfig{MaxFetches: 1, FetchStall: time.Minute}, func(b *netNode) []*state.Release {
		var err error
		if obj, err = b.store.Add(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return []*state.Release{
			{App: "com.example.app", Version: "1.0.0", ZipCID: obj.CID.String(), ZipSize: obj.Size},
			{App: "com.example.app", Version: "1.0.1", ZipCID: lost.String(), ZipSize: 10},
		}
	})
	base := n.baseline(t)

	resp, body, err := n.get(context.Background(), obj.CID.String())
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("download of an object a peer holds: %v %v, equal=%v", err, resp, bytes.Equal(body, data))
	}

	// One download waits on the lost object and holds the only slot.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // before the server closes, if the test fails
	done := make(chan error, 1)
	go func() {
		_, _, err := n.get(ctx, lost.String())
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); n.a.store.Fetching() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the first download did not start fetching")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer rcancel()
	resp, _, err = n.get(rctx, lost.String())
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("download past the cap: %v %v, want 503 with Retry-After", err, resp)
	}
	// The object is complete here now: served without a slot.
	resp, body, err = n.get(rctx, obj.CID.String())
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("local download while the slot is taken: %v %v", err, resp)
	}

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled download: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); n.a.store.Fetching() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned download still holds its fetch slot")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	waitGoroutines(t, base, n.client)
	if strings.Contains(n.logs.String(), "level=ERROR") || strings.Contains(n.logs.String(), "level=WARN") {
		t.Fatalf("a client that went away was logged:\n%s", n.logs.String())
	}
}

// TestReferencedCorruptBlockRepairedFromPeer: an object complete here
// but with a corrupt block is still served right: the bad block is
// dropped and fetched from the peer that holds the object.
func TestReferencedCorruptBlockRepairedFromPeer(t *testing.T) {
	data := make([]byte, 2<<20+9)
	rand.Read(data)
	var obj content.Object
	n := newNetFixture(t, content.DownloadConfig{FetchStall: 10 * time.Second}, func(b *netNode) []*state.Release {
		var err error
		if obj, err = b.store.Add(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		return []*state.Release{{App: "com.example.app", Version: "1.0.0", ZipCID: obj.CID.String(), ZipSize: obj.Size}}
	})
	if _, err := n.a.store.Add(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	var leaf string
	var size int64
	filepath.Walk(n.a.dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") && info.Size() > size {
			leaf, size = p, info.Size()
		}
		return nil
	})
	contenttest.FlipByte(t, leaf, size/2)
	resp, body, err := n.get(context.Background(), obj.CID.String())
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("download with a corrupt local block: %v %v, equal=%v", err, resp, bytes.Equal(body, data))
	}
	if n.a.store.Repaired() == 0 {
		t.Fatal("no block repaired")
	}
}
