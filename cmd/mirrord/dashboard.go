package main

import (
	"net/http"

	"mirrord/node/adminapi"
	"mirrord/node/dashboard"
	"mirrord/resolver/httpapi"
)

// registerDashboard adds the web dashboard and the operator routes it
// needs beyond the admin API to mux: the dashboard's files under /ui/,
// a redirect from / to it (nothing else serves /), and GET
// /admin/v1/lookup, the device lookup. The lookup is the device API's
// resolver behind the admin API's auth (admin or read-only token): it
// reveals targeting, so it is not on the public device routes.
func registerDashboard(mux *http.ServeMux, admin *adminapi.API, devices *httpapi.API) {
	mux.Handle(dashboard.Prefix, dashboard.Handler())
	mux.Handle("GET /{$}", dashboard.RedirectRoot())
	mux.Handle("GET /admin/v1/lookup", admin.Protect(devices.LookupHandler(), false))
}
