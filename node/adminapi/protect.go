package adminapi

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"mirrord/node"
)

// Access is what a request's bearer token allows.
type Access int

// Access levels, weakest first.
const (
	// AccessNone: no token, or one the cluster does not know.
	AccessNone Access = iota
	// AccessRead: a read-only token (mirrord token create --read-only):
	// GET and HEAD requests only.
	AccessRead
	// AccessAdmin: the node's admin token or one whose digest is in the
	// cluster state: everything.
	AccessAdmin
)

// String names the level as the API shows it ("none", "read", "admin").
func (l Access) String() string {
	switch l {
	case AccessRead:
		return "read"
	case AccessAdmin:
		return "admin"
	}
	return "none"
}

// AccessOf tells what the request's "Authorization: Bearer TOKEN" header
// allows. Only digests of tokens are kept in the cluster state; the
// node's own admin token is compared in constant time.
func (a *API) AccessOf(r *http.Request) Access {
	tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !found || tok == "" {
		return AccessNone
	}
	if a.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.Token)) == 1 {
		return AccessAdmin
	}
	digest := node.TokenDigest(tok)
	st := a.cons.State()
	switch {
	case st.AdminTokenValid(digest):
		return AccessAdmin
	case st.ReadTokenValid(digest):
		return AccessRead
	}
	return AccessNone
}

// Protect wraps h with the admin API's auth: a request needs the admin
// token when write is set or its method is not GET or HEAD, and the
// admin token or a read-only token otherwise. A missing or unknown token
// gets 401, a read-only token on a write 403, both with a JSON error
// body that says what to do. Admitted requests first pass the read
// barrier (Config.Barrier), so that reads on a follower see writes made
// through other nodes.
func (a *API) Protect(h http.Handler, write bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.admit(w, r, write) {
			h.ServeHTTP(w, r)
		}
	})
}

// admit checks the request's token, answers the refusal itself, and
// runs the read barrier for admitted requests.
func (a *API) admit(w http.ResponseWriter, r *http.Request, write bool) bool {
	needAdmin := write || (r.Method != http.MethodGet && r.Method != http.MethodHead)
	switch got := a.AccessOf(r); {
	case got == AccessNone:
		w.Header().Set("WWW-Authenticate", `Bearer realm="mirrord admin"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error":   "unauthorized",
			"message": "missing or wrong admin token: pass --token or --token-file (the token is in DATA/admin.token on the node)",
		})
		return false
	case got == AccessRead && needAdmin:
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": "forbidden",
			"message": "this is a read-only token: it can view but not change anything; " + r.Method + " " + r.URL.Path +
				" needs the admin token (DATA/admin.token on a node)",
		})
		return false
	}
	a.Local().barrier(r.Context())
	return true
}

// auth serves fn to the admin token, and for GET and HEAD also to
// read-only tokens (see Protect).
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

// adminOnly is auth for endpoints that need the admin token even for GET
// (the read-only tokens themselves).
func (a *API) adminOnly(fn endpoint) http.Handler {
	return a.Protect(a.handler(fn), true)
}
