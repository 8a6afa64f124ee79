package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// fsmLog applies commands to a real FSM as consecutive log entries.
type fsmLog struct {
	mu    sync.Mutex
	fsm   *consensus.FSM
	index uint64
	// lose makes the next Apply commit but report an error, as a
	// forwarded write whose answer times out.
	lose bool
	// refuse makes the next Apply fail without committing.
	refuse bool
}

func newFSMLog(t *testing.T, setup ...consensus.Command) *fsmLog {
	l := &fsmLog{fsm: consensus.NewFSM(nil)}
	for _, c := range setup {
		if _, err := l.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func (l *fsmLog) Apply(_ context.Context, cmd consensus.Command) (any, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refuse {
		l.refuse = false
		return nil, errors.New("no quorum")
	}
	b, err := consensus.Encode(cmd)
	if err != nil {
		return nil, err
	}
	l.index++
	resp := l.fsm.Apply(&raft.Log{Index: l.index, Type: raft.LogCommand, Data: b})
	if e, ok := resp.(*consensus.Error); ok {
		return nil, e
	}
	if l.lose {
		l.lose = false
		return nil, context.DeadlineExceeded
	}
	return resp, nil
}

const fleetApp = "com.example.app"

var devices atomic.Int64

// newDevice returns a device id no test used before.
func newDevice() string { return fmt.Sprintf("dev-%d", devices.Add(1)) }

// checkedIn returns a new device that f answered version, as an update
// check would, without counting the check (the tests count checks where
// they mean to): a stats event of it counts (Fleet.CountEvent).
func checkedIn(f *Fleet, version string) string {
	d := newDevice()
	f.mu.Lock()
	f.remember(releaseKey{fleetApp, version}, f.hash(d))
	f.mu.Unlock()
	return d
}

func fleetSetup() []consensus.Command {
	return []consensus.Command{
		consensus.AppCreate{ID: fleetApp},
		consensus.ReleaseCreate{Release: state.Release{App: fleetApp, Version: "1.0.0", ZipCID: "z", Checksum: "c"}, Channel: "production"},
	}
}

func TestFleetCountsAndReports(t *testing.T) {
	l := newFSMLog(t, fleetSetup()...)
	clock := time.Unix(1700000000, 0)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply,
		Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }})
	ctx := context.Background()
	tally := func() state.Tally { return l.fsm.State().App(fleetApp).Tally("1.0.0") }

	f.CountCheck(fleetApp, "1.0.0", newDevice())
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0", "update_fail", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0:js/app.js", "download_manifest_file_fail", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0", "app_launch_timeout", checkedIn(f, "1.0.0"))
	f.CountEvent(fleetApp, "1.0.0", "app_moved_to_foreground", checkedIn(f, "1.0.0")) // not counted
	f.CountEvent(fleetApp, "9.9.9", "set", "never-checked-in")                        // not a release
	f.CountEvent("com.other", "1.0.0", "set", "never-checked-in")                     // not an app
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	c := l.fsm.State().App(fleetApp).Stats["1.0.0"]["A"]
	if c.Offered != 1 || c.Installs != 1 || c.FailureTotal() != 3 || c.Failures["download_manifest_file_fail"] != 1 {
		t.Fatalf("counters %+v", c)
	}
	if len(l.fsm.State().App(fleetApp).Stats) != 1 {
		t.Fatal("counted an unknown release")
	}

	// Nothing new: no entry.
	before := l.index
	if err := f.Report(ctx); err != nil || l.index != before {
		t.Fatalf("empty report wrote an entry: %v", err)
	}

	// A report whose answer is lost but which committed: the next one
	// must not count its events twice.
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	l.lose = true
	if err := f.Report(ctx); err == nil {
		t.Fatal("lost answer not reported")
	}
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tally(); got.Installs != 3 || got.Failures != 3 {
		t.Fatalf("after a lost answer: %+v, want 3 installs", got)
	}

	// A report that never committed: its counts go with the next one.
	f.CountEvent(fleetApp, "1.0.0", "set", checkedIn(f, "1.0.0"))
	l.refuse = true
	if err := f.Report(ctx); err == nil {
		t.Fatal("refused report not reported")
	}
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tally(); got.Installs != 4 {
		t.Fatalf("after a refused report: %+v, want 4 installs", got)
	}

	// Another node's counts add up cluster-wide.
	g := New(Config{Node: "B", State: l.fsm.State, Apply: l.Apply})
	g.CountEvent(fleetApp, "1.0.0", "update_fail", checkedIn(g, "1.0.0"))
	if err := g.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tally(); got.Installs != 4 || got.Failures != 4 {
		t.Fatalf("cluster tally %+v", got)
	}
}

func TestFleetBoundsFailureKinds(t *testing.T) {
	l := newFSMLog(t, fleetSetup()...)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply})
	for i := range state.MaxFailureKinds + 10 {
		f.CountEvent(fleetApp, "1.0.0", "kind"+string(rune('a'+i%26))+string(rune('a'+i/26))+"_fail", checkedIn(f, "1.0.0"))
	}
	if err := f.Report(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := l.fsm.State().App(fleetApp).Stats["1.0.0"]["A"]
	if len(c.Failures) != state.MaxFailureKinds+1 || c.Failures[state.OtherFailure] != 10 || c.FailureTotal() != int64(state.MaxFailureKinds+10) {
		t.Fatalf("%d kinds, other %d", len(c.Failures), c.Failures[state.OtherFailure])
	}
}

func TestRolloutGuardHalts(t *testing.T) {
	setup := append(fleetSetup(),
		consensus.ReleaseCreate{Release: state.Release{App: fleetApp, Version: "1.1.0", ZipCID: "z2", Checksum: "c"}},
		consensus.RolloutStart{App: fleetApp, Channel: "production", Version: "1.1.0", BasisPoints: 5000,
			Policy: &state.HaltPolicy{FailureRate: 0.2, MinEvents: 50, Confidence: 0.95, Action: state.HaltPause}})
	l := newFSMLog(t, setup...)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply})
	g := NewRolloutGuard(GuardConfig{State: l.fsm.State, Apply: l.Apply, IsLeader: func() bool { return true }})
	ctx := context.Background()
	for range 30 {
		f.CountEvent(fleetApp, "1.1.0", "set", checkedIn(f, "1.1.0"))
	}
	for range 19 {
		f.CountEvent(fleetApp, "1.1.0", "update_fail", checkedIn(f, "1.1.0"))
	}
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if h := g.Check(ctx); len(h) != 0 {
		t.Fatalf("halted below the minimum sample: %+v", h)
	}
	f.CountEvent(fleetApp, "1.1.0", "update_fail", checkedIn(f, "1.1.0"))
	f.CountEvent(fleetApp, "1.0.0", "update_fail", checkedIn(f, "1.0.0")) // the stable release does not count
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	h := g.Check(ctx)
	if len(h) != 1 || h[0].Halt.Tally != (state.Tally{Installs: 30, Failures: 20}) {
		t.Fatalf("halts %+v", h)
	}
	r := l.fsm.State().App(fleetApp).Channels["production"].Rollout
	if r.State != state.RolloutPaused || r.Halt == nil || r.Halt.Lower <= 0.2 {
		t.Fatalf("rollout %+v", r)
	}
	if h := g.Check(ctx); len(h) != 0 {
		t.Fatal("halted twice")
	}
}
