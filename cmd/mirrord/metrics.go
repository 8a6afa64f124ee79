package main

import (
	"log/slog"
	"time"

	"github.com/ipfs/boxo/bitswap"

	"mirrord/configs"
	"mirrord/consensus"
	"mirrord/content"
	"mirrord/node"
	"mirrord/node/metrics"
	"mirrord/node/replication"
	"mirrord/resolver/httpapi"
)

// progressMaxAge is how long GET /metrics reuses a replication progress
// walk of an unchanged state (the walk checks every block of every
// release).
const progressMaxAge = 5 * time.Second

// newMetrics builds the node's Prometheus metrics over its components:
// they are read at scrape time; the device API reports checks and stats
// to the result (its Observer) and the HTTP server is wrapped in its
// Middleware.
func newMetrics(cfg configs.Config, nodeID string, cons *consensus.Node, store *content.Store,
	bsw *bitswap.Bitswap, repl *replication.Replicator, log *slog.Logger) (*metrics.Metrics, error) {
	return metrics.New(metrics.Config{
		NodeID:         nodeID,
		CheckOutcomes:  httpapi.CheckOutcomes(),
		StatActions:    httpapi.StatActions(),
		Raft:           cons.Stats,
		State:          cons.State,
		Exchange:       func() (node.ExchangeStats, error) { return node.ExchangeStatsOf(bsw) },
		Progress:       repl.Progress,
		ProgressMaxAge: progressMaxAge,
		DiskUsage:      store.DiskUsage,
		DiskBudget:     int64(cfg.Replication.DiskBudget),
		DiskSpace:      store.Space,
		Log:            log,
	})
}

var _ httpapi.Observer = (*metrics.Metrics)(nil)
