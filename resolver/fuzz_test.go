package resolver

import (
	"encoding/json"
	"testing"

	"mirrord/consensus/state"
)

// fuzzApp is a fixed app with a channel for most branches: gates of
// every kind, the builtin bundle, an encrypted release, a missing
// release, and device overrides.
func fuzzApp() *state.AppState {
	app := newTestApp()
	app.Releases["1.0.1"].MinNative = "1.0"
	app.Releases["build-42"] = testRelease("build-42")
	app.Releases["0.1.0"] = &state.Release{App: testAppID, Version: "0.1.0"} // no zip, no manifest
	addChannel(app, "builtin", "", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	addChannel(app, "encrypted", "1.0.3", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	addChannel(app, "missing", "9.9.9", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	addChannel(app, "empty", "0.1.0", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	addChannel(app, "odd", "build-42", func(c *state.Channel) {
		c.AllowDeviceSelfSet, c.DisableAutoUpdate = true, state.DisableVersionNumber
	})
	addChannel(app, "strict", "2.0.0", func(c *state.Channel) {
		c.AllowDeviceSelfSet, c.DisableAutoUpdate = true, state.DisablePatch
		c.AllowDev, c.AllowEmulator, c.IOS = false, false, false
	})
	addChannel(app, "versioned", "1.0.1", func(c *state.Channel) {
		c.AllowDeviceSelfSet, c.DisableAutoUpdate = true, state.DisableVersionNumber
	})
	addChannel(app, "weird", "1.1.0", func(c *state.Channel) {
		c.AllowDeviceSelfSet, c.DisableAutoUpdate = true, "sometimes"
	})
	app.Devices[devA] = state.DeviceOverride{Channel: "private"}
	app.Devices[devB] = state.DeviceOverride{Channel: "gone"}
	return app
}

// FuzzResolve decodes arbitrary JSON into a Request and resolves it:
// Resolve and the channel_self answers never panic, every error has a
// kind of the three, a message, and a release exactly on success.
func FuzzResolve(f *testing.F) {
	seeds := []string{
		`{}`,
		`null`,
		`{"platform":"android","device_id":"8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f","app_id":"com.example.app",` +
			`"version_build":"1.0.0","version_name":"builtin","plugin_version":"8.51.23","is_prod":true}`,
		`{"platform":"ios","device_id":"00000000-0000-4000-8000-000000000001","app_id":"com.example.app",` +
			`"version_build":"1","version_name":"1.0.1","plugin_version":"6.0.0","is_emulator":true}`,
		`{"platform":"electron","version_build":"v2.0-rc.1","version_name":"","plugin_version":"8.40.7",` +
			`"defaultChannel":"encrypted","key_id":"MIIB"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"strict","is_prod":false}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"builtin"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"5.0.0","defaultChannel":"builtin"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"versioned"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"odd"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"weird"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"missing"}`,
		`{"platform":"android","version_build":"1.0.0","plugin_version":"8.51.23","defaultChannel":"empty"}`,
		`{"platform":"android","version_build":"unknown","plugin_version":"4.0.0"}`,
		`{"platform":"web","version_build":"1.0.0","plugin_version":"x"}`,
		`{"version_build":"18446744073709551616","plugin_version":"99999999999999999999.0.0"}`,
		`{"channel":"beta","plugin_version":"5.0.0","device_id":"8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	app := fuzzApp()
	f.Fuzz(func(t *testing.T, data []byte) {
		var req Request
		if err := json.Unmarshal(data, &req); err != nil {
			return
		}
		req.Validate()
		req.ValidateQuery(false)
		for _, a := range []*state.AppState{app, nil} {
			d := Resolve(a, req)
			if d.Error != "" {
				switch d.Kind {
				case KindUpToDate, KindBlocked, KindFailed:
				default:
					t.Fatalf("error %q with kind %q", d.Error, d.Kind)
				}
				if d.Message == "" {
					t.Fatalf("error %q without message", d.Error)
				}
			} else if d.Kind != "" || d.Version == "" || d.Channel == "" {
				t.Fatalf("bad success %+v", d)
			}
			if (d.Release != nil) != (d.Error == "") {
				t.Fatalf("release %v with error %q", d.Release != nil, d.Error)
			}
			if d.Release != nil && a.Releases[d.Version] != d.Release {
				t.Fatalf("served %q but release %q", d.Version, d.Release.Version)
			}
			for _, ans := range []ChannelAnswer{
				ChannelSet(a, req), ChannelGet(a, req), ChannelList(a, req), ChannelDelete(a, req),
			} {
				if ans.Status != 200 {
					t.Fatalf("status %d", ans.Status)
				}
				if _, err := json.Marshal(ans.Payload()); err != nil {
					t.Fatal(err)
				}
				if ans.SetOverride != nil && ans.DeleteOverride {
					t.Fatalf("both set and delete: %+v", ans)
				}
			}
		}
	})
}
