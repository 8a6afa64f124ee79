// Package node holds what makes a mirrord process a node beyond its
// replicated state: its identity, the admin token, the bridge from device
// requests to consensus writes, and (in subpackages) the admin HTTP API
// and the device stats log. Later it also owns the libp2p host, the raft
// transport and block replication.
//
// node imports content and consensus; it must not import resolver or
// cmd/mirrord.
package node
