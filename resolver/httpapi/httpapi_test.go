package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mirrord/consensus/state"
	"mirrord/content"
)

type fixedState struct{ st *state.State }

func (f fixedState) State() *state.State { return f.st }

type memStats struct {
	mu      sync.Mutex
	events  []json.RawMessage
	ignored map[string][]json.RawMessage
}

func (m *memStats) Append(ev []json.RawMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, ev...)
	return nil
}

func (m *memStats) AppendIgnored(reason string, ev []json.RawMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ignored == nil {
		m.ignored = map[string][]json.RawMessage{}
	}
	m.ignored[reason] = append(m.ignored[reason], ev...)
	return nil
}

type recOverrides struct {
	mu  sync.Mutex
	set map[string]string
	err error
}

func (r *recOverrides) SetDeviceChannel(_ context.Context, app, dev, ch string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.set[app+"/"+dev] = ch
	return nil
}

func (r *recOverrides) UnsetDeviceChannel(_ context.Context, app, dev string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, app+"/"+dev)
	return r.err
}

// fixture is a device API over a real block store holding one plain
// release of com.example.app on a public production channel.
type fixture struct {
	dir   string
	api   *API
	h     http.Handler
	store *content.Store
	stats *memStats
	count *recCounter
	ov    *recOverrides
	zip   []byte
	rel   *state.Release
}

func newFixture(t testing.TB, zipSize int) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "blocks")
	store, err := content.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	zip := make([]byte, zipSize)
	for i := range zip {
		zip[i] = byte(i*31 + i>>9)
	}
	obj, err := store.Add(context.Background(), bytes.NewReader(zip))
	if err != nil {
		t.Fatal(err)
	}
	fileObj, err := store.Add(context.Background(), strings.NewReader("console.log(1)\n"))
	if err != nil {
		t.Fatal(err)
	}
	rel := &state.Release{App: "com.example.app", Version: "1.0.1", ZipCID: obj.CID.String(), ZipSize: int64(len(zip)),
		Checksum: content.SHA256Hex(zip), CreatedAt: 1,
		Manifest: []state.ManifestFile{{FileName: "js/app.js", FileHash: strings.Repeat("ab", 32), CID: fileObj.CID.String(), Size: 15}}}
	prod := state.NewChannel("production")
	prod.ID, prod.Public, prod.Version = 1, true, "1.0.1"
	beta := state.NewChannel("beta")
	beta.ID, beta.AllowDeviceSelfSet, beta.Version = 2, true, "1.0.1"
	st := &state.State{Index: 3, Apps: map[string]*state.AppState{"com.example.app": {
		App:      state.App{ID: "com.example.app"},
		Channels: map[string]*state.Channel{"production": &prod, "beta": &beta},
		Releases: map[string]*state.Release{"1.0.1": rel},
		Devices:  map[string]state.DeviceOverride{},
	}}}
	f := &fixture{dir: dir, store: store, stats: &memStats{}, count: &recCounter{}, ov: &recOverrides{set: map[string]string{}}, zip: zip, rel: rel}
	f.api = New(Config{MaxBodyBytes: 64 << 10, Counter: f.count}, fixedState{st}, store, f.stats, f.ov, slog.New(slog.NewTextHandler(io.Discard, nil)))
	mux := http.NewServeMux()
	f.api.Register(mux)
	f.h = mux
	return f
}

const deviceBody = `{"platform":"android","device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f",
 "app_id":"com.example.app","custom_id":"","version_build":"1.0.0",
 "version_code":"10","version_os":"14","version_name":"builtin",
 "plugin_version":"8.51.23","is_emulator":false,"is_prod":true,
 "install_source":"google_play","defaultChannel":""}`

func (f *fixture) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Host = "edge.test:8080"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, w.Body)
	}
	return m
}

