package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// manyFilesBundle writes a bundle directory of n small distinct files
// with paths as deep as a real web build's, and returns it.
func manyFilesBundle(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><title>many</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		sub := filepath.Join(dir, "assets", fmt.Sprintf("chunk-group-%03d", i/200), fmt.Sprintf("module-%02d", i%7))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(sub, fmt.Sprintf("component-%06d.generated-a1b2c3.js", i))
		if err := os.WriteFile(name, fmt.Appendf(nil, "export default %d;\n", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPublishManyFiles is issue 10's item 4: a bundle of 20,000 files
// publishes through the real CLI, plain and with --key, on a node with
// the default limits; the release (one raft entry of several MB) is
// served and survives a restart, which replays that entry from the log.
func TestPublishManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 23,000 files")
	}
	// Plain: tens of thousands of files. Encrypted: fewer, because each
	// file costs an RSA operation in the CLI, but still well past the
	// old 1 MiB body limit (an encrypted entry is about 620 bytes).
	const files, encFiles = 20000, 3000
	vec := vectors(t)
	pubPEM, err := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	bundle := manyFilesBundle(t, files)
	encBundle := manyFilesBundle(t, encFiles)
	data := t.TempDir()
	n := startNode(t, data)
	const plainApp, encApp = "com.example.many", "com.example.manyenc"
	n.cli(t, "app", "create", plainApp)
	n.cli(t, "app", "create", encApp, "--public-key", filepath.Join(vec, "test_public_key.pem"))

	start := time.Now()
	out := n.cli(t, "publish", "--app", plainApp, "--version", "1.1.0", "--channel", "production", bundle)
	if !strings.Contains(out, fmt.Sprintf("%d manifest files", files)) {
		t.Fatalf("plain publish said %q", out)
	}
	t.Logf("plain publish of %d files: %s", files, time.Since(start))
	start = time.Now()
	out = n.cli(t, "publish", "--app", encApp, "--version", "1.1.0", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), encBundle)
	if !strings.Contains(out, fmt.Sprintf("%d manifest files", encFiles)) || !strings.Contains(out, "encrypted") {
		t.Fatalf("encrypted publish said %q", out)
	}
	t.Logf("encrypted publish of %d files: %s", encFiles, time.Since(start))
	want := map[string]int{plainApp: files, encApp: encFiles}

	check := func(n *testNode) {
		t.Helper()
		for _, app := range []string{plainApp, encApp} {
			var rels []adminapi.ReleaseInfo
			if err := json.Unmarshal([]byte(n.cli(t, "release", "list", app, "--json")), &rels); err != nil {
				t.Fatal(err)
			}
			if len(rels) != 1 || len(rels[0].Manifest) != want[app] {
				t.Fatalf("%s: releases %d, want one of %d files", app, len(rels), want[app])
			}
			var pub []byte
			if app == encApp {
				pub = pubPEM
			}
			dev := newDevice(t, n, app, pub)
			ans, _, err := dev.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if m, _ := ans["manifest"].([]any); ans["version"] != "1.1.0" || len(m) != want[app] {
				t.Fatalf("%s: update answer has version %v (error %v) and %d manifest entries", app, ans["version"], ans["error"], len(m))
			}
		}
	}
	check(n)
	// The next encrypted release reuses the session key, which the CLI
	// finds in the app's release list.
	out = n.cli(t, "publish", "--app", encApp, "--version", "1.1.1",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	if !strings.Contains(out, "reused from release 1.1.0") {
		t.Fatalf("second encrypted publish said %q", out)
	}
	n.cli(t, "release", "delete", encApp, "1.1.1")
	if out := n.cli(t, "release", "list", encApp); !strings.Contains(out, fmt.Sprint(encFiles)) {
		t.Fatalf("release list does not show %d files:\n%s", encFiles, out)
	}

	// The releases come back from the raft log after a restart.
	n.stop()
	n = startNode(t, data)
	check(n)
}

// writeDevices writes a device CSV of n rows (header and a comment
// first, so row r, counted from 1, is on line r+2) whose row i, counted
// from 0, is row(i), and returns its path.
func writeDevices(t *testing.T, n int, row func(i int) string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("device_id,channel,version\n# generated\n")
	for i := range n {
		b.WriteString(row(i))
		b.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "devices.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func deviceOverrides(t *testing.T, n *testNode, app string) int {
	t.Helper()
	var apps []adminapi.AppInfo
	if err := json.Unmarshal([]byte(n.cli(t, "app", "list", "--json")), &apps); err != nil {
		t.Fatal(err)
	}
	for _, a := range apps {
		if a.ID == app {
			return a.Devices
		}
	}
	t.Fatalf("app %s not listed", app)
	return 0
}

// TestDeviceImportLarge is issue 10's item 4 for device imports: a file
// of 250,000 rows goes in as 25 raft entries; a bad row anywhere stops
// the import before anything is written, naming its line; a failure
// between parts reports the rows applied, and running the same file
// again completes it.
func TestDeviceImportLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("imports 250,000 rows")
	}
	const rows = 250000
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.fleet"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "beta", filepath.Join(vec, "src-1.0.2"))
	n.cli(t, "publish", "--app", app, "--version", "1.0.3", filepath.Join(vec, "src-1.0.2"))

	// A bad row deep in a large file: nothing is written.
	bad := writeDevices(t, 150000, func(i int) string {
		if i == 119999 {
			return "ffffffff-0000-4000-8000-000000000001,nope"
		}
		return "ffffffff-" + deviceID(i)[9:] + ",beta"
	})
	out, err := n.cliErr("device", "import", app, bad)
	if err == nil || !strings.Contains(err.Error(), "line 120002: row 120000") ||
		!strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("bad row 120000: %v\n%s", err, out)
	}
	if got := deviceOverrides(t, n, app); got != 0 {
		t.Fatalf("%d overrides written by a refused import", got)
	}

	good := writeDevices(t, rows, func(i int) string {
		switch {
		case i < 20000:
			return deviceID(i) + ",beta"
		case i%2 == 0:
			return deviceID(i) + ",beta,1.0.3"
		}
		return deviceID(i) + ",production"
	})
	// The release rows from 20,001 pin disappears after two parts: the
	// third part fails, the first two stay applied.
	testHookImportPart = func(part int) {
		if part == 1 {
			n.cli(t, "release", "delete", app, "1.0.3")
		}
	}
	out, err = n.cliErr("device", "import", app, good)
	testHookImportPart = nil
	if err == nil || !strings.Contains(err.Error(), "rows 1-20000 (lines 3-20002) were applied in 2 raft entries, rows 20001-250000 (lines 20003-250002) were not") ||
		!strings.Contains(err.Error(), "1.0.3") || !strings.Contains(err.Error(), "running the same file again is safe") {
		t.Fatalf("import interrupted after two parts: %v\n%s", err, out)
	}
	if got := deviceOverrides(t, n, app); got != 20000 {
		t.Fatalf("%d overrides after two parts, want 20000", got)
	}

	n.cli(t, "publish", "--app", app, "--version", "1.0.3", filepath.Join(vec, "src-1.0.2"))
	start := time.Now()
	out = n.cli(t, "device", "import", app, good)
	if !strings.Contains(out, "set 250000 device override(s) of "+app+" in 25 raft entr(ies)") ||
		!strings.Contains(out, "applied rows 240001-250000 (lines 240003-250002): part 25 of 25") {
		t.Fatalf("import said %q", out)
	}
	t.Logf("import of %d rows: %s", rows, time.Since(start))
	if got := deviceOverrides(t, n, app); got != rows {
		t.Fatalf("%d overrides, want %d", got, rows)
	}
	fc := newFleetClient(t, app)
	for i, want := range map[int]string{0: "1.0.2", 19999: "1.0.2", 20000: "1.0.3", 149999: "1.0.1", 249998: "1.0.3"} {
		if got := fc.check(n.url, deviceID(i), "builtin"); got != want {
			t.Errorf("device of row %d gets %q, want %q", i+1, got, want)
		}
	}

	// --remove takes the same file: every override goes.
	out = n.cli(t, "device", "import", app, good, "--remove")
	if !strings.Contains(out, "removed 250000 device override(s)") {
		t.Fatalf("import --remove said %q", out)
	}
	if got := deviceOverrides(t, n, app); got != 0 {
		t.Fatalf("%d overrides left after --remove", got)
	}
}

