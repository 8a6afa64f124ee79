package httpapi

import (
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSmallFileFromMemory: once a manifest file is held in memory, a
// plain GET answers from it with the same headers and bytes as the
// answer from its cache file (http.ServeContent), and ranges, HEAD and
// conditions still get ServeContent's answers.
func TestSmallFileFromMemory(t *testing.T) {
	f := newFixture(t, 4096)
	fc := f.rel.Manifest[0].CID
	target := "/dl/" + fc + "/js/app.js"
	want := "console.log(1)\n"
	f.do("GET", target, "")
	p := filepath.Join(f.dir+"-cache", fc)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(p); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cache copy not written within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	fromFile := f.do("GET", target, "") // first use of the copy
	if _, ok := f.store.CachedBytes(fc); ok {
		t.Fatal("in memory after one use of the copy")
	}
	fromFile2 := f.do("GET", target, "") // loads it
	if _, ok := f.store.CachedBytes(fc); !ok {
		t.Fatal("not in memory after two uses of the copy")
	}
	fromMem := f.do("GET", target, "")
	for _, w := range []*http.Response{fromFile.Result(), fromFile2.Result(), fromMem.Result()} {
		if w.StatusCode != 200 {
			t.Fatalf("status %d", w.StatusCode)
		}
	}
	if fromMem.Body.String() != want || fromFile.Body.String() != want {
		t.Fatalf("bodies %q / %q", fromMem.Body.String(), fromFile.Body.String())
	}
	hm, hf := maps.Clone(fromMem.Header()), maps.Clone(fromFile.Header())
	if !maps.EqualFunc(hm, hf, func(a, b []string) bool { return len(a) == 1 && len(b) == 1 && a[0] == b[0] }) {
		t.Fatalf("headers from memory %v, from the file %v", hm, hf)
	}
	etag := fromMem.Header().Get("ETag")
	for _, tc := range []struct {
		name, method string
		hdr          []string
		code         int
		body         string
	}{
		{"range", "GET", []string{"Range", "bytes=0-6"}, 206, "console"},
		{"head", "HEAD", nil, 200, ""},
		{"if-none-match", "GET", []string{"If-None-Match", etag}, 304, ""},
	} {
		w := f.do(tc.method, target, "", tc.hdr...)
		if w.Code != tc.code || w.Body.String() != tc.body {
			t.Fatalf("%s: %d %q, want %d %q", tc.name, w.Code, w.Body.String(), tc.code, tc.body)
		}
	}
}
