package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/consensus"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/content/contenttest"
)

// testServer is an admin API over a one-node raft cluster and a real
// block store, served over HTTP.
type testServer struct {
	api *API
	srv *httptest.Server
}

func newTestServer(t *testing.T, cfg Config) testServer {
	t.Helper()
	cl := consensustest.NewCluster(t, 1)
	store, err := content.OpenStore(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg.Token = testToken
	api := New(cfg, cl.Node(0), store, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return testServer{api: api, srv: srv}
}

func (s testServer) client(token string) *Client { return NewClient(s.srv.URL, token, s.srv.Client()) }

// raw sends a request with the token and returns the status and the
// decoded error code ("" for a success).
func (s testServer) raw(t *testing.T, token, method, path, body string) (int, string, int) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans struct {
		Code string `json:"error"`
		Row  int    `json:"row"`
	}
	if resp.StatusCode >= 300 {
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatalf("%s %s: error answer is not JSON: %v", method, path, err)
		}
	}
	return resp.StatusCode, ans.Code, ans.Row
}

// TestHandlers: the status and error code of each kind of request and
// refusal, through the HTTP routes.
func TestHandlers(t *testing.T) {
	s := newTestServer(t, Config{MaxBodyBytes: 4096})
	ctx := context.Background()
	zip := storedZip(t, map[string][]byte{"index.html": []byte("<html>hi</html>")})
	obj, err := s.api.Upload(ctx, bytes.NewReader(zip), int64(len(zip)))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := s.api.Upload(ctx, strings.NewReader("<html>hi</html>"), -1)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := s.api.CreateReadToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rel := func(version, name, hash string) string {
		return fmt.Sprintf(`{"version":%q,"zip_cid":%q,"checksum":%q,"manifest":[{"file_name":%q,"file_hash":%q,"cid":%q}]}`,
			version, obj.CID, hexSum(zip), name, hash, idx.CID)
	}
	good := hexSum([]byte("<html>hi</html>"))
	for _, tc := range []struct {
		name, token, method, path, body string
		status                          int
		code                            string
	}{
		{"create app", testToken, "POST", "/admin/v1/apps", `{"id":"com.example.app"}`, 201, ""},
		{"app again", testToken, "POST", "/admin/v1/apps", `{"id":"com.example.app"}`, 409, "conflict"},
		{"bad app id", testToken, "POST", "/admin/v1/apps", `{"id":"no"}`, 400, "invalid"},
		{"unknown field", testToken, "POST", "/admin/v1/apps", `{"id":"com.x.y","x":1}`, 400, "invalid"},
		{"body limit", testToken, "POST", "/admin/v1/apps", `{"id":"` + strings.Repeat("a", 5000) + `"}`, 413, "too_large"},
		{"unknown app", testToken, "GET", "/admin/v1/apps/com.none.here", "", 404, "not_found"},
		{"no route", testToken, "GET", "/admin/v1/nothing", "", 404, "not_found"},
		{"no token", "", "GET", "/admin/v1/apps", "", 401, "unauthorized"},
		{"wrong token", "wrong", "GET", "/admin/v1/apps", "", 401, "unauthorized"},
		{"read-only reads", ro.Token, "GET", "/admin/v1/apps", "", 200, ""},
		{"read-only write", ro.Token, "POST", "/admin/v1/apps", `{"id":"com.x.y"}`, 403, "forbidden"},
		{"read-only token list", ro.Token, "GET", "/admin/v1/tokens/read", "", 403, "forbidden"},
		{"release", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.0", "index.html", good), 201, ""},
		{"release again", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.0", "index.html", good), 409, "conflict"},
		{"not semver", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("v1.0.1", "index.html", good), 400, "invalid"},
		{"unsafe path", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.2", "../index.html", good), 400, "invalid"},
		{"unclean path", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.2", "a//index.html", good), 400, "invalid"},
		{"wrong hash", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.2", "index.html", hexSum(nil)), 400, "invalid"},
		{"bad brotli", testToken, "POST", "/admin/v1/apps/com.example.app/releases", rel("1.0.2", "index.html.br", good), 400, "invalid"},
		{"release of unknown app", testToken, "POST", "/admin/v1/apps/com.none.here/releases", rel("1.0.0", "index.html", good), 404, "not_found"},
		{"channel", testToken, "PUT", "/admin/v1/apps/com.example.app/channels/production", `{"version":"1.0.0"}`, 200, ""},
		{"bad channel name", testToken, "PUT", "/admin/v1/apps/com.example.app/channels/-x", `{}`, 400, "invalid"},
		{"channel to unknown release", testToken, "PUT", "/admin/v1/apps/com.example.app/channels/beta", `{"version":"9.9.9"}`, 404, "not_found"},
		{"delete app in use", testToken, "DELETE", "/admin/v1/apps/com.example.app", "", 409, "conflict"},
		{"bad force", testToken, "DELETE", "/admin/v1/apps/com.example.app?force=maybe", "", 400, "invalid"},
		{"device", testToken, "PUT", "/admin/v1/apps/com.example.app/devices/DEV-1", `{"channel":"production"}`, 200, ""},
		{"device without target", testToken, "PUT", "/admin/v1/apps/com.example.app/devices/dev-2", `{}`, 400, "invalid"},
		{"device to unknown channel", testToken, "PUT", "/admin/v1/apps/com.example.app/devices/dev-2", `{"channel":"nope"}`, 404, "not_found"},
		{"bulk devices", testToken, "POST", "/admin/v1/apps/com.example.app/devices", `{"devices":[{"device_id":"a","channel":"production"}]}`, 200, ""},
		{"bulk bad dry_run", testToken, "POST", "/admin/v1/apps/com.example.app/devices?dry_run=x", `{"devices":[]}`, 400, "invalid"},
		{"bad token id", testToken, "DELETE", "/admin/v1/tokens/read/xyz", "", 400, "invalid"},
		{"no cluster", testToken, "POST", "/admin/v1/cluster/tokens", "", 404, "not_found"},
		{"no gc", testToken, "POST", "/admin/v1/gc", "", 404, "not_found"},
	} {
		status, code, _ := s.raw(t, tc.token, tc.method, tc.path, tc.body)
		if status != tc.status || code != tc.code {
			t.Errorf("%s: HTTP %d %q, want %d %q", tc.name, status, code, tc.status, tc.code)
		}
	}
	// A bad row of a bulk request is named by its row.
	status, code, row := s.raw(t, testToken, "POST", "/admin/v1/apps/com.example.app/devices",
		`{"devices":[{"device_id":"a","channel":"production"},{"device_id":"b","channel":"nope"}],"first_row":7}`)
	if status != 400 || code != "invalid" || row != 8 {
		t.Errorf("bulk bad row: HTTP %d %q row %d, want 400 invalid row 8", status, code, row)
	}
}

// TestClient: the client's methods against the server, with the typed
// errors matched by errors.Is.
func TestClient(t *testing.T) {
	s := newTestServer(t, Config{})
	ctx := context.Background()
	c := s.client(testToken)
	pub, err := os.ReadFile(filepath.Join(contenttest.Vectors(t), "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	app, err := c.CreateApp(ctx, CreateAppRequest{ID: "com.example.app", PublicKey: string(pub)})
	if err != nil || app.KeyID != content.KeyID(string(pub)) {
		t.Fatalf("create app: %+v %v", app, err)
	}
	if _, err := c.CreateApp(ctx, CreateAppRequest{ID: "com.example.app"}); !errors.Is(err, ErrConflict) {
		t.Errorf("app twice: %v, want ErrConflict", err)
	}
	if _, err := c.App(ctx, "com.none.here"); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		t.Errorf("unknown app: %v, want ErrNotFound", err)
	}
	if _, err := c.CreateApp(ctx, CreateAppRequest{ID: "bad"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad id: %v, want ErrInvalid", err)
	}
	if _, err := s.client("wrong").Apps(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
	ro, err := c.CreateReadToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who, err := s.client(ro.Token).WhoAmI(ctx); err != nil || who.Access != "read" {
		t.Errorf("whoami read-only: %+v %v", who, err)
	}
	if _, err := s.client(ro.Token).CreateApp(ctx, CreateAppRequest{ID: "com.x.y"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("read-only write: %v, want ErrForbidden", err)
	}
	if toks, err := c.ReadTokens(ctx); err != nil || len(toks) != 1 || toks[0].ID != ro.ID {
		t.Errorf("read tokens: %+v %v", toks, err)
	}
	if err := c.DeleteReadToken(ctx, ro.ID); err != nil {
		t.Errorf("revoke: %v", err)
	}
	_, err = c.BulkDevices(ctx, "com.example.app", BulkDevicesRequest{Devices: []state.DeviceEntry{{DeviceID: "x", Channel: "none"}}}, true)
	var ae *Error
	if !errors.As(err, &ae) || ae.Row != 1 || !errors.Is(err, ErrInvalid) {
		t.Errorf("bulk bad row: %v, want an *Error of row 1", err)
	}
	if _, err := c.Releases(ctx, "com.example.app", false); err != nil {
		t.Errorf("releases: %v", err)
	}
	if st, err := c.Status(ctx); err != nil || st.Apps != 1 {
		t.Errorf("status: %+v %v", st, err)
	}
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	if _, err := NewClient(dead.URL, testToken, nil).Apps(ctx); !errors.Is(err, ErrUnavailable) || !strings.HasPrefix(err.Error(), "cannot reach mirrord") {
		t.Errorf("unreachable: %v, want ErrUnavailable", err)
	}
}

// TestClassify: errors of consensus map to the kinds callers retry or
// not, in process as over HTTP.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		target error
		status int
	}{
		{consensus.ErrNotLeader, ErrUnavailable, 503},
		{fmt.Errorf("apply: %w", consensus.ErrUnavailable), ErrUnavailable, 503},
		{consensus.ErrTooLarge, ErrTooLarge, 413},
		{bad("x"), ErrInvalid, 400},
		{fmt.Errorf("wrapped: %w", notFound("x")), ErrNotFound, 404},
		{errors.New("disk on fire"), nil, 500},
	} {
		e := classify(tc.err)
		if e.Status != tc.status || (tc.target != nil && !errors.Is(e, tc.target)) || !errors.Is(e, tc.err) {
			t.Errorf("classify(%v) = %d %q, want %d matching %v", tc.err, e.Status, e.Code, tc.status, tc.target)
		}
	}
}
