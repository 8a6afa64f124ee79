// Package configs is mirrord's configuration file format and the example
// files shipped with it. Files are YAML, decoded strictly: an unknown key
// is an error naming the key, its line and the file. Every setting has a
// default, so `mirrord serve` with no file runs a working single node.
//
// Every setting can also come from an environment variable
// MIRRORD_<SECTION>_<KEY> in upper case (MIRRORD_NODE_HTTP,
// MIRRORD_REPLICATION_DISK_BUDGET; see Config.ApplyEnv). `mirrord serve`
// applies, lowest first: Default, the file (Decode), the environment
// (ApplyEnv), its flags; then Validate. The examples (single-node.yaml,
// cluster-voter.yaml, edge-nonvoter.yaml) are embedded in Examples.
//
// Only cmd/mirrord imports this package.
package configs
