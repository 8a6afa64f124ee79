package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

const app = "com.example.app"

// harness feeds commands to an FSM as committed log entries.
type harness struct {
	t     *testing.T
	f     *FSM
	index uint64
}

func newHarness(t *testing.T, setup ...Command) *harness {
	t.Helper()
	h := &harness{t: t, f: NewFSM(nil)}
	for _, cmd := range setup {
		if _, err := h.apply(cmd); err != nil {
			t.Fatalf("setup %T: %v", cmd, err)
		}
	}
	return h
}

// apply applies cmd at the next index and returns the new state or the
// business error.
func (h *harness) apply(cmd Command) (*state.State, error) {
	h.t.Helper()
	b, err := Encode(cmd)
	if err != nil {
		h.t.Fatalf("Encode(%T): %v", cmd, err)
	}
	h.index++
	resp := h.f.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: b})
	if got := h.f.State().Index; got != h.index {
		h.t.Fatalf("state index %d after applying entry %d", got, h.index)
	}
	switch r := resp.(type) {
	case *state.State:
		if r != h.f.State() {
			h.t.Fatal("response is not the published state")
		}
		return r, nil
	case *Error:
		return nil, r
	}
	h.t.Fatalf("unexpected response %T %v", resp, resp)
	return nil, nil
}

func release(version string, createdAt int64) state.Release {
	return state.Release{App: app, Version: version, ZipCID: "bafy-" + version,
		ZipSize: 100, Checksum: "sum-" + version, CreatedAt: createdAt}
}

// base is an app with releases 1.0.0 (on production, the first and so
// public channel) and 1.1.0 (on no channel).
var base = []Command{
	AppCreate{ID: app, CreatedAt: 1},
	ReleaseCreate{Release: release("1.0.0", 10), Channel: "production"},
	ReleaseCreate{Release: release("1.1.0", 20)},
}

func channel(t *testing.T, s *state.State, name string) *state.Channel {
	t.Helper()
	c := s.App(app).Channels[name]
	if c == nil {
		t.Fatalf("channel %q missing", name)
	}
	return c
}

type fsmCase struct {
	name  string
	setup []Command
	cmd   Command
	code  string // "" for success
	msg   string // substring of the error message
	check func(t *testing.T, s *state.State)
}

func runFSMCases(t *testing.T, cases []fsmCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.setup...)
			before := snapshotBytes(t, h.f.State())
			s, err := h.apply(tc.cmd)
			if tc.code != "" {
				var be *Error
				if !errors.As(err, &be) || be.Code != tc.code {
					t.Fatalf("got %v, want a %s error", err, tc.code)
				}
				if !strings.Contains(be.Msg, tc.msg) {
					t.Errorf("message %q does not contain %q", be.Msg, tc.msg)
				}
				// A rejected command changes nothing but the index.
				after := h.f.State()
				if after.Index != h.index {
					t.Errorf("index %d, want %d", after.Index, h.index)
				}
				if !bytes.Equal(snapshotBytes(t, after.WithIndex(h.index-1)), before) {
					t.Error("a rejected command changed the state")
				}
				return
			}
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func TestApplyAppCreate(t *testing.T) {
	runFSMCases(t, []fsmCase{
		{name: "ok", cmd: AppCreate{ID: app, PublicKey: "PEM", KeyID: "kid", CreatedAt: 7},
			check: func(t *testing.T, s *state.State) {
				a := s.App(app)
				want := state.App{ID: app, PublicKey: "PEM", KeyID: "kid", CreatedAt: 7}
				if a == nil || a.App != want || a.NextChannelID != 1 ||
					a.Channels == nil || a.Releases == nil || a.Devices == nil {
					t.Fatalf("app state %+v", a)
				}
			}},
		{name: "exists", setup: base, cmd: AppCreate{ID: app}, code: CodeConflict, msg: "already exists"},
		{name: "empty id", cmd: AppCreate{}, code: CodeInvalid, msg: "app id is empty"},
	})
}

