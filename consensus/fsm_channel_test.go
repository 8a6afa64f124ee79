package consensus

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"mirrord/consensus/state"
)

func TestApplyChannelSet(t *testing.T) {
	var long []Command
	long = append(long, base[0])
	for i := range state.MaxHistory + 5 {
		long = append(long, ReleaseCreate{Release: release(fmt.Sprintf("1.0.%d", i), int64(i)), Channel: "production"})
	}
	runFSMCases(t, []fsmCase{
		{name: "create first channel", setup: base[:1],
			cmd: ChannelSet{App: app, Name: "production", CreatedAt: 99, ChannelPatch: state.ChannelPatch{Version: ptr("builtin")}},
			check: func(t *testing.T, s *state.State) {
				want := state.NewChannel("production")
				want.ID, want.Version, want.Public, want.CreatedAt = 1, "builtin", true, 99
				if got := channel(t, s, "production"); !reflect.DeepEqual(*got, want) {
					t.Fatalf("channel\n got %+v\nwant %+v", *got, want)
				}
			}},
		{name: "create first channel explicitly private", setup: base[:1],
			cmd: ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Public: ptr(false)}},
			check: func(t *testing.T, s *state.State) {
				if c := channel(t, s, "production"); c.Public || c.Version != "" {
					t.Fatalf("channel %+v", c)
				}
			}},
		{name: "create second channel", setup: base,
			cmd: ChannelSet{App: app, Name: "beta", CreatedAt: 5},
			check: func(t *testing.T, s *state.State) {
				if c := channel(t, s, "beta"); c.Public || c.ID != 2 || c.CreatedAt != 5 {
					t.Fatalf("beta %+v", c)
				}
			}},
		{name: "every field", setup: base,
			cmd: ChannelSet{App: app, Name: "production", CreatedAt: 1000, ChannelPatch: state.ChannelPatch{
				Version: ptr("1.1.0"), Public: ptr(false), IOS: ptr(false), Android: ptr(false),
				Electron: ptr(false), AllowEmulator: ptr(false), AllowDevice: ptr(false),
				AllowDev: ptr(false), AllowProd: ptr(false), AllowDeviceSelfSet: ptr(true),
				DisableAutoUpdate: ptr("none"), DisableAutoUpdateUnderNative: ptr(false),
			}},
			check: func(t *testing.T, s *state.State) {
				want := state.Channel{ID: 1, Name: "production", Version: "1.1.0",
					History: []string{"1.0.0"}, AllowDeviceSelfSet: true,
					DisableAutoUpdate: "none", CreatedAt: 10}
				if got := channel(t, s, "production"); !reflect.DeepEqual(*got, want) {
					t.Fatalf("channel\n got %+v\nwant %+v", *got, want)
				}
			}},
		{name: "same version keeps history", setup: base,
			cmd: ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Version: ptr("1.0.0")}},
			check: func(t *testing.T, s *state.State) {
				if h := channel(t, s, "production").History; h != nil {
					t.Fatalf("history %v", h)
				}
			}},
		{name: "history is capped", setup: long,
			cmd: ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Version: ptr("builtin")}},
			check: func(t *testing.T, s *state.State) {
				h := channel(t, s, "production").History
				if len(h) != state.MaxHistory || h[len(h)-1] != fmt.Sprintf("1.0.%d", state.MaxHistory+4) ||
					h[0] != "1.0.5" {
					t.Fatalf("history (%d) %v", len(h), h)
				}
			}},
		{name: "unknown version", setup: base, cmd: ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Version: ptr("9.9.9")}},
			code: CodeNotFound, msg: `release "9.9.9"`},
		{name: "empty version", setup: base, cmd: ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Version: ptr("")}},
			code: CodeInvalid},
		{name: "bad disable_auto_update", setup: base,
			cmd:  ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{DisableAutoUpdate: ptr("sometimes")}},
			code: CodeInvalid, msg: "disable_auto_update"},
		{name: "unknown version does not create the channel", setup: base,
			cmd: ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("9.9.9")}}, code: CodeNotFound},
		{name: "unknown app", cmd: ChannelSet{App: app, Name: "production"}, code: CodeNotFound},
		{name: "empty name", setup: base, cmd: ChannelSet{App: app}, code: CodeInvalid},
	})
	for _, v := range []string{"major", "minor", "patch", "version_number", "none"} {
		h := newHarness(t, base...)
		s, err := h.apply(ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{DisableAutoUpdate: ptr(v)}})
		if err != nil || channel(t, s, "production").DisableAutoUpdate != v {
			t.Errorf("disable_auto_update %q: %v", v, err)
		}
	}
}

