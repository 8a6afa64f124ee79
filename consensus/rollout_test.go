package consensus

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"mirrord/consensus/state"
)

var policy = &state.HaltPolicy{FailureRate: 0.2, MinEvents: 50, Confidence: 0.95, Action: state.HaltPause}

func rolloutOf(t *testing.T, s *state.State) *state.Rollout {
	t.Helper()
	r := channel(t, s, "production").Rollout
	if r == nil {
		t.Fatal("no rollout")
	}
	return r
}

func TestApplyRollouts(t *testing.T) {
	started := append(slices.Clone(base), RolloutStart{App: app, Channel: "production", Version: "1.1.0",
		BasisPoints: 1000, Policy: policy, Baseline: state.Tally{Installs: 2}, At: 100})
	halted := append(slices.Clone(started), RolloutHalt{App: app, Channel: "production",
		RolloutID: "com.example.app/production/1.1.0#1", Halt: state.Halt{Action: "pause", Reason: "r", At: 200}})
	runFSMCases(t, []fsmCase{
		{name: "start", setup: base, cmd: started[len(started)-1],
			check: func(t *testing.T, s *state.State) {
				r := rolloutOf(t, s)
				if r.ID != "com.example.app/production/1.1.0#1" || r.BasisPoints != 1000 || r.State != state.RolloutActive ||
					r.Policy == nil || r.Baseline.Installs != 2 || r.StartedAt != 100 {
					t.Fatalf("rollout %+v", r)
				}
				if channel(t, s, "production").Version != "1.0.0" {
					t.Fatal("start changed the stable version")
				}
			}},
		{name: "start twice", setup: started, cmd: RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 1},
			code: CodeConflict, msg: "promote or abort"},
		{name: "start on served version", setup: base, cmd: RolloutStart{App: app, Channel: "production", Version: "1.0.0", BasisPoints: 1},
			code: CodeConflict},
		{name: "start unknown release", setup: base, cmd: RolloutStart{App: app, Channel: "production", Version: "9.9.9", BasisPoints: 1},
			code: CodeNotFound},
		{name: "start unknown channel", setup: base, cmd: RolloutStart{App: app, Channel: "beta", Version: "1.1.0", BasisPoints: 1},
			code: CodeNotFound},
		{name: "start too many basis points", setup: base, cmd: RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 10001},
			code: CodeInvalid},
		{name: "start bad policy", setup: base, cmd: RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 1,
			Policy: &state.HaltPolicy{FailureRate: 1.5, MinEvents: 1, Confidence: 0.9, Action: "pause"}},
			code: CodeInvalid, msg: "failure rate"},
		{name: "set percent", setup: started, cmd: RolloutUpdate{App: app, Channel: "production", BasisPoints: ptr(5000), At: 150},
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.BasisPoints != 5000 || r.Policy == nil || r.UpdatedAt != 150 {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "set without rollout", setup: base, cmd: RolloutUpdate{App: app, Channel: "production", BasisPoints: ptr(5)},
			code: CodeNotFound, msg: "no rollout"},
		{name: "pause", setup: started, cmd: RolloutControl{App: app, Channel: "production", Action: "pause"},
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.State != state.RolloutPaused {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "promote", setup: started, cmd: RolloutControl{App: app, Channel: "production", Action: "promote"},
			check: func(t *testing.T, s *state.State) {
				c := channel(t, s, "production")
				if c.Version != "1.1.0" || c.Rollout.State != state.RolloutPromoted || !slices.Equal(c.History, []string{"1.0.0"}) {
					t.Fatalf("channel %+v rollout %+v", c, c.Rollout)
				}
			}},
		{name: "abort", setup: started, cmd: RolloutControl{App: app, Channel: "production", Action: "abort"},
			check: func(t *testing.T, s *state.State) {
				c := channel(t, s, "production")
				if c.Version != "1.0.0" || c.Rollout.State != state.RolloutAborted || c.Rollout.Live() {
					t.Fatalf("channel %+v rollout %+v", c, c.Rollout)
				}
			}},
		{name: "bad action", setup: started, cmd: RolloutControl{App: app, Channel: "production", Action: "explode"},
			code: CodeInvalid},
		{name: "restart after abort gets a new id", setup: append(slices.Clone(started),
			RolloutControl{App: app, Channel: "production", Action: "abort"}),
			cmd: RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 1},
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.ID != "com.example.app/production/1.1.0#2" || r.State != state.RolloutActive {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "halt", setup: started, cmd: halted[len(halted)-1],
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.State != state.RolloutPaused || r.Halt == nil || r.Halt.Reason != "r" {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "halt with abort", setup: started, cmd: RolloutHalt{App: app, Channel: "production",
			RolloutID: "com.example.app/production/1.1.0#1", Halt: state.Halt{Action: "abort"}},
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.State != state.RolloutAborted {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "halt of another rollout", setup: started, cmd: RolloutHalt{App: app, Channel: "production",
			RolloutID: "com.example.app/production/1.1.0#0", Halt: state.Halt{Action: "pause"}},
			code: CodeConflict},
		{name: "halt twice", setup: halted, cmd: halted[len(halted)-1], code: CodeConflict},
		{name: "resume clears the halt and rebases", setup: halted,
			cmd: RolloutControl{App: app, Channel: "production", Action: "resume", Baseline: state.Tally{Installs: 7, Failures: 9}},
			check: func(t *testing.T, s *state.State) {
				if r := rolloutOf(t, s); r.State != state.RolloutActive || r.Halt != nil || r.Baseline.Failures != 9 {
					t.Fatalf("rollout %+v", r)
				}
			}},
		{name: "delete a rolled-out release", setup: started, cmd: ReleaseDelete{App: app, Version: "1.1.0"},
			code: CodeConflict, msg: "rolled out"},
	})
}

func TestApplyDevicesSet(t *testing.T) {
	withBeta := append(slices.Clone(base), ChannelSet{App: app, Name: "beta"},
		DeviceSet{App: app, DeviceID: "gone", Channel: "beta"})
	runFSMCases(t, []fsmCase{
		{name: "bulk", setup: withBeta, cmd: DevicesSet{App: app, Devices: []state.DeviceEntry{
			{DeviceID: "A", Channel: "beta"}, {DeviceID: "b", Version: "1.1.0"},
			{DeviceID: "c", Channel: "beta", Version: "builtin"}, {DeviceID: "GONE", Remove: true},
			{DeviceID: "never-set", Remove: true}}},
			check: func(t *testing.T, s *state.State) {
				d := s.App(app).Devices
				if len(d) != 3 || d["a"].Channel != "beta" || d["b"].Version != "1.1.0" || d["c"].Version != "builtin" {
					t.Fatalf("devices %v", d)
				}
			}},
		{name: "all or nothing", setup: withBeta, cmd: DevicesSet{App: app, Devices: []state.DeviceEntry{
			{DeviceID: "a", Channel: "beta"}, {DeviceID: "b", Version: "9.9.9"}}},
			code: CodeInvalid, msg: `device 2 ("b")`},
		{name: "empty entry", setup: base, cmd: DevicesSet{App: app, Devices: []state.DeviceEntry{{DeviceID: "a"}}},
			code: CodeInvalid, msg: "neither"},
		{name: "nothing", setup: base, cmd: DevicesSet{App: app}, code: CodeInvalid},
		{name: "delete a pinned release", setup: append(slices.Clone(base),
			DevicesSet{App: app, Devices: []state.DeviceEntry{{DeviceID: "a", Version: "1.1.0"}}}),
			cmd: ReleaseDelete{App: app, Version: "1.1.0"}, code: CodeConflict, msg: "pinned"},
	})
}

func TestApplyStatsReport(t *testing.T) {
	h := newHarness(t, base...)
	report := func(node string, seq uint64, installs int64, fails map[string]int64) {
		t.Helper()
		if _, err := h.apply(StatsReport{Node: node, Releases: []state.ReleaseCounters{
			{App: app, Version: "1.1.0", Counters: state.Counters{Seq: seq, Installs: installs, Failures: fails}},
			{App: app, Version: "7.7.7", Counters: state.Counters{Seq: seq, Installs: 1}},
			{App: "com.other", Version: "1.1.0", Counters: state.Counters{Seq: seq, Installs: 1}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	report("A", 1, 5, map[string]int64{"update_fail": 2})
	report("B", 1, 3, nil)
	report("A", 2, 6, map[string]int64{"update_fail": 3, "app_launch_timeout": 1})
	report("A", 1, 100, nil) // replayed old report: ignored
	a := h.f.State().App(app)
	if got := a.Tally("1.1.0"); got != (state.Tally{Installs: 9, Failures: 4}) {
		t.Fatalf("tally %+v", got)
	}
	if len(a.Stats) != 1 || a.Stats["7.7.7"] != nil {
		t.Fatalf("stats for unknown releases kept: %v", a.Stats)
	}
	sum := a.ReleaseStats("1.1.0")
	if sum.Installs != 9 || sum.Failures["update_fail"] != 3 || sum.Failures["app_launch_timeout"] != 1 {
		t.Fatalf("sum %+v", sum)
	}
	// The counters survive a snapshot and go with the release.
	s2, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, h.f.State())))
	if err != nil {
		t.Fatal(err)
	}
	if s2.App(app).Tally("1.1.0") != a.Tally("1.1.0") {
		t.Fatal("snapshot lost the counters")
	}
	if _, err := h.apply(ReleaseDelete{App: app, Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	if h.f.State().App(app).Stats["1.1.0"] != nil {
		t.Fatal("counters of a deleted release kept")
	}
}

func TestHaltPolicyEvaluate(t *testing.T) {
	p := state.HaltPolicy{FailureRate: 0.2, MinEvents: 50, Confidence: 0.95, Action: "pause"}
	for _, tc := range []struct {
		name string
		t    state.Tally
		halt bool
	}{
		{"nothing yet", state.Tally{}, false},
		{"below the minimum", state.Tally{Installs: 0, Failures: 49}, false},
		{"all failing at the minimum", state.Tally{Installs: 0, Failures: 50}, true},
		{"rate above but bound below", state.Tally{Installs: 38, Failures: 12}, false}, // 24%, lower ~14%
		{"clearly above", state.Tally{Installs: 60, Failures: 40}, true},               // 40%, lower ~31%
		{"at the threshold", state.Tally{Installs: 800, Failures: 200}, false},
		{"healthy", state.Tally{Installs: 1000, Failures: 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := p.Evaluate(tc.t)
			if (h != nil) != tc.halt {
				t.Fatalf("Evaluate(%+v) = %+v, want halt %v", tc.t, h, tc.halt)
			}
			if h != nil && (h.Lower <= p.FailureRate || h.Action != "pause" || h.Tally != tc.t) {
				t.Fatalf("halt %+v", h)
			}
		})
	}
}

// TestWilsonLower checks the bound against values computed
// independently with Python's statistics.NormalDist.
func TestWilsonLower(t *testing.T) {
	for _, tc := range []struct {
		k, n int64
		conf float64
		want float64
	}{
		{40, 100, 0.95, 0.309401},
		{12, 50, 0.95, 0.142974},
		{50, 50, 0.95, 0.928652},
		{0, 10, 0.95, 0},
		{5, 20, 0.90, 0.127377},
		{200, 1000, 0.95, 0.176377},
	} {
		if got := state.WilsonLower(tc.k, tc.n, tc.conf); math.Abs(got-tc.want) > 1e-5 {
			t.Errorf("WilsonLower(%d, %d, %v) = %.6f, want %.6f", tc.k, tc.n, tc.conf, got, tc.want)
		}
	}
}
