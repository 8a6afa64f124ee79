package consensus

import (
	"bytes"
	"errors"
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
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}},
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
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.0.0")}},
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("3.0.0")}},
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
