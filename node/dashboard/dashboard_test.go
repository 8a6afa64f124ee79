package dashboard

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle(Prefix, Handler())
	mux.Handle("GET /{$}", RedirectRoot())
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	return w
}

func TestServesFilesWithHeaders(t *testing.T) {
	for path, ctype := range map[string]string{
		"/ui/":            "text/html; charset=utf-8",
		"/ui/index.html":  "text/html; charset=utf-8",
		"/ui/app.js":      "text/javascript; charset=utf-8",
		"/ui/history.js":  "text/javascript; charset=utf-8",
		"/ui/audit.js":    "text/javascript; charset=utf-8",
		"/ui/app.css":     "text/css; charset=utf-8",
		"/ui/favicon.svg": "image/svg+xml",
	} {
		w := serve(t, "GET", path)
		if w.Code != 200 || w.Header().Get("Content-Type") != ctype {
			t.Errorf("GET %s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		for k, v := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy, "X-Content-Type-Options": "nosniff",
			"Cache-Control": "no-cache", "X-Frame-Options": "DENY",
		} {
			if got := w.Header().Get(k); got != v {
				t.Errorf("GET %s: %s %q, want %q", path, k, got, v)
			}
		}
		etag := w.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("GET %s: no ETag", path)
		}
		if w := serve(t, "GET", path, "If-None-Match", etag); w.Code != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, w.Code)
		}
	}
	if !strings.HasPrefix(ContentSecurityPolicy, "default-src 'self'") || strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Errorf("CSP %q", ContentSecurityPolicy)
	}
}

func TestNoListingNoOthers(t *testing.T) {
	for _, path := range []string{"/ui/static/", "/ui/static/index.html", "/ui/nothing.js", "/ui/../dashboard.go", "/ui/.", "/ui/%2e%2e/doc.go"} {
		// 404, or the mux's redirect to the cleaned path; never a listing
		// or a file from outside static/.
		if w := serve(t, "GET", path); w.Code != http.StatusNotFound && (w.Code < 300 || w.Code > 399) {
			t.Errorf("GET %s: HTTP %d, want 404 or a redirect: %.80s", path, w.Code, w.Body)
		}
	}
	if w := serve(t, "POST", "/ui/"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: HTTP %d", w.Code)
	}
	if w := serve(t, "HEAD", "/ui/app.js"); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD /ui/app.js: HTTP %d, %d bytes", w.Code, w.Body.Len())
	}
	if w := serve(t, "GET", "/"); w.Code != http.StatusFound || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /: HTTP %d to %q", w.Code, w.Header().Get("Location"))
	}
	if w := serve(t, "GET", "/ui"); w.Code < 300 || w.Code > 399 || w.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: HTTP %d to %q", w.Code, w.Header().Get("Location"))
	}
}

// TestSelfContained checks that the page loads nothing from outside the
// node (air-gapped sites) and has no inline script or style that the CSP
// would block.
func TestSelfContained(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//|fonts\.googleapis`)
	for name, f := range files {
		if loc := external.FindIndex(f.body); loc != nil {
			t.Errorf("%s refers to an outside resource: %q", name, f.body[loc[0]:min(loc[1]+40, len(f.body))])
		}
	}
	index := string(files["index.html"].body)
	if regexp.MustCompile(`<script>|<script[^>]*>[^<]+</script>|<style|\sstyle=|\son[a-z]+=`).MatchString(index) {
		t.Error("index.html has inline script, style or event handlers, which the CSP blocks")
	}
	for _, name := range []string{"app.js", "history.js", "audit.js"} {
		js := string(files[name].body)
		if js == "" {
			t.Errorf("no %s", name)
		}
		if strings.Contains(js, "innerHTML") || strings.Contains(js, "eval(") || strings.Contains(js, "new Function") {
			t.Errorf("%s uses innerHTML or eval: data must go in as text", name)
		}
	}
}
