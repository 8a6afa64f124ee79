// Package configs is mirrord's configuration file format and the example
// files shipped with it. Files are YAML, decoded strictly: an unknown key
// is an error naming the key, its line and the file. Every setting has a
// default, so `mirrord serve` with no file runs a working single node.
//
// Only cmd/mirrord imports this package.
package configs
