package devicesim

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"mirrord/content/contenttest"
)

// vectorBase is the placeholder host of the vectors' example answers.
const vectorBase = "https://mirror.example.test"

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contenttest.Vectors(t), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeServer is a minimal Capgo-compatible server: it answers update
// checks with whatever the test set, serves files, and records every
// request the device makes.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu           sync.Mutex
	answer       []byte // raw update answer; vectorBase is replaced by the server URL
	answerStatus int
	files        map[string][]byte // URL path -> body
	checks       []map[string]any
	userAgents   []string
	stats        []map[string]any
	gets         []string
	channel      struct {
		status int
		body   string
		reqs   []channelReq
	}
}

type channelReq struct {
	method string
	body   map[string]any
	query  url.Values
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, files: map[string][]byte{}, answerStatus: http.StatusOK}
	f.channel.status = http.StatusOK
	f.channel.body = `{"status":"ok"}`
	f.srv = httptest.NewServer(http.HandlerFunc(f.handle))
	t.Cleanup(f.srv.Close)
	// Serve the vectors at the paths their example answers name.
	vec := contenttest.Vectors(t)
	for _, name := range []string{"bundle-1.0.1.zip", "bundle-1.0.1.zip_encrypted.zip", "bundle-1.0.2.zip", "bundle-1.0.2.zip_encrypted.zip"} {
		f.files["/bundles/"+name] = readVector(t, name)
	}
	root := filepath.Join(vec, "manifest-1.0.2")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		f.files["/manifest/1.0.2/"+filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeServer) url(p string) string { return f.srv.URL + p }

// setAnswer sets the next update answer from a JSON text or a value.
func (f *fakeServer) setAnswer(v any) {
	f.t.Helper()
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			f.t.Fatal(err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = bytes.ReplaceAll(b, []byte(vectorBase), []byte(f.srv.URL))
	f.answerStatus = http.StatusOK
}

func (f *fakeServer) setVectorAnswer(name string) { f.setAnswer(readVector(f.t, name)) }

func (f *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.URL.Path == "/updates" && r.Method == http.MethodPost:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			f.t.Errorf("update check body: %v", err)
		}
		f.checks = append(f.checks, m)
		f.userAgents = append(f.userAgents, r.UserAgent())
		w.WriteHeader(f.answerStatus)
		w.Write(f.answer)
	case r.URL.Path == "/stats" && r.Method == http.MethodPost:
		var evs []map[string]any
		if err := json.Unmarshal(body, &evs); err != nil {
			f.t.Errorf("stats body is not an array: %v", err)
		}
		f.stats = append(f.stats, evs...)
		w.Write([]byte(`{"status":"ok"}`))
	case r.URL.Path == "/channel_self":
		req := channelReq{method: r.Method, query: r.URL.Query()}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.body); err != nil {
				f.t.Errorf("channel body: %v", err)
			}
		}
		f.channel.reqs = append(f.channel.reqs, req)
		w.WriteHeader(f.channel.status)
		w.Write([]byte(f.channel.body))
	case strings.HasPrefix(r.URL.Path, "/nope"):
		http.NotFound(w, r)
	case r.Method == http.MethodGet:
		b, ok := f.files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.gets = append(f.gets, r.URL.Path)
		w.Write(b)
	default:
		http.Error(w, "unexpected request", http.StatusBadRequest)
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
	}
}

// actions returns the stats received since the last call, as
// "action@version_name" strings.
func (f *fakeServer) takeStats() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, ev := range f.stats {
		out = append(out, ev["action"].(string)+"@"+ev["version_name"].(string))
	}
	f.stats = nil
	return out
}

func (f *fakeServer) lastCheck() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.checks) == 0 {
		f.t.Fatal("no update check received")
	}
	return f.checks[len(f.checks)-1]
}

func (f *fakeServer) device(t *testing.T, withKey bool) *Device {
	d := &Device{
		UpdateURL:    f.url("/updates"),
		StatsURL:     f.url("/stats"),
		ChannelURL:   f.url("/channel_self"),
		AppID:        "com.example.mirrord",
		DeviceID:     "8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F",
		Platform:     "android",
		VersionBuild: "1.0.0",
		VersionCode:  "10",
		VersionOS:    "14",
		IsProd:       true,
		Dir:          t.TempDir(),
		Client:       f.srv.Client(),
	}
	if withKey {
		d.PublicKeyPEM = readVector(t, "test_public_key.pem")
	}
	return d
}

// assertTreesEqual checks that got holds exactly want's regular files,
// byte for byte.
func assertTreesEqual(t *testing.T, want, got string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if !d.Type().IsRegular() {
				t.Errorf("%s is not a regular file", p)
			}
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			m[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	w, g := read(want), read(got)
	for name, b := range w {
		if gb, ok := g[name]; !ok {
			t.Errorf("%s missing from %s", name, got)
		} else if !bytes.Equal(gb, b) {
			t.Errorf("%s differs from %s", name, filepath.Join(want, name))
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("unexpected %s in %s", name, got)
		}
	}
}

func join(s []string) string { return strings.Join(s, " ") }

// makeRawZip zips files under their raw names (no checks), sorted.
func makeRawZip(t *testing.T, files map[string]string) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