func TestApplyAppDelete(t *testing.T) {
	const other = "com.other"
	// full has every kind of thing an app holds: releases, channels, a
	// finished rollout, device overrides and fleet counters; and a second
	// app that must not be touched.
	full := append(slices.Clone(base),
		ChannelSet{App: app, Name: "beta", Version: ptr("1.1.0")},
		RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 1000, At: 100},
		RolloutControl{App: app, Channel: "production", Action: state.ActionAbort, At: 110},
		DeviceSet{App: app, DeviceID: "d1", Channel: "beta"},
		DevicesSet{App: app, Devices: []state.DeviceEntry{{DeviceID: "d2", Version: "1.1.0"}}},
		StatsReport{Node: "A", Releases: []state.ReleaseCounters{{App: app, Version: "1.1.0", Counters: state.Counters{Seq: 1, Installs: 3}}}},
		AppCreate{ID: other, CreatedAt: 2},
		ReleaseCreate{Release: state.Release{App: other, Version: "1.0.0", ZipCID: "bafy-o", Checksum: "o", CreatedAt: 3}, Channel: "production"},
	)
	rolling := append(slices.Clone(base),
		RolloutStart{App: app, Channel: "production", Version: "1.1.0", BasisPoints: 1000, At: 100})
	paused := append(slices.Clone(rolling), RolloutControl{App: app, Channel: "production", Action: "pause", At: 110})
	gone := func(t *testing.T, s *state.State) {
		t.Helper()
		if s.App(app) != nil {
			t.Fatalf("app still there: %+v", s.App(app))
		}
	}
	runFSMCases(t, []fsmCase{
		{name: "empty app", setup: base[:1], cmd: AppDelete{ID: app},
			check: func(t *testing.T, s *state.State) {
				gone(t, s)
				if len(s.Apps) != 0 {
					t.Fatalf("apps %v", s.AppIDs())
				}
			}},
		{name: "device overrides only", setup: append(slices.Clone(base[:1]),
			DevicesSet{App: app, Devices: []state.DeviceEntry{{DeviceID: "d1", Version: state.Builtin}}}),
			cmd: AppDelete{ID: app}, check: gone},
		{name: "force removes everything", setup: full, cmd: AppDelete{ID: app, Force: true},
			check: func(t *testing.T, s *state.State) {
				gone(t, s)
				if o := s.App(other); o == nil || o.Releases["1.0.0"] == nil || o.Channels["production"] == nil {
					t.Fatalf("the other app was touched: %+v", o)
				}
			}},
		{name: "releases and channels", setup: full, cmd: AppDelete{ID: app},
			code: CodeConflict, msg: "still has 2 releases and 2 channels; delete with force"},
		{name: "one release, no channel", setup: append(slices.Clone(base[:1]), ReleaseCreate{Release: release("1.0.0", 10)}),
			cmd: AppDelete{ID: app}, code: CodeConflict, msg: "1 release and 0 channels"},
		{name: "active rollout, even with force", setup: rolling, cmd: AppDelete{ID: app, Force: true},
			code: CodeConflict, msg: `active rollout of 1.1.0 on channel "production"; abort or promote it first`},
		{name: "paused rollout", setup: paused, cmd: AppDelete{ID: app, Force: true},
			code: CodeConflict, msg: "paused rollout"},
		{name: "unknown app", setup: base, cmd: AppDelete{ID: other, Force: true}, code: CodeNotFound, msg: `app "com.other" not found`},
	})

	// Deleting leaves nothing behind: the state equals one where the app
	// never existed, and an app created again under the id starts empty.
	h := newHarness(t, full[len(full)-2:]...)
	never := snapshotBytes(t, h.f.State().WithIndex(0))
	h = newHarness(t, full...)
	s, err := h.apply(AppDelete{ID: app, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snapshotBytes(t, s.WithIndex(0)), never) {
		t.Error("the state after the delete differs from one without the app")
	}
	s, err = h.apply(AppCreate{ID: app, CreatedAt: 9})
	if err != nil {
		t.Fatal(err)
	}
	if a := s.App(app); len(a.Releases)+len(a.Channels)+len(a.Devices)+len(a.Stats) != 0 || a.NextChannelID != 1 {
		t.Fatalf("re-created app is not empty: %+v", a)
	}
}

