package consensus

import (
	"errors"

	"mirrord/consensus/state"
)

// Error is a business error returned by a command: the command was
// committed but left the state unchanged. Its Code is CodeNotFound,
// CodeConflict or CodeInvalid; use errors.As to read it or errors.Is
// with ErrNotFound, ErrConflict or ErrInvalid to branch on the code.
type Error = state.Error

// Business error codes, mapped by the HTTP layer to 404, 409 and 400.
const (
	CodeNotFound = state.CodeNotFound
	CodeConflict = state.CodeConflict
	CodeInvalid  = state.CodeInvalid
)

// Sentinels matching any business error of their code with errors.Is.
var (
	ErrNotFound = state.ErrNotFound
	ErrConflict = state.ErrConflict
	ErrInvalid  = state.ErrInvalid
)

var (
	// ErrNotLeader means this node cannot accept writes because it is
	// not the leader; the caller should forward to Node.Leader.
	ErrNotLeader = errors.New("consensus: not the leader")
	// ErrUnavailable means the cluster could not take the write now: no
	// quorum, leadership lost or in transfer, enqueue timeout, or raft
	// shut down (also after Node.Close). The raft error is wrapped too.
	// After raft.ErrLeadershipLost the write may still have committed.
	ErrUnavailable = errors.New("consensus: cluster unavailable")
	// ErrUnknownCommand is returned by Decode for a command type this
	// build does not know.
	ErrUnknownCommand = errors.New("consensus: unknown command type")
	// ErrTooLarge means a command encodes to more than MaxCommandBytes.
	// Apply refuses it before proposing anything.
	ErrTooLarge = errors.New("consensus: command too large for one raft log entry")
)
