package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// leaderWait is how long Apply waits for a leader when none is known.
const leaderWait = 3 * time.Second

// Apply proposes cmd: on the leader directly, on a follower through the
// leader, then waits until this node's state includes it (so a client
// reads its own write from this node). Errors match consensus's: a
// business *consensus.Error, or ErrUnavailable without a reachable
// leader or quorum.
func (c *Cluster) Apply(ctx context.Context, cmd consensus.Command) (any, error) {
	if _, leader := c.cons.Leader(); leader == "" {
		// An election or a restart is under way: a leader usually comes
		// within a second, so wait a little rather than fail a write
		// that would succeed. Nothing was proposed yet, so this cannot
		// apply a command twice.
		wctx, cancel := context.WithTimeout(ctx, leaderWait)
		_ = c.cons.WaitForLeader(wctx)
		cancel()
	}
	res, err := c.cons.Apply(ctx, cmd)
	if err == nil || errors.Is(err, consensus.ErrUnavailable) || !errors.Is(err, consensus.ErrNotLeader) {
		return res, err
	}
	_, leader := c.cons.Leader()
	if leader == "" {
		return nil, fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
	}
	lp, err := peer.Decode(leader)
	if err != nil {
		return nil, fmt.Errorf("node: leader id %q: %w", leader, err)
	}
	data, err := consensus.Encode(cmd)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
	}
	rep, err := c.call(ctx, lp, rpcRequest{Op: "apply", Command: data})
	if err != nil {
		return nil, fmt.Errorf("%w: forward to leader %s: %w", consensus.ErrUnavailable, leader, err)
	}
	if rep.Error != nil {
		return nil, rep.Error.asError(leader)
	}
	if err := c.cons.WaitForIndex(ctx, rep.Index); err != nil {
		return nil, fmt.Errorf("node: the leader applied the change but this node has not caught up: %w", err)
	}
	c.cons.WaitDurable(ctx, rep.Index)
	return c.cons.State(), nil
}

// State is the local replicated state.
func (c *Cluster) State() *state.State { return c.cons.State() }

// Stats is the local raft status.
func (c *Cluster) Stats() consensus.NodeStats { return c.cons.Stats() }

// Barrier waits (briefly) until this node's state includes everything
// the leader had applied when asked, so that an operator who wrote
// through one node reads the write on another. Without a reachable
// leader it returns at once with an error; the local state still
// serves.
func (c *Cluster) Barrier(ctx context.Context) error {
	if c.cons.IsLeader() {
		return nil
	}
	_, leader := c.cons.Leader()
	lp, err := peer.Decode(leader)
	if leader == "" || err != nil {
		return fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	rep, err := c.call(ctx, lp, rpcRequest{Op: "index"})
	if err != nil {
		return err
	}
	if rep.Error != nil {
		return rep.Error.asError(leader)
	}
	return c.cons.WaitForIndex(ctx, rep.Index)
}

func (c *Cluster) leaderApply(ctx context.Context, req rpcRequest) rpcReply {
	_, cmd, err := consensus.Decode(req.Command)
	if err != nil {
		return errReply("invalid", "%v", err)
	}
	res, err := c.cons.Apply(ctx, cmd.(consensus.Command))
	if err != nil {
		return replyFor(err)
	}
	rep := rpcReply{}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	return rep
}