func TestApplyReleaseCreate(t *testing.T) {
	bad := release("2.0.0", 30)
	bad.Manifest = []state.ManifestFile{{FileName: "a.js", CID: ""}}
	noZip := release("2.0.0", 30)
	noZip.ZipCID = ""
	otherApp := release("2.0.0", 30)
	otherApp.App = "com.other"
	runFSMCases(t, []fsmCase{
		{name: "no channel", setup: base, cmd: ReleaseCreate{Release: release("2.0.0", 30)},
			check: func(t *testing.T, s *state.State) {
				r := s.App(app).Releases["2.0.0"]
				if r == nil || !reflect.DeepEqual(*r, release("2.0.0", 30)) {
					t.Fatalf("release %+v", r)
				}
				if v := channel(t, s, "production").Version; v != "1.0.0" {
					t.Errorf("production moved to %q", v)
				}
			}},
		{name: "first channel is created public", setup: base[:1],
			cmd: ReleaseCreate{Release: release("1.0.0", 10), Channel: "production"},
			check: func(t *testing.T, s *state.State) {
				want := state.NewChannel("production")
				want.ID, want.Version, want.Public, want.CreatedAt = 1, "1.0.0", true, 10
				if got := channel(t, s, "production"); !reflect.DeepEqual(*got, want) {
					t.Fatalf("channel\n got %+v\nwant %+v", *got, want)
				}
				if n := s.App(app).NextChannelID; n != 2 {
					t.Errorf("NextChannelID %d, want 2", n)
				}
			}},
		{name: "second channel is created private with the next id", setup: base,
			cmd: ReleaseCreate{Release: release("2.0.0", 30), Channel: "beta"},
			check: func(t *testing.T, s *state.State) {
				c := channel(t, s, "beta")
				if c.ID != 2 || c.Public || c.Version != "2.0.0" || c.History != nil {
					t.Fatalf("beta %+v", c)
				}
				if !channel(t, s, "production").Public {
					t.Error("production lost public")
				}
			}},
		{name: "existing channel keeps history", setup: base,
			cmd: ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
			check: func(t *testing.T, s *state.State) {
				c := channel(t, s, "production")
				if c.Version != "2.0.0" || !slices.Equal(c.History, []string{"1.0.0"}) || !c.Public {
					t.Fatalf("production %+v", c)
				}
			}},
		{name: "unknown app", cmd: ReleaseCreate{Release: release("1.0.0", 1)}, code: CodeNotFound, msg: "app"},
		{name: "other app", setup: base, cmd: ReleaseCreate{Release: otherApp}, code: CodeNotFound},
		{name: "duplicate version", setup: base, cmd: ReleaseCreate{Release: release("1.1.0", 30)},
			code: CodeConflict, msg: "already exists"},
		{name: "no zip", setup: base, cmd: ReleaseCreate{Release: noZip}, code: CodeInvalid, msg: "zip cid"},
		{name: "builtin version", setup: base, cmd: ReleaseCreate{Release: release("builtin", 1)}, code: CodeInvalid},
		{name: "empty version", setup: base, cmd: ReleaseCreate{Release: release("", 1)}, code: CodeInvalid},
		{name: "bad manifest", setup: base, cmd: ReleaseCreate{Release: bad}, code: CodeInvalid, msg: "manifest"},
	})
}

func TestApplyReleaseDelete(t *testing.T) {
	withHistory := append(slices.Clone(base),
		ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
		ReleaseCreate{Release: release("3.0.0", 40), Channel: "production"},
		ChannelSet{App: app, Name: "beta", Version: ptr("1.0.0")},
		ChannelSet{App: app, Name: "beta", Version: ptr("3.0.0")},
	)
	runFSMCases(t, []fsmCase{
		{name: "unused", setup: base, cmd: ReleaseDelete{App: app, Version: "1.1.0"},
			check: func(t *testing.T, s *state.State) {
				if _, ok := s.App(app).Releases["1.1.0"]; ok {
					t.Fatal("release still there")
				}
			}},
		{name: "removed from every history", setup: withHistory,
			cmd: ReleaseDelete{App: app, Version: "1.0.0"},
			check: func(t *testing.T, s *state.State) {
				if h := channel(t, s, "production").History; !slices.Equal(h, []string{"2.0.0"}) {
					t.Errorf("production history %v", h)
				}
				if h := channel(t, s, "beta").History; h != nil {
					t.Errorf("beta history %v, want nil", h)
				}
			}},
		{name: "in use", setup: base, cmd: ReleaseDelete{App: app, Version: "1.0.0"},
			code: CodeConflict, msg: `in use by channel "production"`},
		{name: "unknown version", setup: base, cmd: ReleaseDelete{App: app, Version: "9.9.9"}, code: CodeNotFound},
		{name: "unknown app", cmd: ReleaseDelete{App: app, Version: "1.0.0"}, code: CodeNotFound},
	})
}

