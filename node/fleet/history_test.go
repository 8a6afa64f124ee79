package fleet

import (
	"context"
	"reflect"
	"testing"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// TestFleetHistory: reports land in the hour of the reporting node's
// clock, each count once, a lost answer or a refused report included.
func TestFleetHistory(t *testing.T) {
	l := newFSMLog(t, fleetSetup()...)
	h0 := time.UnixMilli(state.HourOf(1_700_000_000_000))
	clock := h0.Add(10 * time.Minute)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply, Now: func() time.Time { return clock }})
	g := New(Config{Node: "B", State: l.fsm.State, Apply: l.Apply, Now: func() time.Time { return clock.Add(time.Second) }})
	ctx := context.Background()
	report := func(x *Fleet) {
		t.Helper()
		if err := x.Report(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Hour 0: A answers 3 checks, 2 installs; B one failure.
	for range 3 {
		f.CountCheck(fleetApp, "1.0.0", newDevice())
	}
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	g.CountEvent(fleetApp, "1.0.0", "update_fail", checkedIn(g, "1.0.0"))
	report(f)
	report(g)

	// Hour 1: a report commits but its answer is lost; the retry in hour 2
	// carries only what is new.
	clock = h0.Add(70 * time.Minute)
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	l.lose = true
	if err := f.Report(ctx); err == nil {
		t.Fatal("lost answer not reported")
	}
	clock = h0.Add(130 * time.Minute)
	f.CountEvent(fleetApp, "1.0.0", "download_complete", checkedIn(f, "1.0.0"))
	report(f)

	// Hour 3: a refused report's counts go with the next one.
	clock = h0.Add(190 * time.Minute)
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	l.refuse = true
	if err := f.Report(ctx); err == nil {
		t.Fatal("refused report not reported")
	}
	report(f)

	hr := func(n int64) int64 { return h0.UnixMilli() + n*state.HistoryBucketMillis }
	want := []state.Bucket{
		{Hour: hr(0), Offered: 3, Installs: 2, Failures: 1},
		{Hour: hr(1), Installs: 1},
		{Hour: hr(2), Downloads: 1},
		{Hour: hr(3), Installs: 1},
	}
	a := l.fsm.State().App(fleetApp)
	if got := a.History["1.0.0"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("history\n%+v\nwant\n%+v", got, want)
	}
	if a.HistoryAt != clock.UnixMilli() {
		t.Fatalf("history time %d, want %d", a.HistoryAt, clock.UnixMilli())
	}
	// The buckets add up to the counters.
	var sum state.Bucket
	for _, b := range a.History["1.0.0"] {
		sum.Add(b)
	}
	c := a.ReleaseStats("1.0.0")
	if sum.Offered != c.Offered || sum.Installs != c.Installs || sum.Downloads != c.Downloads || sum.Failures != c.FailureTotal() {
		t.Fatalf("buckets sum to %+v, counters %+v", sum, c)
	}
}

// TestFleetHistoryWaitsForEveryNode: while a node of the cluster has not
// announced that it applies StatsReportAt (an older build in a rolling
// upgrade), fleets write StatsReport: counters, no history. Once it is
// gone (or announces), the history starts.
func TestFleetHistoryWaitsForEveryNode(t *testing.T) {
	setup := append(fleetSetup(),
		consensus.NodeSet{Node: state.NodeInfo{ID: "A"}}, consensus.NodeSet{Node: state.NodeInfo{ID: "old"}})
	l := newFSMLog(t, setup...)
	clock := time.UnixMilli(state.HourOf(1_700_000_000_000))
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply, Now: func() time.Time { return clock }})
	ctx := context.Background()
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	s := l.fsm.State()
	if !s.ClusterInfo().HasFeature("A", state.FeatureStatsHistory) || s.AllHaveFeature("A", state.FeatureStatsHistory) {
		t.Fatalf("features %v", s.ClusterInfo().Features)
	}
	if a := s.App(fleetApp); a.Tally("1.0.0").Installs != 1 || a.History != nil {
		t.Fatalf("with an old node: tally %+v, history %v", a.Tally("1.0.0"), a.History)
	}
	if _, err := l.Apply(ctx, consensus.NodeDelete{ID: "old"}); err != nil {
		t.Fatal(err)
	}
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	a := l.fsm.State().App(fleetApp)
	want := []state.Bucket{{Hour: clock.UnixMilli(), Installs: 2}}
	if a.Tally("1.0.0").Installs != 3 || !reflect.DeepEqual(a.History["1.0.0"], want) {
		t.Fatalf("after the old node left: tally %+v, history %+v", a.Tally("1.0.0"), a.History)
	}
}
