package consensus

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

const goldenSnapshot = "testdata/snapshot-v1.bin"

func snapshotBytes(t testing.TB, s *state.State) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteSnapshot(&buf, s); err != nil {
		t.Fatalf("WriteSnapshot: %v", err)
	}
	return buf.Bytes()
}

// goldenState is the state stored in testdata/snapshot-v1.bin. It uses
// every record type and every field. Change it only together with the
// golden file (go test ./consensus -run TestGoldenSnapshot -update).
func goldenState() *state.State {
	return &state.State{
		Index: 4242,
		Apps: map[string]*state.AppState{
			"com.example.app": {
				App: state.App{ID: "com.example.app",
					PublicKey: "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEAtest\n-----END RSA PUBLIC KEY-----\n",
					KeyID:     "MIIBCgKCAQEAtest", CreatedAt: 1700000000000},
				Channels: map[string]*state.Channel{
					"production": {ID: 1, Name: "production", Version: "1.2.0",
						History: []string{"builtin", "1.0.0", "1.1.0"}, Public: true,
						IOS: true, Android: true, Electron: true, AllowEmulator: true,
						AllowDevice: true, AllowDev: true, AllowProd: true,
						DisableAutoUpdate: "major", DisableAutoUpdateUnderNative: true,
						CreatedAt: 1700000000100,
						Rollout: &state.Rollout{ID: "com.example.app/production/1.1.0#2", Version: "1.1.0",
							BasisPoints: 1250, State: state.RolloutPaused,
							Policy:   &state.HaltPolicy{FailureRate: 0.2, MinEvents: 50, Confidence: 0.95, Action: "pause"},
							Baseline: state.Tally{Installs: 1, Failures: 2},
							Halt: &state.Halt{Action: "pause", Reason: "too many failures", Tally: state.Tally{Installs: 10, Failures: 60},
								Rate: 0.8571428571428571, Lower: 0.75, At: 1700000000900},
							StartedAt: 1700000000600, UpdatedAt: 1700000000900},
						RolloutSeq: 2},
					"beta": {ID: 3, Name: "beta", Version: "builtin", IOS: true,
						AllowDevice: true, AllowDeviceSelfSet: true,
						DisableAutoUpdate: "version_number", CreatedAt: 1700000000300},
				},
				Releases: map[string]*state.Release{
					"1.0.0": {App: "com.example.app", Version: "1.0.0",
						ZipCID: "bafkreiplain", ZipSize: 1024,
						Checksum:  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
						CreatedAt: 1700000000100},
					"1.1.0": {App: "com.example.app", Version: "1.1.0",
						ZipCID: "bafkreienc", ZipSize: 2048, Checksum: strings.Repeat("ab", 256),
						SessionKey: "aXY=:a2V5", KeyID: "MIIBCgKCAQEAtest",
						Manifest: []state.ManifestFile{
							{FileName: "index.html", FileHash: "h1", CID: "bafkreiindex", Size: 10},
							{FileName: "js/app.js.br", FileHash: "h2", CID: "bafkreiappjs", Size: 9000},
						},
						MinNative: "2.0.0", CreatedAt: 1700000000200},
					"1.2.0": {App: "com.example.app", Version: "1.2.0",
						ZipCID: "bafkreinew", ZipSize: 4096, Checksum: "c0ffee",
						CreatedAt: 1700000000250},
				},
				Devices: map[string]state.DeviceOverride{
					"00000000-0000-0000-0000-000000000001": {Channel: "beta"},
					"tester-ünïcode":                       {Channel: "production"},
					"pinned-device":                        {Version: "1.1.0"},
				},
				Stats: map[string]map[string]state.Counters{
					"1.1.0": {
						"12D3KooWA": {Seq: 3, Offered: 100, Downloads: 90, Installs: 80,
							Failures: map[string]int64{"update_fail": 5, "download_fail": 2}, At: 1700000001000},
						"12D3KooWB": {Seq: 1, Installs: 1, At: 1700000001100},
					},
				},
				History: map[string][]state.Bucket{
					"1.1.0": {{Hour: 1699995600000, Offered: 60, Downloads: 50, Installs: 40, Failures: 3},
						{Hour: 1699999200000, Offered: 40, Downloads: 40, Installs: 41, Failures: 4}},
					"1.2.0": {{Hour: 1699999200000, Offered: 1}},
				},
				HistoryAt:     1700000001100,
				NextChannelID: 4,
			},
			"com.empty.app": {
				App:           state.App{ID: "com.empty.app", CreatedAt: 1700000000400},
				Channels:      map[string]*state.Channel{},
				Releases:      map[string]*state.Release{},
				Devices:       map[string]state.DeviceOverride{},
				NextChannelID: 1,
			},
		},
		Cluster: &state.Cluster{
			Nodes: map[string]state.NodeInfo{
				"12D3KooWA": {ID: "12D3KooWA", Addrs: []string{"/ip4/127.0.0.1/tcp/4101"}, HTTP: "http://127.0.0.1:8081", JoinedAt: 1700000000500},
				"12D3KooWB": {ID: "12D3KooWB", Addrs: []string{"/ip4/127.0.0.1/tcp/4102", "/ip4/127.0.0.1/udp/4102/quic-v1"}, JoinedAt: 1700000000600},
			},
			AdminTokens: map[string]int64{strings.Repeat("a1", 32): 1700000000500},
			JoinTokens:  map[string]int64{strings.Repeat("b2", 32): 1700086400000},
			ReadTokens:  map[string]int64{strings.Repeat("c3", 32): 1700000001100, strings.Repeat("d4", 32): 1700000001200},
			Features:    map[string][]string{"12D3KooWA": {"stats-history"}, "12D3KooWB": {"a-feature", "stats-history"}},
		},
	}
}

