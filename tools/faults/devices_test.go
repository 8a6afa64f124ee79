package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mirrord/content"
)

// checkTimeout bounds one update check: the Capgo plugin gives up after
// 20s by default; an answer from local state takes milliseconds.
const checkTimeout = 10 * time.Second

// tally counts what the devices saw during a scenario.
type tally struct {
	// Update checks: sent; answered correctly; failed on a node that
	// was up for the whole request (an error, a timeout, a status other
	// than 200, or a wrong answer); sent to a node that went down while
	// the request ran (not held against it).
	sent, answered, failed, toDown atomic.Int64
	wrongAnswers                   atomic.Int64
	slowestCheck                   maxDuration // of answered checks

	// Downloads: byte-correct; failed on a node that was up; 200 with
	// bytes other than the published ones (whatever the node's state).
	dlOK, dlFailed, wrongBytes atomic.Int64
	slowestDownload            maxDuration // of byte-correct ones

	mu      sync.Mutex
	samples []string
}

// maxSamples bounds the failures kept for the report.
const maxSamples = 8

func (t *tally) sample(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.samples) < maxSamples {
		t.samples = append(t.samples, fmt.Sprintf(format, args...))
	}
}

// countDownload adds a download's outcome; a failure counts only when
// the node was up for the whole download.
func (t *tally) countDownload(n *node, gen uint64, url string, out outcome, detail string) {
	switch out {
	case fetchOK:
		t.dlOK.Add(1)
	case fetchWrong:
		t.wrongBytes.Add(1)
		t.sample("WRONG BYTES from %s %s: %s", n.name, url, detail)
	case fetchFailed:
		if n.upSince(gen) {
			t.dlFailed.Add(1)
			t.sample("download from %s %s: %s", n.name, url, detail)
		}
	}
}

// fleet is the simulated devices: workers post Capgo update checks to
// the up nodes in turn, at a bounded rate and count, and download some
// of what they are offered, checking every byte.
type fleet struct {
	c       *cluster
	ledger  *ledger
	p       plan
	t       *tally
	devices []string
	check   *http.Client
	dl      *http.Client
}

func newFleet(c *cluster, l *ledger, p plan, t *tally, seed [32]byte) *fleet {
	rng := rand.New(rand.NewChaCha8(seed))
	var devices []string
	for range 64 {
		devices = append(devices, fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x",
			rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff))
	}
	return &fleet{
		c: c, ledger: l, p: p, t: t, devices: devices,
		// A new connection per request, as a phone that wakes up makes:
		// a pooled connection to a node that was killed would fail for
		// the client's sake, not the node's.
		check: &http.Client{Timeout: checkTimeout, Transport: &http.Transport{DisableKeepAlives: true}},
		dl:    downloadClient(),
	}
}

func downloadClient() *http.Client {
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// run starts the workers; they stop when stop is closed or the plan's
// bound on checks is reached. The returned function waits for them.
func (f *fleet) run(stop <-chan struct{}) func() {
	tokens := make(chan int)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(f.p.checksPerSecond))
		defer tick.Stop()
		for i := range f.p.maxChecks {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case <-stop:
				return
			case tokens <- i:
			}
		}
	})
	for range f.p.deviceWorkers {
		wg.Go(func() {
			for i := range tokens {
				f.checkOnce(i)
			}
		})
	}
	return wg.Wait
}

// pick returns the i-th node in turn among those up, nil if none is.
func (f *fleet) pick(i int) *node {
	for k := range f.c.nodes {
		if n := f.c.nodes[(i+k)%len(f.c.nodes)]; n.isUp() {
			return n
		}
	}
	return nil
}

// checkAnswer is a Capgo update answer (capgo-protocol.md §3.2).
type checkAnswer struct {
	Version    string `json:"version"`
	URL        string `json:"url"`
	Checksum   string `json:"checksum"`
	SessionKey string `json:"session_key"`
	Manifest   []struct {
		FileName    string `json:"file_name"`
		FileHash    string `json:"file_hash"`
		DownloadURL string `json:"download_url"`
	} `json:"manifest"`
	Error   string `json:"error"`
	Message string `json:"message"`
	Kind    string `json:"kind"`
}

func (f *fleet) checkOnce(i int) {
	n := f.pick(i)
	if n == nil {
		return // every node is down on purpose: nothing to send
	}
	gen, up := n.ticket()
	if !up {
		return
	}
	f.t.sent.Add(1)
	start := time.Now()
	ans, err := postCheck(f.check, n, f.devices[i%len(f.devices)], versionName(i))
	if err != nil {
		if n.upSince(gen) {
			f.t.failed.Add(1)
			f.t.sample("check on %s: %v", n.name, err)
		} else {
			f.t.toDown.Add(1)
		}
		return
	}
	if problem := f.judge(n, ans); problem != "" {
		f.t.failed.Add(1)
		f.t.wrongAnswers.Add(1)
		f.t.sample("WRONG ANSWER from %s: %s", n.name, problem)
		return
	}
	f.t.answered.Add(1)
	if n.upSince(gen) {
		// A request to a node frozen meanwhile is answered after the
		// SIGCONT: it says how long the freeze was, not how fast checks are.
		f.t.slowestCheck.observe(time.Since(start))
	}
	if ans.Version != "" && i%f.p.downloadEvery == 0 {
		f.download(n, gen, ans, i/f.p.downloadEvery)
	}
}

// versionName is the bundle a device runs: most run the builtin one,
// some the first release (they may be told there is nothing newer).
func versionName(i int) string {
	if i%4 == 1 {
		return "1.0.1"
	}
	return "builtin"
}

