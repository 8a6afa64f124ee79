package metrics

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mirrord/consensus/state"
	"mirrord/node/replication"
)

// raftStates are the values of mirrord_raft_state's state label: raft's
// roles, lower-cased.
var raftStates = [...]string{"leader", "follower", "candidate", "shutdown"}

// rolloutStates are the values of mirrord_rollout_state's state label.
var rolloutStates = [...]string{state.RolloutActive, state.RolloutPaused, state.RolloutAborted, state.RolloutPromoted}

// scrapeCollector reads the node's components when Prometheus scrapes.
// Nothing of it runs on the request path.
type scrapeCollector struct {
	cfg Config

	nodeInfo *prometheus.Desc

	raftState, raftTerm, raftApplied, raftCommit, raftLast *prometheus.Desc
	raftLastContact, raftLeaderKnown, raftServers          *prometheus.Desc
	stateIndex, stateStaleness, startWarnings              *prometheus.Desc

	bsBlocks, bsBytes, bsDup, bsPeers *prometheus.Desc

	replMissing, replKnown, replReady *prometheus.Desc

	roInfo, roState, roBasisPoints, roFailureRate, roEvents *prometheus.Desc

	diskUsed, diskBudget  *prometheus.Desc
	diskFree, diskMinFree *prometheus.Desc

	// mu serialises Progress walks; prog is the last result, of the
	// state progState, taken at progAt.
	mu        sync.Mutex
	prog      []replication.ReleaseProgress
	progState *state.State
	progAt    time.Time
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

func newScrapeCollector(cfg Config) *scrapeCollector {
	return &scrapeCollector{
		cfg:      cfg,
		nodeInfo: desc("node_info", "Always 1; node is this node's id (its libp2p peer id).", "node"),

		raftState:       desc("raft_state", "1 for the raft role this node has now, 0 for the others.", "state"),
		raftTerm:        desc("raft_term", "Current raft term."),
		raftApplied:     desc("raft_applied_index", "Last raft log index applied here."),
		raftCommit:      desc("raft_commit_index", "Last raft log index known to be committed."),
		raftLast:        desc("raft_last_index", "Last raft log index stored here."),
		raftLastContact: desc("raft_last_contact_seconds", "Seconds since this node last heard from the leader: 0 on the leader, +Inf if never."),
		raftLeaderKnown: desc("raft_leader_known", "1 if this node knows a leader, else 0."),
		raftServers:     desc("raft_servers", "Servers in the latest raft configuration, by suffrage (voter, nonvoter).", "suffrage"),
		stateIndex:      desc("state_index", "Raft index of the last entry in the state devices are answered from."),
		stateStaleness:  desc("state_staleness_seconds", "0 while a leader is known; else seconds since this node last knew one (kept across restarts): the state served may miss writes made since. +Inf if never."),
		startWarnings:   desc("startup_warnings", "Problems this node recovered from when it started (unusable snapshot, raft log cut short); see mirrord status."),

		bsBlocks: desc("bitswap_blocks_total", "Blocks moved by bitswap, by direction (received, sent).", "direction"),
		bsBytes:  desc("bitswap_bytes_total", "Block bytes moved by bitswap, by direction (received, sent).", "direction"),
		bsDup:    desc("bitswap_duplicate_blocks_total", "Blocks bitswap received that were already here."),
		bsPeers:  desc("bitswap_peers", "Peers bitswap has a session with."),

		replMissing: desc("replication_blocks_missing", "Blocks of a release known here but not stored here (replication lag).", "app", "version"),
		replKnown:   desc("replication_blocks_known", "Blocks of a release known here (all of them once the release is complete).", "app", "version"),
		replReady:   desc("replication_release_ready", "1 if every object of the release this node copies eagerly is complete.", "app", "version"),

		roInfo:        desc("rollout_info", "Always 1 for each channel with a rollout: the rollout's version and the channel's stable version.", "app", "channel", "version", "stable"),
		roState:       desc("rollout_state", "1 for the state the channel's rollout is in, 0 for the others.", "app", "channel", "state"),
		roBasisPoints: desc("rollout_basis_points", "Share of the channel's devices offered the rollout release, in basis points (10000 = 100%).", "app", "channel"),
		roFailureRate: desc("rollout_failure_rate_basis_points", "Failures / (installs + failures) of the rollout release since the rollout's baseline, cluster-wide, in basis points; 0 without events.", "app", "channel"),
		roEvents:      desc("rollout_events_since_baseline", "Installs and failures of the rollout release since the rollout's baseline, cluster-wide, by kind.", "app", "channel", "kind"),

		diskUsed:    desc("disk_used_bytes", "Bytes used by the block store and its download cache."),
		diskBudget:  desc("disk_budget_bytes", "replication.disk_budget: the cap on the block store (absent when there is none)."),
		diskFree:    desc("disk_free_bytes", "Bytes available on the block store's file system."),
		diskMinFree: desc("disk_min_free_bytes", "Bytes kept free on the block store's file system (replication.min_free or its default): uploads that would leave less get 507."),
	}
}

// Describe sends every descriptor, whether or not its source is set.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.nodeInfo,
		c.raftState, c.raftTerm, c.raftApplied, c.raftCommit, c.raftLast, c.raftLastContact, c.raftLeaderKnown, c.raftServers,
		c.stateIndex, c.stateStaleness, c.startWarnings,
		c.bsBlocks, c.bsBytes, c.bsDup, c.bsPeers,
		c.replMissing, c.replKnown, c.replReady,
		c.roInfo, c.roState, c.roBasisPoints, c.roFailureRate, c.roEvents,
		c.diskUsed, c.diskBudget, c.diskFree, c.diskMinFree,
	} {
		ch <- d
	}
}

