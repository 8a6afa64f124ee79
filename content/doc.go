// Package content holds mirrord's bytes: what a release is made of and
// how it is checked, encrypted and stored. It sits at the bottom of the
// data flow: publishing (cmd/mirrord, the watch folder) turns a directory
// or zip into a Bundle here; consensus records only its metadata and
// CIDs; node replicates its blocks; resolver serves them to devices.
//
// capgo.go implements Capgo's "encryption v2" byte for byte as the Capgo
// CLI and the @capgo/capacitor-updater plugin do it (RSA-2048 PKCS#1
// v1.5 type-1 "private encrypt" of an AES-128-CBC session key and of
// SHA-256 checksums). zip.go builds deterministic zips and reads
// untrusted ones safely (path checks, zip-bomb limits, the plugin's
// flattening). bundle.go assembles a release, with the delta manifest
// (Brotli and per-file encryption) that Capgo CLI's delta upload makes.
// store.go keeps objects as content-addressed blocks; cache.go keeps
// whole copies of downloaded objects, checked against a digest before
// they are served; download.go bounds downloads that read from peers.
// gc.go collects garbage on gcstore.go's blockstore, which dates blocks
// by their files, and claims.go tracks the blocks of Adds in progress.
// The subpackage object holds what a reader of stored objects needs
// (File, OpenOptions, the errors, ParseCID) without boxo; the names here
// are aliases of it.
//
// This package must not import consensus, node, resolver, configs,
// cmd, hashicorp/raft or libp2p: everything else depends on it, not the
// other way round.
package content
