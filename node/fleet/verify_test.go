package fleet

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"testing"

	"mirrord/consensus/state"
)

// TestFleetCountsOnlyCheckedInDevices: events of devices this node never
// answered the release are counted apart and never reach the cluster's
// counters (hence the halt policy); a device counts each kind of outcome
// once.
func TestFleetCountsOnlyCheckedInDevices(t *testing.T) {
	l := newFSMLog(t, fleetSetup()...)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply})
	ctx := context.Background()
	for i := range 60 {
		if v := f.CountEvent(fleetApp, "1.0.0", "update_fail", fmt.Sprintf("forged-%d", i)); v != state.VerdictUnverified {
			t.Fatalf("forged event judged %v", v)
		}
	}
	real := newDevice()
	f.CountCheck(fleetApp, "1.0.0", real)
	for i := range 10 {
		want := state.VerdictCounted
		if i > 0 {
			want = state.VerdictDuplicate
		}
		if v := f.CountEvent(fleetApp, "1.0.0", "update_fail", real); v != want {
			t.Fatalf("failure %d judged %v, want %v", i, v, want)
		}
	}
	// Ids are compared without case, as cohorts do.
	if v := f.CountEvent(fleetApp, "1.0.0", "set", "DEV"+real[3:]); v != state.VerdictCounted {
		t.Fatalf("install after failure judged %v", v)
	}
	if v := f.CountEvent(fleetApp, "1.0.0", "app_moved_to_foreground", real); v != state.VerdictNotCounted {
		t.Fatalf("other action judged %v", v)
	}
	// Checked in for another release only.
	other := newDevice()
	f.CountCheck(fleetApp, "9.9.9", other)
	if v := f.CountEvent(fleetApp, "1.0.0", "update_fail", other); v != state.VerdictUnverified {
		t.Fatalf("device of another release judged %v", v)
	}
	// Events about no release: kept with the others only for a device
	// that checked in for the app.
	if v := f.CountEvent(fleetApp, "builtin", "app_moved_to_foreground", real); v != state.VerdictNotCounted {
		t.Fatalf("builtin event of a device that checked in judged %v", v)
	}
	if v := f.CountEvent(fleetApp, "builtin", "app_moved_to_foreground", "forged-x"); v != state.VerdictUnverified {
		t.Fatalf("builtin event of a forged device judged %v", v)
	}
	if err := f.Report(ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.fsm.State().App(fleetApp).Tally("1.0.0"); got != (state.Tally{Installs: 1, Failures: 1}) {
		t.Fatalf("tally %+v, want 1 install and 1 failure", got)
	}
	u, n := f.UnverifiedCounts(fleetApp, "1.0.0")
	if u != (Unverified{Failures: 61, Duplicates: 9}) || n != 1 {
		t.Fatalf("unverified %+v, %d devices", u, n)
	}
	// 9.9.9 is not a release: Report forgot its devices.
	if _, n := f.UnverifiedCounts(fleetApp, "9.9.9"); n != 0 {
		t.Fatalf("%d devices kept for a release that does not exist", n)
	}
}

func TestDeviceSet(t *testing.T) {
	s := newDeviceSet()
	r := rand.New(rand.NewPCG(1, 2))
	hs := make([]uint64, 3*freshMax+17)
	for i := range hs {
		hs[i] = r.Uint64() & hashMask
		if !s.add(hs[i]) {
			t.Fatal("set full")
		}
	}
	if s.len() != len(hs) || len(s.sorted) != 3*freshMax {
		t.Fatalf("len %d, sorted %d", s.len(), len(s.sorted))
	}
	for i, h := range hs {
		s.mark(h, state.DeviceMarks(i)&state.AllMarks)
	}
	s.add(hs[0]) // again: no change
	for i, h := range hs {
		m, ok := s.get(h | 7) // the low bits are not the device's
		if !ok || m != state.DeviceMarks(i)&state.AllMarks {
			t.Fatalf("device %d: %b %v", i, m, ok)
		}
	}
	if _, ok := s.get(r.Uint64()); ok {
		t.Fatal("found a device never added")
	}
	if s.len() != len(hs) {
		t.Fatalf("len %d after adding a device twice", s.len())
	}
}

// TestDeviceSetMemory measures the sets at 1 M devices: one release's
// set alone, then as a node keeps them, every device checked in through
// CountCheck (each is then in the release's set and the app's).
func TestDeviceSetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("1 M devices")
	}
	const n = 1 << 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-7a1e-4c0d-9e6f-%012x", i, i*7919)
	}
	live := func(fill func()) int64 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fill()
		runtime.GC()
		runtime.ReadMemStats(&after)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	seed := maphash.MakeSeed()
	var set *deviceSet
	one := live(func() {
		set = newDeviceSet()
		for _, id := range ids {
			set.add(maphash.String(seed, id))
		}
	})
	if set.len() != n {
		t.Fatalf("%d devices in the set", set.len())
	}
	t.Logf("one release's set, 1 M devices (%d): %.1f MiB, %.2f bytes a device", n, float64(one)/(1<<20), float64(one)/n)
	if one > 9*n {
		t.Fatalf("%d bytes for %d devices: more than 9 bytes a device", one, n)
	}
	runtime.KeepAlive(set)
	set = nil

	l := newFSMLog(t, fleetSetup()...)
	f := New(Config{Node: "A", State: l.fsm.State, Apply: l.Apply})
	both := live(func() {
		for _, id := range ids {
			f.CountCheck(fleetApp, "1.0.0", id)
		}
	})
	if _, got := f.UnverifiedCounts(fleetApp, "1.0.0"); got != n {
		t.Fatalf("%d devices in the set, want %d", got, n)
	}
	t.Logf("through CountCheck (release and app sets), 1 M devices: %.1f MiB, %.2f bytes a device", float64(both)/(1<<20), float64(both)/n)
	if both > 17*n {
		t.Fatalf("%d bytes for %d devices: more than 17 bytes a device", both, n)
	}
	for _, id := range ids[:1000] {
		if v := f.CountEvent(fleetApp, "1.0.0", "set", id); v != state.VerdictCounted {
			t.Fatalf("checked-in device judged %v", v)
		}
		if v := f.CountEvent(fleetApp, "builtin", "app_moved_to_foreground", id); v != state.VerdictNotCounted {
			t.Fatalf("checked-in device's event about no release judged %v", v)
		}
	}
	runtime.KeepAlive(ids)
}
