package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// ClusterProtocol carries the node-to-node calls: writes forwarded to
// the leader, joins, removals and status reports. One JSON request per
// stream, answered by one or more JSON replies.
const ClusterProtocol protocol.ID = "/mirrord/cluster/1.0.0"

const (
	maxRPCBytes = 32 << 20
	// maxMemberRPCBytes bounds a call from a cluster member: a forwarded
	// write carries one raft entry, base64 in JSON.
	maxMemberRPCBytes = consensus.MaxCommandBytes/3*4 + 1<<20
	rpcTimeout        = 30 * time.Second
)

type rpcRequest struct {
	Op string `json:"op"` // apply, join, remove, status
	// Command is a consensus.Encode'd command (apply).
	Command []byte `json:"command,omitempty"`
	// Token is the join token (join); Node the joining node (join).
	Token string          `json:"token,omitempty"`
	Node  *state.NodeInfo `json:"node,omitempty"`
	// ID is the node to remove (remove).
	ID string `json:"id,omitempty"`
	// Index is the state index the callee must reach first
	// (admin-token, whose Token is the rotated admin token).
	Index uint64 `json:"index,omitempty"`
	// Forwarded is set by a follower relaying the call to the leader,
	// so that a call is relayed at most once.
	Forwarded bool `json:"forwarded,omitempty"`
}

type rpcError struct {
	// Kind is business (Code/Message from consensus), unavailable,
	// forbidden, invalid or internal.
	Kind    string `json:"kind"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message"`
}

type rpcReply struct {
	Error *rpcError `json:"error,omitempty"`
	// Index is the state index after an applied command.
	Index uint64 `json:"index,omitempty"`
	// Members (join, first reply) are the nodes the joiner must trust.
	Members []state.NodeInfo `json:"members,omitempty"`
	// Done marks the last reply of a join.
	Done       bool        `json:"done,omitempty"`
	Voter      bool        `json:"voter,omitempty"`
	AdminToken string      `json:"admin_token,omitempty"`
	Status     *NodeReport `json:"status,omitempty"`
}

func errReply(kind, format string, args ...any) rpcReply {
	return rpcReply{Error: &rpcError{Kind: kind, Message: fmt.Sprintf(format, args...)}}
}

// replyFor turns a local error into a reply.
func replyFor(err error) rpcReply {
	var be *consensus.Error
	switch {
	case errors.As(err, &be):
		return rpcReply{Error: &rpcError{Kind: "business", Code: be.Code, Message: be.Msg}}
	case errors.Is(err, consensus.ErrUnavailable), errors.Is(err, consensus.ErrNotLeader):
		return errReply("unavailable", "%v", err)
	}
	return errReply("internal", "%v", err)
}

// asError turns a reply's error back into a Go error that matches the
// consensus sentinels.
func (e *rpcError) asError(leader string) error {
	switch e.Kind {
	case "business":
		return &consensus.Error{Code: e.Code, Msg: e.Message}
	case "unavailable":
		return fmt.Errorf("%w: leader %s: %s", consensus.ErrUnavailable, leader, e.Message)
	case "forbidden":
		return fmt.Errorf("%w: %s", ErrForbidden, e.Message)
	}
	return fmt.Errorf("node: %s (%s)", e.Message, e.Kind)
}

// ErrForbidden means a peer refused a call: a wrong or expired join
// token, or a caller that is not a cluster member.
var ErrForbidden = errors.New("node: refused")

// ErrInvalid marks bad input to a cluster operation.
var ErrInvalid = errors.New("node: invalid")