// postCheck sends n the update check of a device running the bundle
// named running; an answer other than 200 JSON is an error.
func postCheck(hc *http.Client, n *node, device, running string) (checkAnswer, error) {
	var ans checkAnswer
	body, _ := json.Marshal(map[string]any{
		"platform": "android", "device_id": device, "app_id": appID, "custom_id": "",
		"version_build": "1.0.0", "version_code": "10", "version_os": "14", "version_name": running,
		"plugin_version": "8.51.23", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	})
	resp, err := hc.Post(n.url+"/updates", "application/json", bytes.NewReader(body))
	if err != nil {
		return ans, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ans, fmt.Errorf("HTTP %d, reading the body: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return ans, fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(string(b), 200))
	}
	if err := json.Unmarshal(b, &ans); err != nil {
		return ans, fmt.Errorf("HTTP 200 but not JSON: %s", clip(string(b), 200))
	}
	return ans, nil
}

// judge returns what is wrong with an update answer from n, "" if
// nothing: the offered release must be one the harness published, with
// its checksum, file hashes and CIDs, to be downloaded from n itself.
func (f *fleet) judge(n *node, ans checkAnswer) string {
	if ans.Error != "" || ans.Kind != "" {
		if ans.Error == "no_new_version_available" {
			return ""
		}
		return fmt.Sprintf("error %q (%s)", ans.Error, ans.Message)
	}
	r := f.ledger.get(ans.Version)
	switch {
	case r == nil:
		return fmt.Sprintf("offered version %q, which was never published", ans.Version)
	case ans.Checksum != r.zip.sha256:
		return fmt.Sprintf("version %s with checksum %s, published with %s", ans.Version, ans.Checksum, r.zip.sha256)
	case ans.SessionKey != "":
		return fmt.Sprintf("version %s is plain but has a session key", ans.Version)
	case !strings.HasPrefix(ans.URL, n.url+"/dl/"):
		return fmt.Sprintf("zip url %s is not on the node asked", ans.URL)
	case len(ans.Manifest) != len(r.files):
		return fmt.Sprintf("version %s has %d manifest files, published with %d", ans.Version, len(ans.Manifest), len(r.files))
	}
	if cid := f.ledger.cidOf(r); cid != "" && !strings.Contains(ans.URL, "/dl/"+cid+"/") {
		return fmt.Sprintf("zip url %s does not name the acknowledged CID %s", ans.URL, cid)
	}
	for _, m := range ans.Manifest {
		want, ok := r.files[strings.TrimSuffix(m.FileName, ".br")]
		switch {
		case !ok:
			return fmt.Sprintf("manifest file %s was not published", m.FileName)
		case m.FileHash != want.sha256:
			return fmt.Sprintf("manifest file %s has hash %s, published %s", m.FileName, m.FileHash, want.sha256)
		case !strings.HasPrefix(m.DownloadURL, n.url+"/dl/"):
			return fmt.Sprintf("manifest url %s is not on the node asked", m.DownloadURL)
		}
	}
	return ""
}

// download fetches, from n, the zip or one of the manifest files an
// answer offered (the k-th download picks which) and checks its bytes.
func (f *fleet) download(n *node, gen uint64, ans checkAnswer, k int) {
	r := f.ledger.get(ans.Version)
	url, want := ans.URL, r.zip
	if k%2 == 1 && len(ans.Manifest) > 0 {
		m := ans.Manifest[k/2%len(ans.Manifest)]
		url, want = m.DownloadURL, r.files[strings.TrimSuffix(m.FileName, ".br")]
		want.name = m.FileName
	}
	start := time.Now()
	out, detail := fetchObject(f.dl, url, want)
	if out == fetchOK {
		f.t.slowestDownload.observe(time.Since(start))
	}
	f.t.countDownload(n, gen, url, out, detail)
}

// maxDuration keeps the longest duration observed.
type maxDuration struct{ ns atomic.Int64 }

func (m *maxDuration) observe(d time.Duration) {
	for {
		old := m.ns.Load()
		if int64(d) <= old || m.ns.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (m *maxDuration) get() time.Duration { return time.Duration(m.ns.Load()) }

// outcome is the result of one download.
type outcome int

const (
	fetchOK     outcome = iota
	fetchFailed         // no answer, an error status or a cut body whose bytes were right
	fetchWrong          // bytes other than the published ones
)

// fetchObject downloads url and compares the body with want's bytes. A
// body cut short counts as wrong if the bytes received already differ.
func fetchObject(hc *http.Client, url string, want object) (outcome, string) {
	resp, err := hc.Get(url)
	if err != nil {
		return fetchFailed, err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fetchFailed, fmt.Sprintf("HTTP %d: %s", resp.StatusCode, clip(string(b), 120))
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, want.size+1))
	expected, err := os.ReadFile(want.path)
	if err != nil {
		return fetchFailed, "harness: " + err.Error()
	}
	if strings.HasSuffix(want.name, ".br") {
		if readErr != nil {
			return fetchFailed, readErr.Error()
		}
		plain, err := content.BrotliDecode(body, want.size+1)
		if err != nil {
			return fetchWrong, fmt.Sprintf("%d bytes that are not Brotli: %v", len(body), err)
		}
		body = plain
	} else if readErr != nil {
		if !bytes.HasPrefix(expected, body) {
			return fetchWrong, fmt.Sprintf("the %d bytes received before the error (%v) differ from the published ones", len(body), readErr)
		}
		return fetchFailed, fmt.Sprintf("body cut after %d of %d bytes: %v", len(body), len(expected), readErr)
	}
	if !bytes.Equal(body, expected) {
		return fetchWrong, fmt.Sprintf("%d bytes with sha256 %s, published %d bytes with sha256 %s",
			len(body), sha256Hex(body), len(expected), want.sha256)
	}
	return fetchOK, ""
}