// Collect reads every configured source.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	if c.cfg.NodeID != "" {
		ch <- gauge(c.nodeInfo, 1, c.cfg.NodeID)
	}
	if c.cfg.Raft != nil {
		c.collectRaft(ch)
	}
	if c.cfg.Exchange != nil {
		c.collectExchange(ch)
	}
	if c.cfg.Progress != nil {
		c.collectReplication(ch)
	}
	if c.cfg.State != nil {
		c.collectRollouts(ch, c.cfg.State())
	}
	if c.cfg.DiskUsage != nil {
		if used, err := c.cfg.DiskUsage(); err != nil {
			ch <- prometheus.NewInvalidMetric(c.diskUsed, fmt.Errorf("metrics: disk usage: %w", err))
		} else {
			ch <- gauge(c.diskUsed, float64(used))
		}
	}
	if c.cfg.DiskBudget > 0 {
		ch <- gauge(c.diskBudget, float64(c.cfg.DiskBudget))
	}
	if c.cfg.DiskSpace != nil {
		if sp, err := c.cfg.DiskSpace(); err != nil {
			ch <- prometheus.NewInvalidMetric(c.diskFree, fmt.Errorf("metrics: disk space: %w", err))
		} else {
			ch <- gauge(c.diskFree, float64(sp.Free))
			ch <- gauge(c.diskMinFree, float64(sp.MinFree))
		}
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *scrapeCollector) collectRaft(ch chan<- prometheus.Metric) {
	st := c.cfg.Raft()
	role := strings.ToLower(st.State)
	for _, s := range raftStates {
		ch <- gauge(c.raftState, flag(s == role), s)
	}
	ch <- gauge(c.raftTerm, float64(st.Term))
	ch <- gauge(c.raftApplied, float64(st.AppliedIndex))
	ch <- gauge(c.raftCommit, float64(st.CommitIndex))
	ch <- gauge(c.raftLast, float64(st.LastIndex))
	contact := 0.0
	if role != "leader" {
		contact = math.Inf(1)
		if !st.LastContact.IsZero() {
			contact = max(time.Since(st.LastContact).Seconds(), 0)
		}
	}
	ch <- gauge(c.raftLastContact, contact)
	ch <- gauge(c.raftLeaderKnown, flag(st.LeaderID != ""))
	ch <- gauge(c.stateIndex, float64(st.StateIndex))
	stale := math.Inf(1)
	if d := st.Staleness(time.Now()); d >= 0 {
		stale = d.Seconds()
	}
	ch <- gauge(c.stateStaleness, stale)
	ch <- gauge(c.startWarnings, float64(len(st.Warnings)))
	voters, nonvoters := 0, 0
	for _, s := range st.Servers {
		if s.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	ch <- gauge(c.raftServers, float64(voters), "voter")
	ch <- gauge(c.raftServers, float64(nonvoters), "nonvoter")
}

func (c *scrapeCollector) collectExchange(ch chan<- prometheus.Metric) {
	st, err := c.cfg.Exchange()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.bsBlocks, fmt.Errorf("metrics: %w", err))
		return
	}
	ch <- counter(c.bsBlocks, float64(st.BlocksReceived), "received")
	ch <- counter(c.bsBlocks, float64(st.BlocksSent), "sent")
	ch <- counter(c.bsBytes, float64(st.BytesReceived), "received")
	ch <- counter(c.bsBytes, float64(st.BytesSent), "sent")
	ch <- counter(c.bsDup, float64(st.DupBlocks))
	ch <- gauge(c.bsPeers, float64(st.Peers))
}

