// Package devicesim is a simulated Capgo device: it speaks the device
// side of the wire protocol (update check, zip and delta-manifest
// downloads with Capgo v2 decryption, stats, channel_self) the way
// @capgo/capacitor-updater 8.51.x does, and installs bundles into a
// directory so that tests can compare the result byte for byte.
//
// It sits outside mirrord's data flow: end-to-end tests and the operator
// command drive it against a real mirrord node (or any Capgo-compatible
// server) over HTTP. It decrypts with the public key only, as a device
// must. It may import content (for the Capgo crypto and safe unzip) and
// the standard library, and must not import consensus, node, resolver,
// configs or cmd, so that it checks the server from the outside.
package devicesim
