package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
)

// deleteApp sends DELETE /admin/v1/apps/{app}{query} with token and
// returns the status and the error message of the answer.
func deleteApp(t *testing.T, n *testNode, token, app, query string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", n.url+"/admin/v1/apps/"+app+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct{ Message string }
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Message
}

// TestAppDelete: `mirrord app delete` is refused while a rollout is live
// (even with --force), and without --force while the app has releases
// or channels, each time saying what to do; a read-only token cannot
// delete; after the delete devices get Capgo's unknown-app answer, GC
// frees the app's blocks, and the id can be created again from scratch.
func TestAppDelete(t *testing.T) {
	vec := vectors(t)
	n := startNodeWith(t, "", func(c *configs.Config) { c.Replication.GCGrace = configs.Duration(time.Millisecond) })
	const app = "com.example.gone"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", filepath.Join(vec, "src-1.0.2"))
	n.cli(t, "device", "set", app, deviceID(2), "--version", "1.0.1")
	fc := newFleetClient(t, app)
	if v := fc.check(n.url, deviceID(1), "builtin"); v != "1.0.1" {
		t.Fatalf("device got %q before the delete", v)
	}
	// Another app, to see that it is left alone.
	const other = "com.example.stays"
	n.cli(t, "app", "create", other)
	n.cli(t, "publish", "--app", other, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))

	// A live rollout refuses the delete, --force or not.
	n.cli(t, "rollout", "start", app, "production", "--version", "1.0.2", "--percent", "10")
	for _, st := range []string{"active", "paused"} {
		if st == "paused" {
			n.cli(t, "rollout", "pause", app, "production")
		}
		out, err := n.cliErr("app", "delete", app, "--force")
		if err == nil || !strings.Contains(err.Error(), "app "+app+" has a "+st+" rollout of 1.0.2 on channel production") ||
			!strings.Contains(err.Error(), "`mirrord rollout abort "+app+" production`") {
			t.Fatalf("delete during a %s rollout: %v\n%s", st, err, out)
		}
		if code, _ := deleteApp(t, n, n.token, app, "?force=true"); code != http.StatusConflict {
			t.Fatalf("DELETE during a %s rollout: HTTP %d, want 409", st, code)
		}
	}
	n.cli(t, "rollout", "abort", app, "production")

	// Releases and channels refuse it without --force.
	out, err := n.cliErr("app", "delete", app)
	if err == nil || !strings.Contains(err.Error(), "app "+app+" still has 2 release(s) and 1 channel(s)") ||
		!strings.Contains(err.Error(), "`mirrord app delete "+app+" --force`") {
		t.Fatalf("delete without --force: %v\n%s", err, out)
	}
	ro := strings.TrimSpace(strings.SplitN(n.cli(t, "token", "create", "--read-only"), "\n", 2)[0])
	for _, tc := range []struct {
		name, token, app, query string
		want                    int
		msg                     string
	}{
		{"no force", n.token, app, "", http.StatusConflict, "--force"},
		{"force=false", n.token, app, "?force=false", http.StatusConflict, "--force"},
		{"bad force", n.token, app, "?force=maybe", http.StatusBadRequest, "want true or false"},
		{"read-only token", ro, app, "?force=true", http.StatusForbidden, "read-only token"},
		{"no token", "", app, "?force=true", http.StatusUnauthorized, "admin token"},
		{"unknown app", n.token, "com.example.never", "?force=true", http.StatusNotFound, "does not exist"},
	} {
		if code, msg := deleteApp(t, n, tc.token, tc.app, tc.query); code != tc.want || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: HTTP %d %q, want %d and %q", tc.name, code, msg, tc.want, tc.msg)
		}
	}
	if _, err := cliAt(n.url, ro, "app", "delete", app, "--force"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("read-only token deleted the app: %v", err)
	}
	if out := n.cli(t, "app", "list"); !strings.Contains(out, app) {
		t.Fatalf("a refused delete removed the app:\n%s", out)
	}

	out = n.cli(t, "app", "delete", app, "--force")
	if !strings.Contains(out, "deleted app "+app+" (2 release(s), 1 channel(s), 1 device override(s))") {
		t.Fatalf("app delete said: %s", out)
	}
	if out := n.cli(t, "app", "list"); strings.Contains(out, app) || !strings.Contains(out, other) {
		t.Fatalf("app list after the delete:\n%s", out)
	}
	// Devices get what Capgo answers for an unknown app, including the
	// pinned one.
	for _, dev := range []string{deviceID(1), deviceID(2)} {
		if v := fc.check(n.url, dev, "1.0.1"); v != "app_not_found" {
			t.Fatalf("device %s got %q after the delete, want app_not_found", dev, v)
		}
	}
	if v := newFleetClient(t, other).check(n.url, deviceID(1), "builtin"); v != "1.0.1" {
		t.Fatalf("the other app's device got %q", v)
	}
	if _, err := n.cliErr("release", "list", app); err == nil || !isNotFound(err) && !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("release list of a deleted app: %v", err)
	}
	if code, _ := deleteApp(t, n, n.token, app, "?force=true"); code != http.StatusNotFound {
		t.Fatalf("second delete: HTTP %d, want 404", code)
	}

	// The deleted releases' blocks are garbage now (the other app holds
	// the same 1.0.1 files, so only 1.0.2's own blocks can go).
	var res struct {
		BlocksRemoved int `json:"blocks_removed"`
	}
	if err := json.Unmarshal([]byte(n.cli(t, "gc", "--json")), &res); err != nil || res.BlocksRemoved == 0 {
		t.Fatalf("gc after the delete: %+v %v", res, err)
	}
	if v := newFleetClient(t, other).check(n.url, deviceID(3), "builtin"); v != "1.0.1" {
		t.Fatalf("the other app after gc: %q", v)
	}

	// The id is free again, and the new app starts empty.
	n.cli(t, "app", "create", app)
	if out := n.cli(t, "release", "list", app, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("re-created app has releases: %s", out)
	}
	if out := n.cli(t, "device", "list", app, "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("re-created app has device overrides: %s", out)
	}
	if v := fc.check(n.url, deviceID(1), "builtin"); v == "1.0.1" || v == "app_not_found" {
		t.Fatalf("device of the re-created app got %q", v)
	}
}