func (c *scrapeCollector) collectReplication(ch chan<- prometheus.Metric) {
	prog, err := c.progress()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.replMissing, err)
		return
	}
	for _, p := range prog {
		ch <- gauge(c.replMissing, float64(max(p.BlocksKnown-p.BlocksHeld, 0)), p.App, p.Version)
		ch <- gauge(c.replKnown, float64(p.BlocksKnown), p.App, p.Version)
		ch <- gauge(c.replReady, flag(p.Ready), p.App, p.Version)
	}
}

// progress returns the replication progress, reusing the last result
// while the state is the same snapshot and the result is younger than
// ProgressMaxAge: a walk reads every stored block's presence, too much to
// repeat for each of several scrapers.
func (c *scrapeCollector) progress() ([]replication.ReleaseProgress, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var st *state.State
	if c.cfg.State != nil {
		st = c.cfg.State()
	}
	now := time.Now()
	if !c.progAt.IsZero() && st == c.progState && now.Sub(c.progAt) < c.cfg.ProgressMaxAge {
		return c.prog, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ProgressTimeout)
	defer cancel()
	prog := c.cfg.Progress(ctx)
	if err := ctx.Err(); err != nil {
		// Counts cut short would show a lag that is not there.
		return nil, fmt.Errorf("metrics: replication progress: %w", err)
	}
	c.prog, c.progState, c.progAt = prog, st, now
	return prog, nil
}

// collectRollouts reports every channel that has a rollout, finished
// ones included (they stay on the channel until the next one starts).
// The failure rate is the one the admin API shows (rollout show): the
// release's cluster-wide tally minus the rollout's baseline.
func (c *scrapeCollector) collectRollouts(ch chan<- prometheus.Metric, st *state.State) {
	if st == nil {
		return
	}
	for _, id := range st.AppIDs() {
		app := st.Apps[id]
		for _, name := range app.ChannelNames() {
			r := app.Channels[name].Rollout
			if r == nil {
				continue
			}
			ch <- gauge(c.roInfo, 1, id, name, r.Version, app.Channels[name].Version)
			for _, s := range rolloutStates {
				ch <- gauge(c.roState, flag(r.State == s), id, name, s)
			}
			ch <- gauge(c.roBasisPoints, float64(r.BasisPoints), id, name)
			since := app.Tally(r.Version).Sub(r.Baseline)
			rate := 0.0
			if n := since.Events(); n > 0 {
				rate = float64(since.Failures) / float64(n) * state.MaxBasisPoints
			}
			ch <- gauge(c.roFailureRate, rate, id, name)
			ch <- gauge(c.roEvents, float64(since.Installs), id, name, "installs")
			ch <- gauge(c.roEvents, float64(since.Failures), id, name, "failures")
		}
	}
}

var _ prometheus.Collector = (*scrapeCollector)(nil)