// TestSnapshotBeforeHistory reads the golden snapshot as written before
// the stats history records existed: it restores with no history.
func TestSnapshotBeforeHistory(t *testing.T) {
	b, err := os.ReadFile("testdata/snapshot-v1-before-history.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	want := goldenState()
	a := want.Apps["com.example.app"]
	a.History, a.HistoryAt = nil, 0
	want.Cluster.Features = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%#v\nwant\n%#v", got, want)
	}
}

// TestSnapshotBeforeCluster reads a snapshot written before the cluster
// records existed: it must still restore (records are only ever added).
func TestSnapshotBeforeCluster(t *testing.T) {
	b, err := os.ReadFile("testdata/snapshot-v1-apps-only.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadSnapshot(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	// That snapshot also predates rollouts, pinned releases and stats.
	want := goldenState()
	want.Cluster = nil // nodes and admin, join and read-only tokens
	a := want.Apps["com.example.app"]
	a.Channels["production"].Rollout, a.Channels["production"].RolloutSeq = nil, 0
	delete(a.Devices, "pinned-device")
	a.Stats = nil
	a.History, a.HistoryAt = nil, 0
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%#v\nwant\n%#v", got, want)
	}
}

// TestGoldenSnapshot decodes the committed snapshot and compares it to
// goldenState, and checks that encoding goldenState gives the same
// bytes, so the format cannot drift silently.
func TestGoldenSnapshot(t *testing.T) {
	want := snapshotBytes(t, goldenState())
	if *update {
		if err := os.MkdirAll(filepath.Dir(goldenSnapshot), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenSnapshot, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(goldenSnapshot)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	got, err := ReadSnapshot(bytes.NewReader(golden))
	if err != nil {
		t.Fatalf("ReadSnapshot(%s): %v", goldenSnapshot, err)
	}
	if !reflect.DeepEqual(got, goldenState()) {
		t.Errorf("%s decodes to\n%#v\nwant\n%#v", goldenSnapshot, got, goldenState())
	}
	if !bytes.Equal(golden, want) {
		t.Errorf("encoding goldenState differs from %s: the snapshot format "+
			"changed; bump snapshotVersion or regenerate with -update if the "+
			"change is compatible", goldenSnapshot)
	}
}

// TestSnapshotRecordTypes checks each record type on its own: a state
// using it goes through snapshot, buffer and restore unchanged.
func TestSnapshotRecordTypes(t *testing.T) {
	g := goldenState()
	ga := g.Apps["com.example.app"]
	only := func(mod func(a *state.AppState)) *state.State {
		a := &state.AppState{App: ga.App, Channels: map[string]*state.Channel{},
			Releases: map[string]*state.Release{}, Devices: map[string]state.DeviceOverride{},
			NextChannelID: 7}
		mod(a)
		return &state.State{Index: 9, Apps: map[string]*state.AppState{a.App.ID: a}}
	}
	tests := map[string]*state.State{
		"empty":   state.Empty(),
		"meta":    {Index: 1 << 40, Apps: map[string]*state.AppState{}},
		"app":     only(func(*state.AppState) {}),
		"channel": only(func(a *state.AppState) { a.Channels = ga.Channels }),
		"release": only(func(a *state.AppState) { a.Releases = ga.Releases }),
		"device":  only(func(a *state.AppState) { a.Devices = ga.Devices }),
		"history": only(func(a *state.AppState) {
			a.Releases, a.History, a.HistoryAt = ga.Releases, ga.History, ga.HistoryAt
		}),
		"history time only": only(func(a *state.AppState) { a.HistoryAt = 5 }),
		"cluster":           {Index: 3, Apps: map[string]*state.AppState{}, Cluster: g.Cluster},
		"all":               g,
	}
	for name, s := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, s) {
				t.Errorf("got\n%#v\nwant\n%#v", got, s)
			}
		})
	}
}

// memSink is a raft.SnapshotSink backed by a buffer.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

