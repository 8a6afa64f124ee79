// Package adminapi is the operator API of a mirrord node: a Go service
// (*API, one method per operation) and its HTTP form under /admin/v1/,
// with bearer-token auth, plus Client, the typed HTTP client that the
// CLI uses. Server and client share the request and answer types and
// one error type (*Error, matched with errors.Is against ErrNotFound,
// ErrConflict, ErrInvalid, ErrUnavailable...).
//
// The API uploads objects into the local block store, checks releases
// against the stored bytes (content.CheckRelease) and proposes every
// change through consensus. Callers in the node's own process (the watch
// folder) use Local, which needs no HTTP.
//
// Files: api.go (service, routes), errors.go, protect.go (auth), then one
// file per resource (apps, objects, releases, channels, devices,
// rollouts, stats, cluster, tokens, status) and client*.go.
//
// This package may import content, consensus and node; it must not
// import resolver, configs or cmd.
package adminapi
