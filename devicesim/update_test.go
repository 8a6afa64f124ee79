package devicesim

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/content"
)

func TestUpdateFailures(t *testing.T) {
	plainZip := "update-response-1.0.1-zip-plain.json"
	encZip := "update-response-1.0.1-zip-encrypted.json"
	plainManifest := "update-response-1.0.2-manifest-plain.json"
	encManifest := "update-response-1.0.2-manifest-encrypted.json"
	var enc102 map[string]any
	if err := json.Unmarshal(readVector(t, encManifest), &enc102); err != nil {
		t.Fatal(err)
	}
	entry := func(m map[string]any, i int) map[string]any { return m["manifest"].([]any)[i].(map[string]any) }

	for _, tc := range []struct {
		name    string
		withKey bool
		answer  any
		status  int
		setup   func(f *fakeServer)
		wantErr bool
		stats   string // expected stats, joined
	}{
		{
			name: "bad checksum", answer: answerWith(t, plainZip, func(m map[string]any) {
				m["checksum"] = strings.Repeat("0", 64)
			}),
			wantErr: true, stats: "download_zip_start@1.0.1 download_zip_complete@1.0.1 download_complete@1.0.1 checksum_fail@builtin download_fail@1.0.1",
		},
		{
			name: "encrypted checksum of another zip", withKey: true, answer: answerWith(t, encZip, func(m map[string]any) {
				m["checksum"] = enc102["checksum"]
			}),
			wantErr: true, stats: "download_zip_start@1.0.1 download_zip_complete@1.0.1 download_complete@1.0.1 checksum_fail@builtin download_fail@1.0.1",
		},
		{
			name: "encrypted zip on a device without key", answer: answerWith(t, encZip, func(m map[string]any) {}),
			wantErr: true, stats: "download_zip_start@1.0.1 download_zip_complete@1.0.1 download_complete@1.0.1 checksum_fail@builtin download_fail@1.0.1",
		},
		{
			name: "plain zip on a device with key", withKey: true, answer: answerWith(t, plainZip, func(m map[string]any) {}),
			wantErr: true, stats: "session_key_required@builtin download_fail@1.0.1",
		},
		{
			name: "session key of another key", withKey: true, answer: answerWith(t, encZip, func(m map[string]any) {
				m["session_key"] = "AAAAAAAAAAAAAAAAAAAAAA==:AAAA"
			}),
			wantErr: true, stats: "download_zip_start@1.0.1 download_zip_complete@1.0.1 download_complete@1.0.1 decrypt_fail@builtin download_fail@1.0.1",
		},
		{
			name: "no checksum", answer: answerWith(t, plainZip, func(m map[string]any) { m["checksum"] = "" }),
			wantErr: true, stats: "checksum_required@builtin download_fail@1.0.1",
		},
		{
			name: "zip missing", answer: answerWith(t, plainZip, func(m map[string]any) {
				m["url"] = "https://mirror.example.test/bundles/nope.zip"
			}),
			wantErr: true, stats: "download_zip_start@1.0.1 download_fail@1.0.1",
		},
		{
			name: "invalid url", answer: answerWith(t, plainZip, func(m map[string]any) { m["url"] = "not a url" }),
			wantErr: true, stats: "download_fail@1.0.1",
		},
		{
			name: "no version", answer: `{"url":"https://x.test/a.zip","checksum":"00"}`,
			wantErr: true, stats: "download_fail@builtin",
		},
		{
			name: "numeric version", answer: `{"version":2,"url":"https://x.test/a.zip","checksum":"00"}`,
			wantErr: true, stats: "download_fail@builtin",
		},
		{
			name: "unsafe version name", answer: answerWith(t, plainZip, func(m map[string]any) { m["version"] = "../1.0.1" }),
			wantErr: true, stats: "download_fail@../1.0.1",
		},
		{
			name: "kind failed", answer: `{"error":"no_channel","message":"no channel","kind":"failed"}`,
			stats: "download_fail@builtin",
		},
		{
			name: "error without kind", answer: `{"error":"something"}`,
			stats: "download_fail@builtin",
		},
		{
			name: "blocked", answer: `{"error":"disable_emulator","message":"x","kind":"blocked"}`,
		},
		{
			name: "HTTP 500 text", answer: "oops", status: http.StatusInternalServerError,
			wantErr: true, stats: "download_fail@builtin",
		},
		{
			name: "HTTP 500 JSON without error", answer: `{"version":"1.0.1"}`, status: http.StatusInternalServerError,
			wantErr: true, stats: "download_fail@builtin",
		},
		{
			name: "manifest file tampered", answer: answerWith(t, plainManifest, func(m map[string]any) {}),
			setup: func(f *fakeServer) {
				f.files["/manifest/1.0.2/plain/index.html"] = []byte("<html>evil</html>")
			},
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_checksum_fail@1.0.2:index.html download_fail@1.0.2",
		},
		{
			name: "manifest hash of another file", withKey: true, answer: answerWith(t, encManifest, func(m map[string]any) {
				entry(m, 0)["file_hash"] = entry(m, 2)["file_hash"]
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_checksum_fail@1.0.2:app.js download_fail@1.0.2",
		},
		{
			name: "manifest hash not sealed", withKey: true, answer: answerWith(t, encManifest, func(m map[string]any) {
				entry(m, 1)["file_hash"] = "9108f07058cb2a124b23fc06eb9b5feac44d2f203b2090fad961fc3aa4887461"
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_checksum_fail@1.0.2:assets/big.js.br download_fail@1.0.2",
		},
		{
			name: "manifest brotli garbage", answer: answerWith(t, plainManifest, func(m map[string]any) {}),
			setup: func(f *fakeServer) {
				f.files["/manifest/1.0.2/plain/assets/big.js.br"] = []byte("this is not brotli")
			},
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_brotli_fail@1.0.2:assets/big.js.br download_fail@1.0.2",
		},
		{
			name: "manifest file missing", answer: answerWith(t, plainManifest, func(m map[string]any) {
				entry(m, 0)["download_url"] = "https://mirror.example.test/nope"
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_file_fail@1.0.2:app.js download_fail@1.0.2",
		},
		{
			name: "manifest path escapes", answer: answerWith(t, plainManifest, func(m map[string]any) {
				entry(m, 0)["file_name"] = "../evil.js"
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 manifest_path_fail@builtin download_fail@1.0.2",
		},
		{
			name: "manifest duplicate path", answer: answerWith(t, plainManifest, func(m map[string]any) {
				entry(m, 1)["file_name"] = "app.js.br"
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 manifest_path_fail@builtin download_fail@1.0.2",
		},
		{
			name: "manifest without index.html", answer: answerWith(t, plainManifest, func(m map[string]any) {
				m["manifest"] = m["manifest"].([]any)[:2]
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 download_manifest_complete@1.0.2 download_complete@1.0.2 set_fail@1.0.2 download_fail@1.0.2",
		},
		{
			name: "manifest entry without hash", answer: answerWith(t, plainManifest, func(m map[string]any) {
				delete(entry(m, 0), "file_hash")
			}),
			wantErr: true, stats: "download_manifest_start@1.0.2 download_fail@1.0.2",
		},
		{
			name: "zip with an escaping entry", answer: map[string]any{
				"version": "9.0.0", "url": "https://mirror.example.test/bundles/evil.zip",
				"checksum": content.SHA256Hex(evilZip(t)),
			},
			setup:   func(f *fakeServer) { f.files["/bundles/evil.zip"] = evilZip(t) },
			wantErr: true, stats: "download_zip_start@9.0.0 download_zip_complete@9.0.0 download_complete@9.0.0 canonical_path_fail@builtin download_fail@9.0.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			d := f.device(t, tc.withKey)
			if tc.setup != nil {
				tc.setup(f)
			}
			f.setAnswer(tc.answer)
			if tc.status != 0 {
				f.answerStatus = tc.status
			}
			res, err := d.Update(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "devicesim: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if res == nil || res.Installed != Builtin || d.Current() != Builtin {
				t.Errorf("%s, current %q; want builtin unchanged", summary(res), d.Current())
			}
			if got := join(f.takeStats()); got != tc.stats {
				t.Errorf("stats = %s\nwant    %s", got, tc.stats)
			}
			if entries, _ := os.ReadDir(filepath.Join(d.Dir, "bundles")); len(entries) != 0 {
				t.Errorf("bundles left after a failure: %v", entries)
			}
			if entries, _ := os.ReadDir(d.Dir); len(entries) > 1 {
				t.Errorf("device dir holds %v after a failure", entries)
			}
		})
	}
}

// summary prints a Result without its (long) answer.
func summary(r *Result) string {
	if r == nil {
		return "<nil result>"
	}
	return fmt.Sprintf("{status %d installed %s manifest %v downloaded [%s] reused [%s] bytes %d}",
		r.Status, r.Installed, r.UsedManifest, join(r.Downloaded), join(r.Reused), r.BytesDownloaded)
}

// evilZip is a zip with index.html and an entry escaping the bundle.
func evilZip(t *testing.T) []byte {
	t.Helper()
	return makeRawZip(t, map[string]string{"index.html": "<html></html>", "../evil.js": "x"})
}
