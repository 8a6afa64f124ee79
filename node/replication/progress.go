package replication

import (
	"context"
	"sort"

	"github.com/ipfs/go-cid"
)

// ---- status ----

// ReleaseProgress is how much of one release a node holds.
type ReleaseProgress struct {
	App     string `json:"app"`
	Version string `json:"version"`
	// BlocksHeld of BlocksKnown: blocks stored here, of those known
	// here (a node that lacks an object's root knows one block of it).
	BlocksHeld  int `json:"blocks_held"`
	BlocksKnown int `json:"blocks_known"`
	// Ready: every object this node replicates eagerly is complete.
	Ready bool `json:"ready"`
	// Error is the last replication error, if any.
	Error string `json:"error,omitempty"`
}

// Progress reports, per release, the blocks held here and whether every
// eagerly replicated object is complete.
func (r *Replicator) Progress(ctx context.Context) []ReleaseProgress {
	st := r.cfg.State.State()
	var out []ReleaseProgress
	for _, id := range st.AppIDs() {
		app := st.Apps[id]
		for _, v := range app.ReleaseVersions() {
			rel := app.Releases[v]
			p := ReleaseProgress{App: id, Version: v, Ready: true}
			for _, s := range rel.CIDs() {
				c, err := cid.Decode(s)
				if err != nil {
					continue
				}
				held, known, err := r.cfg.Store.Count(ctx, c)
				if err != nil {
					p.Error = err.Error()
				}
				p.BlocksHeld += held
				p.BlocksKnown += known
			}
			r.mu.Lock()
			for _, s := range r.eagerRoots(rel) {
				o := r.objects[s]
				if o == nil || !o.done {
					p.Ready = false
				}
				if o != nil && o.lastErr != "" {
					p.Error = o.lastErr
				}
			}
			r.mu.Unlock()
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].Version < out[j].Version
	})
	return out
}

// Ready reports whether every eagerly replicated object of app@version
// is complete here.
func (r *Replicator) Ready(app, version string) bool {
	a := r.cfg.State.State().App(app)
	if a == nil || a.Releases[version] == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.eagerRoots(a.Releases[version]) {
		if o := r.objects[s]; o == nil || !o.done {
			return false
		}
	}
	return true
}