// TestBodyLimits: device routes keep limits.max_request_bytes (413 past
// it) while admin bodies have limits.max_admin_body_bytes, and an admin
// body past its limit is refused with 413 naming the setting.
func TestBodyLimits(t *testing.T) {
	vec := vectors(t)
	n := startNodeWith(t, "", func(c *configs.Config) { c.Limits.MaxAdminBodyBytes = 4 << 20 })
	const app = "com.example.limits"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))

	post := func(method, path string, body []byte, admin bool) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, n.url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if admin {
			req.Header.Set("Authorization", "Bearer "+n.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&ans)
		return resp.StatusCode, ans
	}
	// Valid JSON padded past a limit with spaces.
	padded := func(size int, body string) []byte {
		return append(bytes.Repeat([]byte(" "), size-len(body)), body...)
	}

	for _, path := range []string{"/updates", "/stats", "/channel_self"} {
		if status, ans := post("POST", path, padded(1<<20+1, `{}`), false); status != http.StatusRequestEntityTooLarge {
			t.Errorf("device POST %s over max_request_bytes: %d %v", path, status, ans)
		}
	}

	// 20,000 device rows are about 1.8 MB: over the device limit, under
	// the admin one; the node splits them into two raft entries.
	var rows []map[string]string
	for i := range 20000 {
		rows = append(rows, map[string]string{"device_id": deviceID(i), "channel": "production"})
	}
	body, _ := json.Marshal(map[string]any{"devices": rows})
	if len(body) <= 1<<20 {
		t.Fatalf("body of %d bytes is not over the device limit", len(body))
	}
	status, ans := post("POST", "/admin/v1/apps/"+app+"/devices", body, true)
	if status != http.StatusOK || ans["applied"] != float64(20000) || ans["batches"] != float64(2) {
		t.Fatalf("admin import of %d bytes: %d %v", len(body), status, ans)
	}

	for _, tc := range []struct{ method, path string }{
		{"POST", "/admin/v1/apps/" + app + "/devices"},
		{"PUT", "/admin/v1/apps/" + app + "/channels/production"},
		{"POST", "/admin/v1/apps/" + app + "/channels/production/rollout"},
		{"POST", "/admin/v1/apps/" + app + "/releases"},
		{"POST", "/admin/v1/apps"},
	} {
		status, ans := post(tc.method, tc.path, padded(4<<20+1, `{}`), true)
		msg, _ := ans["message"].(string)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "limits.max_admin_body_bytes") {
			t.Errorf("%s %s over max_admin_body_bytes: %d %v", tc.method, tc.path, status, ans)
		}
	}

	// An operator who lowered the limit below a bundle's manifest is
	// told which setting refused it.
	if testing.Short() {
		return
	}
	small := startNodeWith(t, "", func(c *configs.Config) { c.Limits.MaxAdminBodyBytes = 1 << 20 })
	small.cli(t, "app", "create", app)
	out, err := small.cliErr("publish", "--app", app, "--version", "1.0.1", manyFilesBundle(t, 6000))
	if err == nil || !strings.Contains(err.Error(), "create release 1.0.1 of "+app+" (6000 manifest files, all uploaded)") ||
		!strings.Contains(err.Error(), "limits.max_admin_body_bytes") {
		t.Fatalf("publish past the admin body limit: %v\n%s", err, out)
	}
}

