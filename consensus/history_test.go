package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"testing"

	"mirrord/consensus/state"
)

// Times used by the history tests (unix ms): t0 is the start of an hour.
const (
	hourMs = state.HistoryBucketMillis
	t0     = 1_700_000_000_000 - 1_700_000_000_000%hourMs
)

// rep is one stats report of the history tables: a node's cumulative
// counters for release 1.1.0 (or version) at time at; at 0 sends the
// old StatsReport command.
type rep struct {
	node      string
	seq       uint64
	at        int64
	version   string
	offered   int64
	installs  int64
	failures  int64
	downloads int64
}

func (r rep) command() Command {
	v := r.version
	if v == "" {
		v = "1.1.0"
	}
	c := state.Counters{Seq: r.seq, Offered: r.offered, Installs: r.installs, Downloads: r.downloads, At: r.at}
	if r.failures > 0 {
		c.Failures = map[string]int64{"update_fail": r.failures - r.failures/2, "download_fail": r.failures / 2}
	}
	rc := []state.ReleaseCounters{{App: app, Version: v, Counters: c}}
	if r.at == 0 {
		return StatsReport{Node: r.node, Releases: rc}
	}
	return StatsReportAt{Node: r.node, At: r.at, Releases: rc}
}

// TestHistoryBucketing: reports become hourly buckets per release, the
// same whatever node applies them.
func TestHistoryBucketing(t *testing.T) {
	b := func(hour int64, offered, installs, failures int64) state.Bucket {
		return state.Bucket{Hour: t0 + hour*hourMs, Offered: offered, Installs: installs, Failures: failures}
	}
	tests := []struct {
		name    string
		reports []rep
		want    map[string][]state.Bucket // nil: no history
		wantAt  int64
	}{
		{name: "first report counts its totals",
			reports: []rep{{node: "A", seq: 1, at: t0 + 5, offered: 10, installs: 4, failures: 1}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 10, 4, 1)}}, wantAt: t0 + 5},
		{name: "later reports add their delta in the same hour",
			reports: []rep{{node: "A", seq: 1, at: t0 + 5, installs: 4}, {node: "A", seq: 2, at: t0 + hourMs - 1, installs: 7, failures: 2}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 0, 7, 2)}}, wantAt: t0 + hourMs - 1},
		{name: "the next hour gets its own bucket",
			reports: []rep{{node: "A", seq: 1, at: t0 + 5, installs: 4}, {node: "A", seq: 2, at: t0 + hourMs, installs: 7}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 0, 4, 0), b(1, 0, 3, 0)}}, wantAt: t0 + hourMs},
		{name: "nodes are summed",
			reports: []rep{{node: "A", seq: 1, at: t0 + 5, installs: 4}, {node: "B", seq: 9, at: t0 + 6, installs: 2, offered: 3}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 3, 6, 0)}}, wantAt: t0 + 6},
		{name: "a replayed or older report adds nothing",
			reports: []rep{{node: "A", seq: 2, at: t0 + 5, installs: 4}, {node: "A", seq: 2, at: t0 + 6, installs: 4}, {node: "A", seq: 1, at: t0 + 7, installs: 9}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 0, 4, 0)}}, wantAt: t0 + 5},
		{name: "the old command keeps no history",
			reports: []rep{{node: "A", seq: 1, installs: 4}, {node: "B", seq: 1, installs: 2}},
			want:    nil, wantAt: 0},
		{name: "after the old command only the delta is new",
			reports: []rep{{node: "A", seq: 1, installs: 4}, {node: "A", seq: 2, at: t0 + 1, installs: 5, failures: 2}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 0, 1, 2)}}, wantAt: t0 + 1},
		{name: "a late report of an earlier hour goes in order",
			reports: []rep{{node: "A", seq: 1, at: t0 + 3*hourMs, installs: 4}, {node: "B", seq: 1, at: t0 + hourMs, installs: 2}},
			want:    map[string][]state.Bucket{"1.1.0": {b(1, 0, 2, 0), b(3, 0, 4, 0)}}, wantAt: t0 + 3*hourMs},
		{name: "counters that went down count nothing",
			reports: []rep{{node: "A", seq: 1, at: t0, installs: 4}, {node: "A", seq: 2, at: t0 + hourMs, installs: 1}},
			want:    map[string][]state.Bucket{"1.1.0": {b(0, 0, 4, 0)}}, wantAt: t0 + hourMs},
		{name: "unknown releases keep nothing",
			reports: []rep{{node: "A", seq: 1, at: t0, version: "9.9.9", installs: 4}},
			want:    nil, wantAt: 0},
		{name: "downloads are counted",
			reports: []rep{{node: "A", seq: 1, at: t0, downloads: 3}},
			want:    map[string][]state.Bucket{"1.1.0": {{Hour: t0, Downloads: 3}}}, wantAt: t0},
		{name: "releases apart",
			reports: []rep{{node: "A", seq: 1, at: t0, installs: 1}, {node: "A", seq: 1, at: t0, version: "1.0.0", installs: 5}},
			want:    map[string][]state.Bucket{"1.0.0": {b(0, 0, 5, 0)}, "1.1.0": {b(0, 0, 1, 0)}}, wantAt: t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, base...)
			for _, r := range tt.reports {
				if _, err := h.apply(r.command()); err != nil {
					t.Fatal(err)
				}
			}
			a := h.f.State().App(app)
			if !reflect.DeepEqual(a.History, tt.want) || a.HistoryAt != tt.wantAt {
				t.Errorf("history %v at %d, want %v at %d", a.History, a.HistoryAt, tt.want, tt.wantAt)
			}
		})
	}
}