func TestApplyChannelRollback(t *testing.T) {
	twice := append(slices.Clone(base),
		ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
		ChannelSet{App: app, Name: "production", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}},
	)
	runFSMCases(t, []fsmCase{
		{name: "pops the last version", setup: twice,
			cmd: ChannelRollback{App: app, Name: "production"},
			check: func(t *testing.T, s *state.State) {
				c := channel(t, s, "production")
				if c.Version != "2.0.0" || !slices.Equal(c.History, []string{"1.0.0"}) {
					t.Fatalf("production %+v", c)
				}
			}},
		{name: "no history", setup: base, cmd: ChannelRollback{App: app, Name: "production"},
			code: CodeConflict, msg: "no previous release to roll back to"},
		{name: "unknown channel", setup: base, cmd: ChannelRollback{App: app, Name: "beta"}, code: CodeNotFound},
		{name: "unknown app", cmd: ChannelRollback{App: app, Name: "beta"}, code: CodeNotFound},
	})

	// Rolling back all the way empties History, then fails.
	h := newHarness(t, twice...)
	for _, want := range []string{"2.0.0", "1.0.0"} {
		s, err := h.apply(ChannelRollback{App: app, Name: "production"})
		if err != nil || channel(t, s, "production").Version != want {
			t.Fatalf("rollback to %s: %v", want, err)
		}
	}
	if h := channel(t, h.f.State(), "production").History; h != nil {
		t.Errorf("history %v, want nil", h)
	}
	if _, err := h.apply(ChannelRollback{App: app, Name: "production"}); !errors.Is(err, ErrConflict) {
		t.Errorf("third rollback: %v", err)
	}
}

func TestApplyChannelDelete(t *testing.T) {
	setup := append(slices.Clone(base),
		ChannelSet{App: app, Name: "beta"},
		DeviceSet{App: app, DeviceID: "d1", Channel: "beta"},
		DeviceSet{App: app, DeviceID: "d2", Channel: "production"},
	)
	runFSMCases(t, []fsmCase{
		{name: "deletes its device overrides", setup: setup,
			cmd: ChannelDelete{App: app, Name: "beta"},
			check: func(t *testing.T, s *state.State) {
				a := s.App(app)
				if _, ok := a.Channels["beta"]; ok {
					t.Error("beta still there")
				}
				want := map[string]state.DeviceOverride{"d2": {Channel: "production"}}
				if !reflect.DeepEqual(a.Devices, want) {
					t.Errorf("devices %v", a.Devices)
				}
				if a.NextChannelID != 3 {
					t.Errorf("NextChannelID %d: ids must not be reused", a.NextChannelID)
				}
			}},
		{name: "unknown channel", setup: base, cmd: ChannelDelete{App: app, Name: "beta"}, code: CodeNotFound},
		{name: "unknown app", cmd: ChannelDelete{App: app, Name: "beta"}, code: CodeNotFound},
	})
}

func TestApplyDevices(t *testing.T) {
	withDevice := append(slices.Clone(base), DeviceSet{App: app, DeviceID: "D1", Channel: "production"})
	runFSMCases(t, []fsmCase{
		{name: "set lower-cases the id", setup: base,
			cmd: DeviceSet{App: app, DeviceID: "ABC-Def", Channel: "production"},
			check: func(t *testing.T, s *state.State) {
				if o, ok := s.App(app).Devices["abc-def"]; !ok || o.Channel != "production" {
					t.Fatalf("devices %v", s.App(app).Devices)
				}
			}},
		{name: "set overwrites", setup: append(slices.Clone(withDevice), ChannelSet{App: app, Name: "beta"}),
			cmd: DeviceSet{App: app, DeviceID: "d1", Channel: "beta"},
			check: func(t *testing.T, s *state.State) {
				if o := s.App(app).Devices["d1"]; o.Channel != "beta" {
					t.Fatalf("override %v", o)
				}
			}},
		{name: "set unknown channel", setup: base, cmd: DeviceSet{App: app, DeviceID: "d", Channel: "beta"},
			code: CodeNotFound, msg: "channel"},
		{name: "set empty id", setup: base, cmd: DeviceSet{App: app, Channel: "production"}, code: CodeInvalid},
		{name: "set unknown app", cmd: DeviceSet{App: app, DeviceID: "d", Channel: "x"}, code: CodeNotFound},
		{name: "unset", setup: withDevice, cmd: DeviceUnset{App: app, DeviceID: "d1"},
			check: func(t *testing.T, s *state.State) {
				if len(s.App(app).Devices) != 0 {
					t.Fatalf("devices %v", s.App(app).Devices)
				}
			}},
		{name: "unset none", setup: base, cmd: DeviceUnset{App: app, DeviceID: "d1"}, code: CodeNotFound},
		{name: "unset unknown app", cmd: DeviceUnset{App: app, DeviceID: "d1"}, code: CodeNotFound},
	})
}

