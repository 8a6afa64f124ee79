package adminapi

import (
	"context"
	"net/http"

	"github.com/ipfs/go-cid"

	"mirrord/consensus"
	"mirrord/node/cluster"
	"mirrord/node/replication"
)

// ReleaseStatus tells whether this node holds a release's bytes.
type ReleaseStatus struct {
	App      string `json:"app"`
	Version  string `json:"version"`
	Objects  int    `json:"objects"`
	Complete int    `json:"complete"`
}

// Status is the answer of GET /admin/v1/status.
type Status struct {
	Node     consensus.NodeStats `json:"node"`
	Apps     int                 `json:"apps"`
	Releases []ReleaseStatus     `json:"releases"`
	// Nodes lists every node of the cluster as it reports itself.
	Nodes []cluster.NodeReport `json:"nodes,omitempty"`
	// Rollouts lists each channel's current or last rollout.
	Rollouts []RolloutInfo `json:"rollouts"`
	// Disk is this node's block store use and free space.
	Disk *replication.DiskStatus `json:"disk,omitempty"`
}

// Status reports this node, the cluster's nodes, the rollouts and which
// releases' blocks this node holds.
func (a *API) Status(ctx context.Context) (Status, error) {
	st := a.cons.State()
	out := Status{Node: a.cons.Stats(), Apps: len(st.Apps), Releases: []ReleaseStatus{}, Rollouts: []RolloutInfo{}}
	for _, id := range st.AppIDs() {
		app := st.Apps[id]
		for _, name := range app.ChannelNames() {
			if app.Channels[name].Rollout != nil {
				out.Rollouts = append(out.Rollouts, rolloutInfo(app, name))
			}
		}
		for _, v := range app.ReleaseVersions() {
			rs := ReleaseStatus{App: id, Version: v}
			for _, s := range app.Releases[v].CIDs() {
				rs.Objects++
				if c, err := cid.Decode(s); err == nil {
					if ok, _ := a.store.Complete(ctx, c); ok {
						rs.Complete++
					}
				}
			}
			out.Releases = append(out.Releases, rs)
		}
	}
	if a.cfg.Cluster != nil {
		out.Nodes = a.cfg.Cluster.Reports(ctx)
	}
	if a.cfg.Disk != nil {
		d := a.cfg.Disk()
		out.Disk = &d
	}
	return out, nil
}

func (a *API) httpStatus(r *http.Request) (int, any, error) {
	out, err := a.Status(r.Context())
	return http.StatusOK, out, err
}
