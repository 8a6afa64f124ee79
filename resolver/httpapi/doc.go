// Package httpapi is the device-facing HTTP API of a mirrord node: the
// Capgo plugin's update check (POST /updates), stats (POST /stats),
// channel_self, and the downloads of bundle zips and manifest files.
//
// Every answer comes from the node's local, immutable state snapshot and
// its local block store: nothing here waits on raft, so devices are served
// even when the cluster has no leader. The only raft write on this path
// is the server-side channel override that old plugins (< x.34.0) ask for.
// A download may fetch missing blocks from peers through the store, but
// only of an object that a release of the state references (refs.go).
//
// httpapi.go holds the API, its dependencies and the body helpers;
// updates.go the update check, stats.go the stats events, channel.go
// channel_self, download.go the object downloads.
//
// Dependencies are small interfaces declared here and satisfied by the
// consensus node, the content store and the stats log; the object types
// they speak of come from content/object, not content, so that this
// package must not, and does not, depend on node, hashicorp/raft, libp2p
// or boxo, even indirectly (cmd/mirrord/deps_test.go).
package httpapi