func TestApplyChannelSet(t *testing.T) {
	var long []Command
	long = append(long, base[0])
	for i := range state.MaxHistory + 5 {
		long = append(long, ReleaseCreate{Release: release(fmt.Sprintf("1.0.%d", i), int64(i)), Channel: "production"})
	}
	runFSMCases(t, []fsmCase{
		{name: "create first channel", setup: base[:1],
			cmd: ChannelSet{App: app, Name: "production", CreatedAt: 99, Version: ptr("builtin")},
			check: func(t *testing.T, s *state.State) {
				want := state.NewChannel("production")
				want.ID, want.Version, want.Public, want.CreatedAt = 1, "builtin", true, 99
				if got := channel(t, s, "production"); !reflect.DeepEqual(*got, want) {
					t.Fatalf("channel\n got %+v\nwant %+v", *got, want)
				}
			}},
		{name: "create first channel explicitly private", setup: base[:1],
			cmd: ChannelSet{App: app, Name: "production", Public: ptr(false)},
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
			cmd: ChannelSet{App: app, Name: "production", CreatedAt: 1000,
				Version: ptr("1.1.0"), Public: ptr(false), IOS: ptr(false), Android: ptr(false),
				Electron: ptr(false), AllowEmulator: ptr(false), AllowDevice: ptr(false),
				AllowDev: ptr(false), AllowProd: ptr(false), AllowDeviceSelfSet: ptr(true),
				DisableAutoUpdate: ptr("none"), DisableAutoUpdateUnderNative: ptr(false)},
			check: func(t *testing.T, s *state.State) {
				want := state.Channel{ID: 1, Name: "production", Version: "1.1.0",
					History: []string{"1.0.0"}, AllowDeviceSelfSet: true,
					DisableAutoUpdate: "none", CreatedAt: 10}
				if got := channel(t, s, "production"); !reflect.DeepEqual(*got, want) {
					t.Fatalf("channel\n got %+v\nwant %+v", *got, want)
				}
			}},
		{name: "same version keeps history", setup: base,
			cmd: ChannelSet{App: app, Name: "production", Version: ptr("1.0.0")},
			check: func(t *testing.T, s *state.State) {
				if h := channel(t, s, "production").History; h != nil {
					t.Fatalf("history %v", h)
				}
			}},
		{name: "history is capped", setup: long,
			cmd: ChannelSet{App: app, Name: "production", Version: ptr("builtin")},
			check: func(t *testing.T, s *state.State) {
				h := channel(t, s, "production").History
				if len(h) != state.MaxHistory || h[len(h)-1] != fmt.Sprintf("1.0.%d", state.MaxHistory+4) ||
					h[0] != "1.0.5" {
					t.Fatalf("history (%d) %v", len(h), h)
				}
			}},
		{name: "unknown version", setup: base, cmd: ChannelSet{App: app, Name: "production", Version: ptr("9.9.9")},
			code: CodeNotFound, msg: `release "9.9.9"`},
		{name: "empty version", setup: base, cmd: ChannelSet{App: app, Name: "production", Version: ptr("")},
			code: CodeInvalid},
		{name: "bad disable_auto_update", setup: base,
			cmd:  ChannelSet{App: app, Name: "production", DisableAutoUpdate: ptr("sometimes")},
			code: CodeInvalid, msg: "disable_auto_update"},
		{name: "unknown version does not create the channel", setup: base,
			cmd: ChannelSet{App: app, Name: "beta", Version: ptr("9.9.9")}, code: CodeNotFound},
		{name: "unknown app", cmd: ChannelSet{App: app, Name: "production"}, code: CodeNotFound},
		{name: "empty name", setup: base, cmd: ChannelSet{App: app}, code: CodeInvalid},
	})
	for _, v := range []string{"major", "minor", "patch", "version_number", "none"} {
		h := newHarness(t, base...)
		s, err := h.apply(ChannelSet{App: app, Name: "production", DisableAutoUpdate: ptr(v)})
		if err != nil || channel(t, s, "production").DisableAutoUpdate != v {
			t.Errorf("disable_auto_update %q: %v", v, err)
		}
	}
}