// TestHistoryRetention: buckets older than the retention before the
// newest report time are dropped, by report time only.
func TestHistoryRetention(t *testing.T) {
	ret := state.HistoryRetention / hourMs // in hours
	tests := []struct {
		name      string
		ats       []int64 // hours after t0 of successive reports (1 install each)
		wantHours []int64
	}{
		{"within retention everything stays", []int64{0, 1, ret}, []int64{0, 1, ret}},
		{"one hour past drops the oldest", []int64{0, 1, ret + 1}, []int64{1, ret + 1}},
		{"a long gap drops all but the new", []int64{0, 1, 3 * ret}, []int64{3 * ret}},
		{"a report older than retention is not bucketed", []int64{ret + 5, 4}, []int64{ret + 5}},
		{"a report at the cutoff is kept", []int64{ret + 5, 5}, []int64{5, ret + 5}},
		{"an old report does not move the clock back", []int64{ret, 0, ret + 1}, []int64{ret, ret + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, base...)
			for i, hr := range tt.ats {
				r := rep{node: "A", seq: uint64(i + 1), at: t0 + hr*hourMs + 17, installs: int64(i + 1)}
				if _, err := h.apply(r.command()); err != nil {
					t.Fatal(err)
				}
			}
			a := h.f.State().App(app)
			var got []int64
			for _, b := range a.History["1.1.0"] {
				got = append(got, (b.Hour-t0)/hourMs)
				if b.Installs != 1 {
					t.Errorf("bucket %d has %d installs", b.Hour, b.Installs)
				}
			}
			if !slices.Equal(got, tt.wantHours) {
				t.Errorf("hours %v, want %v", got, tt.wantHours)
			}
			// Counters keep every install, bucketed or not.
			if n := a.Tally("1.1.0").Installs; n != int64(len(tt.ats)) {
				t.Errorf("counters hold %d installs", n)
			}
		})
	}
}

// TestHistoryOldCommandPath: a log written before the history (old
// StatsReport entries) applies exactly as before: counters, no history,
// and the same state as ReportStats gives.
func TestHistoryOldCommandPath(t *testing.T) {
	h := newHarness(t, base...)
	before := h.f.State()
	cmd := StatsReport{Node: "A", Releases: []state.ReleaseCounters{{App: app, Version: "1.1.0",
		Counters: state.Counters{Seq: 3, Installs: 5, Failures: map[string]int64{"update_fail": 1}, At: t0 + 99}}}}
	s, err := h.apply(cmd)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := before.ReportStats(s.Index, "A", cmd.Releases)
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("old command applied as\n%#v\nwant\n%#v", s.App(app), want.App(app))
	}
	if a := s.App(app); a.History != nil || a.HistoryAt != 0 || a.Tally("1.1.0") != (state.Tally{Installs: 5, Failures: 1}) {
		t.Fatalf("old command: history %v at %d, tally %+v", a.History, a.HistoryAt, a.Tally("1.1.0"))
	}
	// The golden log line of the old command still decodes to it.
	b, _ := Encode(StatsReport{})
	if b[0] != 18 {
		t.Fatalf("StatsReport is type %d", b[0])
	}
}

