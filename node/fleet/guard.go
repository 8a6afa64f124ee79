package fleet

import (
	"context"
	"log/slog"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// GuardConfig configures a RolloutGuard.
type GuardConfig struct {
	// State returns the current local state.
	State func() *state.State
	// Subscribe returns a channel of applied indexes (consensus.Node).
	Subscribe func() (<-chan uint64, func())
	// IsLeader reports whether this node leads the raft group now.
	IsLeader func() bool
	// Apply proposes a command.
	Apply func(ctx context.Context, cmd consensus.Command) (any, error)
	// Interval is how often the guard looks even without new entries
	// (after a leadership change, for instance); 0 means 1 s.
	Interval time.Duration
	Log      *slog.Logger
	Now      func() time.Time
}

// RolloutGuard enforces the halt policies of active rollouts. Only the
// leader acts: after every applied entry (counts arrive as StatsReport
// entries) it sums the counters of each active rollout's release over
// all nodes, subtracts the rollout's baseline and, when the policy says
// so, proposes a RolloutHalt. The halt is a raft write, so every node
// stops offering the release at the same log index. The halt names the
// rollout id and the FSM refuses it for any other rollout, so a halt
// decided on an old state cannot stop a newer rollout.
type RolloutGuard struct {
	cfg GuardConfig
}

// NewRolloutGuard returns a guard; call Run.
func NewRolloutGuard(cfg GuardConfig) *RolloutGuard {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &RolloutGuard{cfg: cfg}
}

// Run evaluates the policies until ctx ends (or the subscription
// closes).
func (g *RolloutGuard) Run(ctx context.Context) error {
	ch, cancel := g.cfg.Subscribe()
	defer cancel()
	t := time.NewTicker(g.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ch:
			if !ok {
				return nil
			}
		case <-t.C:
		}
		if g.cfg.IsLeader() {
			g.Check(ctx)
		}
	}
}

// Halted describes one halt the guard proposed.
type Halted struct {
	App, Channel, RolloutID string
	Halt                    state.Halt
}

// Check evaluates every active rollout with a policy on the current
// state and proposes the halts it calls for. It returns them.
func (g *RolloutGuard) Check(ctx context.Context) []Halted {
	var out []Halted
	st := g.cfg.State()
	for _, appID := range st.AppIDs() {
		a := st.Apps[appID]
		for _, name := range a.ChannelNames() {
			r := a.Channels[name].Rollout
			if r == nil || r.State != state.RolloutActive || r.Policy == nil {
				continue
			}
			h := r.Policy.Evaluate(a.Tally(r.Version).Sub(r.Baseline))
			if h == nil {
				continue
			}
			h.At = g.cfg.Now().UnixMilli()
			cmd := consensus.RolloutHalt{App: appID, Channel: name, RolloutID: r.ID, Halt: *h}
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := g.cfg.Apply(actx, cmd)
			cancel()
			if err != nil {
				g.cfg.Log.Warn("rollout halt not written; retrying", "app", appID, "channel", name,
					"rollout", r.ID, "err", err)
				continue
			}
			g.cfg.Log.Warn("rollout halted by its policy", "app", appID, "channel", name,
				"rollout", r.ID, "action", h.Action, "reason", h.Reason)
			out = append(out, Halted{App: appID, Channel: name, RolloutID: r.ID, Halt: *h})
		}
	}
	return out
}