func TestApplyChannelRollback(t *testing.T) {
	twice := append(slices.Clone(base),
		ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
		ChannelSet{App: app, Name: "production", Version: ptr("1.1.0")},
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
			[]ChannelSet{{Name: "a", Public: f}, {Name: "b"}}, nil},
		{"new public channel takes over",
			[]ChannelSet{{Name: "a"}, {Name: "b", Public: tr}}, []string{"b"}},
		{"disjoint platforms coexist",
			[]ChannelSet{{Name: "a", Android: f, Electron: f}, {Name: "b", IOS: f, Electron: f, Public: tr}},
			[]string{"a", "b"}},
		{"one shared platform is enough",
			[]ChannelSet{{Name: "a", Electron: f}, {Name: "b", IOS: f, Electron: f, Public: tr}},
			[]string{"b"}},
		{"enabling a platform on a public channel",
			[]ChannelSet{{Name: "a", Android: f, Electron: f}, {Name: "b", IOS: f, Electron: f, Public: tr},
				{Name: "b", IOS: tr}},
			[]string{"b"}},
		{"one channel for all replaces several",
			[]ChannelSet{{Name: "a", Android: f, Electron: f}, {Name: "b", IOS: f, Electron: f, Public: tr},
				{Name: "c", IOS: f, Android: f, Public: tr}, {Name: "d", Public: tr}},
			[]string{"d"}},
		{"electron only",
			[]ChannelSet{{Name: "a", IOS: f, Android: f}, {Name: "b", IOS: f, Android: f, Public: tr}},
			[]string{"b"}},
		{"private update does not demote",
			[]ChannelSet{{Name: "a"}, {Name: "b", AllowDev: f}}, []string{"a"}},
		{"unpublishing leaves none",
			[]ChannelSet{{Name: "a"}, {Name: "a", Public: f}}, nil},
		{"a public channel without platforms demotes nobody",
			[]ChannelSet{{Name: "a"}, {Name: "b", IOS: f, Android: f, Electron: f, Public: tr}},
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

// TestCopyOnWrite checks that a state obtained before applies is not
// changed by them, for every command type.
func TestCopyOnWrite(t *testing.T) {
	h := newHarness(t, append(slices.Clone(base),
		ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
		ChannelSet{App: app, Name: "beta", Version: ptr("1.1.0")},
		ChannelSet{App: app, Name: "beta", Version: ptr("2.0.0")},
		DeviceSet{App: app, DeviceID: "d1", Channel: "beta"},
		DeviceSet{App: app, DeviceID: "d2", Channel: "production"},
		AppCreate{ID: "com.other"},
	)...)
	old := h.f.State()
	oldBytes := snapshotBytes(t, old)
	oldApp := old.App(app)
	oldProd := *oldApp.Channels["production"]
	oldProdHistory := slices.Clone(oldApp.Channels["production"].History)

	for _, cmd := range []Command{
		AppCreate{ID: "com.third"},
		AppDelete{ID: "com.third"},
		AppCreate{ID: "com.third"},
		ReleaseCreate{Release: release("3.0.0", 40), Channel: "production"},
		ReleaseCreate{Release: release("3.1.0", 41), Channel: "new"},
		ChannelSet{App: app, Name: "beta", Public: ptr(true), Version: ptr("3.0.0")},
		ChannelRollback{App: app, Name: "production"},
		DeviceSet{App: app, DeviceID: "d3", Channel: "beta"},
		DeviceUnset{App: app, DeviceID: "d2"},
		ReleaseDelete{App: app, Version: "1.1.0"},
		ChannelDelete{App: app, Name: "beta"},
		ReleaseCreate{Release: release("1.1.0", 50)}, // re-create a deleted version
	} {
		if _, err := h.apply(cmd); err != nil {
			t.Fatalf("apply %T: %v", cmd, err)
		}
	}
	if got := snapshotBytes(t, old); !bytes.Equal(got, oldBytes) {
		t.Error("an earlier state changed after later applies")
	}
	if old.Index != 9 || old.App(app) != oldApp {
		t.Errorf("old state header changed: index %d", old.Index)
	}
	if c := oldApp.Channels["production"]; !reflect.DeepEqual(*c, oldProd) ||
		!slices.Equal(c.History, oldProdHistory) {
		t.Errorf("old production channel changed: %+v", *c)
	}
	if h.f.State().App("com.other") != old.App("com.other") {
		t.Error("an untouched app was copied instead of shared")
	}
}

func TestApplyNonCommandEntries(t *testing.T) {
	h := newHarness(t, base...)
	before := h.f.State()
	for _, typ := range []raft.LogType{raft.LogNoop, raft.LogBarrier, raft.LogConfiguration} {
		if resp := h.f.Apply(&raft.Log{Index: 100, Type: typ, Data: []byte("junk")}); resp != nil {
			t.Errorf("type %v: response %v", typ, resp)
		}
	}
	if h.f.State() != before {
		t.Error("non-command entries changed the state")
	}
}

func TestApplyUnknownCommand(t *testing.T) {
	h := newHarness(t, base...)
	before := h.f.State()
	resp := h.f.Apply(&raft.Log{Index: 50, Type: raft.LogCommand, Data: []byte("\xfe{}")})
	if resp != nil {
		t.Errorf("response %v", resp)
	}
	s := h.f.State()
	if s.Index != 50 || !reflect.DeepEqual(s.Apps, before.Apps) {
		t.Errorf("skipped entry: index %d", s.Index)
	}

	for name, data := range map[string][]byte{
		"unknown type without ignore bit": []byte("\x7e{}"),
		"undecodable known type":          []byte("\x01{"),
		"empty entry":                     nil,
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("Apply did not panic")
				}
			}()
			h.f.Apply(&raft.Log{Index: 51, Type: raft.LogCommand, Data: data})
		})
	}
}

