// Package node holds what makes a mirrord process a node beyond its
// replicated state and is shared by the node's parts: its identity and
// admin token, the data directory lock, the libp2p host, the raft
// transport over libp2p streams, the block exchange (bitswap), the
// bridge from device channel overrides to consensus writes, and the
// HTTP body deadlines.
//
// The node's long-lived parts live in subpackages, one concern each:
//
//   - node/cluster: membership (members, the peers file, trust, the
//     connections to every member), the cluster RPC protocol, writes and
//     read barriers forwarded to the leader, join (join tokens), remove
//     (with leader hand-over) and status reports;
//   - node/replication: making every committed release's blocks local,
//     scrubbing them, block GC and the disk budget;
//   - node/fleet: device outcome counters reported through raft, and the
//     rollout guard that halts a rollout by its policy;
//   - node/adminapi, node/inbox, node/metrics, node/statslog,
//     node/dashboard: the admin HTTP API, the watch folder, Prometheus
//     metrics, the device stats log and the status page.
//
// Every long-lived part has one shape: a constructor that does no I/O
// and starts nothing, and Run(ctx) error, which blocks until ctx ends
// and cleans up before it returns. cmd/mirrord runs them under one
// errgroup and stops them in order.
//
// node imports content and consensus; it must not import its
// subpackages, resolver or cmd/mirrord.
package node
