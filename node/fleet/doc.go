// Package fleet turns device outcomes counted on every node into one
// cluster-wide view, and acts on it.
//
// # Fleet statistics
//
// Every node counts, per release, the update checks it answered with the
// release, download_complete, set (installs) and failure events (any
// "*_fail" action and app_launch_timeout; state.IsFailure). It counts an
// event only from a device it answered the release (a compact set per
// release of keyed 64-bit device hashes, deviceSet), and each kind of
// outcome once per device (state.JudgeEvent); the others are counted
// apart, on this node only (UnverifiedCounts), and never reach the halt
// policy. docs/security.md, "Device statistics", gives the reasons and
// the limits. Counts reach
// the cluster as raft writes: every stats.report_interval (2 s by
// default) a node with new counts proposes one StatsReportAt entry
// holding its cumulative counters for the releases that changed and its
// clock. From these entries the FSM also keeps, per release, the
// cluster-wide counts of each hour (state.Bucket; eight days): each
// entry adds what its counters grew by since the node's previous
// report to the bucket of the report's time, so every node derives the
// same history from the log, and it travels in snapshots. A node's
// clock decides only which hour its counts land in; retention follows
// the newest report time seen, never a local clock. Older builds do not
// know StatsReportAt and would stop on it, so each node first announces
// state.FeatureStatsHistory (a NodeFeatures entry, which older builds
// skip), and a fleet writes StatsReportAt only once every node of the
// cluster has announced it; until then it writes StatsReport (counters,
// no history). During a rolling upgrade the history starts when the last
// node runs the new build. The
// alternative, libp2p pubsub gossip, was not chosen because:
//
//   - the halt policy must act on numbers every node agrees on: the
//     leader evaluates the same state every other node shows, and the
//     halt entry is ordered after the counts that caused it;
//   - counters are durable and travel with raft snapshots, so a node that
//     restarts or joins later sees the history, with no anti-entropy
//     protocol to write;
//   - the cost is small and bounded: one entry per node per interval,
//     sized by the releases that changed, not by device traffic;
//   - cumulative totals with a per-node sequence number make a report
//     idempotent: a retry after a timeout never counts twice.
//
// A node without quorum keeps counting and reports when quorum returns.
// What a node counted since its last report that landed is lost if the
// process dies (at most one interval); the raw events are in the stats
// log. The RolloutGuard on the leader sums the counters of each active
// rollout's release over all nodes after every applied entry and writes
// a RolloutHalt when the rollout's policy says so.
//
// New and NewRolloutGuard do no I/O; Fleet.Run and RolloutGuard.Run
// block until ctx ends. fleet imports consensus and consensus/state; it
// must not import node/cluster, resolver or cmd/mirrord.
package fleet