// TestHistoryReleaseDelete: a deleted release takes its buckets along.
func TestHistoryReleaseDelete(t *testing.T) {
	h := newHarness(t, base...)
	for _, c := range []Command{
		rep{node: "A", seq: 1, at: t0, installs: 2}.command(),
		ReleaseDelete{App: app, Version: "1.1.0"},
	} {
		if _, err := h.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if a := h.f.State().App(app); a.History != nil || a.HistoryAt != t0 {
		t.Fatalf("history %v at %d", a.History, a.HistoryAt)
	}
}

// randomReports returns n reports from 3 nodes over ~10 days, some of
// them replays or out of order, some with the old command.
func randomReports(seed uint64, n int) []Command {
	rng := rand.New(rand.NewPCG(seed, 1))
	type cum struct {
		seq           uint64
		off, ins, fai int64
	}
	nodes := map[string]*cum{"A": {}, "B": {}, "C": {}}
	names := []string{"A", "B", "C"}
	var out []Command
	at := int64(t0)
	for range n {
		at += rng.Int64N(3 * hourMs)
		node := names[rng.IntN(3)]
		c := nodes[node]
		if rng.IntN(10) > 0 { // else a replay of the last counters
			c.seq++
			c.off += rng.Int64N(50)
			c.ins += rng.Int64N(20)
			c.fai += rng.Int64N(3)
		}
		r := rep{node: node, seq: c.seq, at: at - rng.Int64N(5*hourMs), offered: c.off, installs: c.ins, failures: c.fai}
		if rng.IntN(2) == 0 {
			r.version = "1.0.0"
		}
		if rng.IntN(20) == 0 {
			r.at = 0
		}
		out = append(out, r.command())
	}
	return out
}

// TestHistoryDeterministic: two FSMs fed the same log agree, and a node
// that restores a snapshot taken midway and applies the rest agrees
// with both, down to the snapshot bytes.
func TestHistoryDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		log := append(slices.Clone(base), randomReports(seed, 400)...)
		a, b := newHarness(t, log...), newHarness(t, log...)
		if !reflect.DeepEqual(a.f.State(), b.f.State()) {
			t.Fatalf("seed %d: two FSMs differ", seed)
		}
		mid := len(log) / 2
		c := newHarness(t, log[:mid]...)
		restored := NewFSM(nil)
		if err := restored.Restore(nopCloser{bytes.NewReader(snapshotBytes(t, c.f.State()))}); err != nil {
			t.Fatal(err)
		}
		c.f = restored
		for _, cmd := range log[mid:] {
			if _, err := c.apply(cmd); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(a.f.State(), c.f.State()) {
			t.Fatalf("seed %d: the node restored from a snapshot differs:\n%v\n%v", seed,
				a.f.State().App(app).History, c.f.State().App(app).History)
		}
		if !bytes.Equal(snapshotBytes(t, a.f.State()), snapshotBytes(t, c.f.State())) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
		for v, bs := range a.f.State().App(app).History {
			if len(bs) > state.MaxHistoryBuckets {
				t.Fatalf("seed %d: %s holds %d buckets", seed, v, len(bs))
			}
		}
	}
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// TestHistoryMemory measures the history of releases reported every
// hour for the whole retention: the most one release can hold.
func TestHistoryMemory(t *testing.T) {
	const releases = 50
	setup := []Command{AppCreate{ID: app, CreatedAt: 1}}
	for i := range releases {
		setup = append(setup, ReleaseCreate{Release: release(fmt.Sprintf("1.0.%d", i), int64(i+1))})
	}
	h := newHarness(t, setup...)
	hours := int64(state.MaxHistoryBuckets + 24) // a day past retention
	for hr := range hours {
		var rc []state.ReleaseCounters
		for i := range releases {
			rc = append(rc, state.ReleaseCounters{App: app, Version: fmt.Sprintf("1.0.%d", i),
				Counters: state.Counters{Seq: uint64(hr + 1), Offered: 10 * (hr + 1), Installs: hr + 1, Downloads: hr + 1,
					Failures: map[string]int64{"update_fail": hr / 4}}})
		}
		if _, err := h.apply(StatsReportAt{Node: "A", At: t0 + hr*hourMs, Releases: rc}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.f.State().App(app)
	for v, bs := range a.History {
		if len(bs) != state.MaxHistoryBuckets {
			t.Fatalf("%s holds %d buckets, want %d", v, len(bs), state.MaxHistoryBuckets)
		}
	}
	// Heap of the history alone: a deep copy measured in isolation.
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	cp := make(map[string][]state.Bucket, len(a.History))
	for v, bs := range a.History {
		cp[v] = slices.Clone(bs)
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	perRelease := (m1.HeapAlloc - m0.HeapAlloc) / releases
	snap := len(snapshotBytes(t, h.f.State()))
	t.Logf("history: %d buckets per release, %d B each: ~%d B of heap per release; snapshot %d B for %d releases",
		state.MaxHistoryBuckets, reflect.TypeOf(state.Bucket{}).Size(), perRelease, snap, releases)
	runtime.KeepAlive(cp)
	if perRelease > 16<<10 {
		t.Errorf("history takes %d B per release", perRelease)
	}
}

// TestHistorySnapshotRecords: a state with history goes through a
// snapshot unchanged; malformed history records are refused.
func TestHistorySnapshotRecords(t *testing.T) {
	g := goldenState()
	got, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, g)))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.App(app).History, g.App(app).History) || got.App(app).HistoryAt != g.App(app).HistoryAt {
		t.Fatalf("history after the round trip: %v", got.App(app).History)
	}
	bad := map[string]string{
		"no buckets":           `{"app":"com.example.app","version":"1.1.0","buckets":[]}`,
		"unaligned hour":       `{"app":"com.example.app","version":"1.1.0","buckets":[{"hour":5}]}`,
		"out of order":         `{"app":"com.example.app","version":"1.1.0","buckets":[{"hour":7200000},{"hour":3600000}]}`,
		"negative":             `{"app":"com.example.app","version":"1.1.0","buckets":[{"hour":0,"installs":-1}]}`,
		"unknown release":      `{"app":"com.example.app","version":"9.9.9","buckets":[{"hour":0,"installs":1}]}`,
		"duplicate release":    `{"app":"com.example.app","version":"1.0.0","buckets":[{"hour":0,"installs":1}]}`,
		"unknown field":        `{"app":"com.example.app","version":"1.1.0","buckets":[{"hour":0,"x":1}]}`,
		"time: zero":           `at:{"app":"com.example.app","at":0}`,
		"time: duplicate":      `at:{"app":"com.example.app","at":5}`,
		"time: unknown app":    `at:{"app":"com.nope","at":5}`,
		"history: unknown app": `{"app":"com.nope","version":"1.1.0","buckets":[{"hour":0}]}`,
	}
	for name, payload := range bad {
		t.Run(name, func(t *testing.T) {
			typ, p := recordHistory, []byte(payload)
			if q, ok := bytes.CutPrefix(p, []byte("at:")); ok {
				typ, p = recordHistoryAt, q
			}
			sr := &snapshotReader{s: state.Empty()}
			for _, rec := range [][]byte{[]byte(`{"id":"com.example.app"}`)} {
				if err := sr.apply(recordApp, rec); err != nil {
					t.Fatal(err)
				}
			}
			for _, v := range []string{"1.0.0", "1.1.0"} {
				if err := sr.apply(recordRelease, []byte(`{"app":"com.example.app","version":"`+v+`","zip_cid":"z","zip_size":1,"checksum":"c","created_at":1}`)); err != nil {
					t.Fatal(err)
				}
			}
			_ = sr.apply(recordHistory, []byte(`{"app":"com.example.app","version":"1.0.0","buckets":[{"hour":0,"installs":1}]}`))
			_ = sr.apply(recordHistoryAt, []byte(`{"app":"com.example.app","at":5}`))
			if err := sr.apply(typ, p); err == nil {
				t.Fatalf("record accepted: %s", payload)
			}
		})
	}
}

