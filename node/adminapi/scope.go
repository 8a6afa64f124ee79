package adminapi

import (
	"net/http"
	"strings"

	"mirrord/consensus/state"
)

// What each token scope may call, by route pattern (the path as
// registered in Register, with its {wildcards}):
//
//   - admin: every route.
//   - read: GET and HEAD of every route but the token routes
//     (adminOnlyRoutes); nothing that changes anything.
//   - publish (apps A, B, …): GET /admin/v1/auth; GET and HEAD of the
//     routes under /admin/v1/apps/{app} for its apps (the app, its
//     releases, channels, rollouts, stats, devices); and the writes of
//     publishWrites: upload an object (objects are content-addressed
//     and not an app's: a publish token may store bytes within the disk
//     budget, which GC reclaims when no release references them),
//     create a release, create or set a channel (point it at a version,
//     change its settings) and roll a channel back, of its apps only.
//     Not: app create/delete, release or channel delete, rollouts,
//     device overrides, the status, the app list, cluster routes, GC,
//     tokens, the audit log, the device lookup or the metrics.

// adminOnlyRoutes need an admin token even to read: the tokens.
var adminOnlyRoutes = map[string]bool{
	"/admin/v1/tokens":               true,
	"/admin/v1/tokens/{name}":        true,
	"/admin/v1/tokens/{name}/rotate": true,
	"/admin/v1/tokens/read":          true,
	"/admin/v1/tokens/read/{id}":     true,
}

// publishWrites are the writes a publish token may make, for its apps.
var publishWrites = map[string]bool{
	"POST /admin/v1/objects":                                true,
	"POST /admin/v1/apps/{app}/releases":                    true,
	"PUT /admin/v1/apps/{app}/channels/{channel}":           true,
	"POST /admin/v1/apps/{app}/channels/{channel}/rollback": true,
}

// appRoutes is the prefix of the routes of one app.
const appRoutes = "/admin/v1/apps/{app}"

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// routeOf returns the path of a mux pattern ("GET /x/{y}" -> "/x/{y}").
func routeOf(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return strings.TrimSpace(pattern[i+1:])
	}
	return pattern
}

// Allow reports whether tok may call method on the route pattern (as
// registered with the mux, with or without its method) for app (the
// route's {app}, "" if it has none).
func Allow(tok state.Token, method, pattern, app string) bool {
	route := routeOf(pattern)
	switch tok.Scope {
	case state.ScopeAdmin:
		return true
	case state.ScopeRead:
		return isRead(method) && !adminOnlyRoutes[route]
	case state.ScopePublish:
		switch {
		case route == "/admin/v1/auth":
			return isRead(method)
		case publishWrites[method+" "+route]:
			return !strings.Contains(route, "{app}") || tok.CanChange(app)
		case isRead(method) && (route == appRoutes || strings.HasPrefix(route, appRoutes+"/")):
			return tok.CanChange(app)
		}
	}
	return false
}
