package resolver

import (
	"fmt"
	"testing"

	"mirrord/consensus/state"
)

const testRolloutID = "com.example.app/production/1.1.0#1"

// withRollout puts a rollout of 1.1.0 on production.
func withRollout(bp int, st string) func(*state.AppState) {
	return func(app *state.AppState) {
		app.Channels["production"].Rollout = &state.Rollout{
			ID: testRolloutID, Version: "1.1.0", BasisPoints: bp, State: st,
		}
	}
}

// deviceInCohort returns a device id whose slot is below (in) or at or
// above (out) bp.
func deviceInCohort(bp int, in bool) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if InCohort(id, testRolloutID, bp) == in {
			return id
		}
	}
}

func TestResolveTargeting(t *testing.T) {
	in, out := deviceInCohort(1000, true), deviceInCohort(1000, false)
	tests := []struct {
		name    string
		app     func(*state.AppState)
		device  string
		running string // version_name, "" for builtin
		want    string // version offered, or the error code
		source  string
	}{
		{"no rollout", nil, in, "", "1.0.1", SourceChannel},
		{"in the cohort", withRollout(1000, state.RolloutActive), in, "", "1.1.0", SourceRollout},
		{"outside the cohort", withRollout(1000, state.RolloutActive), out, "", "1.0.1", SourceChannel},
		{"on the stable release outside", withRollout(1000, state.RolloutActive), out, "1.0.1", CodeNoNewVersion, SourceChannel},
		{"100% takes everyone", withRollout(10000, state.RolloutActive), out, "", "1.1.0", SourceRollout},
		{"0% takes no one", withRollout(0, state.RolloutActive), in, "", "1.0.1", SourceChannel},
		{"already on it stays, active", withRollout(0, state.RolloutActive), out, "1.1.0", CodeNoNewVersion, SourceRolloutSticky},
		{"paused: new devices get stable", withRollout(10000, state.RolloutPaused), in, "", "1.0.1", SourceChannel},
		{"paused: devices on it stay", withRollout(10000, state.RolloutPaused), in, "1.1.0", CodeNoNewVersion, SourceRolloutSticky},
		{"aborted: back to stable", withRollout(10000, state.RolloutAborted), in, "1.1.0", "1.0.1", SourceChannel},
		{"promoted rollouts are ignored", withRollout(10000, state.RolloutPromoted), in, "", "1.0.1", SourceChannel},
		{"rollout of a missing release is ignored", all(withRollout(10000, state.RolloutActive),
			func(a *state.AppState) { delete(a.Releases, "1.1.0") }), in, "", "1.0.1", SourceChannel},
		{"pin wins over the rollout", all(withRollout(10000, state.RolloutActive),
			func(a *state.AppState) { a.Devices[in] = state.DeviceOverride{Version: "1.0.2"} }), in, "", "1.0.2", SourcePinned},
		{"pin to builtin", func(a *state.AppState) { a.Devices[in] = state.DeviceOverride{Version: "builtin"} },
			in, "1.0.1", CodeAlreadyOnBuiltin, SourcePinned},
		{"pin with a channel uses its gates", func(a *state.AppState) {
			a.Channels["beta"].AllowProd = false
			a.Devices[in] = state.DeviceOverride{Channel: "beta", Version: "1.0.2"}
		}, in, "", CodeDisableProdBuild, SourcePinned},
		{"override channel's rollout", func(a *state.AppState) {
			a.Devices[in] = state.DeviceOverride{Channel: "beta"}
			a.Channels["beta"].Rollout = &state.Rollout{ID: "b", Version: "1.0.2", BasisPoints: 10000, State: state.RolloutActive}
		}, in, "", "1.0.2", SourceRollout},
		{"rollout still gated", all(withRollout(10000, state.RolloutActive),
			func(a *state.AppState) { a.Channels["production"].AllowProd = false }), in, "", CodeDisableProdBuild, SourceRollout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp()
			if tt.app != nil {
				tt.app(app)
			}
			req := baseRequest()
			req.DeviceID = tt.device
			if tt.running != "" {
				req.VersionName = tt.running
			}
			d := Resolve(app, req)
			checkInvariants(t, d)
			got := d.Version
			if d.Error != "" {
				got = d.Error
			}
			if got != tt.want || d.Source != tt.source {
				t.Fatalf("Resolve = %+v, want %s from %s", d, tt.want, tt.source)
			}
			if (d.Source == SourceRollout || d.Source == SourceRolloutSticky) != (d.Rollout != "") {
				t.Fatalf("rollout id %q with source %s", d.Rollout, d.Source)
			}
		})
	}
}

// TestRolloutShare checks the end-to-end share through Resolve: at 10%
// of 100,000 devices, within one percentage point get the rollout.
func TestRolloutShare(t *testing.T) {
	app := newTestApp()
	withRollout(1000, state.RolloutActive)(app)
	req := baseRequest()
	n, got := 100000, 0
	for i := range n {
		req.DeviceID = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
		if Resolve(app, req).Version == "1.1.0" {
			got++
		}
	}
	if share := float64(got) / float64(n); share < 0.09 || share > 0.11 {
		t.Fatalf("%.4f of devices got the rollout, want 0.10±0.01", share)
	}
}

func TestChannelSelfRespectsPins(t *testing.T) {
	app := newTestApp()
	app.Devices[devA] = state.DeviceOverride{Version: "1.0.2"}
	req := baseRequest()
	req.PluginVersion = "5.0.0" // keeps no channel locally
	req.Channel = "beta"
	if a := ChannelSet(app, req); a.Body["error"] != CodeCannotOverride {
		t.Fatalf("set on a pinned device: %+v", a)
	}
	if a := ChannelDelete(app, req); a.Body["error"] != CodeCannotOverride {
		t.Fatalf("delete on a pinned device: %+v", a)
	}
}

// BenchmarkResolveTargeting times Resolve alone: a plain channel, then
// the same app with a rollout at 50% on the channel and 10,000 device
// overrides (a third of them pinned). The asking devices are not
// overridden; half are in the cohort.
func BenchmarkResolveTargeting(b *testing.B) {
	plain := newTestApp()
	targeted := newTestApp()
	withRollout(5000, state.RolloutActive)(targeted)
	for i := range 10000 {
		o := state.DeviceOverride{Channel: "beta"}
		if i%3 == 0 {
			o = state.DeviceOverride{Version: "1.0.2"}
		}
		targeted.Devices[fmt.Sprintf("dddddddd-0000-4000-8000-%012d", i)] = o
	}
	reqs := make([]Request, 1024)
	for i := range reqs {
		reqs[i] = baseRequest()
		reqs[i].DeviceID = fmt.Sprintf("eeeeeeee-0000-4000-8000-%012d", i)
	}
	for _, tc := range []struct {
		name string
		app  *state.AppState
	}{{"plain-channel", plain}, {"rollout-50pct+10k-overrides", targeted}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if d := Resolve(tc.app, reqs[i%len(reqs)]); d.Error != "" {
					b.Fatal(d.Error)
				}
			}
		})
	}
}
