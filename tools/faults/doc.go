// Package faults is the fault harness of issue 10 ("keep serving through
// every fault"). Its test, TestFaults, builds the mirrord binary, runs a
// cluster of three voters as real processes on 127.0.0.1 and, while
// simulated devices check for updates and download what they are
// offered and an admin loop keeps publishing releases with the mirrord
// CLI, kills, freezes, restarts, corrupts and fills its nodes. It prints
// one table row per scenario and fails when a promise of SPEC.md §4 and
// §6 is broken: a device check to a node that is up fails, a node serves
// bytes that are not the published ones, or a release the admin API
// acknowledged is missing or unservable on a node after the cluster
// healed.
//
// The package has only tests. It is an outside observer: it talks to
// nodes over HTTP and through the mirrord binary, and imports nothing
// of mirrord but content, to zip a directory exactly as `mirrord
// publish` does (so it knows every byte a device should get) and to
// decode Brotli. docs/reliability.md says how to run it.
package faults
