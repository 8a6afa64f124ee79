// Package cluster is a node's membership in the mirrord cluster, over
// the node's libp2p host and its consensus.Node. Files by concern:
//
//   - membership.go: Config, New and Run (the protocol handler, the peers
//     file and the connections kept to every member), trust and
//     IsMember, Self, Share, members and Announce;
//   - rpc.go: ClusterProtocol, its JSON request and reply, the handler
//     and the client calls;
//   - forward.go: Apply and Barrier, forwarded to the leader from a
//     follower;
//   - join.go: join tokens, the joining node's Join and the leader's
//     admission (leaderJoin);
//   - remove.go: Remove, with a leader handing leadership over before
//     it removes itself;
//   - report.go: NodeReport, this node's Report and every member's
//     Reports.
//
// New does no I/O; Run(ctx) serves the protocol and keeps the
// connections until ctx ends. Apply, Barrier, Join, Remove and Reports
// work as clients of other nodes whether or not Run runs.
//
// cluster imports node, node/replication (for ReleaseProgress),
// consensus and content; it must not import node/adminapi, resolver or
// cmd/mirrord.
package cluster
