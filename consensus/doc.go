// Package consensus replicates mirrord's metadata (apps, channels,
// releases, device overrides) with hashicorp/raft.
//
// Data flow: an admin write becomes a Command, Node.Apply encodes it as
// a log entry ([CommandType byte][JSON payload]) and proposes it on the
// leader; once the entry is committed, every node's FSM applies it to
// its consensus/state, builds a new immutable *state.State (copy on
// write) and swaps an atomic pointer. Readers such as the device update
// check call Node.State or FSM.State and never go through raft, so they
// keep answering when the cluster has no leader. Subscribers are told
// the applied index after each change and react outside the FSM.
//
// The FSM is deterministic: it reads no clock, randomness, network or
// disk. Timestamps and ids are set by the proposer. Business errors
// (unknown app, duplicate version, ...) are returned as *Error response
// values; a committed entry that cannot be decoded panics, because a
// node that skipped it would silently diverge.
//
// The fleet's hourly stats history (state.Bucket) is derived here too,
// from StatsReportAt entries: the proposer's clock (At) picks the hour,
// the growth of a node's cumulative counters is the count, and
// retention (8 days) follows the newest At seen, so every node builds
// the same buckets from the same log. Older StatsReport entries keep
// applying as they always did: counters, no history.
//
// Snapshots are a versioned header followed by typed records; the format
// is pinned by testdata/snapshot-v1.bin (testdata/snapshot-v1-before-
// history.bin is the same state written before the history records).
//
// consensus depends on raft.Transport, not on a network stack: node/
// builds the transport (over libp2p) and injects it. This package must
// not import libp2p, boxo, net/http, or any mirrord package other than
// consensus/state.
package consensus
