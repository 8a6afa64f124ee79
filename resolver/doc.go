// Package resolver makes Capgo's update decision: given one app's
// replicated state and the device info object the Capgo plugin
// (@capgo/capacitor-updater) sends, it says what Capgo's cloud would
// answer. It also answers the channel_self endpoint.
//
// Everything here is a pure function of its arguments: no clock, no
// randomness, no I/O, no logging. The device-facing HTTP layer
// (resolver/httpapi) decodes requests, calls these functions on an
// immutable snapshot of consensus/state, and writes the answers.
//
// The rules follow capgo-protocol.md sections 2, 3, 7 and 8; comments
// name the places where mirrord knowingly differs from Capgo.
//
// This package imports only the standard library and consensus/state.
// It must not import net/http, hashicorp/raft, libp2p, boxo or any
// other mirrord package.
package resolver
