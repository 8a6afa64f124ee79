package adminapi

import (
	"net/http"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

// TestAllow is the scope decision table: route x scope -> allowed.
func TestAllow(t *testing.T) {
	admin := state.Token{Name: "admin", Scope: state.ScopeAdmin}
	read := state.Token{Name: "viewer", Scope: state.ScopeRead}
	pub := state.Token{Name: "ci", Scope: state.ScopePublish, Apps: []string{"a.one", "a.two"}}
	for _, tc := range []struct {
		pattern, app     string
		admin, read, pub bool
	}{
		{"GET /admin/v1/status", "", true, true, false},
		{"GET /admin/v1/auth", "", true, true, true},
		{"GET /admin/v1/apps", "", true, true, false},
		{"POST /admin/v1/apps", "", true, false, false},
		{"GET /admin/v1/apps/{app}", "a.one", true, true, true},
		{"GET /admin/v1/apps/{app}", "a.three", true, true, false},
		{"DELETE /admin/v1/apps/{app}", "a.one", true, false, false},
		{"POST /admin/v1/objects", "", true, false, true},
		{"GET /admin/v1/apps/{app}/releases", "a.two", true, true, true},
		{"POST /admin/v1/apps/{app}/releases", "a.one", true, false, true},
		{"POST /admin/v1/apps/{app}/releases", "a.three", true, false, false},
		{"DELETE /admin/v1/apps/{app}/releases/{version}", "a.one", true, false, false},
		{"GET /admin/v1/apps/{app}/channels", "a.one", true, true, true},
		{"PUT /admin/v1/apps/{app}/channels/{channel}", "a.one", true, false, true},
		{"PUT /admin/v1/apps/{app}/channels/{channel}", "a.three", true, false, false},
		{"DELETE /admin/v1/apps/{app}/channels/{channel}", "a.one", true, false, false},
		{"POST /admin/v1/apps/{app}/channels/{channel}/rollback", "a.one", true, false, true},
		{"GET /admin/v1/apps/{app}/channels/{channel}/rollout", "a.one", true, true, true},
		{"POST /admin/v1/apps/{app}/channels/{channel}/rollout", "a.one", true, false, false},
		{"PATCH /admin/v1/apps/{app}/channels/{channel}/rollout", "a.one", true, false, false},
		{"POST /admin/v1/apps/{app}/channels/{channel}/rollout/{action}", "a.one", true, false, false},
		{"GET /admin/v1/apps/{app}/stats", "a.one", true, true, true},
		{"GET /admin/v1/apps/{app}/devices", "a.one", true, true, true},
		{"POST /admin/v1/apps/{app}/devices", "a.one", true, false, false},
		{"PUT /admin/v1/apps/{app}/devices/{device}", "a.one", true, false, false},
		{"DELETE /admin/v1/apps/{app}/devices/{device}", "a.one", true, false, false},
		{"POST /admin/v1/cluster/tokens", "", true, false, false},
		{"POST /admin/v1/gc", "", true, false, false},
		{"DELETE /admin/v1/cluster/nodes/{id}", "", true, false, false},
		{"GET /admin/v1/audit", "", true, true, false},
		{"GET /admin/v1/lookup", "", true, true, false},
		{"GET /metrics", "", true, true, false},
		{"POST /admin/v1/tokens", "", true, false, false},
		{"GET /admin/v1/tokens", "", true, false, false},
		{"DELETE /admin/v1/tokens/{name}", "", true, false, false},
		{"POST /admin/v1/tokens/{name}/rotate", "", true, false, false},
		{"GET /admin/v1/tokens/read", "", true, false, false},
		{"DELETE /admin/v1/tokens/read/{id}", "", true, false, false},
		{"/admin/", "", true, false, false}, // the catch-all, for a POST
	} {
		method, _, ok := strings.Cut(tc.pattern, " ")
		if !ok {
			method = http.MethodPost
		}
		for _, c := range []struct {
			tok  state.Token
			want bool
		}{{admin, tc.admin}, {read, tc.read}, {pub, tc.pub}} {
			if got := Allow(c.tok, method, tc.pattern, tc.app); got != c.want {
				t.Errorf("Allow(%s, %s, app %q) = %v, want %v", c.tok.Scope, tc.pattern, tc.app, got, c.want)
			}
		}
	}
	// HEAD reads as GET; an unknown scope is allowed nothing.
	if !Allow(read, http.MethodHead, "GET /admin/v1/status", "") || Allow(state.Token{Scope: "root"}, "GET", "GET /admin/v1/status", "") {
		t.Error("HEAD or unknown scope")
	}
}
