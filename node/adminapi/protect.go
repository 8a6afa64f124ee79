package adminapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"mirrord/consensus/state"
	"mirrord/node"
)

// Access is what a request's bearer token allows.
type Access int

// Access levels, weakest first.
const (
	// AccessNone: no token, or one the cluster does not know (never
	// made, revoked, or the old secret of a rotated token).
	AccessNone Access = iota
	// AccessRead: a read-only token: GET and HEAD requests only.
	AccessRead
	// AccessAdmin: an admin token: everything.
	AccessAdmin
	// AccessPublish: a publish token: the publish routes of its apps
	// (see Allow).
	AccessPublish
)

// String names the level as the API shows it ("none", "read", "admin",
// "publish").
func (l Access) String() string {
	switch l {
	case AccessRead:
		return state.ScopeRead
	case AccessAdmin:
		return state.ScopeAdmin
	case AccessPublish:
		return state.ScopePublish
	}
	return "none"
}

func accessOfScope(scope string) Access {
	switch scope {
	case state.ScopeAdmin:
		return AccessAdmin
	case state.ScopeRead:
		return AccessRead
	case state.ScopePublish:
		return AccessPublish
	}
	return AccessNone
}

// AccessOf tells what the request's "Authorization: Bearer TOKEN" header
// allows.
func (a *API) AccessOf(r *http.Request) Access {
	tok, ok := a.caller(r)
	if !ok {
		return AccessNone
	}
	return accessOfScope(tok.Scope)
}

// caller finds the request's token in the cluster state, by digest (only
// digests are replicated), on every request: a revoked or rotated token
// stops working as soon as this node applied the raft entry. The node's
// own DATA/admin.token is accepted without the state only while the
// cluster knows no admin token at all (the first start, before its
// digest is committed); it is compared in constant time.
func (a *API) caller(r *http.Request) (state.Token, bool) {
	secret, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || secret == "" {
		return state.Token{}, false
	}
	st := a.cons.State()
	if t, ok := st.TokenByDigest(node.TokenDigest(secret)); ok {
		return t, true
	}
	if a.cfg.Token != "" && !st.HasAdminToken() &&
		subtle.ConstantTimeCompare([]byte(secret), []byte(a.cfg.Token)) == 1 {
		return state.Token{Name: state.AdminTokenName, Scope: state.ScopeAdmin}, true
	}
	return state.Token{}, false
}

// Protect wraps h with the admin API's auth: the request's token must
// allow its route (Allow; an admin token when write is set). A missing
// or unknown token gets 401, a token whose scope does not allow the
// route 403, both with a JSON error body that says what to do. Admitted
// requests first pass the read barrier (Config.Barrier), so that reads
// on a follower see writes made through other nodes. Requests that
// change something, and refusals, are recorded in the audit log.
func (a *API) Protect(h http.Handler, write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := a.admit(w, r, write)
		if !ok {
			return
		}
		a.used.Store(tok.Name, a.now().UnixMilli())
		if !audited(r) {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.record(r, tok.Name, sw.status)
	})
}

// admit checks the request's token, answers the refusal itself, and
// runs the read barrier for admitted requests.
func (a *API) admit(w http.ResponseWriter, r *http.Request, write bool) (state.Token, bool) {
	tok, known := a.caller(r)
	switch {
	case !known:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mirrord admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error": "unauthorized",
			"message": "missing, wrong, revoked or rotated admin token: pass --token or --token-file " +
				"(the first admin token is in DATA/admin.token on the node)",
		})
		a.refused(r, "", http.StatusUnauthorized)
		return tok, false
	case (write && tok.Scope != state.ScopeAdmin) || !Allow(tok, r.Method, patternOf(r), r.PathValue("app")):
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": forbiddenMessage(tok, r)})
		a.refused(r, tok.Name, http.StatusForbidden)
		return tok, false
	}
	a.Local().barrier(r.Context())
	return tok, true
}

// patternOf is the route pattern the mux matched ("" when none did).
func patternOf(r *http.Request) string {
	if r.Pattern == "" {
		return r.URL.Path
	}
	return r.Pattern
}

func forbiddenMessage(tok state.Token, r *http.Request) string {
	what := r.Method + " " + r.URL.Path
	if tok.Scope == state.ScopePublish {
		return "this is a publish token (" + tok.Name + ") for " + strings.Join(tok.Apps, ", ") +
			": it may upload objects, create releases and set or roll back channels of those apps only; " +
			what + " needs another token (see docs/operations.md, Tokens)"
	}
	return "this is a read-only token: it can view but not change anything; " + what +
		" needs the admin token (DATA/admin.token on a node)"
}

// auth serves fn to the tokens whose scope allows its route (see Allow).
func (a *API) auth(fn endpoint) http.Handler {
	return a.Protect(a.handler(fn), false)
}

// handler turns an endpoint function into a handler that writes its
// answer or error as JSON (without auth).
func (a *API) handler(fn endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, v, err := fn(r)
		if err != nil {
			status, v = a.errorAnswer(r, err)
		}
		writeJSON(w, status, v)
	})
}

// adminOnly is auth for endpoints that need an admin token even for GET
// (the tokens themselves).
func (a *API) adminOnly(fn endpoint) http.Handler {
	return a.Protect(a.handler(fn), true)
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