func TestSubscribe(t *testing.T) {
	h := newHarness(t)
	ch, cancel := h.f.Subscribe()
	other, cancelOther := h.f.Subscribe()
	defer cancelOther()
	for _, cmd := range base {
		if _, err := h.apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	for want := uint64(1); want <= 3; want++ {
		if got := <-ch; got != want {
			t.Fatalf("notification %d, want %d", got, want)
		}
	}
	// Falling behind drops the oldest notifications, never the newest.
	for range 40 {
		h.apply(DeviceUnset{App: app, DeviceID: "none"}) // fails, still notifies
	}
	var got []uint64
	for len(got) < subscriptionBuffer {
		got = append(got, <-ch)
	}
	if got[len(got)-1] != h.index || len(ch) != 0 {
		t.Errorf("got %v, want the last %d ending at %d", got, subscriptionBuffer, h.index)
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Error("channel not closed after cancel")
	}
	h.apply(DeviceUnset{App: app, DeviceID: "none"})
	if len(other) == 0 {
		t.Error("the other subscriber stopped receiving")
	}
}

func TestErrorMatching(t *testing.T) {
	h := newHarness(t, base...)
	_, err := h.apply(AppCreate{ID: app})
	var be *Error
	if !errors.As(err, &be) || be.Code != CodeConflict {
		t.Fatalf("errors.As: %v", err)
	}
	if !errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
		t.Error("errors.Is does not match by code")
	}
	wrapped := fmt.Errorf("admin: %w", err)
	if !errors.Is(wrapped, ErrConflict) {
		t.Error("wrapped error does not match")
	}
	if got := err.Error(); !strings.HasPrefix(got, "consensus: ") {
		t.Errorf("Error() = %q", got)
	}
}

// TestConcurrentReaders walks published states while commands are
// applied; under -race it proves that applies never write memory
// reachable from a published state.
func TestConcurrentReaders(t *testing.T) {
	h := newHarness(t, base...)
	done := make(chan struct{})
	walked := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-done:
				walked <- n
				return
			default:
			}
			s := h.f.State()
			for _, a := range s.Apps {
				for _, c := range a.Channels {
					n += len(c.History) + len(c.Version)
				}
				for _, r := range a.Releases {
					n += len(r.Manifest)
				}
				for _, d := range a.Devices {
					n += len(d.Channel)
				}
			}
		}
	}()
	for i := range 100 {
		v := fmt.Sprintf("2.0.%d", i)
		cmds := []Command{
			ReleaseCreate{Release: release(v, int64(100+i)), Channel: "production"},
			ChannelSet{App: app, Name: "beta", Public: ptr(i%2 == 0), Version: ptr(v)},
			DeviceSet{App: app, DeviceID: fmt.Sprintf("d%d", i), Channel: "beta"},
		}
		if i%10 == 9 {
			cmds = append(cmds, ChannelRollback{App: app, Name: "production"},
				ChannelDelete{App: app, Name: "beta"})
		}
		for _, cmd := range cmds {
			if _, err := h.apply(cmd); err != nil {
				t.Fatalf("apply %T: %v", cmd, err)
			}
		}
	}
	close(done)
	<-walked
}