func TestUpdateSuccessShape(t *testing.T) {
	f := newFixture(t, 1000)
	w := f.do("POST", "/updates", deviceBody)
	if w.Code != 200 {
		t.Fatalf("HTTP %d: %s", w.Code, w.Body)
	}
	m := decode(t, w)
	wantURL := "http://edge.test:8080/dl/" + f.rel.ZipCID + "/1.0.1.zip"
	if m["version"] != "1.0.1" || m["url"] != wantURL || m["checksum"] != f.rel.Checksum || m["session_key"] != "" {
		t.Fatalf("answer: %v", m)
	}
	man, ok := m["manifest"].([]any)
	if !ok || len(man) != 1 {
		t.Fatalf("manifest: %v", m["manifest"])
	}
	e := man[0].(map[string]any)
	if e["file_name"] != "js/app.js" || e["download_url"] != "http://edge.test:8080/dl/"+f.rel.Manifest[0].CID+"/js/app.js" {
		t.Fatalf("manifest entry: %v", e)
	}
	// Field order and types as Capgo's resToVersion (golden).
	if !strings.HasPrefix(w.Body.String(), `{"version":"1.0.1","url":"http://edge.test:8080/dl/`) {
		t.Fatalf("body: %s", w.Body)
	}
	// Up to date.
	m = decode(t, f.do("POST", "/updates", strings.Replace(deviceBody, `"version_name":"builtin"`, `"version_name":"1.0.1"`, 1)))
	if m["error"] != "no_new_version_available" || m["kind"] != "up_to_date" || m["message"] == "" {
		t.Fatalf("up to date: %v", m)
	}
	// Unknown app: 200 with an error, never 429.
	w = f.do("POST", "/updates", strings.Replace(deviceBody, "com.example.app", "com.other.app", 1))
	if w.Code != 200 || decode(t, w)["kind"] != "failed" {
		t.Fatalf("unknown app: %d %s", w.Code, w.Body)
	}
}

func TestPublicURL(t *testing.T) {
	f := newFixture(t, 10)
	f.api.cfg.PublicURL = "https://cdn.example.com"
	m := decode(t, f.do("POST", "/updates", deviceBody))
	if !strings.HasPrefix(m["url"].(string), "https://cdn.example.com/dl/") {
		t.Fatalf("url: %v", m["url"])
	}
}