// TestFSMSnapshotRestore goes through the raft.FSM interface: a state
// built by commands is persisted and restored into a fresh FSM.
func TestFSMSnapshotRestore(t *testing.T) {
	h := newHarness(t, append(slices.Clone(base),
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.1.0"), IOS: ptr(false)}},
		ChannelSet{App: app, Name: "beta", ChannelPatch: state.ChannelPatch{Version: ptr("1.0.0")}},
		DeviceSet{App: app, DeviceID: "D1", Channel: "beta"},
		AppCreate{ID: "com.other", PublicKey: "PEM", KeyID: "K"},
	)...)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Applies after Snapshot must not leak into the persisted state.
	want := h.f.State()
	h.apply(ChannelDelete{App: app, Name: "beta"})
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil || !sink.closed {
		t.Fatalf("Persist: %v, closed %v", err, sink.closed)
	}
	snap.Release()

	f := NewFSM(nil)
	ch, cancel := f.Subscribe()
	defer cancel()
	if err := f.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.State(), want) {
		t.Errorf("restored\n%#v\nwant\n%#v", f.State(), want)
	}
	if got := <-ch; got != want.Index {
		t.Errorf("restore notified %d, want %d", got, want.Index)
	}
	// A bad snapshot leaves the current state alone.
	if err := f.Restore(io.NopCloser(strings.NewReader("garbage"))); err == nil {
		t.Error("Restore(garbage) succeeded")
	}
	if !reflect.DeepEqual(f.State(), want) {
		t.Error("a failed restore changed the state")
	}
}

func TestReadSnapshotErrors(t *testing.T) {
	header := snapshotMagic + "\x01"
	rec := func(typ recordType, payload string) string {
		return string(binary.AppendUvarint([]byte{byte(typ)}, uint64(len(payload)))) + payload
	}
	meta := rec(recordMeta, `{"index":1,"next_channel_ids":{}}`)
	appRec := rec(recordApp, `{"id":"a","created_at":0}`)
	golden := string(snapshotBytes(t, goldenState()))
	tests := map[string]string{
		"empty":                 "",
		"bad magic":             "MIRRORD-SNAPSHOX\x01" + meta,
		"future version":        snapshotMagic + "\x02" + meta,
		"short header":          snapshotMagic,
		"no meta":               header,
		"truncated":             golden[:len(golden)-1],
		"truncated length":      header + "\x01",
		"huge length":           header + "\x01\xff\xff\xff\xff\x0f",
		"unknown record type":   header + rec(9, "{}") + meta,
		"record 0":              header + rec(0, "{}") + meta,
		"data after meta":       header + meta + appRec,
		"two metas":             header + meta + meta,
		"duplicate app":         header + appRec + appRec + meta,
		"empty app id":          header + rec(recordApp, `{"id":""}`) + meta,
		"channel of no app":     header + rec(recordChannel, `{"app":"a","channel":{"name":"c"}}`) + meta,
		"channel without name":  header + appRec + rec(recordChannel, `{"app":"a","channel":{}}`) + meta,
		"duplicate channel":     header + appRec + strings.Repeat(rec(recordChannel, `{"app":"a","channel":{"name":"c"}}`), 2) + meta,
		"release of no app":     header + rec(recordRelease, `{"app":"a","version":"1"}`) + meta,
		"release no version":    header + appRec + rec(recordRelease, `{"app":"a"}`) + meta,
		"duplicate release":     header + appRec + strings.Repeat(rec(recordRelease, `{"app":"a","version":"1"}`), 2) + meta,
		"device of no app":      header + rec(recordDeviceOverride, `{"app":"a","device_id":"d"}`) + meta,
		"device without id":     header + appRec + rec(recordDeviceOverride, `{"app":"a"}`) + meta,
		"duplicate device":      header + appRec + strings.Repeat(rec(recordDeviceOverride, `{"app":"a","device_id":"d"}`), 2) + meta,
		"meta of unknown app":   header + rec(recordMeta, `{"index":1,"next_channel_ids":{"zz":1}}`),
		"unknown json field":    header + rec(recordApp, `{"id":"a","evil":true}`) + meta,
		"trailing json":         header + rec(recordApp, `{"id":"a"} {}`) + meta,
		"bad json":              header + rec(recordApp, `{"id":`) + meta,
		"wrong json field type": header + rec(recordMeta, `{"index":"1"}`),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if s, err := ReadSnapshot(strings.NewReader(in)); err == nil {
				t.Fatalf("ReadSnapshot succeeded: %#v", s)
			} else if !strings.HasPrefix(err.Error(), "consensus: read snapshot: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// The smallest valid snapshot.
	if s, err := ReadSnapshot(strings.NewReader(header + meta)); err != nil || s.Index != 1 {
		t.Errorf("minimal snapshot: %v, %v", s, err)
	}
}

// FuzzRestore feeds arbitrary bytes to ReadSnapshot: it must never panic,
// and whatever it accepts must survive another round trip unchanged.
func FuzzRestore(f *testing.F) {
	golden := snapshotBytes(f, goldenState())
	f.Add(golden)
	f.Add(golden[:len(golden)/2])
	f.Add(snapshotBytes(f, state.Empty()))
	f.Add(snapshotBytes(f, tokensState(f)))
	f.Add([]byte(snapshotMagic + "\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ReadSnapshot(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := ReadSnapshot(bytes.NewReader(snapshotBytes(t, s)))
		if err != nil {
			t.Fatalf("re-read of an accepted snapshot: %v", err)
		}
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the state:\n%#v\n%#v", s, again)
		}
	})
}
