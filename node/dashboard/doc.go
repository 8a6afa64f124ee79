// Package dashboard is the operator web dashboard every mirrord node
// serves under /ui/: cluster health (nodes, roles, leader, applied index
// and lag, last contact, releases ready per node), apps with their
// channels and releases and their installs, failures and update checks
// per version and hour over the last day or week (the cluster's hourly
// history, history.js), rollouts with live install and failure charts,
// a device lookup ("which release would this device get, and why") and
// the rollout and rollback actions, each behind a confirm step.
//
// The page is plain HTML, CSS and JavaScript embedded in the binary,
// with no external fonts, scripts or CDN, so it works on air-gapped
// sites; charts are inline SVG drawn by the page itself. It holds no
// data: it asks the node's admin API (/admin/v1/...) with the bearer
// token the operator types in, kept in the tab's sessionStorage only.
// The admin token can do everything; a read-only token (mirrord token
// create --read-only) can view, and the API refuses its actions with
// 403, which the page shows.
//
// Responses carry a strict Content-Security-Policy (default-src 'self',
// no inline script or style), nosniff and no framing; every file is
// served with Cache-Control: no-cache and a strong ETag, so an upgraded
// node never serves a stale page and an unchanged one costs a 304.
package dashboard
