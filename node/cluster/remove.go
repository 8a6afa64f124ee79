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

// Remove takes node id out of the cluster (through the leader).
func (c *Cluster) Remove(ctx context.Context, id string) error {
	if _, err := peer.Decode(id); err != nil {
		return fmt.Errorf("%w: %q is not a node id (see `mirrord status`)", ErrInvalid, id)
	}
	known := false
	for _, n := range c.members() {
		known = known || n.ID == id
	}
	if !known {
		return &consensus.Error{Code: consensus.CodeNotFound, Msg: fmt.Sprintf("node %q is not in the cluster", id)}
	}
	var rep rpcReply
	var err error
	if c.cons.IsLeader() && id == c.h.ID().String() {
		// A leader that removed itself from raft would step down before
		// it could delete its own node record: hand leadership over and
		// let the new leader do the removal.
		if err := c.handOver(ctx); err != nil {
			return err
		}
	}
	if c.cons.IsLeader() {
		rep = c.leaderRemove(ctx, id)
	} else {
		_, leader := c.cons.Leader()
		lp, derr := peer.Decode(leader)
		if leader == "" || derr != nil {
			return fmt.Errorf("%w: no raft leader known", consensus.ErrUnavailable)
		}
		if rep, err = c.call(ctx, lp, rpcRequest{Op: "remove", ID: id}); err != nil {
			return fmt.Errorf("%w: forward to leader %s: %w", consensus.ErrUnavailable, leader, err)
		}
	}
	if rep.Error != nil {
		return rep.Error.asError("")
	}
	if id == c.h.ID().String() {
		// This node is out of the raft group now: it will not see
		// that index.
		return nil
	}
	return c.cons.WaitForIndex(ctx, rep.Index)
}

// handOver transfers leadership to another voter and waits until
// another node leads.
func (c *Cluster) handOver(ctx context.Context) error {
	if err := c.cons.TransferLeadership(ctx); err != nil {
		return fmt.Errorf("%w: this node leads and cannot hand leadership to another voter before removing itself: %w",
			consensus.ErrUnavailable, err)
	}
	self := c.h.ID().String()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, leader := c.cons.Leader(); leader != "" && leader != self {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for a new leader: %w", consensus.ErrUnavailable, ctx.Err())
		case <-t.C:
		}
	}
}

func (c *Cluster) leaderRemove(ctx context.Context, id string) rpcReply {
	if err := c.cons.RemoveServer(ctx, id); err != nil {
		return replyFor(err)
	}
	res, err := c.cons.Apply(ctx, consensus.NodeDelete{ID: id})
	var be *consensus.Error
	if errors.As(err, &be) && be.Code == consensus.CodeNotFound {
		err = nil
	}
	if err != nil {
		return replyFor(err)
	}
	rep := rpcReply{Done: true}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	return rep
}
