// Package object names what a reader of a stored object deals with,
// without the block store behind it: the File it reads, the options it
// opens with, the errors it branches on and the CID parser. package
// content (store.go, download.go) implements these with boxo; the
// device path (resolver/httpapi) declares its Objects interface with
// them and imports this package, not content, so that an update check
// never links boxo or libp2p (cmd/mirrord/deps_test.go checks it).
//
// This package must not import any mirrord package, boxo, libp2p or
// hashicorp/raft: it is a leaf both sides share.
package object
