package main

import (
	"encoding/json"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

// TestChannelPatchTags: every channel setting has a wire name and a
// `channel set` flag, so a new field reaches the admin API, the raft
// command and the CLI at once.
func TestChannelPatchTags(t *testing.T) {
	typ := reflect.TypeFor[state.ChannelPatch]()
	if len(channelFlags) != typ.NumField() {
		t.Fatalf("%d channel flags for %d fields of state.ChannelPatch", len(channelFlags), typ.NumField())
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("json") == "" || f.Tag.Get("flag") == "" || f.Tag.Get("help") == "" {
			t.Errorf("state.ChannelPatch.%s lacks a json, flag or help tag", f.Name)
		}
	}
}

func TestChannelSetFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // the settings' JSON
		err  string
	}{
		{nil, `{}`, ""},
		{[]string{"--version", "1.0.0"}, `{"version":"1.0.0"}`, ""},
		{[]string{"--public=", "--ios=false"}, `{"public":true,"ios":false}`, ""},
		{[]string{"--allow-device-self-set", "true", "--disable-auto-update", "minor"},
			`{"allow_device_self_set":true,"disable_auto_update":"minor"}`, ""},
		{[]string{"--disable-auto-update-under-native=1"}, `{"disable_auto_update_under_native":true}`, ""},
		{[]string{"--android=maybe"}, "", `--android="maybe": want true or false`},
		{[]string{"--disable-auto-update", "sometimes"}, "", `--disable-auto-update "sometimes": want major`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("channel set", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			var o channelSetOptions
			o.bind(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			s, err := o.settings(&cmdEnv{fs: fs})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(s)
			if string(b) != tc.want {
				t.Fatalf("settings = %s, want %s", b, tc.want)
			}
		})
	}
}
