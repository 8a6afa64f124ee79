package consensus

import (
	"time"
)

// NodeStats describes a node for status pages.
type NodeStats struct {
	ID string `json:"id"`
	// State is raft's role: "Leader", "Follower", "Candidate" or
	// "Shutdown".
	State    string `json:"state"`
	Leader   string `json:"leader"`
	LeaderID string `json:"leader_id"`
	Term     uint64 `json:"term"`
	// AppliedIndex is raft's last applied log index; CommitIndex the
	// last known committed one; LastIndex the last one stored locally.
	// StateIndex is the Index of State(): the last command entry the
	// FSM applied. It is behind AppliedIndex when the latest entries
	// were raft-internal, and may briefly be ahead of it because raft
	// records AppliedIndex after the FSM returns.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	LastIndex    uint64 `json:"last_index"`
	StateIndex   uint64 `json:"state_index"`
	// LastContact is when this follower last heard from the leader;
	// zero on the leader and before first contact.
	LastContact time.Time `json:"last_contact"`
	// Servers is the latest raft configuration, nil if unavailable.
	Servers []Server `json:"servers"`
	// LeaderContact is the last time this node knew a leader (now while
	// it knows one; kept across restarts), zero if it never did. Without
	// a leader, the state served is at least as fresh as that moment
	// but may miss writes made since.
	LeaderContact time.Time `json:"leader_contact"`
	// Warnings are problems this node recovered from when it started
	// (an unusable snapshot, a raft log cut short).
	Warnings []string `json:"warnings,omitempty"`
}

// HasLeader reports whether a leader was known when st was taken.
func (st NodeStats) HasLeader() bool { return st.Leader != "" }

// Staleness is how long ago, at now, the node last knew a leader: zero
// with a leader, -1 when it never knew one.
func (st NodeStats) Staleness(now time.Time) time.Duration {
	switch {
	case st.HasLeader():
		return 0
	case st.LeaderContact.IsZero():
		return -1
	}
	return max(now.Sub(st.LeaderContact), 0)
}

// Stats returns a snapshot of the node's raft status.
func (n *Node) Stats() NodeStats {
	addr, id := n.raft.LeaderWithID()
	st := NodeStats{
		ID:           n.cfg.NodeID,
		State:        n.raft.State().String(),
		Leader:       string(addr),
		LeaderID:     string(id),
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.raft.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		LastIndex:    n.raft.LastIndex(),
		StateIndex:   n.fsm.State().Index,
		Warnings:     n.warnings,
	}
	st.LeaderContact = n.leaderContact()
	if !n.IsLeader() {
		st.LastContact = n.raft.LastContact()
	}
	st.Servers, _ = n.Configuration()
	return st
}
