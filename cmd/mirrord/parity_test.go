package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/node/adminapi"
)

// parityDevice is a device id the parity tests use.
const parityDevice = "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f"

// deviceInfo is a device info object (capgo-protocol section 2) with
// edits applied: a nil value removes a key.
func deviceInfo(app string, edits map[string]any) map[string]any {
	m := map[string]any{
		"platform": "android", "device_id": parityDevice, "app_id": app, "custom_id": "",
		"version_build": "1.0.0", "version_code": "1", "version_os": "14", "version_name": "builtin",
		"plugin_version": "8.51.23", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	}
	for k, v := range edits {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// statEvent is a stats event marked with a case name (in its metadata)
// so that the test can find it in the node's event log.
func statEvent(app, name, action, version, plugin string, edits map[string]any) map[string]any {
	ev := deviceInfo(app, edits)
	ev["action"], ev["version_name"], ev["plugin_version"] = action, version, plugin
	ev["old_version_name"], ev["timestamp"] = "", time.Now().UnixMilli()
	ev["metadata"] = map[string]string{"case": name}
	return ev
}

// request sends one device request and returns the status and body.
func request(t *testing.T, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// logged is one line of a node's stats event log.
type logged struct {
	Ignored string `json:"ignored"`
	Event   struct {
		Metadata map[string]string `json:"metadata"`
	} `json:"event"`
}

// statsLog reads the event log of the node whose data directory is data
// (what has been flushed so far), both areas, by case name: the markers
// of the lines carrying it ("" for a counted event).
func statsLog(t *testing.T, data string) map[string][]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(data, "stats", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// Events kept but not counted have their own area (statslog).
	ignored, err := filepath.Glob(filepath.Join(data, "stats", "ignored", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, ignored...)
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var l logged
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue // a line still being written
			}
			c := l.Event.Metadata["case"]
			out[c] = append(out[c], l.Ignored)
		}
	}
	return out
}

// caseDevice is the device id of a parity case's stats events.
func caseDevice(name string) string {
	h := sha256.Sum256([]byte(name))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// checkInStatsDevices makes an update check for the device of every
// stats event of cases, as the plugin does before it reports.
func checkInStatsDevices(t *testing.T, url, app string, cases []parityCase) {
	t.Helper()
	seen := map[string]bool{}
	checkIn := func(ev any) {
		m, _ := ev.(map[string]any)
		dev, _ := m["device_id"].(string)
		if m["app_id"] != app || dev == "" || seen[dev] {
			return
		}
		seen[dev] = true
		if status, body := request(t, "POST", url+"/updates", deviceInfo(app, map[string]any{"device_id": dev})); status != 200 {
			t.Fatalf("check-in of %s: %d %s", dev, status, body)
		}
	}
	for _, c := range cases {
		if c.path != "/stats" {
			continue
		}
		if evs, ok := c.body.([]any); ok {
			for _, e := range evs {
				checkIn(e)
			}
		} else {
			checkIn(c.body)
		}
	}
}

// parityCase is one device request and the answer Capgo gives to it.
type parityCase struct {
	name   string
	method string
	path   string // with the query, if any
	body   any    // nil: no body
	status int
	want   map[string]any // top-level keys of the answer
	// stored, for stats events: the markers their lines carry in the
	// event log ("" counted, else the reason), nil when nothing is
	// stored.
	stored []string
}

// parityCases are the answers of issue 12 items 2 and 3, and item 1's
// legacy download_fail, for app (known, release 1.0.1 on production).
func parityCases(app string) []parityCase {
	const other = "com.example.unknown"
	// Each case's events come from a device of their own (caseDevice),
	// which TestCapgoParity checks in first: a node counts an event only
	// from a device it answered, once per kind of outcome.
	ev := func(name, action, version, plugin string, edits map[string]any) map[string]any {
		e := statEvent(app, name, action, version, plugin, edits)
		if _, ok := edits["device_id"]; !ok {
			e["device_id"] = caseDevice(name)
		}
		return e
	}
	semverBody := func(build string) map[string]any {
		return deviceInfo(app, map[string]any{"version_build": build, "channel": "production"})
	}
	ok := map[string]any{"status": "ok"}
	badBuild := map[string]any{"error": "semver_error", "moreInfo": map[string]any{"version_build": "1.0 (42)"}}
	cannotParse := func(code string) map[string]any {
		return map[string]any{"error": code, "message": "Cannot parse body", "moreInfo": map[string]any{"body": map[string]any{}}}
	}
	q := "/channel_self?app_id=" + app + "&is_emulator=false&is_prod=true&device_id=" + parityDevice
	return []parityCase{
		// Item 2: empty bodies and queries.
		{name: "updates {}", method: "POST", path: "/updates", body: "{}", status: 400, want: cannotParse("invalid_json_body")},
		{name: "channel_self POST {}", method: "POST", path: "/channel_self", body: "{}", status: 400, want: cannotParse("invalid_json_body")},
		{name: "channel_self PUT {}", method: "PUT", path: "/channel_self", body: " { } ", status: 400, want: cannotParse("invalid_json_body")},
		{name: "channel_self GET, no query", method: "GET", path: "/channel_self", status: 400, want: cannotParse("invalid_query_parameters")},
		{name: "channel_self DELETE, no query", method: "DELETE", path: "/channel_self", status: 400, want: cannotParse("invalid_query_parameters")},
		// Item 2: the list's platform.
		{name: "channel_self GET windows", method: "GET", path: q + "&platform=windows", status: 400,
			want: map[string]any{"error": "invalid_query_parameters"}},
		{name: "channel_self GET no platform", method: "GET", path: q, status: 400, want: map[string]any{"error": "invalid_query_parameters"}},
		{name: "channel_self GET electron", method: "GET", path: q + "&platform=electron", status: 200},
		// Item 2: version_build.
		{name: "channel_self POST bad version_build", method: "POST", path: "/channel_self", body: semverBody("1.0 (42)"), status: 400, want: badBuild},
		{name: "channel_self PUT bad version_build", method: "PUT", path: "/channel_self", body: semverBody("1.0 (42)"), status: 400, want: badBuild},
		{name: "channel_self POST version_build unknown", method: "POST", path: "/channel_self", body: semverBody("unknown"), status: 400,
			want: map[string]any{"error": "semver_error"}},
		{name: "channel_self GET bad version_build", method: "GET", path: q + "&platform=ios&version_build=abc", status: 400,
			want: map[string]any{"error": "semver_error"}},
		{name: "channel_self DELETE bad version_build", method: "DELETE", path: q + "&platform=ios&version_build=abc&plugin_version=5.0.0",
			status: 400, want: map[string]any{"error": "semver_error"}},
		{name: "channel_self POST short version_build", method: "POST", path: "/channel_self", body: semverBody("1.2"), status: 200,
			want: map[string]any{"error": "public_channel_self_set_not_allowed"}},
		{name: "channel_self missing device before semver", method: "POST", path: "/channel_self",
			body: deviceInfo(app, map[string]any{"device_id": nil, "version_build": "x"}), status: 400, want: map[string]any{"error": "missing_device_id"}},
		{name: "updates bad version_build stays a 200 (compat)", method: "POST", path: "/updates",
			body: deviceInfo(app, map[string]any{"version_build": "1.0 (42)"}), status: 200, want: map[string]any{"error": "semver_error", "kind": "failed"}},
		{name: "stats bad version_build", method: "POST", path: "/stats",
			body: ev("stats bad version_build", "set", "1.0.1", "8.51.23", map[string]any{"version_build": "1.0 (42)"}), status: 400, want: badBuild},

		// Item 1: legacy download_fail.
		{name: "download_fail 7.16.9", method: "POST", path: "/stats", body: ev("download_fail 7.16.9", "download_fail", "1.0.1", "7.16.9", nil),
			status: 200, want: ok, stored: []string{"legacy_download_fail"}},
		{name: "download_fail 6.14.24", method: "POST", path: "/stats", body: ev("download_fail 6.14.24", "download_fail", "1.0.1", "6.14.24", nil),
			status: 200, want: ok, stored: []string{"legacy_download_fail"}},
		{name: "download_fail 5.50.1", method: "POST", path: "/stats", body: ev("download_fail 5.50.1", "download_fail", "1.0.1", "5.50.1", nil),
			status: 200, want: ok, stored: []string{"legacy_download_fail"}},
		{name: "download_fail no plugin_version", method: "POST", path: "/stats",
			body: ev("download_fail no plugin_version", "download_fail", "1.0.1", "", nil), status: 200, want: ok, stored: []string{"legacy_download_fail"}},
		{name: "download_fail plugin_version not a version", method: "POST", path: "/stats",
			body: ev("download_fail plugin_version not a version", "download_fail", "1.0.1", "next", nil), status: 200, want: ok, stored: []string{"legacy_download_fail"}},
		{name: "download_fail 6.14.25", method: "POST", path: "/stats", body: ev("download_fail 6.14.25", "download_fail", "1.0.1", "6.14.25", nil),
			status: 200, want: ok, stored: []string{""}},
		{name: "download_fail 7.17.0", method: "POST", path: "/stats", body: ev("download_fail 7.17.0", "download_fail", "1.0.1", "7.17.0", nil),
			status: 200, want: ok, stored: []string{""}},

		// Item 3: versions.
		{name: "install", method: "POST", path: "/stats", body: ev("install", "set", "1.0.1", "8.51.23", nil), status: 200, want: ok, stored: []string{""}},
		{name: "version not found", method: "POST", path: "/stats", body: ev("version not found", "update_fail", "9.9.9", "8.51.23", nil),
			status: 200, want: map[string]any{"error": "version_not_found", "message": "Version not found", "app_id": app, "version_name": "9.9.9"},
			stored: []string{"version_not_found"}},
		{name: "file-level failure", method: "POST", path: "/stats", body: ev("file-level failure", "download_manifest_file_fail", "1.0.1:js/app.js", "8.51.23", nil),
			status: 200, want: ok, stored: []string{""}},
		{name: "file-level failure, version not found", method: "POST", path: "/stats",
			body:   ev("file-level failure, version not found", "download_manifest_file_fail", "9.9.9:js/app.js", "8.51.23", nil),
			status: 200, want: map[string]any{"error": "version_not_found"}, stored: []string{"version_not_found"}},
		{name: "builtin", method: "POST", path: "/stats", body: ev("builtin", "app_moved_to_foreground", "builtin", "8.51.23", nil),
			status: 200, want: ok, stored: []string{""}},
		{name: "native version (Android 8.51.23)", method: "POST", path: "/stats",
			body:   ev("native version (Android 8.51.23)", "app_moved_to_foreground", "2.0", "8.51.23", map[string]any{"version_build": "2.0"}),
			status: 200, want: ok, stored: []string{""}},
		{name: "unknown action kept", method: "POST", path: "/stats", body: ev("unknown action kept", "some_future_action", "1.0.1", "8.51.23", nil),
			status: 200, want: ok, stored: []string{""}},

		// Item 3: apps.
		{name: "unknown app", method: "POST", path: "/stats", body: statEvent(other, "unknown app", "set", "1.0.1", "8.51.23", nil),
			status: 429, want: map[string]any{"error": "on_premise_app", "message": "On-premise app detected"}},
		{name: "unknown app, batch", method: "POST", path: "/stats",
			body: []any{statEvent(other, "unknown app, batch", "set", "1.0.1", "8.51.23", nil)}, status: 200,
			want: map[string]any{"status": "ok", "results": []any{map[string]any{"status": "error", "index": 0.0,
				"error": "on_premise_app", "message": "On-premise app detected"}}}},
		{name: "mixed app ids", method: "POST", path: "/stats",
			body:   []any{ev("mixed app ids", "set", "1.0.1", "8.51.23", nil), statEvent(other, "mixed app ids", "set", "1.0.1", "8.51.23", nil)},
			status: 200, want: map[string]any{"error": "mixed_app_ids", "message": "All events in a batch must have the same app_id"}},
		{name: "batch", method: "POST", path: "/stats", body: []any{
			ev("batch", "set", "1.0.1", "8.51.23", nil),
			ev("batch", "download_fail", "1.0.1", "7.16.9", nil),
			ev("batch", "set", "1.0.1", "8.51.23", map[string]any{"version_build": "x.y"}),
			ev("batch", "set", "3.0.0", "8.51.23", nil),
		}, status: 200, want: map[string]any{"status": "ok", "results": []any{
			map[string]any{"status": "ok", "index": 0.0},
			map[string]any{"status": "ok", "index": 1.0},
			map[string]any{"status": "error", "index": 2.0, "error": "semver_error",
				"message": "Native version: x.y doesn't follow semver convention, please check https://capgo.app/semver_tester/ to learn more about semver usage in Capgo"},
			map[string]any{"status": "error", "index": 3.0, "error": "version_not_found", "message": "Version not found",
				"moreInfo": map[string]any{"app_id": app, "version_name": "3.0.0"}},
		}}, stored: []string{"", "legacy_download_fail", "version_not_found"}},
	}
}

// TestCapgoParity sends every case of parityCases to a real node over
// HTTP and checks the answer, what reached the node's event log (with
// its marker) and what reached the cluster's counters.
func TestCapgoParity(t *testing.T) {
	vec := vectors(t)
	n := startNodeWith(t, "", fastStats)
	defer n.stop()
	const app = "com.example.parity"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))

	cases := parityCases(app)
	checkInStatsDevices(t, n.url, app, cases)
	checkInStatsDevices(t, n.url, app, []parityCase{{path: "/stats", body: statEvent(app, "sentinel", "set", "1.0.1", "8.51.23", nil)}})
	for _, c := range cases {
		status, body := request(t, c.method, n.url+c.path, c.body)
		var got any
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("%s: answer is not JSON: %s", c.name, body)
			continue
		}
		if status != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, status, body, c.status)
			continue
		}
		m, _ := got.(map[string]any)
		for k, v := range c.want {
			if g, _ := json.Marshal(m[k]); string(g) != mustJSON(v) {
				t.Errorf("%s: %q is %s, want %s (answer %s)", c.name, k, g, mustJSON(v), body)
			}
		}
	}

	// A last install: once it is in the log and in the counters, so is
	// everything sent before it on this node.
	request(t, "POST", n.url+"/stats", statEvent(app, "sentinel", "set", "1.0.1", "8.51.23", nil))
	var logged map[string][]string
	consensustest.WaitFor(t, "the sentinel in the event log", func() bool {
		logged = statsLog(t, n.data)
		return len(logged["sentinel"]) == 1
	}, 10*time.Second)
	for _, c := range cases {
		if c.path != "/stats" {
			continue
		}
		if fmt.Sprint(logged[c.name]) != fmt.Sprint(c.stored) {
			t.Errorf("%s: the event log holds %q, want %q", c.name, logged[c.name], c.stored)
		}
	}

	// Counted: installs "install", "batch" and the sentinel; failures
	// the two download_fail of fixed plugins and the file-level failure.
	want := adminapi.CounterView{Installs: 3, Failures: 3,
		ByAction: map[string]int64{"download_fail": 2, "download_manifest_file_fail": 1}}
	var total adminapi.CounterView
	consensustest.WaitFor(t, "the counters in the cluster state", func() bool {
		var sa adminapi.StatsAnswer
		if err := json.Unmarshal([]byte(n.cli(t, "stats", app, "--json")), &sa); err != nil {
			t.Fatal(err)
		}
		for _, r := range sa.Releases {
			if r.Version == "1.0.1" {
				total = r.Total
			}
		}
		return total.Installs >= want.Installs
	}, 10*time.Second)
	if total.Installs != want.Installs || total.Failures != want.Failures || fmt.Sprint(total.ByAction) != fmt.Sprint(want.ByAction) {
		t.Fatalf("counters of 1.0.1: %+v, want installs %d, failures %v", total, want.Installs, want.ByAction)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
