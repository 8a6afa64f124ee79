// Package state holds mirrord's replicated metadata: apps, channels,
// releases and device overrides, as plain Go values.
//
// The consensus FSM is the only writer. It never mutates a *State that
// has been published to readers: every change builds a new *State that
// shares unchanged parts with the old one (copy on write), and the FSM
// swaps an atomic pointer. Readers (the device update check, the admin
// API) therefore read a consistent, immutable snapshot without locks
// and without touching raft or disk.
//
// This package must not import hashicorp/raft, libp2p, boxo or net/http.
package state
