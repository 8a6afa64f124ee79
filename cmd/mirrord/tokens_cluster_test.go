package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// apiCall makes an admin API request with a bearer token and returns
// the status and the decoded JSON body.
func apiCall(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// everywhere waits (1 s deadline) until GET /admin/v1/auth with token
// answers want on every node.
func everywhere(t *testing.T, nodes []*testNode, token string, want int, what string) time.Duration {
	t.Helper()
	start := time.Now()
	consensustest.WaitFor(t, what, func() bool {
		for _, n := range nodes {
			if code, _ := apiCall(t, "GET", n.url+"/admin/v1/auth", token, ""); code != want {
				return false
			}
		}
		return true
	}, time.Second)
	return time.Since(start)
}

// TestTokenLifeCycleCluster is the token must-show on a 3-node
// cluster: scoped tokens made over the CLI and the API are used (a
// publish token publishes to its app only, a read token reads only); a
// token revoked through one node is refused by every node within a
// second; rotating the first admin token makes the old secret refused
// and the new one work on every node, and every node's admin.token holds
// it; the audit log names each action's token.
func TestTokenLifeCycleCluster(t *testing.T) {
	vec := vectors(t)
	a := startNode(t, "")
	jt := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := joinNode(t, a.url, jt, nil)
	c := joinNode(t, b.url, jt, nil)
	nodes := []*testNode{a, b, c}
	const app, other = "com.example.pub", "com.example.other"
	a.cli(t, "app", "create", app)
	a.cli(t, "app", "create", other)

	// Made over the CLI (through B) and over the API (through C).
	pub := strings.TrimSpace(strings.SplitN(b.cli(t, "token", "create", "ci", "--scope", "publish", "--apps", app), "\n", 2)[0])
	code, m := apiCall(t, "POST", c.url+"/admin/v1/tokens", c.token, `{"name":"viewer","scope":"read"}`)
	if code != http.StatusCreated || m["name"] != "viewer" || m["scope"] != "read" {
		t.Fatalf("create a read token over the API: %d %v", code, m)
	}
	ro := m["token"].(string)
	if len(pub) != 64 || len(ro) != 64 {
		t.Fatalf("secrets %q %q", pub, ro)
	}

	// The publish token publishes to its app (through C), and nothing else.
	if out, err := cliAt(c.url, pub, "publish", "--app", app, "--version", "1.0.1", "--channel", "production",
		filepath.Join(vec, "src-1.0.1")); err != nil {
		t.Fatalf("publish with the publish token: %v\n%s", err, out)
	}
	if _, err := cliAt(c.url, pub, "publish", "--app", other, "--version", "1.0.1", filepath.Join(vec, "src-1.0.1")); err == nil ||
		!strings.Contains(err.Error(), "publish token") {
		t.Fatalf("publish to another app with the publish token: %v", err)
	}
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"GET", "/admin/v1/apps/" + app + "/releases", pub, "", 200},
		{"POST", "/admin/v1/apps/" + app + "/channels/production/rollback", pub, "", 409}, // allowed; no history
		{"PUT", "/admin/v1/apps/" + other + "/channels/production", pub, `{"version":"builtin"}`, 403},
		{"POST", "/admin/v1/apps", pub, `{"id":"com.example.new"}`, 403},
		{"DELETE", "/admin/v1/apps/" + app + "/releases/1.0.1", pub, "", 403},
		{"GET", "/admin/v1/tokens", pub, "", 403},
		{"GET", "/admin/v1/status", pub, "", 403},
		{"GET", "/admin/v1/apps/" + other, pub, "", 403},
		{"GET", "/admin/v1/status", ro, "", 200},
		{"PUT", "/admin/v1/apps/" + app + "/channels/beta", ro, `{"version":"builtin"}`, 403},
		{"GET", "/admin/v1/tokens", ro, "", 403},
	} {
		if code, m := apiCall(t, tc.method, a.url+tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s: HTTP %d, want %d: %v", tc.method, tc.path, code, tc.want, m)
		}
	}

	// The list names them, with scope, apps and who made them.
	var list []adminapi.TokenInfo
	if err := json.Unmarshal([]byte(a.cli(t, "token", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	byName := map[string]adminapi.TokenInfo{}
	for _, tok := range list {
		byName[tok.Name] = tok
	}
	if ci := byName["ci"]; ci.Scope != "publish" || len(ci.Apps) != 1 || ci.Apps[0] != app || ci.CreatedBy != "admin" ||
		ci.Secret != "" || ci.LastUsed == 0 || byName["viewer"].Scope != "read" || byName["admin"].Scope != "admin" {
		t.Fatalf("token list: %+v", list)
	}

	// Revoked through C: refused everywhere within a second.
	c.cli(t, "token", "revoke", "ci")
	took := everywhere(t, nodes, pub, http.StatusUnauthorized, "the revoked token refused on every node")
	t.Logf("revocation seen on every node after %v", took)

	// Rotating the first admin token (through A).
	old := a.token
	newTok := strings.TrimSpace(strings.SplitN(a.cli(t, "token", "rotate", "admin"), "\n", 2)[0])
	if len(newTok) != 64 || newTok == old {
		t.Fatalf("rotate said %q", newTok)
	}
	everywhere(t, nodes, old, http.StatusUnauthorized, "the old admin token refused on every node")
	everywhere(t, nodes, newTok, http.StatusOK, "the new admin token accepted on every node")
	for _, n := range nodes {
		b, err := os.ReadFile(filepath.Join(n.data, "admin.token"))
		if err != nil || strings.TrimSpace(string(b)) != newTok {
			t.Fatalf("%s/admin.token after the rotation: %q %v", n.data, b, err)
		}
		n.token = newTok
	}
	if code, m := apiCall(t, "GET", b.url+"/admin/v1/auth", newTok, ""); code != 200 || m["access"] != "admin" || m["name"] != "admin" {
		t.Fatalf("auth with the new admin token: %d %v", code, m)
	}
	if _, err := c.cliErr("token", "revoke", "admin"); err == nil {
		t.Fatal("revoking the last admin token worked")
	}

	// The audit log, read through B, names each action's token.
	var log []state.AuditEntry
	if err := json.Unmarshal([]byte(b.cli(t, "audit", "--json", "--since", "1h")), &log); err != nil {
		t.Fatal(err)
	}
	want := []struct{ token, method, route, target string }{
		{"admin", "POST", "/admin/v1/apps", ""},
		{"admin", "POST", "/admin/v1/tokens", ""},
		{"ci", "POST", "/admin/v1/apps/{app}/releases", app},
		{"ci", "PUT", "/admin/v1/apps/{app}/channels/{channel}", other}, // refused: 403
		{"viewer", "PUT", "/admin/v1/apps/{app}/channels/{channel}", app},
		{"admin", "DELETE", "/admin/v1/tokens/{name}", "ci"},
		{"", "GET", "/admin/v1/auth", ""}, // the revoked token, 401
		{"admin", "POST", "/admin/v1/tokens/{name}/rotate", "admin"},
	}
	for _, w := range want {
		found := false
		for _, e := range log {
			if e.Token == w.token && e.Method == w.method && e.Route == w.route && e.Remote != "" && e.At > 0 &&
				(w.target == "" || e.Target["app"] == w.target || e.Target["name"] == w.target) {
				found = true
			}
		}
		if !found {
			t.Errorf("audit log has no %+v:\n%+v", w, log)
		}
	}
	if out := c.cli(t, "audit"); !strings.Contains(out, "ci") || !strings.Contains(out, "/admin/v1/tokens/{name}/rotate") {
		t.Fatalf("mirrord audit:\n%s", out)
	}
}
