package consensus

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

func ptr[T any](v T) *T { return &v }

// sampleCommands has one populated value of every command type.
func sampleCommands() []Command {
	return []Command{
		AppCreate{ID: "com.example.app", PublicKey: "-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----\n", KeyID: "MIIB", CreatedAt: 1700000000000},
		ReleaseCreate{Release: state.Release{
			App: "com.example.app", Version: "1.0.0", ZipCID: "bafyzip", ZipSize: 42,
			Checksum: "abc", SessionKey: "iv:key", KeyID: "MIIB",
			Manifest:  []state.ManifestFile{{FileName: "index.html", FileHash: "h", CID: "bafyfile", Size: 3}},
			MinNative: "1.0.0", CreatedAt: 1700000000001,
		}, Channel: "production"},
		ReleaseDelete{App: "com.example.app", Version: "1.0.0"},
		ChannelSet{App: "com.example.app", Name: "beta", CreatedAt: 5, ChannelPatch: state.ChannelPatch{
			Version: ptr("builtin"), Public: ptr(true), IOS: ptr(false), Android: ptr(true),
			Electron: ptr(false), AllowEmulator: ptr(false), AllowDevice: ptr(true),
			AllowDev: ptr(false), AllowProd: ptr(true), AllowDeviceSelfSet: ptr(true),
			DisableAutoUpdate: ptr("minor"), DisableAutoUpdateUnderNative: ptr(false),
		}},
		ChannelRollback{App: "com.example.app", Name: "beta"},
		ChannelDelete{App: "com.example.app", Name: "beta"},
		DeviceSet{App: "com.example.app", DeviceID: "ABC", Channel: "beta"},
		DeviceUnset{App: "com.example.app", DeviceID: "abc"},
		NodeSet{Node: state.NodeInfo{ID: "12D3KooWA", Addrs: []string{"/ip4/127.0.0.1/tcp/4101"}, HTTP: "http://127.0.0.1:8081", JoinedAt: 1700000000500}},
		NodeDelete{ID: "12D3KooWA"},
		AdminTokenAdd{Digest: strings.Repeat("a1", 32), CreatedAt: 1700000000500},
		JoinTokenAdd{Digest: strings.Repeat("b2", 32), CreatedAt: 1700000000500, ExpiresAt: 1700086400000},
		RolloutStart{App: "com.example.app", Channel: "production", Version: "1.1.0", BasisPoints: 1000,
			Policy:   &state.HaltPolicy{FailureRate: 0.2, MinEvents: 50, Confidence: 0.95, Action: "pause"},
			Baseline: state.Tally{Installs: 3, Failures: 1}, At: 1700000000600},
		RolloutUpdate{App: "com.example.app", Channel: "production", BasisPoints: ptr(5000),
			Policy: &state.HaltPolicy{FailureRate: 0.1, MinEvents: 20, Confidence: 0.9, Action: "abort"}, ClearPolicy: true, At: 1700000000700},
		RolloutControl{App: "com.example.app", Channel: "production", Action: "resume",
			Baseline: state.Tally{Installs: 9, Failures: 2}, At: 1700000000800},
		RolloutHalt{App: "com.example.app", Channel: "production", RolloutID: "com.example.app/production/1.1.0#1",
			Halt: state.Halt{Action: "pause", Reason: "failure rate", Tally: state.Tally{Installs: 10, Failures: 50},
				Rate: 0.8333333333333334, Lower: 0.7, At: 1700000000900}},
		DevicesSet{App: "com.example.app", Devices: []state.DeviceEntry{
			{DeviceID: "D1", Channel: "beta"}, {DeviceID: "d2", Version: "1.0.0"},
			{DeviceID: "d3", Channel: "beta", Version: "1.0.0"}, {DeviceID: "d4", Remove: true}}},
		StatsReport{Node: "12D3KooWA", Releases: []state.ReleaseCounters{{App: "com.example.app", Version: "1.1.0",
			Counters: state.Counters{Seq: 7, Offered: 100, Downloads: 90, Installs: 80,
				Failures: map[string]int64{"update_fail": 5, "app_launch_timeout": 1}, At: 1700000001000}}}},
		ReadTokenAdd{Digest: strings.Repeat("c3", 32), CreatedAt: 1700000001100},
		ReadTokenDelete{Digest: strings.Repeat("c3", 32)},
		AppDelete{ID: "com.example.app", Force: true},
		StatsReportAt{Node: "12D3KooWA", At: 1700000001000, Releases: []state.ReleaseCounters{{App: "com.example.app", Version: "1.1.0",
			Counters: state.Counters{Seq: 8, Offered: 101, Downloads: 91, Installs: 81,
				Failures: map[string]int64{"update_fail": 6}, At: 1700000001000}}}},
		NodeFeatures{Node: "12D3KooWA", Features: []string{"stats-history"}},
		TokenCreate{Token: state.Token{Name: "ci", Digest: strings.Repeat("d4", 32), Scope: state.ScopePublish,
			Apps: []string{"com.example.app"}, CreatedAt: 1700000001200, CreatedBy: "admin"}},
		TokenRevoke{Name: "ci"},
		TokenRotate{Name: "admin", Digest: strings.Repeat("e5", 32), At: 1700000001300},
		AuditAppend{Entries: []state.AuditEntry{{At: 1700000001400, Node: "12D3KooWA", Token: "ci", Method: "POST",
			Route: "/admin/v1/apps/{app}/releases", Target: map[string]string{"app": "com.example.app"},
			Remote: "127.0.0.1:5000", Status: 201}}},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	seen := map[CommandType]bool{}
	for _, cmd := range sampleCommands() {
		b, err := Encode(cmd)
		if err != nil {
			t.Fatalf("Encode(%T): %v", cmd, err)
		}
		if CommandType(b[0]) != cmd.CommandType() {
			t.Errorf("%T: type byte %d, want %d", cmd, b[0], cmd.CommandType())
		}
		typ, got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%T): %v", cmd, err)
		}
		if typ != cmd.CommandType() || !reflect.DeepEqual(got, cmd) {
			t.Errorf("round trip of %T: got %d %#v", cmd, typ, got)
		}
		seen[typ&^IgnoreUnknown] = true
		// A pointer encodes like the value.
		pv := reflect.New(reflect.TypeOf(cmd))
		pv.Elem().Set(reflect.ValueOf(cmd))
		pb, err := Encode(pv.Interface().(Command))
		if err != nil || string(pb) != string(b) {
			t.Errorf("Encode(pointer %T) = %q, %v", cmd, pb, err)
		}
	}
	for typ := range decoders {
		if !seen[typ] {
			t.Errorf("no sample command for %s", typ)
		}
	}
}

