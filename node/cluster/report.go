package cluster

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"mirrord/node"
	"mirrord/node/replication"
)

// NodeReport is one node's view of itself, for status pages.
type NodeReport struct {
	ID           string                        `json:"id"`
	Addrs        []string                      `json:"addrs"`
	HTTP         string                        `json:"http,omitempty"`
	Role         string                        `json:"role"` // Leader, Follower, Candidate
	Voter        bool                          `json:"voter"`
	Leader       string                        `json:"leader"`
	Term         uint64                        `json:"term"`
	AppliedIndex uint64                        `json:"applied_index"`
	LastContact  *time.Time                    `json:"last_contact,omitempty"`
	Releases     []replication.ReleaseProgress `json:"releases"`
	Exchange     *node.ExchangeStats           `json:"exchange,omitempty"`
	// Error is set when the node could not be asked.
	Error string `json:"error,omitempty"`
}

// Report describes this node.
func (c *Cluster) Report(ctx context.Context) NodeReport {
	st := c.cons.Stats()
	r := NodeReport{ID: st.ID, Addrs: hostAddrs(c.h), HTTP: c.cfg.HTTP, Role: st.State,
		Leader: st.LeaderID, Term: st.Term, AppliedIndex: st.AppliedIndex, Releases: []replication.ReleaseProgress{}}
	for _, s := range st.Servers {
		if s.ID == st.ID {
			r.Voter = s.Voter
		}
	}
	if !st.LastContact.IsZero() {
		lc := st.LastContact
		r.LastContact = &lc
	}
	if c.cfg.Progress != nil {
		r.Releases = c.cfg.Progress(ctx)
	}
	if c.cfg.Exchange != nil {
		if es, err := c.cfg.Exchange(); err == nil {
			r.Exchange = &es
		}
	}
	return r
}

// Reports asks every member for its report (at most a few seconds); a
// member that does not answer is listed with its error.
func (c *Cluster) Reports(ctx context.Context) []NodeReport {
	members := c.members()
	voters := map[string]bool{}
	servers, _ := c.cons.Configuration()
	for _, s := range servers {
		voters[s.ID] = s.Voter
	}
	out := make([]NodeReport, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.ID == c.h.ID().String() {
			out[i] = c.Report(ctx)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			rep := rpcReply{}
			p, err := peer.Decode(m.ID)
			if err == nil {
				rep, err = c.call(cctx, p, rpcRequest{Op: "status"})
			}
			switch {
			case err != nil:
				msg := strings.Join(strings.Fields(err.Error()), " ")
				out[i] = NodeReport{ID: m.ID, Addrs: m.Addrs, HTTP: m.HTTP, Voter: voters[m.ID], Role: "unreachable", Error: msg}
			case rep.Error != nil:
				out[i] = NodeReport{ID: m.ID, Addrs: m.Addrs, HTTP: m.HTTP, Voter: voters[m.ID], Role: "unreachable", Error: rep.Error.Message}
			default:
				out[i] = *rep.Status
			}
		}()
	}
	wg.Wait()
	return out
}
