package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// stEv is a stats event of the fixture's device with the fields a test
// sets (app, action, version_name, version_build, plugin_version).
func stEv(app, action, version, build, plugin string) string {
	m := map[string]any{"platform": "android", "device_id": "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f", "app_id": app,
		"action": action, "version_name": version, "version_build": build, "plugin_version": plugin,
		"version_os": "14", "is_emulator": false, "is_prod": true, "old_version_name": "", "timestamp": 1}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestStatsVerdicts: what each event is answered, and whether it is
// counted, stored as ignored (with which marker) or not stored at all.
// The same answers over HTTP against a real node are in
// cmd/mirrord/parity_test.go.
func TestStatsVerdicts(t *testing.T) {
	const app = "com.example.app"
	tests := []struct {
		name    string
		body    string
		code    int
		answer  string // a substring of the answer
		counted int
		ignored map[string]int
		stored  int // counted events in the log
	}{
		{"install", stEv(app, "set", "1.0.1", "1.0.0", "8.51.23"), 200, `{"status":"ok"}`, 1, nil, 1},
		{"legacy download_fail 7.16.9", stEv(app, "download_fail", "1.0.1", "1.0.0", "7.16.9"), 200, `{"status":"ok"}`, 0,
			map[string]int{"legacy_download_fail": 1}, 0},
		{"legacy download_fail 6.14.24 about no version at all", stEv(app, "download_fail", "", "1.0.0", "6.14.24"), 200,
			`{"status":"ok"}`, 0, map[string]int{"legacy_download_fail": 1}, 0},
		{"download_fail 8.51 counts", stEv(app, "download_fail", "1.0.1", "1.0.0", "8.51.23"), 200, `{"status":"ok"}`, 1, nil, 1},
		{"unknown version", stEv(app, "update_fail", "9.9.9", "1.0.0", "8.51.23"), 200,
			`{"error":"version_not_found","message":"Version not found","app_id":"com.example.app","version_name":"9.9.9"}`, 0,
			map[string]int{"version_not_found": 1}, 0},
		{"file-level failure of a release", stEv(app, "download_manifest_file_fail", "1.0.1:js/app.js", "1.0.0", "8.51.23"), 200,
			`{"status":"ok"}`, 1, nil, 1},
		{"native version as Android sends it", stEv(app, "app_moved_to_foreground", "1.0", "1.0", "8.51.23"), 200,
			`{"status":"ok"}`, 1, nil, 1},
		{"unknown app", stEv("com.other.app", "set", "1.0.1", "1.0.0", "8.51.23"), 429,
			`{"error":"on_premise_app","message":"On-premise app detected"}`, 0, nil, 0},
		{"semver", stEv(app, "set", "1.0.1", "1.0 (42)", "8.51.23"), 400, `"error":"semver_error"`, 0, nil, 0},
		{"mixed", "[" + stEv(app, "set", "1.0.1", "1.0.0", "8.51.23") + "," + stEv("com.other.app", "set", "1.0.1", "1.0.0", "8.51.23") + "]",
			200, `{"error":"mixed_app_ids","message":"All events in a batch must have the same app_id"}`, 0, nil, 0},
		{"batch, unknown app", "[" + stEv("com.other.app", "set", "1.0.1", "1.0.0", "8.51.23") + `,{"x":1}]`, 200,
			`{"status":"ok","results":[{"status":"error","index":0,"error":"on_premise_app","message":"On-premise app detected"},{"status":"error","index":1,"error":"invalid_json_body"`,
			0, nil, 0},
		{"batch of every kind", "[" + strings.Join([]string{
			stEv(app, "set", "1.0.1", "1.0.0", "8.51.23"),
			stEv(app, "download_fail", "1.0.1", "1.0.0", "7.16.9"),
			stEv(app, "set", "2.0.0", "1.0.0", "8.51.23"),
			stEv(app, "set", "1.0.1", "x", "8.51.23"),
		}, ",") + "]", 200,
			`{"status":"ok","results":[{"status":"ok","index":0},{"status":"ok","index":1},` +
				`{"status":"error","index":2,"error":"version_not_found","message":"Version not found","moreInfo":{"app_id":"com.example.app","version_name":"2.0.0"}},` +
				`{"status":"error","index":3,"error":"semver_error"`,
			1, map[string]int{"legacy_download_fail": 1, "version_not_found": 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 10)
			w := f.do("POST", "/stats", tt.body)
			if w.Code != tt.code || !strings.Contains(w.Body.String(), tt.answer) {
				t.Fatalf("HTTP %d %s, want %d with %s", w.Code, w.Body, tt.code, tt.answer)
			}
			if w.Code == 429 && w.Header().Get("Retry-After") != "" {
				t.Fatal("429 on_premise_app carries Retry-After: the plugin would stop checking for updates")
			}
			if len(f.count.events) != tt.counted || len(f.stats.events) != tt.stored {
				t.Fatalf("counted %v, stored %d, want %d and %d", f.count.events, len(f.stats.events), tt.counted, tt.stored)
			}
			got := map[string]int{}
			for r, evs := range f.stats.ignored {
				got[r] = len(evs)
			}
			if len(got) != len(tt.ignored) {
				t.Fatalf("ignored %v, want %v", got, tt.ignored)
			}
			for r, n := range tt.ignored {
				if got[r] != n {
					t.Fatalf("ignored %v, want %v", got, tt.ignored)
				}
			}
		})
	}
}

// TestEmptyBodies: {}, [] and null are Capgo's "Cannot parse body" on the
// body endpoints, and no query at all on the query ones.
func TestEmptyBodies(t *testing.T) {
	f := newFixture(t, 10)
	for _, tc := range []struct{ method, target, body, code string }{
		{"POST", "/updates", `{}`, "invalid_json_body"},
		{"POST", "/updates", ` { } `, "invalid_json_body"},
		{"POST", "/updates", `null`, "invalid_json_body"},
		{"POST", "/updates", `[]`, "invalid_json_body"},
		{"POST", "/channel_self", `{}`, "invalid_json_body"},
		{"PUT", "/channel_self", `{}`, "invalid_json_body"},
		{"GET", "/channel_self", ``, "invalid_query_parameters"},
		{"DELETE", "/channel_self", ``, "invalid_query_parameters"},
		{"POST", "/updates", `{"x":1}`, "missing_device_id"},
	} {
		w := f.do(tc.method, tc.target, tc.body)
		m := decode(t, w)
		if w.Code != 400 || m["error"] != tc.code {
			t.Errorf("%s %s %q: %d %s, want 400 %s", tc.method, tc.target, tc.body, w.Code, w.Body, tc.code)
		}
		if tc.code != "missing_device_id" && (m["message"] != "Cannot parse body" || m["moreInfo"] == nil) {
			t.Errorf("%s %s %q: %s", tc.method, tc.target, tc.body, w.Body)
		}
	}
}
