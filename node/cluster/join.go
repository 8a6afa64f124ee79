package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/node"
)

// NewJoinToken creates a join token valid for ttl and records its digest
// in the cluster state.
func (c *Cluster) NewJoinToken(ctx context.Context, ttl time.Duration) (token string, expires time.Time, err error) {
	if ttl <= 0 {
		ttl = 24 * time.Hour
	}
	token, err = node.NewToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := time.Now()
	expires = now.Add(ttl)
	_, err = c.Apply(ctx, consensus.JoinTokenAdd{Digest: node.TokenDigest(token),
		CreatedAt: now.UnixMilli(), ExpiresAt: expires.UnixMilli()})
	if err != nil {
		return "", time.Time{}, err
	}
	return token, expires, nil
}

// PeerInfo is what GET /cluster/v1/peer answers: how to reach a node
// over libp2p.
type PeerInfo struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// PeerInfoHandler serves GET /cluster/v1/peer. It needs no token: a peer
// id and addresses are not secrets, and joining needs a join token.
func (c *Cluster) PeerInfoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(PeerInfo{ID: c.h.ID().String(), Addrs: hostAddrs(c.h)})
	})
}

// JoinResult is what a join returns to the new node.
type JoinResult struct {
	Via        peer.ID
	Members    []state.NodeInfo
	Voter      bool
	AdminToken string
	// Index is the leader's state index after the join: the new node
	// has caught up once its state reaches it.
	Index uint64
}

// Join asks the cluster reachable at target (a multiaddr ending in
// /p2p/PEER_ID, or the HTTP URL of a node) to add this node, using a
// join token. trust is called with every member before the leader
// starts replicating to this node.
func Join(ctx context.Context, h host.Host, target, token string, self state.NodeInfo, trust func(peer.ID)) (JoinResult, error) {
	ai, err := resolveJoinTarget(ctx, target)
	if err != nil {
		return JoinResult{}, err
	}
	if err := h.Connect(ctx, ai); err != nil {
		return JoinResult{}, fmt.Errorf("node: connect to %s: %w", target, err)
	}
	trust(ai.ID)
	s, err := openRPC(ctx, h, ai.ID, rpcRequest{Op: "join", Token: token, Node: &self})
	if err != nil {
		return JoinResult{}, fmt.Errorf("node: join via %s: %w", target, err)
	}
	defer s.Close()
	dec := json.NewDecoder(io.LimitReader(s, maxRPCBytes))
	res := JoinResult{Via: ai.ID}
	for {
		var rep rpcReply
		if err := dec.Decode(&rep); err != nil {
			return res, fmt.Errorf("node: join via %s: read reply: %w", target, err)
		}
		if rep.Error != nil {
			return res, fmt.Errorf("node: join via %s: %w", target, rep.Error.asError(""))
		}
		for _, m := range rep.Members {
			p, err := peer.Decode(m.ID)
			if err != nil || p == h.ID() {
				continue
			}
			h.Peerstore().AddAddrs(p, parseAddrs(m.Addrs), peerstore.PermanentAddrTTL)
			trust(p)
			res.Members = append(res.Members, m)
		}
		if rep.Done {
			res.Voter, res.AdminToken, res.Index = rep.Voter, rep.AdminToken, rep.Index
			return res, nil
		}
	}
}

func resolveJoinTarget(ctx context.Context, target string) (peer.AddrInfo, error) {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(target, "/")+"/cluster/v1/peer", nil)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: --join %s: %w", target, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: ask %s for its peer id: %w", target, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return peer.AddrInfo{}, fmt.Errorf("node: ask %s for its peer id: HTTP %s (is it a mirrord node?)", target, resp.Status)
		}
		var pi PeerInfo
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&pi); err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: peer info from %s: %w", target, err)
		}
		id, err := peer.Decode(pi.ID)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("node: peer info from %s: %w", target, err)
		}
		return peer.AddrInfo{ID: id, Addrs: parseAddrs(pi.Addrs)}, nil
	}
	a, err := ma.NewMultiaddr(target)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("node: --join %q is neither an http(s) URL nor a multiaddr: %w", target, err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("node: --join %s: a multiaddr must end in /p2p/PEER_ID: %w", target, err)
	}
	return *ai, nil
}

func (c *Cluster) leaderJoin(ctx context.Context, enc *json.Encoder, req rpcRequest) {
	st := c.cons.State()
	if !st.JoinTokenValid(node.TokenDigest(req.Token), time.Now().UnixMilli()) {
		_ = enc.Encode(errReply("forbidden", "join token is wrong or expired: make one with `mirrord cluster token` on any node"))
		return
	}
	n := *req.Node
	p, err := peer.Decode(n.ID)
	if err != nil {
		_ = enc.Encode(errReply("invalid", "node id %q is not a peer id", n.ID))
		return
	}
	c.h.Peerstore().AddAddrs(p, parseAddrs(n.Addrs), peerstore.PermanentAddrTTL)
	c.Trust(p)
	members := c.members()
	if err := enc.Encode(rpcReply{Members: members}); err != nil {
		return
	}
	// Joins are admitted one at a time, so that two nodes joining at
	// once cannot both take the last voter seat.
	c.joinMu.Lock()
	defer c.joinMu.Unlock()
	voters, isVoter, present := 0, false, false
	servers, _ := c.cons.Configuration()
	for _, s := range servers {
		if s.Voter {
			voters++
		}
		if s.ID == n.ID {
			present, isVoter = true, s.Voter
		}
	}
	if !present {
		isVoter = voters < c.cfg.Voters
		if isVoter {
			err = c.cons.AddVoter(ctx, n.ID, n.ID)
		} else {
			err = c.cons.AddNonvoter(ctx, n.ID, n.ID)
		}
		if err != nil {
			_ = enc.Encode(replyFor(err))
			return
		}
	}
	n.JoinedAt = time.Now().UnixMilli()
	if old, ok := st.ClusterInfo().Nodes[n.ID]; ok {
		n.JoinedAt = old.JoinedAt
	}
	res, err := c.cons.Apply(ctx, consensus.NodeSet{Node: n})
	if err != nil {
		_ = enc.Encode(replyFor(err))
		return
	}
	rep := rpcReply{Done: true, Voter: isVoter, AdminToken: c.token()}
	if st, ok := res.(*state.State); ok {
		rep.Index = st.Index
	}
	c.log.Info("node joined", "node", n.ID, "voter", isVoter, "addrs", strings.Join(n.Addrs, " "))
	_ = enc.Encode(rep)
}
