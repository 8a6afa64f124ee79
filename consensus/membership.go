package consensus

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// TransferLeadership hands leadership to another voter and waits until
// raft reports it done. It fails when there is no other voter.
func (n *Node) TransferLeadership(ctx context.Context) error {
	return n.wait(ctx, "transfer leadership", n.raft.LeadershipTransfer())
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's transport address and server id, or empty
// strings when no leader is known.
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// AddVoter adds (or promotes) a voting member. It must run on the
// leader.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: add voter: %w", err)
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.wait(ctx, "add voter "+id, f)
}

// AddNonvoter adds a member that follows the log without voting. It
// must run on the leader.
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: add nonvoter: %w", err)
	}
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.wait(ctx, "add nonvoter "+id, f)
}

// RemoveServer removes a member. It must run on the leader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: remove server: %w", err)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	return n.wait(ctx, "remove server "+id, f)
}

// otherVoters reports whether the configuration has a voter besides
// this node.
func (n *Node) otherVoters() bool {
	servers, err := n.Configuration()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.Voter && s.ID != n.cfg.NodeID {
			return true
		}
	}
	return false
}

// Configuration returns the servers of the latest raft configuration
// (committed or not), in raft's order.
func (n *Node) Configuration() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("consensus: configuration: %w", err)
	}
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{ID: string(s.ID), Address: string(s.Address), Voter: s.Suffrage == raft.Voter})
	}
	return out, nil
}

// Halt stops raft at once, as a crash would: no leadership transfer,
// nothing written, the stores left open. Tests use it to kill a node;
// Close must still be called to release the stores.
func (n *Node) Halt() error {
	if err := n.raft.Shutdown().Error(); err != nil {
		return fmt.Errorf("consensus: halt: %w", err)
	}
	return nil
}

// Snapshot makes raft take a snapshot now (tests and benchmarks use it
// to compact the log on demand).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("consensus: snapshot: %w", err)
	}
	return nil
}