// TestPublicChannelUniqueness checks that each platform has at most one
// public channel after every ChannelSet.
func TestPublicChannelUniqueness(t *testing.T) {
	f, tr := ptr(false), ptr(true)
	tests := []struct {
		name   string
		cmds   []ChannelSet
		public []string
	}{
		{"first channel is public, later ones not",
			[]ChannelSet{{Name: "a"}, {Name: "b"}}, []string{"a"}},
		{"explicitly private first channel",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{Public: f}}, {Name: "b"}}, nil},
		{"new public channel takes over",
			[]ChannelSet{{Name: "a"}, {Name: "b", ChannelPatch: state.ChannelPatch{Public: tr}}}, []string{"b"}},
		{"disjoint platforms coexist",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{Android: f, Electron: f}}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Electron: f, Public: tr}}},
			[]string{"a", "b"}},
		{"one shared platform is enough",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{Electron: f}}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Electron: f, Public: tr}}},
			[]string{"b"}},
		{"enabling a platform on a public channel",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{Android: f, Electron: f}}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Electron: f, Public: tr}},
				{Name: "b", ChannelPatch: state.ChannelPatch{IOS: tr}}},
			[]string{"b"}},
		{"one channel for all replaces several",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{Android: f, Electron: f}}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Electron: f, Public: tr}},
				{Name: "c", ChannelPatch: state.ChannelPatch{IOS: f, Android: f, Public: tr}}, {Name: "d", ChannelPatch: state.ChannelPatch{Public: tr}}},
			[]string{"d"}},
		{"electron only",
			[]ChannelSet{{Name: "a", ChannelPatch: state.ChannelPatch{IOS: f, Android: f}}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Android: f, Public: tr}}},
			[]string{"b"}},
		{"private update does not demote",
			[]ChannelSet{{Name: "a"}, {Name: "b", ChannelPatch: state.ChannelPatch{AllowDev: f}}}, []string{"a"}},
		{"unpublishing leaves none",
			[]ChannelSet{{Name: "a"}, {Name: "a", ChannelPatch: state.ChannelPatch{Public: f}}}, nil},
		{"a public channel without platforms demotes nobody",
			[]ChannelSet{{Name: "a"}, {Name: "b", ChannelPatch: state.ChannelPatch{IOS: f, Android: f, Electron: f, Public: tr}}},
			[]string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, base[0])
			for _, cmd := range tt.cmds {
				cmd.App = app
				if _, err := h.apply(cmd); err != nil {
					t.Fatalf("apply %+v: %v", cmd, err)
				}
				assertOnePublicPerPlatform(t, h.f.State().App(app))
			}
			var public []string
			a := h.f.State().App(app)
			for _, name := range a.ChannelNames() {
				if a.Channels[name].Public {
					public = append(public, name)
				}
			}
			if !slices.Equal(public, tt.public) {
				t.Errorf("public channels %v, want %v", public, tt.public)
			}
		})
	}
}

func assertOnePublicPerPlatform(t *testing.T, a *state.AppState) {
	t.Helper()
	for _, p := range []string{"ios", "android", "electron"} {
		var names []string
		for _, name := range a.ChannelNames() {
			if c := a.Channels[name]; c.Public && c.PlatformEnabled(p) {
				names = append(names, name)
			}
		}
		if len(names) > 1 {
			t.Errorf("platform %s has public channels %v", p, names)
		}
	}
}
