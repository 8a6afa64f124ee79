package httpapi

import (
	"reflect"
	"sync"

	"github.com/ipfs/go-cid"

	"mirrord/consensus/state"
)

// refs counts the objects (zips and manifest files) that the releases of
// the newest state snapshot seen reference, so that a download can tell
// in one map lookup whether it may ask peers for an object.
//
// It follows the snapshots incrementally. State snapshots share an app's
// Releases map until a release of that app is created or deleted
// (consensus/state copies maps on write and never changes a published
// one), and a Release is never changed after creation. So a new snapshot
// costs one pointer comparison per app, plus, for an app whose releases
// changed, a comparison of its releases; only new releases have their
// CIDs decoded. Most snapshots (stats reports, rollouts, channel moves)
// change no release at all.
type refs struct {
	mu    sync.RWMutex
	st    *state.State
	apps  map[string]map[string]*state.Release // app id -> Releases counted
	count map[string]int                       // CID string -> references
}

// referenced reports whether a release of st references the object c,
// which the request spelled raw. It takes a read lock and does not
// allocate (unless raw is not the canonical spelling of c), unless st is
// newer than the snapshot counted, which it then counts first.
func (r *refs) referenced(st *state.State, raw string, c cid.Cid) bool {
	r.mu.RLock()
	if r.current(st) {
		ok := r.lookup(raw, c)
		r.mu.RUnlock()
		return ok
	}
	r.mu.RUnlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.current(st) {
		r.follow(st)
	}
	return r.lookup(raw, c)
}

// lookup finds c by the spelling of the request (download URLs carry the
// release's own string), else by its canonical spelling, under which
// every other counted spelling is counted too.
func (r *refs) lookup(raw string, c cid.Cid) bool {
	if r.count[raw] > 0 {
		return true
	}
	if canonical(raw) {
		return false
	}
	return r.count[c.String()] > 0
}

// canonical reports whether s looks like the canonical spelling of a
// CIDv1 (multibase base32, lower case), which cid.Cid.String gives.
func canonical(s string) bool {
	if len(s) < 2 || s[0] != 'b' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if b := s[i]; (b < 'a' || b > 'z') && (b < '2' || b > '7') {
			return false
		}
	}
	return true
}

// current reports whether the counts serve st: they are of st, or of a
// newer snapshot (a request that read the state just before it changed
// is answered from the newer one, and the counts do not go back).
func (r *refs) current(st *state.State) bool {
	return r.st == st || (r.st != nil && st != nil && r.st.Index > st.Index)
}

// follow moves the counts to st. Called with mu held for writing.
func (r *refs) follow(st *state.State) {
	var apps map[string]*state.AppState
	if st != nil {
		apps = st.Apps
	}
	if r.apps == nil {
		// Sized for the whole state: the first count is the big one.
		n := 0
		for _, app := range apps {
			if app != nil {
				for _, rel := range app.Releases {
					n += 1 + len(rel.Manifest)
				}
			}
		}
		r.apps = make(map[string]map[string]*state.Release, len(apps))
		r.count = make(map[string]int, n)
	}
	for id, old := range r.apps {
		if app := apps[id]; app == nil {
			r.diff(old, nil)
			delete(r.apps, id)
		}
	}
	for id, app := range apps {
		if app == nil {
			continue
		}
		old, ok := r.apps[id]
		if ok && sameMap(old, app.Releases) {
			continue
		}
		r.diff(old, app.Releases)
		r.apps[id] = app.Releases
	}
	r.st = st
}

// sameMap reports whether a and b are the same map (not equal contents).
func sameMap(a, b map[string]*state.Release) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// diff uncounts the releases of old that next does not hold (the same
// *Release) and counts those of next that old does not hold.
func (r *refs) diff(old, next map[string]*state.Release) {
	for v, rel := range old {
		if next[v] != rel {
			r.add(rel, -1)
		}
	}
	for v, rel := range next {
		if old[v] != rel {
			r.add(rel, 1)
		}
	}
}

func (r *refs) add(rel *state.Release, d int) {
	if rel == nil {
		return
	}
	r.addCID(rel.ZipCID, d)
	for _, f := range rel.Manifest {
		r.addCID(f.CID, d)
	}
}

// addCID counts the CID s under its spelling and, if that is not the
// canonical one (a CIDv0, another base), under its canonical CIDv1
// spelling too. Releases made by mirrord name CIDs canonically, so the
// common case costs one map update and no decoding.
func (r *refs) addCID(s string, d int) {
	if s == "" {
		return
	}
	r.bump(s, d)
	if canonical(s) {
		return
	}
	if c, err := cid.Decode(s); err == nil {
		if k := cid.NewCidV1(c.Type(), c.Hash()).String(); k != s {
			r.bump(k, d)
		}
	}
}

func (r *refs) bump(k string, d int) {
	if n := r.count[k] + d; n > 0 {
		r.count[k] = n
	} else {
		delete(r.count, k)
	}
}
