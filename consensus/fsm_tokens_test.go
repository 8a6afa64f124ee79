package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

func digest(c string) string { return strings.Repeat(c, 32) }

// TestLegacyTokensNamed: tokens made by the old commands (and read from
// old snapshots) apply exactly as before and show as named tokens: the
// first admin token is "admin", a second admin-HEX12, read-only tokens
// read-HEX12; the old ReadTokenDelete still revokes.
func TestLegacyTokensNamed(t *testing.T) {
	h := newHarness(t,
		AdminTokenAdd{Digest: digest("a1"), CreatedAt: 1},
		AdminTokenAdd{Digest: digest("a2"), CreatedAt: 2},
		ReadTokenAdd{Digest: digest("c3"), CreatedAt: 3},
		ReadTokenAdd{Digest: digest("c4"), CreatedAt: 4},
	)
	s, err := h.apply(ReadTokenDelete{Digest: digest("c4")})
	if err != nil {
		t.Fatal(err)
	}
	c := s.ClusterInfo()
	if len(c.AdminTokens) != 2 || len(c.ReadTokens) != 1 || c.Tokens != nil {
		t.Fatalf("old commands changed how they apply: %+v", c)
	}
	var names []string
	for _, tok := range s.TokenList() {
		names = append(names, tok.Name+":"+tok.Scope)
	}
	want := []string{"admin:admin", "admin-a2a2a2a2a2a2:admin", "read-c3c3c3c3c3c3:read"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("names %v, want %v", names, want)
	}
	if !s.AdminTokenValid(digest("a2")) || !s.ReadTokenValid(digest("c3")) || s.ReadTokenValid(digest("c4")) {
		t.Fatal("validity of legacy tokens")
	}
	// The old golden snapshot names its tokens the same way.
	g := goldenState()
	if tok, ok := g.TokenByDigest(strings.Repeat("a1", 32)); !ok || tok.Name != "admin" || tok.Scope != "admin" {
		t.Fatalf("golden snapshot's admin token: %+v", tok)
	}
}