// TestCommandTablesComplete checks that every command type has a name,
// a decoder and an applyX.
func TestCommandTablesComplete(t *testing.T) {
	for typ := range decoders {
		if applyTable[typ] == nil {
			t.Errorf("%s has no entry in applyTable", typ)
		}
		if _, ok := commandNames[typ]; !ok {
			t.Errorf("type %d has no name", typ)
		}
		if typ&IgnoreUnknown != 0 || typ == 0 {
			t.Errorf("type %d uses a reserved value", typ)
		}
	}
	if len(applyTable) != len(decoders) || len(commandNames) != len(decoders) {
		t.Errorf("tables differ in size: apply %d, decoders %d, names %d",
			len(applyTable), len(decoders), len(commandNames))
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(nil); err == nil {
		t.Error("Encode(nil) succeeded")
	}
	if _, err := Encode((*AppCreate)(nil)); err == nil {
		t.Error("Encode(typed nil) succeeded")
	}
	if _, err := Encode(bogusCommand{}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("Encode(unknown type) = %v, want ErrUnknownCommand", err)
	}
}

type bogusCommand struct{}

func (bogusCommand) CommandType() CommandType { return 0x7f }

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		unknown bool
	}{
		{"empty", nil, false},
		{"zero type", []byte("\x00{}"), true},
		{"unknown type", []byte("\x7f{}"), true},
		{"unknown type with ignore bit", []byte("\xff{}"), true},
		{"no payload", []byte{byte(TypeAppCreate)}, false},
		{"bad json", []byte("\x01{"), false},
		{"unknown field", []byte(`` + "\x01" + `{"id":"a","color":"red"}`), false},
		{"trailing data", []byte("\x01" + `{"id":"a"}{}`), false},
		{"wrong field type", []byte("\x01" + `{"id":1}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Decode(tt.in)
			if err == nil {
				t.Fatal("Decode succeeded")
			}
			if got := errors.Is(err, ErrUnknownCommand); got != tt.unknown {
				t.Errorf("errors.Is(err, ErrUnknownCommand) = %v (%v)", got, err)
			}
		})
	}
}

func TestDecodeIgnoreUnknownBitOnKnownType(t *testing.T) {
	b, _ := Encode(DeviceUnset{App: "a", DeviceID: "d"})
	b[0] |= byte(IgnoreUnknown)
	typ, cmd, err := Decode(b)
	if err != nil || typ != TypeDeviceUnset|IgnoreUnknown {
		t.Fatalf("Decode = %v, %v", typ, err)
	}
	if _, ok := cmd.(DeviceUnset); !ok {
		t.Errorf("got %T", cmd)
	}
}

func TestCommandTypeString(t *testing.T) {
	for typ, want := range map[CommandType]string{
		TypeChannelSet:                 "ChannelSet",
		TypeChannelSet | IgnoreUnknown: "ChannelSet|IgnoreUnknown",
		0x7f:                           "CommandType(127)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

// FuzzDecode checks that Decode never panics and that whatever it
// accepts re-encodes to something that decodes to the same command.
func FuzzDecode(f *testing.F) {
	for _, cmd := range sampleCommands() {
		b, err := Encode(cmd)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte("\x81{}"))
	f.Add([]byte("\x04null"))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, cmd, err := Decode(b)
		if err != nil {
			return
		}
		c := cmd.(Command)
		if c.CommandType()&^IgnoreUnknown != typ&^IgnoreUnknown {
			t.Fatalf("decoded %T for type %d", cmd, typ)
		}
		b2, err := Encode(c)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		_, cmd2, err := Decode(b2)
		if err != nil {
			t.Fatalf("decode re-encoded: %v", err)
		}
		// Compared as encoded: an empty list and a missing one (omitempty)
		// are the same command.
		b3, err := Encode(cmd2.(Command))
		if err != nil {
			t.Fatalf("re-encode again: %v", err)
		}
		if !bytes.Equal(b2, b3) {
			t.Fatalf("round trip changed the command:\n%#v\n%#v", cmd, cmd2)
		}
	})
}

const goldenCommands = "testdata/commands-v1.txt"

// TestGoldenCommands pins the log entry format: every committed entry
// must stay decodable by later builds. Each line of the golden file is
// the type number, a space and the JSON payload of one sample command.
func TestGoldenCommands(t *testing.T) {
	var want strings.Builder
	for _, cmd := range sampleCommands() {
		b, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&want, "%d %s\n", b[0], b[1:])
	}
	if *update {
		if err := os.WriteFile(goldenCommands, []byte(want.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(goldenCommands)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(golden), "\n"), "\n")
	samples := sampleCommands()
	if len(lines) != len(samples) {
		t.Fatalf("%s has %d lines, want %d", goldenCommands, len(lines), len(samples))
	}
	for i, line := range lines {
		num, payload, _ := strings.Cut(line, " ")
		typ, err := strconv.ParseUint(num, 10, 8)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		_, cmd, err := Decode(append([]byte{byte(typ)}, payload...))
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(cmd, samples[i]) {
			t.Errorf("line %d decodes to %#v, want %#v", i+1, cmd, samples[i])
		}
	}
	if string(golden) != want.String() {
		t.Errorf("encoding the samples differs from %s: the command format "+
			"changed; add a new CommandType instead", goldenCommands)
	}
}