func TestImportParts(t *testing.T) {
	rows := func(n int, id string) []state.DeviceEntry {
		out := make([]state.DeviceEntry, n)
		for i := range out {
			out[i] = state.DeviceEntry{DeviceID: id, Channel: "beta"}
		}
		return out
	}
	// {"device_id":"abc","channel":"beta"} is 37 bytes, 38 with its comma.
	for _, tc := range []struct {
		name              string
		rows              []state.DeviceEntry
		maxRows, maxBytes int
		want              [][2]int
	}{
		{"one part", rows(3, "abc"), 10, 1000, [][2]int{{0, 3}}},
		{"by rows", rows(5, "abc"), 2, 1000, [][2]int{{0, 2}, {2, 4}, {4, 5}}},
		{"exact rows", rows(4, "abc"), 2, 1000, [][2]int{{0, 2}, {2, 4}}},
		{"by bytes", rows(5, "abc"), 10, 80, [][2]int{{0, 2}, {2, 4}, {4, 5}}},
		{"row over the bytes goes alone", rows(2, strings.Repeat("x", 200)), 10, 80, [][2]int{{0, 1}, {1, 2}}},
		{"none", nil, 10, 80, nil},
	} {
		if got := importParts(tc.rows, tc.maxRows, tc.maxBytes); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// The real bounds: a part of 10,000 of the longest rows the node
	// accepts still fits the smallest admin body limit.
	long := state.DeviceEntry{DeviceID: strings.Repeat("d", 64), Channel: strings.Repeat("c", 64), Version: "10.20.30-beta.1"}
	var many []state.DeviceEntry
	for range 3 * importPartRows {
		many = append(many, long)
	}
	for _, p := range importParts(many, importPartRows, importPartBytes) {
		b, _ := json.Marshal(adminapi.BulkDevicesRequest{Devices: many[p[0]:p[1]], FirstRow: 1 << 40})
		if len(b) > 1<<20 {
			t.Fatalf("part %v is %d bytes, over 1 MiB", p, len(b))
		}
	}
}