// TestTokenCommands is the table of the named-token commands.
func TestTokenCommands(t *testing.T) {
	legacy := []Command{AdminTokenAdd{Digest: digest("a1"), CreatedAt: 1}, ReadTokenAdd{Digest: digest("c3"), CreatedAt: 2}}
	pub := state.Token{Name: "ci", Digest: digest("d4"), Scope: "publish", Apps: []string{"a.one"}, CreatedAt: 5, CreatedBy: "admin"}
	for _, tc := range []struct {
		name  string
		setup []Command
		cmd   Command
		err   error
		check func(*state.State) string
	}{
		{"create publish", legacy, TokenCreate{Token: pub}, nil, func(s *state.State) string {
			tok, ok := s.TokenByDigest(digest("d4"))
			return check(ok && tok.Name == "ci" && tok.CanChange("a.one") && !tok.CanChange("a.two"), "%+v", tok)
		}},
		{"create: name taken by a legacy token", legacy, TokenCreate{Token: state.Token{Name: "admin", Digest: digest("d4"), Scope: "admin"}}, state.ErrConflict, nil},
		{"create: legacy-form name", nil, TokenCreate{Token: state.Token{Name: "read-c3c3c3c3c3c3", Digest: digest("d4"), Scope: "read"}}, state.ErrInvalid, nil},
		{"create: digest of a legacy token", legacy, TokenCreate{Token: state.Token{Name: "x", Digest: digest("c3"), Scope: "read"}}, state.ErrConflict, nil},
		{"create: publish without apps", nil, TokenCreate{Token: state.Token{Name: "x", Digest: digest("d4"), Scope: "publish"}}, state.ErrInvalid, nil},
		{"create: read with apps", nil, TokenCreate{Token: state.Token{Name: "x", Digest: digest("d4"), Scope: "read", Apps: []string{"a"}}}, state.ErrInvalid, nil},
		{"create: unknown scope", nil, TokenCreate{Token: state.Token{Name: "x", Digest: digest("d4"), Scope: "root"}}, state.ErrInvalid, nil},
		{"create: unsorted apps", nil, TokenCreate{Token: state.Token{Name: "x", Digest: digest("d4"), Scope: "publish", Apps: []string{"b", "a"}}}, state.ErrInvalid, nil},
		{"revoke legacy read", legacy, TokenRevoke{Name: "read-c3c3c3c3c3c3"}, nil, func(s *state.State) string {
			return check(s.ClusterInfo().ReadTokens == nil && !s.ReadTokenValid(digest("c3")), "%+v", s.ClusterInfo())
		}},
		{"revoke the last admin token", legacy, TokenRevoke{Name: "admin"}, state.ErrConflict, nil},
		{"revoke an admin token when another exists", append(legacy, TokenCreate{Token: state.Token{Name: "ops", Digest: digest("e5"), Scope: "admin"}}),
			TokenRevoke{Name: "admin"}, nil, func(s *state.State) string {
				return check(!s.AdminTokenValid(digest("a1")) && s.AdminTokenValid(digest("e5")), "%+v", s.ClusterInfo())
			}},
		{"revoke unknown", legacy, TokenRevoke{Name: "nope"}, state.ErrNotFound, nil},
		{"rotate the legacy admin token", legacy, TokenRotate{Name: "admin", Digest: digest("f6"), At: 9}, nil, func(s *state.State) string {
			tok, ok := s.TokenByName("admin")
			return check(ok && tok.Digest == digest("f6") && tok.RotatedAt == 9 && tok.CreatedAt == 1 &&
				!s.AdminTokenValid(digest("a1")) && s.ClusterInfo().AdminTokens == nil, "%+v", tok)
		}},
		{"rotate to a known digest", legacy, TokenRotate{Name: "admin", Digest: digest("c3"), At: 9}, state.ErrConflict, nil},
		{"rotate a named token", append(legacy, TokenCreate{Token: pub}), TokenRotate{Name: "ci", Digest: digest("f6"), At: 9}, nil, func(s *state.State) string {
			tok, _ := s.TokenByDigest(digest("f6"))
			_, old := s.TokenByDigest(digest("d4"))
			return check(tok.Name == "ci" && tok.Scope == "publish" && !old, "%+v", tok)
		}},
		{"old AdminTokenAdd of a named digest changes nothing", append(legacy, TokenCreate{Token: pub}),
			AdminTokenAdd{Digest: digest("d4"), CreatedAt: 7}, nil, func(s *state.State) string {
				return check(!s.AdminTokenValid(digest("d4")), "%+v", s.ClusterInfo())
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.setup...)
			s, err := h.apply(tc.cmd)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(s); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func check(ok bool, format string, args ...any) string {
	if ok {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// TestAuditAppend: the log keeps the last state.MaxAudit entries; bad
// batches are refused whole.
func TestAuditAppend(t *testing.T) {
	h := newHarness(t)
	e := func(i int) state.AuditEntry {
		return state.AuditEntry{At: int64(i), Token: "admin", Method: "POST", Route: "/admin/v1/apps", Status: 201}
	}
	var s *state.State
	for i := 0; i < state.MaxAudit/state.MaxAuditBatch+2; i++ {
		batch := make([]state.AuditEntry, state.MaxAuditBatch)
		for j := range batch {
			batch[j] = e(i*state.MaxAuditBatch + j)
		}
		var err error
		if s, err = h.apply(AuditAppend{Entries: batch}); err != nil {
			t.Fatal(err)
		}
	}
	log := s.AuditLog(0)
	if len(log) != state.MaxAudit || log[len(log)-1].At != int64((state.MaxAudit/state.MaxAuditBatch+2)*state.MaxAuditBatch-1) {
		t.Fatalf("audit log of %d entries, last %+v", len(log), log[len(log)-1])
	}
	if got := s.AuditLog(log[len(log)-10].At); len(got) != 10 {
		t.Fatalf("since: %d entries", len(got))
	}
	for _, bad := range [][]state.AuditEntry{nil, {{Method: "POST"}}, {{Method: "POST", Route: strings.Repeat("x", 300)}},
		make([]state.AuditEntry, state.MaxAuditBatch+1)} {
		if _, err := h.apply(AuditAppend{Entries: bad}); !errors.Is(err, state.ErrInvalid) {
			t.Fatalf("bad batch: %v", err)
		}
	}
}

// tokensState is a state with a legacy admin token, a rotated named
// publish token and two audit entries.
func tokensState(t testing.TB) *state.State {
	t.Helper()
	s := state.Empty()
	var err error
	steps := []func(*state.State) (*state.State, error){
		func(s *state.State) (*state.State, error) { return s.AddAdminToken(1, digest("a1"), 1) },
		func(s *state.State) (*state.State, error) {
			return s.CreateToken(2, state.Token{Name: "ci", Digest: digest("d4"), Scope: "publish", Apps: []string{"a.one", "a.two"}, CreatedAt: 5, CreatedBy: "admin"})
		},
		func(s *state.State) (*state.State, error) { return s.RotateToken(3, "ci", digest("d5"), 6) },
		func(s *state.State) (*state.State, error) {
			return s.AppendAudit(4, []state.AuditEntry{{At: 7, Node: "n1", Token: "ci", Method: "POST", Route: "/admin/v1/apps/{app}/releases",
				Target: map[string]string{"app": "a.one"}, Remote: "127.0.0.1:1", Status: 201}, {At: 8, Method: "GET", Route: "/admin/v1/auth", Status: 401, Target: map[string]string{}}})
		},
	}
	for _, step := range steps {
		if s, err = step(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// TestSnapshotTokensAndAudit: named tokens and the audit log go through
// a snapshot unchanged, beside legacy tokens, and the FSM builds the
// same state from the commands.
func TestSnapshotTokensAndAudit(t *testing.T) {
	if s := tokensState(t); true {
		got, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)))
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Fatalf("%v\ngot\n%#v\nwant\n%#v", err, got.Cluster, s.Cluster)
		}
	}
	h := newHarness(t,
		AdminTokenAdd{Digest: digest("a1"), CreatedAt: 1},
		TokenCreate{Token: state.Token{Name: "ci", Digest: digest("d4"), Scope: "publish", Apps: []string{"a.one", "a.two"}, CreatedAt: 5, CreatedBy: "admin"}},
		TokenRotate{Name: "ci", Digest: digest("d5"), At: 6},
		AuditAppend{Entries: []state.AuditEntry{{At: 7, Node: "n1", Token: "ci", Method: "POST", Route: "/admin/v1/apps/{app}/releases",
			Target: map[string]string{"app": "a.one"}, Remote: "127.0.0.1:1", Status: 201}, {At: 8, Method: "GET", Route: "/admin/v1/auth", Status: 401}}},
	)
	s := h.f.State()
	got, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("got\n%#v\nwant\n%#v", got.Cluster, s.Cluster)
	}
}