func (c *Cluster) handle(ctx context.Context, s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(2 * rpcTimeout))
	enc := json.NewEncoder(s)
	remote := s.Conn().RemotePeer()
	member := c.IsMember(remote)
	limit := int64(maxRPCBytes)
	if member {
		limit = maxMemberRPCBytes
	}
	var req rpcRequest
	if err := json.NewDecoder(io.LimitReader(s, limit)).Decode(&req); err != nil {
		_ = enc.Encode(errReply("invalid", "bad request: %v", err))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, rpcTimeout)
	defer cancel()
	switch req.Op {
	case "status":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		r := c.Report(ctx)
		_ = enc.Encode(rpcReply{Status: &r})
	case "index":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		if !c.cons.IsLeader() {
			_ = enc.Encode(errReply("unavailable", "not the leader"))
			return
		}
		_ = enc.Encode(rpcReply{Index: c.cons.State().Index})
	case "admin-token":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		_ = enc.Encode(c.onAdminToken(ctx, req))
	case "apply", "remove":
		if !member {
			_ = enc.Encode(errReply("forbidden", "not a cluster member"))
			return
		}
		c.onLeader(ctx, s, enc, req)
	case "join":
		if req.Node == nil || req.Node.ID == "" {
			_ = enc.Encode(errReply("invalid", "join without a node"))
			return
		}
		// A joiner speaks for itself; members may relay for it.
		if !member && req.Node.ID != remote.String() {
			_ = enc.Encode(errReply("forbidden", "a node can only join as itself"))
			return
		}
		if req.Node.ID == remote.String() {
			// Remember how the joiner was reached, in case it
			// advertises only unroutable addresses.
			req.Node.Addrs = mergeAddrs(req.Node.Addrs, s.Conn().RemoteMultiaddr().String())
		}
		c.onLeader(ctx, s, enc, req)
	default:
		_ = enc.Encode(errReply("invalid", "unknown op %q", req.Op))
	}
}

func mergeAddrs(addrs []string, extra string) []string {
	if slices.Contains(addrs, extra) {
		return addrs
	}
	return append(slices.Clone(addrs), extra)
}

// onLeader runs req here if this node leads, or relays it to the leader
// once.
func (c *Cluster) onLeader(ctx context.Context, s network.Stream, enc *json.Encoder, req rpcRequest) {
	if c.cons.IsLeader() {
		switch req.Op {
		case "apply":
			_ = enc.Encode(c.leaderApply(ctx, req))
		case "remove":
			_ = enc.Encode(c.leaderRemove(ctx, req.ID))
		case "join":
			c.leaderJoin(ctx, enc, req)
		}
		return
	}
	_, leader := c.cons.Leader()
	if leader == "" || req.Forwarded {
		_ = enc.Encode(errReply("unavailable", "no raft leader reachable (quorum lost?)"))
		return
	}
	lp, err := peer.Decode(leader)
	if err != nil {
		_ = enc.Encode(errReply("internal", "leader id %q: %v", leader, err))
		return
	}
	req.Forwarded = true
	ls, err := c.open(ctx, lp, req)
	if err != nil {
		_ = enc.Encode(errReply("unavailable", "relay to leader %s: %v", leader, err))
		return
	}
	defer ls.Close()
	_, _ = io.Copy(s, io.LimitReader(ls, maxRPCBytes))
}

// open starts a call to p and sends req.
func (c *Cluster) open(ctx context.Context, p peer.ID, req rpcRequest) (network.Stream, error) {
	return openRPC(ctx, c.h, p, req)
}

func openRPC(ctx context.Context, h host.Host, p peer.ID, req rpcRequest) (network.Stream, error) {
	s, err := h.NewStream(ctx, p, ClusterProtocol)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	} else {
		_ = s.SetDeadline(time.Now().Add(2 * rpcTimeout))
	}
	if err := json.NewEncoder(s).Encode(req); err != nil {
		s.Reset()
		return nil, err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return nil, err
	}
	return s, nil
}

// call makes a one-reply call.
func (c *Cluster) call(ctx context.Context, p peer.ID, req rpcRequest) (rpcReply, error) {
	s, err := c.open(ctx, p, req)
	if err != nil {
		return rpcReply{}, err
	}
	defer s.Close()
	var rep rpcReply
	if err := json.NewDecoder(io.LimitReader(s, maxRPCBytes)).Decode(&rep); err != nil {
		return rpcReply{}, fmt.Errorf("read reply: %w", err)
	}
	return rep, nil
}
