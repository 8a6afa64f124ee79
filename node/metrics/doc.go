// Package metrics is a node's Prometheus instrumentation, served at
// GET /metrics with the official client library and a private registry
// (nothing registers on the global default one).
//
// Three kinds of series:
//
//   - counters and a histogram updated on the request path: update checks
//     by outcome and their latency, stats events by action (Metrics is a
//     resolver/httpapi Observer, structurally), and HTTP requests and
//     response bytes by route and status class (Middleware around the
//     node's mux). Label values are looked up in maps built in New, so
//     the request path takes no lock and allocates nothing for them;
//   - collectors that read the node's components at scrape time through
//     functions in Config: raft status, bitswap counters, replication
//     progress per release, rollouts from the replicated state, disk use;
//   - the Go runtime and process collectors (go_*, process_*), under
//     their usual names so that stock dashboards work.
//
// # Cardinality
//
// Every label has a bounded set of values. outcome and action take the
// values given in Config (the Capgo codes and the plugin's actions) and
// "other" for anything else, so a device cannot create series. route and
// code are fixed sets (Routes; 2xx to 5xx). app, channel and version
// come from the replicated state, which only operators write: one series
// set per stored release (replication) and per channel with a rollout
// (rollouts). raft state and suffrage are fixed sets.
//
// metrics imports node and consensus for their types; neither may import
// it back. It must not import resolver: the outcome and action lists
// arrive through Config from cmd/mirrord.
package metrics