func TestApplyCluster(t *testing.T) {
	d1, d2 := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	nodeA := state.NodeInfo{ID: "A", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, HTTP: "http://a", JoinedAt: 5}
	withNode := []Command{NodeSet{Node: nodeA}}
	runFSMCases(t, []fsmCase{
		{name: "node set", cmd: NodeSet{Node: nodeA}, check: func(t *testing.T, s *state.State) {
			if got := s.ClusterInfo().Nodes["A"]; !reflect.DeepEqual(got, nodeA) {
				t.Fatalf("node %+v", got)
			}
		}},
		{name: "node update keeps joined_at", setup: withNode,
			cmd: NodeSet{Node: state.NodeInfo{ID: "A", Addrs: []string{"/ip4/127.0.0.1/tcp/2"}}},
			check: func(t *testing.T, s *state.State) {
				if n := s.ClusterInfo().Nodes["A"]; n.JoinedAt != 5 || n.Addrs[0] != "/ip4/127.0.0.1/tcp/2" {
					t.Fatalf("node %+v", n)
				}
			}},
		{name: "node empty id", cmd: NodeSet{}, code: CodeInvalid},
		{name: "node delete", setup: withNode, cmd: NodeDelete{ID: "A"}, check: func(t *testing.T, s *state.State) {
			if len(s.ClusterInfo().Nodes) != 0 {
				t.Fatal("node still there")
			}
		}},
		{name: "node delete unknown", cmd: NodeDelete{ID: "A"}, code: CodeNotFound},
		{name: "admin token", cmd: AdminTokenAdd{Digest: d1, CreatedAt: 1}, check: func(t *testing.T, s *state.State) {
			if !s.AdminTokenValid(d1) || s.AdminTokenValid(d2) {
				t.Fatal("admin token check")
			}
		}},
		{name: "admin token bad digest", cmd: AdminTokenAdd{Digest: "ABC"}, code: CodeInvalid},
		{name: "join token expires, old ones dropped",
			setup: []Command{JoinTokenAdd{Digest: d1, CreatedAt: 0, ExpiresAt: 10}},
			cmd:   JoinTokenAdd{Digest: d2, CreatedAt: 20, ExpiresAt: 30},
			check: func(t *testing.T, s *state.State) {
				if !s.JoinTokenValid(d2, 29) || s.JoinTokenValid(d2, 30) || s.JoinTokenValid(d1, 5) {
					t.Fatalf("join tokens %v", s.ClusterInfo().JoinTokens)
				}
			}},
		{name: "join token already expired", cmd: JoinTokenAdd{Digest: d1, CreatedAt: 10, ExpiresAt: 10}, code: CodeInvalid},
		{name: "read token", cmd: ReadTokenAdd{Digest: d1, CreatedAt: 1}, check: func(t *testing.T, s *state.State) {
			if !s.ReadTokenValid(d1) || s.ReadTokenValid(d2) || s.AdminTokenValid(d1) {
				t.Fatal("read token check")
			}
		}},
		{name: "read token bad digest", cmd: ReadTokenAdd{Digest: "ABC"}, code: CodeInvalid},
		{name: "read token delete", setup: []Command{ReadTokenAdd{Digest: d1, CreatedAt: 1}, ReadTokenAdd{Digest: d2, CreatedAt: 2}},
			cmd: ReadTokenDelete{Digest: d1}, check: func(t *testing.T, s *state.State) {
				if s.ReadTokenValid(d1) || !s.ReadTokenValid(d2) {
					t.Fatalf("read tokens %v", s.ClusterInfo().ReadTokens)
				}
			}},
		{name: "read token delete unknown", cmd: ReadTokenDelete{Digest: d1}, code: CodeNotFound},
	})
}