func TestBadBodies(t *testing.T) {
	f := newFixture(t, 10)
	for _, body := range []string{"", "null", "[]", "{", `"x"`, "42", `{"app_id":"com.example.app"}`,
		`{"device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f"}`, `{"device_id":1,"app_id":"com.example.app"}`,
		`{"device_id":"not-a-uuid","app_id":"com.example.app"}`, strings.Repeat("[", 10000)} {
		for _, path := range []string{"/updates", "/channel_self"} {
			w := f.do("POST", path, body)
			if w.Code != 400 {
				t.Errorf("POST %s %.30q: HTTP %d, want 400: %s", path, body, w.Code, w.Body)
			}
			if m := decode(t, w); m["error"] == "" || m["message"] == "" {
				t.Errorf("POST %s %.30q: no error/message: %v", path, body, m)
			}
		}
	}
	big := `{"x":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, path := range []string{"/updates", "/stats", "/channel_self"} {
		if w := f.do("POST", path, big); w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s oversize: HTTP %d, want 413", path, w.Code)
		}
	}
}

// recCounter records what the API counts.
type recCounter struct {
	mu     sync.Mutex
	checks []string
	events []string
	// judge, if set, gives the verdict of an event (default: counted).
	judge func(device, action string) state.EventVerdict
}

func (c *recCounter) CountCheck(app, version, device string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks = append(c.checks, app+" "+version+" "+device)
}

func (c *recCounter) CountEvent(app, version, action, device string) state.EventVerdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, app+" "+version+" "+action)
	if c.judge != nil {
		return c.judge(device, action)
	}
	return state.VerdictCounted
}

const statEv = `{"platform":"android","device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f","app_id":"com.example.app","action":"%s","version_name":"1.0.1","old_version_name":"builtin","timestamp":1,"metadata":{"k":"v"}}`

func TestStats(t *testing.T) {
	f := newFixture(t, 10)
	w := f.do("POST", "/stats", fmt.Sprintf(statEv, "set"))
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"ok"}` {
		t.Fatalf("single: %d %s", w.Code, w.Body)
	}

	// A full plugin batch of 200, with actions Capgo does not know.
	evs := make([]string, 200)
	for i := range evs {
		evs[i] = fmt.Sprintf(statEv, []string{"download_complete", "some_future_action", "session_key_required", "update_fail"}[i%4])
	}
	w = f.do("POST", "/stats", "["+strings.Join(evs, ",")+"]")
	var ans statBatchAnswer
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || w.Code != 200 || ans.Status != "ok" || len(ans.Results) != 200 {
		t.Fatalf("batch of 200: %d %s", w.Code, w.Body)
	}
	for i, r := range ans.Results {
		if r.Status != "ok" || r.Index != i {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	if len(f.stats.events) != 201 || len(f.count.events) != 201 {
		t.Fatalf("kept %d events, counted %d, want 201", len(f.stats.events), len(f.count.events))
	}
	if f.count.events[4] != "com.example.app 1.0.1 update_fail" {
		t.Fatalf("counted %q", f.count.events[4])
	}

	// Per-index errors: the good events are kept, the bad ones named.
	bad := []string{`{"nope":1}`, `"a string"`, `{"app_id":"com.example.app","device_id":"d","action":7}`,
		`{"app_id":"com.example.app","action":"set"}`, `null`}
	w = f.do("POST", "/stats", "["+fmt.Sprintf(statEv, "set")+","+strings.Join(bad, ",")+"]")
	ans = statBatchAnswer{}
	if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || w.Code != 200 || len(ans.Results) != 1+len(bad) {
		t.Fatalf("mixed batch: %d %s", w.Code, w.Body)
	}
	if ans.Results[0].Status != "ok" {
		t.Fatalf("good event refused: %+v", ans.Results[0])
	}
	for i, r := range ans.Results[1:] {
		if r.Status != "error" || r.Index != i+1 || r.Error != "invalid_json_body" || r.Message == "" {
			t.Fatalf("bad event %d: %+v", i+1, r)
		}
	}
	if len(f.stats.events) != 202 {
		t.Fatalf("kept %d events, want 202", len(f.stats.events))
	}

	// A single unusable event is still a 200 (the plugin drops it either
	// way); only a body that is not JSON is a 400.
	for _, body := range append(bad, `[]`) {
		if w := f.do("POST", "/stats", body); w.Code != 200 {
			t.Errorf("JSON body %s: %d %s", body, w.Code, w.Body)
		}
	}
	for _, body := range []string{``, `{`, `not json`, `[{"action":"set"},`, `{"a":1}{"b":2}`} {
		if w := f.do("POST", "/stats", body); w.Code != 400 {
			t.Errorf("non-JSON body %q: %d %s", body, w.Code, w.Body)
		}
	}
	if w := f.do("GET", "/stats", ""); w.Code != 200 {
		t.Fatalf("GET /stats: %d", w.Code)
	}
}

func TestUpdateCountsChecks(t *testing.T) {
	f := newFixture(t, 10)
	if w := f.do("POST", "/updates", deviceBody); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(f.count.checks) != 1 || f.count.checks[0] != "com.example.app 1.0.1 8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f" {
		t.Fatalf("checks %v", f.count.checks)
	}
}

func TestChannelSelf(t *testing.T) {
	f := newFixture(t, 10)
	withCh := strings.Replace(deviceBody, `"defaultChannel":""`, `"defaultChannel":"","channel":"beta"`, 1)
	m := decode(t, f.do("POST", "/channel_self", withCh))
	if m["status"] != "ok" || len(f.ov.set) != 0 {
		t.Fatalf("new plugin set: %v (overrides %v)", m, f.ov.set)
	}
	old := strings.Replace(withCh, `"plugin_version":"8.51.23"`, `"plugin_version":"5.2.0"`, 1)
	m = decode(t, f.do("POST", "/channel_self", old))
	if m["status"] != "ok" || f.ov.set["com.example.app/8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f"] != "beta" {
		t.Fatalf("old plugin set: %v (overrides %v)", m, f.ov.set)
	}
	f.ov.err = errors.New("no quorum")
	if w := f.do("POST", "/channel_self", old); w.Code == 200 && decode(t, w)["error"] == nil {
		t.Fatalf("a failed override write was reported as ok: %s", w.Body)
	}
	f.ov.err = nil
	m = decode(t, f.do("PUT", "/channel_self", deviceBody))
	if m["channel"] != "production" {
		t.Fatalf("get: %v", m)
	}
	w := f.do("GET", "/channel_self?app_id=com.example.app&platform=android&is_emulator=false&is_prod=true&device_id=8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f&plugin_version=8.51.23&version_build=1.0.0&version_name=builtin", "")
	var list []map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if _, ok := list[0]["id"].(float64); !ok {
		t.Fatalf("channel id must be a number: %v", list[0])
	}
	if w := f.do("DELETE", "/channel_self?app_id=com.example.app&device_id=8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f&platform=android&plugin_version=5.2.0&version_build=1.0.0", ""); w.Code != 200 {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
}

func TestDownloads(t *testing.T) {
	f := newFixture(t, 3<<20+17)
	path := "/dl/" + f.rel.ZipCID + "/1.0.1.zip"
	w := f.do("GET", path, "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), f.zip) {
		t.Fatalf("GET: %d, %d bytes", w.Code, w.Body.Len())
	}
	etag := `"` + f.rel.ZipCID + `"`
	h := w.Header()
	if h.Get("ETag") != etag || h.Get("Content-Length") != fmt.Sprint(len(f.zip)) || h.Get("Accept-Ranges") != "bytes" ||
		h.Get("Content-Type") != "application/zip" || h.Get("Content-Encoding") != "" || !strings.Contains(h.Get("Cache-Control"), "immutable") {
		t.Fatalf("headers: %v", h)
	}
	w = f.do("HEAD", path, "")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != fmt.Sprint(len(f.zip)) {
		t.Fatalf("HEAD: %d %v", w.Code, w.Header())
	}
	for _, tc := range []struct {
		rng        string
		start, end int
	}{{"bytes=0-0", 0, 0}, {"bytes=100-", 100, len(f.zip) - 1}, {"bytes=262140-262150", 262140, 262150}, {"bytes=-10", len(f.zip) - 10, len(f.zip) - 1}} {
		w = f.do("GET", path, "", "Range", tc.rng)
		want := fmt.Sprintf("bytes %d-%d/%d", tc.start, tc.end, len(f.zip))
		if w.Code != 206 || w.Header().Get("Content-Range") != want || !bytes.Equal(w.Body.Bytes(), f.zip[tc.start:tc.end+1]) {
			t.Errorf("Range %s: %d %q (want %q), %d bytes", tc.rng, w.Code, w.Header().Get("Content-Range"), want, w.Body.Len())
		}
	}
	if w = f.do("GET", path, "", "Range", fmt.Sprintf("bytes=%d-", len(f.zip))); w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("range past the end: %d", w.Code)
	}
	if w = f.do("GET", path, "", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	if w = f.do("GET", "/dl/"+f.rel.Manifest[0].CID+"/js/app.js", ""); w.Code != 200 || w.Body.String() != "console.log(1)\n" {
		t.Errorf("manifest file: %d %q", w.Code, w.Body)
	}
	if w = f.do("GET", "/dl/notacid/x.zip", ""); w.Code != 400 {
		t.Errorf("bad cid: %d", w.Code)
	}
	missing := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	if w = f.do("GET", "/dl/"+missing+"/x.zip", ""); w.Code != 404 {
		t.Errorf("missing object: %d", w.Code)
	}
}

// TestCorruptBlockNeverServed flips a byte of a stored block on disk: the
// node must fail the download rather than send wrong bytes.
func TestCorruptBlockNeverServed(t *testing.T) {
	f := newFixture(t, 1<<20)
	p := findBlockFile(t, f)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	w := f.do("GET", "/dl/"+f.rel.ZipCID+"/1.0.1.zip", "")
	if w.Code == 200 && bytes.Equal(w.Body.Bytes(), f.zip) {
		t.Fatal("corruption not noticed, yet bytes equal: test did not corrupt a block of the zip")
	}
	if w.Code == 200 && w.Body.Len() == len(f.zip) {
		t.Fatalf("served %d wrong bytes with HTTP 200", w.Body.Len())
	}
}

// findBlockFile returns the largest block file of the store (a leaf of
// the fixture's zip).
func findBlockFile(t *testing.T, f *fixture) string {
	t.Helper()
	var best string
	var size int64
	dir := f.dir
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".data") && info.Size() > size {
			best, size = p, info.Size()
		}
		return nil
	})
	if best == "" {
		t.Fatal("no block files found")
	}
	return best
}

// TestDownloadFromAssembledCopy checks that once an object was assembled
// into the cache, downloads (full and ranged) still give the exact bytes.
func TestDownloadFromAssembledCopy(t *testing.T) {
	f := newFixture(t, 1<<20+5)
	path := "/dl/" + f.rel.ZipCID + "/1.0.1.zip"
	if w := f.do("GET", path, ""); !bytes.Equal(w.Body.Bytes(), f.zip) {
		t.Fatal("first download differs")
	}
	cached := filepath.Join(f.dir+"-cache", f.rel.ZipCID)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(cached); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("assembled copy not written within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	if w := f.do("GET", path, ""); w.Code != 200 || !bytes.Equal(w.Body.Bytes(), f.zip) {
		t.Fatalf("download from the assembled copy: %d", w.Code)
	}
	w := f.do("GET", path, "", "Range", "bytes=1000-1999")
	if w.Code != 206 || !bytes.Equal(w.Body.Bytes(), f.zip[1000:2000]) || w.Header().Get("ETag") != `"`+f.rel.ZipCID+`"` {
		t.Fatalf("range from the assembled copy: %d %v", w.Code, w.Header())
	}
}