// TestNodeFeatures: nodes announce features (an IgnoreUnknown entry);
// a proposer sees when every node has one; a removed node's go along.
func TestNodeFeatures(t *testing.T) {
	const h = state.FeatureStatsHistory
	h0 := newHarness(t, NodeSet{Node: state.NodeInfo{ID: "A"}}, NodeSet{Node: state.NodeInfo{ID: "B"}})
	steps := []struct {
		cmd      Command
		code     string
		allA     bool // AllHaveFeature("A", h) after it
		featureB []string
	}{
		{cmd: NodeFeatures{Node: "A", Features: []string{h}}, allA: false},
		{cmd: NodeFeatures{Node: "B", Features: []string{"x", h, "x"}}, allA: true, featureB: []string{h, "x"}},
		{cmd: NodeSet{Node: state.NodeInfo{ID: "C"}}, allA: false, featureB: []string{h, "x"}},
		{cmd: NodeDelete{ID: "C"}, allA: true, featureB: []string{h, "x"}},
		{cmd: NodeFeatures{Node: "B", Features: nil}, allA: false, featureB: []string{}},
		{cmd: NodeDelete{ID: "B"}, allA: true},
		{cmd: NodeFeatures{Node: "", Features: []string{h}}, code: CodeInvalid, allA: true},
		{cmd: NodeFeatures{Node: "A", Features: []string{""}}, code: CodeInvalid, allA: true},
	}
	for i, st := range steps {
		s, err := h0.apply(st.cmd)
		var ce *Error
		if (st.code == "") != (err == nil) || (err != nil && (!errors.As(err, &ce) || ce.Code != st.code)) {
			t.Fatalf("step %d %T: %v, want code %q", i, st.cmd, err, st.code)
		}
		s = h0.f.State()
		if got := s.AllHaveFeature("A", h); got != st.allA {
			t.Errorf("step %d: AllHaveFeature = %v", i, got)
		}
		if got := s.ClusterInfo().Features["B"]; !slices.Equal(got, st.featureB) {
			t.Errorf("step %d: B has %q, want %q", i, got, st.featureB)
		}
	}
	// An older build skips the entry: the IgnoreUnknown bit is set.
	b, _ := Encode(NodeFeatures{Node: "A"})
	if CommandType(b[0])&IgnoreUnknown == 0 {
		t.Fatal("NodeFeatures is written without IgnoreUnknown")
	}
}
