package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

// Apply proposes cmd and waits until it is committed and applied on this
// node (which, on the leader, is after the entry was fsynced here and
// stored by a quorum). On success it returns the *state.State right
// after the command. A business error is returned as a *Error (use
// errors.As, or errors.Is with ErrNotFound, ErrConflict, ErrInvalid). A
// command that encodes to more than MaxCommandBytes fails with
// ErrTooLarge on any node, before anything is proposed. On a follower it
// fails with ErrNotLeader; without any known leader, or
// when quorum or leadership is lost, with ErrUnavailable. If ctx ends
// after the command was enqueued, the command may still commit.
func (n *Node) Apply(ctx context.Context, cmd Command) (any, error) {
	data, err := Encode(cmd)
	if err != nil {
		return nil, err
	}
	op := "apply " + cmd.CommandType().String()
	if len(data) > MaxCommandBytes {
		return nil, fmt.Errorf("consensus: %s: %w: %d bytes, at most %d", op, ErrTooLarge, len(data), MaxCommandBytes)
	}
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return nil, fmt.Errorf("consensus: %s: %w", op, err)
	}
	f := n.raft.Apply(data, timeout)
	if err := n.wait(ctx, op, f); err != nil {
		return nil, err
	}
	resp := f.Response()
	if be, ok := resp.(*Error); ok {
		return nil, be
	}
	// Acknowledge only what a restart of this node alone would serve
	// again (see restart.go): the entry is in the log already, the mark
	// that says it is committed is written right after the apply.
	if s, ok := resp.(*state.State); ok {
		n.WaitDurable(ctx, s.Index)
	}
	return resp, nil
}

// timeoutFrom returns the time left before ctx's deadline, or def.
func timeoutFrom(ctx context.Context, def time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return def, nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return 0, context.DeadlineExceeded
	}
	return left, nil
}

// wait blocks until f is done or ctx ends, and maps raft's errors.
func (n *Node) wait(ctx context.Context, op string, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return n.mapErr(op, err)
	case <-ctx.Done():
		return fmt.Errorf("consensus: %s: %w", op, ctx.Err())
	}
}

// mapErr wraps raft's errors in ErrNotLeader or ErrUnavailable.
func (n *Node) mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		addr, id := n.raft.LeaderWithID()
		if addr == "" {
			return fmt.Errorf("%w (%s): no known leader: %w",
				ErrUnavailable, op, ErrNotLeader)
		}
		return fmt.Errorf("%w (%s): leader is %s at %s",
			ErrNotLeader, op, id, addr)
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrNotVoter):
		return fmt.Errorf("%w (%s): %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("consensus: %s: %w", op, err)
}

// Barrier waits until every entry committed before it has been applied
// to the state. It must run on the leader (else ErrNotLeader or
// ErrUnavailable) and writes a log entry, so it is for rare events such
// as a new leader's first catch-up, not for every read.
func (n *Node) Barrier(ctx context.Context) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: barrier: %w", err)
	}
	return n.wait(ctx, "barrier", n.raft.Barrier(timeout))
}

// WaitForLeader blocks until a leader is known (this node or another)
// or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	obsCh := make(chan raft.Observation, 4)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	// The ticker covers a leader elected between the check and the
	// registration of the observer.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus: wait for leader: %w", ctx.Err())
		case <-obsCh:
		case <-tick.C:
		}
	}
}

// WaitForIndex blocks until the local state's Index is at least index
// (for example the Index of a state returned by Apply on the leader) or
// ctx ends.
func (n *Node) WaitForIndex(ctx context.Context, index uint64) error {
	ch, cancel := n.fsm.Subscribe()
	defer cancel()
	for n.fsm.State().Index < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus: wait for index %d: %w", index, ctx.Err())
		case <-ch:
		}
	}
	return nil
}
