package httpapi

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"mirrord/consensus/state"
)

// testCID is a CIDv1 raw sha2-256 of s.
func testCID(s string) cid.Cid {
	mh, _ := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, mh)
}

// refState is a state with apps releases each, every release with a
// zip and files manifest entries.
func refState(apps, releases, files int) *state.State {
	st := &state.State{Index: 1, Apps: map[string]*state.AppState{}}
	for a := range apps {
		id := fmt.Sprintf("app%d", a)
		as := &state.AppState{App: state.App{ID: id}, Releases: map[string]*state.Release{}}
		for r := range releases {
			v := fmt.Sprintf("1.0.%d", r)
			rel := &state.Release{App: id, Version: v, ZipCID: testCID(id + v).String()}
			for f := range files {
				rel.Manifest = append(rel.Manifest, state.ManifestFile{FileName: fmt.Sprint(f), CID: testCID(fmt.Sprint(id, v, f)).String()})
			}
			as.Releases[v] = rel
		}
		st.Apps[id] = as
	}
	return st
}

// withIndex copies st as a command that touches no release would: same
// apps, new snapshot.
func withIndex(st *state.State, index uint64) *state.State {
	return &state.State{Index: index, Apps: maps.Clone(st.Apps)}
}

// withRelease copies st and adds a release of app, as CreateRelease
// would (a new Releases map for that app).
func withRelease(st *state.State, app, version string, zip cid.Cid) *state.State {
	next := withIndex(st, st.Index+1)
	old := st.Apps[app]
	as := *old
	as.Releases = maps.Clone(old.Releases)
	as.Releases[version] = &state.Release{App: app, Version: version, ZipCID: zip.String()}
	next.Apps[app] = &as
	return next
}

func TestReferenced(t *testing.T) {
	st := refState(3, 2, 2)
	zip := testCID("app1" + "1.0.1")
	file := testCID(fmt.Sprint("app2", "1.0.0", 1))
	// A release naming its zip by a CIDv0 (a dag-pb root).
	pb := cid.NewCidV1(cid.DagProtobuf, testCID("pb").Hash())
	st.Apps["app0"].Releases["0.9.0"] = &state.Release{App: "app0", Version: "0.9.0", ZipCID: cid.NewCidV0(pb.Hash()).String()}
	added := testCID("new")
	base58, err := zip.StringOfBase('z') // multibase base58btc
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		raw  string // as the URL spells it; "" = canonical
		c    cid.Cid
		want bool
	}{
		{"zip", "", zip, true},
		{"manifest file", "", file, true},
		{"named by its CIDv0", "", pb, true},
		{"zip in upper case", strings.ToUpper(zip.String()), zip, true},
		{"zip in base58", base58, zip, true},
		{"unknown", "", testCID("nobody"), false},
		{"same hash, dag-pb", "", cid.NewCidV1(cid.DagProtobuf, zip.Hash()), false},
		{"release not committed", "", added, false},
	} {
		var r refs
		raw := tc.raw
		if raw == "" {
			raw = tc.c.String()
		}
		if got := r.referenced(st, raw, tc.c); got != tc.want {
			t.Errorf("%s: referenced %v, want %v", tc.name, got, tc.want)
		}
	}

	var r refs
	r.referenced(st, zip.String(), zip)
	// A snapshot that changes no release moves the index.
	st2 := withIndex(st, 2)
	if !r.referenced(st2, zip.String(), zip) || r.st != st2 {
		t.Fatal("index not moved to the new snapshot")
	}
	// A new release is seen at once.
	st3 := withRelease(st2, "app0", "2.0.0", added)
	if !r.referenced(st3, added.String(), added) {
		t.Error("object of a new release not referenced")
	}
	// A request still holding the older snapshot uses the newer index.
	if !r.referenced(st2, added.String(), added) || r.st != st3 {
		t.Error("an older snapshot replaced the index")
	}
	// A release that shares a file with another: deleting one keeps it.
	st4 := withRelease(st3, "app1", "3.0.0", file)
	if !r.referenced(st4, file.String(), file) {
		t.Fatal("shared file not referenced")
	}
	// Deleting releases (back to st2's maps, newer index) drops what
	// only they referenced.
	st5 := withIndex(st2, 9)
	if r.referenced(st5, added.String(), added) || !r.referenced(st5, file.String(), file) {
		t.Error("deleted releases: wrong references")
	}
	// Deleting an app drops its references.
	st6 := withIndex(st5, 10)
	delete(st6.Apps, "app1")
	if r.referenced(st6, zip.String(), zip) || !r.referenced(st6, file.String(), file) {
		t.Error("deleted app: wrong references")
	}
	// app0 and app2: 2 releases of 3 objects each; app0's CIDv0 zip
	// under its two spellings.
	if len(r.count) != 2*3+2+2*3 {
		t.Errorf("%d objects counted, want 14", len(r.count))
	}
	if r.referenced(nil, zip.String(), zip) {
		t.Error("nil state references something")
	}
	var e refs
	if e.referenced(state.Empty(), zip.String(), zip) || e.referenced(nil, zip.String(), zip) {
		t.Error("empty state references something")
	}
}

func TestReferencedAllocs(t *testing.T) {
	st := refState(50, 10, 5)
	hit, miss := testCID("app7"+"1.0.3"), testCID("nobody")
	hs, ms := hit.String(), miss.String()
	var r refs
	r.referenced(st, hs, hit)
	if n := testing.AllocsPerRun(100, func() {
		r.referenced(st, hs, hit)
		r.referenced(st, ms, miss)
	}); n != 0 {
		t.Fatalf("%v allocations per lookup", n)
	}
}

// BenchmarkRefIndex measures the first count, a lookup, and the counts
// moved to a new snapshot with and without release changes, for 1000 apps of 20
// releases with 20 manifest files each (420,000 references).
func BenchmarkRefIndex(b *testing.B) {
	st := refState(1000, 20, 20)
	hit := testCID("app7" + "1.0.3")
	hs := hit.String()
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			var r refs
			r.referenced(st, hs, hit)
		}
	})
	b.Run("lookup", func(b *testing.B) {
		var r refs
		r.referenced(st, hs, hit)
		b.ReportAllocs()
		for b.Loop() {
			r.referenced(st, hs, hit)
		}
	})
	b.Run("new snapshot, same releases", func(b *testing.B) {
		var r refs
		r.referenced(st, hs, hit)
		next := st
		for b.Loop() {
			b.StopTimer()
			next = withIndex(next, next.Index+1)
			b.StartTimer()
			r.referenced(next, hs, hit)
		}
	})
	b.Run("new release", func(b *testing.B) {
		var r refs
		r.referenced(st, hs, hit)
		next := st
		i := 0
		for b.Loop() {
			i++
			b.StopTimer()
			next = withRelease(next, "app3", fmt.Sprint("9.", i), testCID(fmt.Sprint(i)))
			b.StartTimer()
			r.referenced(next, hs, hit)
		}
	})
}
