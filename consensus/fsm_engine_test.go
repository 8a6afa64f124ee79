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

// TestCopyOnWrite checks that a state obtained before applies is not
// changed by them, for every command type.
func TestCopyOnWrite(t *testing.T) {
	h := newHarness(t, append(slices.Clone(base),
		ReleaseCreate{Release: release("2.0.0", 30), Channel: "production"},
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0")}},
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("2.0.0")}},
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
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Public: ptr(true), Version: ptr("3.0.0")}},
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
			ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Public: ptr(i%2 == 0), Version: ptr(v)}},
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
