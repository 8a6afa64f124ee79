package faults

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"
)

// durability is what the check after healing found.
type durability struct {
	releases int // acknowledged releases checked to be listed
	fetched  int // of which the bytes were downloaded from every node
	// lost are acknowledged releases some node does not list, or lists
	// with other objects, or cannot serve, once the deadline passed:
	// "1.0.7 on n2: not listed".
	lost []string
	// newlyLost counts the releases among them not reported before.
	newlyLost int
	// wrong are objects a node served with other bytes, each reported
	// once: damage that stays is the finding of the scenario that saw
	// it first.
	wrong []string
}

// checkDurability waits until every acknowledged release is listed by
// every node with the objects it was acknowledged with, and each object
// of the releases in fetch (nil: all) downloads byte-correct from every
// node, or timeout passes. Nodes are checked in parallel.
func (h *harness) checkDurability(timeout time.Duration, fetch map[*release]bool) durability {
	rels := h.ledger.acked()
	d := durability{releases: len(rels), fetched: len(rels)}
	if fetch != nil {
		d.fetched = len(fetch)
	}
	var mu sync.Mutex
	lostOn := map[*release][]string{}
	var wg sync.WaitGroup
	for _, n := range h.c.nodes {
		wg.Go(func() {
			missing, wrong := h.checkNode(n, rels, fetch, timeout)
			mu.Lock()
			defer mu.Unlock()
			for r, why := range missing {
				lostOn[r] = append(lostOn[r], fmt.Sprintf("%s on %s: %s", r.version, n.name, why))
			}
			for _, w := range wrong {
				if !h.wrongSeen[w.key] {
					h.wrongSeen[w.key] = true
					d.wrong = append(d.wrong, w.what)
				}
			}
		})
	}
	wg.Wait()
	for r, why := range lostOn {
		sort.Strings(why)
		d.lost = append(d.lost, why...)
		if h.ledger.markLost(r) {
			d.newlyLost++
		}
	}
	sort.Strings(d.lost)
	return d
}

// checkNode checks rels on n until all are servable or timeout passes.
// It returns the releases still missing, with why, and the objects n
// served with wrong bytes (these are not retried).
func (h *harness) checkNode(n *node, rels []*release, fetch map[*release]bool, timeout time.Duration) (map[*release]string, []wrongObject) {
	hc := downloadClient()
	missing := map[*release]string{}
	todo := map[*release][]servedObject{}
	for _, r := range rels {
		missing[r] = "not checked"
		if fetch == nil || fetch[r] {
			todo[r] = r.objects()
		}
	}
	var wrong []wrongObject
	pass := func() {
		listed, err := h.listReleases(n)
		for r := range missing {
			got, ok := listed[r.version]
			switch {
			case err != nil:
				missing[r] = "release list: " + err.Error()
			case !ok:
				missing[r] = "not listed"
			case !sameObjects(got, r):
				missing[r] = "listed with other objects than acknowledged"
			default:
				var left []servedObject
				for _, o := range todo[r] {
					switch out, detail := fetchObject(hc, n.url+o.path(), o.want); out {
					case fetchWrong:
						wrong = append(wrong, wrongObject{key: n.name + "/" + o.cid,
							what: fmt.Sprintf("%s %s on %s: %s", r.version, o.want.name, n.name, detail)})
					case fetchFailed:
						left = append(left, o)
						missing[r] = o.want.name + ": " + detail
					}
				}
				if todo[r] = left; len(left) == 0 {
					delete(missing, r)
				}
			}
		}
	}
	_ = waitFor(timeout, 500*time.Millisecond, func() bool {
		pass()
		return len(missing) == 0
	})
	return missing, wrong
}

// toFetch picks the releases whose bytes the check after a scenario
// downloads: those acknowledged since the last check, those the
// scenario damaged and checkOld older ones at random (nil: all).
func (h *harness) toFetch() map[*release]bool {
	damaged := h.damaged
	h.damaged = nil
	if h.p.checkOld < 0 {
		return nil
	}
	acked := h.ledger.acked()
	fetch := map[*release]bool{}
	for _, r := range damaged {
		fetch[r] = true
	}
	old := acked[:min(h.checkedUpTo, len(acked))]
	for _, i := range h.rng.Perm(len(old))[:min(h.p.checkOld, len(old))] {
		fetch[old[i]] = true
	}
	for _, r := range acked[len(old):] {
		fetch[r] = true
	}
	h.checkedUpTo = len(acked)
	return fetch
}

func (d durability) String() string {
	if d.fetched == d.releases {
		return fmt.Sprintf("after healing, %d acked releases checked on every node (listed, bytes)", d.releases)
	}
	return fmt.Sprintf("after healing, %d acked releases checked on every node (listed; bytes of %d)", d.releases, d.fetched)
}

// wrongObject is an object a node served with wrong bytes; key names
// the node and the CID.
type wrongObject struct{ key, what string }

// listReleases returns the releases node n lists (`mirrord release
// list --json`), by version.
func (h *harness) listReleases(n *node) (map[string]published, error) {
	out, err := h.c.cli(n, "release", "list", appID, "--json")
	if err != nil {
		return nil, err
	}
	var list []published
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("release list on %s: %w", n.name, err)
	}
	byVersion := map[string]published{}
	for _, p := range list {
		byVersion[p.Version] = p
	}
	return byVersion, nil
}

// sameObjects reports whether a listed release names the objects r was
// acknowledged with.
func sameObjects(p published, r *release) bool {
	if p.ZipCID != r.zipCID || p.Checksum != r.zip.sha256 || len(p.Manifest) != len(r.fileCIDs) {
		return false
	}
	for _, f := range p.Manifest {
		if r.fileCIDs[f.FileName] != f.CID {
			return false
		}
	}
	return true
}
