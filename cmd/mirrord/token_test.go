package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"mirrord/node/adminapi"
)

// TestReadOnlyToken: `token create --read-only` makes a token that reads
// the admin API (and the device lookup) but is refused every write with
// 403 and a message naming the admin token; the admin-only token routes
// refuse it even for GET; revoking it makes it unknown (401).
func TestReadOnlyToken(t *testing.T) {
	n := startNode(t, "")
	if _, err := n.cliErr("token", "create"); err == nil || !strings.Contains(err.Error(), "--read-only") {
		t.Fatalf("token create without --read-only: %v", err)
	}
	ro := strings.TrimSpace(strings.SplitN(n.cli(t, "token", "create", "--read-only"), "\n", 2)[0])
	if len(ro) != 64 {
		t.Fatalf("read-only token %q", ro)
	}
	n.cli(t, "app", "create", "com.example.ro")

	do := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, n.url+path, strings.NewReader(body))
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
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/admin/v1/status", "", 200},
		{"GET", "/admin/v1/apps", "", 200},
		{"GET", "/admin/v1/apps/com.example.ro/channels", "", 200},
		{"GET", "/admin/v1/lookup?app_id=com.example.ro&device_id=d1&platform=android&version_build=1.0.0", "", 200},
		{"POST", "/admin/v1/apps", `{"id":"com.example.other"}`, 403},
		{"POST", "/admin/v1/apps/com.example.ro/channels/production/rollout/pause", "", 403},
		{"POST", "/admin/v1/tokens/read", "", 403},
		{"GET", "/admin/v1/tokens/read", "", 403},
		{"POST", "/admin/v1/cluster/tokens", "", 403},
	} {
		code, m := do(tc.method, tc.path, ro, tc.body)
		if code != tc.want {
			t.Errorf("%s %s with a read-only token: HTTP %d, want %d: %v", tc.method, tc.path, code, tc.want, m)
		}
		if code == 403 && (m["error"] != "forbidden" || !strings.Contains(m["message"].(string), "read-only token")) {
			t.Errorf("%s %s: 403 body %v", tc.method, tc.path, m)
		}
	}
	if code, m := do("GET", "/admin/v1/auth", ro, ""); code != 200 || m["access"] != "read" {
		t.Fatalf("auth with the read-only token: %d %v", code, m)
	}
	if code, m := do("GET", "/admin/v1/auth", n.token, ""); code != 200 || m["access"] != "admin" {
		t.Fatalf("auth with the admin token: %d %v", code, m)
	}
	// The CLI with a read-only token reads, and says why it cannot write.
	if out, err := cliAt(n.url, ro, "app", "list"); err != nil || !strings.Contains(out, "com.example.ro") {
		t.Fatalf("app list with a read-only token: %v\n%s", err, out)
	}
	if _, err := cliAt(n.url, ro, "app", "create", "com.example.nope"); err == nil || !strings.Contains(err.Error(), "read-only token") {
		t.Fatalf("app create with a read-only token: %v", err)
	}

	// The list names every token (the first admin token too); the
	// read-only one is the one of scope read, listed without its secret.
	var all, list []adminapi.TokenInfo
	if err := json.Unmarshal([]byte(n.cli(t, "token", "list", "--json")), &all); err != nil {
		t.Fatalf("token list: %v", err)
	}
	for _, tok := range all {
		if tok.Scope == "read" {
			list = append(list, tok)
		}
	}
	if len(list) != 1 || list[0].Secret != "" {
		t.Fatalf("token list: %+v", all)
	}
	if _, err := n.cliErr("token", "revoke", "abc"); err == nil {
		t.Fatal("revoke with a 3-character prefix worked")
	}
	if out := n.cli(t, "token", "revoke", list[0].ID[:10]); !strings.Contains(out, list[0].ID) {
		t.Fatalf("revoke said %q", out)
	}
	if code, _ := do("GET", "/admin/v1/status", ro, ""); code != 401 {
		t.Fatalf("revoked token: HTTP %d, want 401", code)
	}
	if out := n.cli(t, "token", "list"); strings.Contains(out, list[0].Name) || !strings.Contains(out, "admin") {
		t.Fatalf("token list after revoke: %q", out)
	}
}
