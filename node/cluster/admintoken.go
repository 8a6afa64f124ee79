package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/consensus/state"
	"mirrord/node"
)

// ShareAdminToken is called on the node through which the first admin
// token (state.AdminTokenName) was rotated, with its new secret, once
// the rotation is applied here. It keeps the secret for joiners, writes
// it to this node's DATA/admin.token (Config.TokenDir), and hands it to
// every other member over the cluster protocol (members only, over the
// encrypted libp2p connection; the secret never enters raft), which do
// the same after checking its digest against their state. A member that
// is down keeps its old file; see docs/operations.md, Tokens.
func (c *Cluster) ShareAdminToken(ctx context.Context, secret string) {
	c.adoptAdminToken(secret)
	index := c.cons.State().Index
	var wg sync.WaitGroup
	for _, m := range c.members() {
		p, err := peer.Decode(m.ID)
		if err != nil || p == c.h.ID() {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			rep, err := c.call(cctx, p, rpcRequest{Op: "admin-token", Token: secret, Index: index})
			if err == nil && rep.Error != nil {
				err = rep.Error.asError("")
			}
			if err != nil {
				c.log.Warn("rotated admin token not handed to a node: its DATA/admin.token keeps the old one",
					"node", m.ID, "err", err)
			}
		})
	}
	wg.Wait()
}

// adoptAdminToken keeps secret as this node's admin token and file.
func (c *Cluster) adoptAdminToken(secret string) {
	c.SetAdminToken(secret)
	if c.cfg.TokenDir == "" {
		return
	}
	if err := node.WriteToken(c.cfg.TokenDir, secret); err != nil {
		c.log.Warn("cannot store the rotated admin token", "err", err)
		return
	}
	c.log.Info("admin token rotated: DATA/admin.token holds the new one")
}

// onAdminToken serves a member's "admin-token" call: it takes the secret
// only once the state (at req.Index) names it the first admin token.
func (c *Cluster) onAdminToken(ctx context.Context, req rpcRequest) rpcReply {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := c.cons.WaitForIndex(wctx, req.Index)
	cancel()
	if err != nil {
		return errReply("unavailable", "state not at index %d: %v", req.Index, err)
	}
	t, ok := c.cons.State().TokenByDigest(node.TokenDigest(req.Token))
	if !ok || t.Name != state.AdminTokenName || t.Scope != state.ScopeAdmin {
		return errReply("forbidden", "%s", fmt.Sprintf("not the cluster's %q token", state.AdminTokenName))
	}
	c.adoptAdminToken(req.Token)
	return rpcReply{}
}
