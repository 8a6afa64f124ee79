package resolver

import (
	"encoding/json"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

// gateCases are the cases of TestResolve for the channel gates (step 8)
// and the builtin answers (step 9).
var gateCases = []resolveCase{
	// Step 8: platform flags (reachable through an override).
	{
		name: "android disabled",
		app:  all(override("production"), prod(func(c *state.Channel) { c.Android = false })),
		req:  func(r *Request) { r.VersionName = "0.9.0" },
		want: Decision{Error: CodeDisabledAndroid, Version: "1.0.1", Old: "0.9.0", Channel: "production"},
	},
	{
		name: "ios disabled",
		app:  all(override("production"), prod(func(c *state.Channel) { c.IOS = false })),
		req:  func(r *Request) { r.Platform = "ios" },
		want: Decision{Error: CodeDisabledIOS, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "electron disabled",
		app:  all(override("production"), prod(func(c *state.Channel) { c.Electron = false })),
		req:  func(r *Request) { r.Platform = "electron" },
		want: Decision{Error: CodeDisabledElectron, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "platform gate comes first",
		app: all(override("production"), setVersion("production", "2.0.0"),
			prod(func(c *state.Channel) { c.Android, c.AllowProd = false, false })),
		want: Decision{Error: CodeDisabledAndroid, Version: "2.0.0", Old: "1.0.0", Channel: "production"},
	},

	// Step 8: disable_auto_update.
	{
		name: "major",
		app:  setVersion("production", "2.0.0"),
		want: Decision{Error: CodeDisableMajor, Version: "2.0.0", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name: "major: old is the coerced native version",
		app:  setVersion("production", "2.0.0"),
		req:  func(r *Request) { r.VersionBuild, r.VersionName = "v1.2", "1.0.1" },
		want: Decision{Error: CodeDisableMajor, Version: "2.0.0", Old: "1.2.0", Major: true, Channel: "production"},
	},
	{
		name:        "major allows a newer minor",
		app:         setVersion("production", "1.1.0"),
		want:        Decision{Version: "1.1.0", Channel: "production"},
		wantRelease: "1.1.0",
	},
	{
		name: "major allows a prerelease of the native major",
		app: func(a *state.AppState) {
			a.Releases["1.5.0-rc.1"] = testRelease("1.5.0-rc.1")
			setVersion("production", "1.5.0-rc.1")(a)
		},
		want:        Decision{Version: "1.5.0-rc.1", Channel: "production"},
		wantRelease: "1.5.0-rc.1",
	},
	{
		name: "major blocks a prerelease of the next major",
		app: func(a *state.AppState) {
			a.Releases["2.0.0-rc.1"] = testRelease("2.0.0-rc.1")
			setVersion("production", "2.0.0-rc.1")(a)
		},
		want: Decision{Error: CodeDisableMajor, Version: "2.0.0-rc.1", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name: "major comes before the prod gate",
		app:  all(setVersion("production", "2.0.0"), prod(func(c *state.Channel) { c.AllowProd = false })),
		want: Decision{Error: CodeDisableMajor, Version: "2.0.0", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name: "major gate skipped for a bundle name that is not semver",
		app: func(a *state.AppState) {
			a.Releases["build-42"] = testRelease("build-42")
			setVersion("production", "build-42")(a)
		},
		want:        Decision{Version: "build-42", Channel: "production"},
		wantRelease: "build-42",
	},
	{
		name:        "none",
		app:         all(setVersion("production", "2.0.0"), prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableNone })),
		want:        Decision{Version: "2.0.0", Channel: "production"},
		wantRelease: "2.0.0",
	},
	{
		name:        "unknown disable_auto_update value counts as none",
		app:         all(setVersion("production", "2.0.0"), prod(func(c *state.Channel) { c.DisableAutoUpdate = "" })),
		want:        Decision{Version: "2.0.0", Channel: "production"},
		wantRelease: "2.0.0",
	},
	{
		name: "minor",
		app:  all(setVersion("production", "1.1.0"), prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableMinor })),
		want: Decision{Error: CodeDisableMinor, Version: "1.1.0", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name:        "minor allows a patch",
		app:         prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableMinor }),
		want:        Decision{Version: "1.0.1", Channel: "production"},
		wantRelease: "1.0.1",
	},
	{
		name: "minor blocks a lower major",
		app: prod(func(c *state.Channel) {
			c.DisableAutoUpdate, c.DisableAutoUpdateUnderNative = state.DisableMinor, false
		}),
		req:  func(r *Request) { r.VersionBuild = "2.0" },
		want: Decision{Error: CodeDisableMinor, Version: "1.0.1", Old: "2.0.0", Major: true, Channel: "production"},
	},
	{
		name: "patch",
		app:  prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisablePatch }),
		want: Decision{Error: CodeDisablePatch, Version: "1.0.1", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name:        "patch allows the same patch",
		app:         all(setVersion("production", "1.0.0"), prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisablePatch })),
		req:         func(r *Request) { r.VersionName = "0.9.0" },
		want:        Decision{Version: "1.0.0", Channel: "production"},
		wantRelease: "1.0.0",
	},
	{
		name: "version_number without min_native",
		app:  prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableVersionNumber }),
		want: Decision{Error: CodeMisconfiguredChannel, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "version_number with a bad min_native",
		app: all(prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableVersionNumber }),
			func(a *state.AppState) { a.Releases["1.0.1"].MinNative = "one" }),
		want: Decision{Error: CodeMisconfiguredChannel, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "version_number above native",
		app: all(prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableVersionNumber }),
			func(a *state.AppState) { a.Releases["1.0.1"].MinNative = "1.1" }),
		want: Decision{Error: CodeDisableMetadata, Version: "1.0.1", Old: "1.0.0", Major: true, Channel: "production"},
	},
	{
		name: "version_number equal to native",
		app: all(prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableVersionNumber }),
			func(a *state.AppState) { a.Releases["1.0.1"].MinNative = "1.0" }),
		want:        Decision{Version: "1.0.1", Channel: "production"},
		wantRelease: "1.0.1",
	},
	{
		name: "version_number applies to a bundle name that is not semver",
		app: func(a *state.AppState) {
			a.Releases["build-42"] = testRelease("build-42")
			setVersion("production", "build-42")(a)
			a.Channels["production"].DisableAutoUpdate = state.DisableVersionNumber
		},
		want: Decision{Error: CodeMisconfiguredChannel, Version: "build-42", Old: "1.0.0", Channel: "production"},
	},

	// Step 8: under native.
	{
		name: "under native",
		app:  setVersion("production", "0.9.0"),
		want: Decision{Error: CodeDisableUnderNative, Version: "0.9.0", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "under native: old is the running version_name",
		app:  setVersion("production", "0.9.0"),
		req:  func(r *Request) { r.VersionName = "1.0.1" },
		want: Decision{Error: CodeDisableUnderNative, Version: "0.9.0", Old: "1.0.1", Channel: "production"},
	},
	{
		name: "under native: a prerelease of the native version is under it",
		app: func(a *state.AppState) {
			a.Releases["1.0.0-beta.1"] = testRelease("1.0.0-beta.1")
			setVersion("production", "1.0.0-beta.1")(a)
		},
		want: Decision{Error: CodeDisableUnderNative, Version: "1.0.0-beta.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name:        "under native allowed",
		app:         all(setVersion("production", "0.9.0"), prod(func(c *state.Channel) { c.DisableAutoUpdateUnderNative = false })),
		want:        Decision{Version: "0.9.0", Channel: "production"},
		wantRelease: "0.9.0",
	},
	{
		name: "under native comes before the prod gate",
		app:  all(setVersion("production", "0.9.0"), prod(func(c *state.Channel) { c.AllowProd = false })),
		want: Decision{Error: CodeDisableUnderNative, Version: "0.9.0", Old: "1.0.0", Channel: "production"},
	},

	// Step 8: build and device kinds.
	{
		name: "prod build disabled",
		app:  prod(func(c *state.Channel) { c.AllowProd = false }),
		want: Decision{Error: CodeDisableProdBuild, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "dev build disabled",
		app:  prod(func(c *state.Channel) { c.AllowDev = false }),
		req:  func(r *Request) { r.IsProd = false },
		want: Decision{Error: CodeDisableDevBuild, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name:        "dev builds disabled does not block prod",
		app:         prod(func(c *state.Channel) { c.AllowDev = false }),
		want:        Decision{Version: "1.0.1", Channel: "production"},
		wantRelease: "1.0.1",
	},
	{
		name: "physical devices disabled",
		app:  prod(func(c *state.Channel) { c.AllowDevice = false }),
		want: Decision{Error: CodeDisableDevice, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "emulators disabled",
		app:  prod(func(c *state.Channel) { c.AllowEmulator = false }),
		req:  func(r *Request) { r.IsEmulator = true },
		want: Decision{Error: CodeDisableEmulator, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},
	{
		name:        "emulators disabled does not block devices",
		app:         prod(func(c *state.Channel) { c.AllowEmulator = false }),
		want:        Decision{Version: "1.0.1", Channel: "production"},
		wantRelease: "1.0.1",
	},
	{
		name: "prod gate comes before the device gate",
		app:  prod(func(c *state.Channel) { c.AllowProd, c.AllowDevice = false, false }),
		want: Decision{Error: CodeDisableProdBuild, Version: "1.0.1", Old: "1.0.0", Channel: "production"},
	},

	// Step 9: builtin.
	{
		name: "builtin channel, device on builtin",
		app:  setVersion("production", ""),
		want: Decision{Error: CodeAlreadyOnBuiltin, Channel: "production"},
	},
	{
		name: "builtin channel, device on a bundle",
		app:  setVersion("production", "builtin"),
		req:  func(r *Request) { r.VersionName = "1.0.1" },
		want: Decision{Error: CodeAlreadyOnBuiltin, Version: "builtin", Channel: "production"},
	},
	{
		name: "builtin channel, plugin 6.2.0",
		app:  setVersion("production", ""),
		req:  func(r *Request) { r.PluginVersion, r.VersionName = "6.2.0", "1.0.1" },
		want: Decision{Error: CodeAlreadyOnBuiltin, Version: "builtin", Channel: "production"},
	},
	{
		name: "builtin channel, plugin too old",
		app:  setVersion("production", ""),
		req:  func(r *Request) { r.PluginVersion = "5.50.1" },
		want: Decision{Error: CodeRevertTooOld, Channel: "production"},
	},
	{
		name: "builtin channel, no plugin version",
		app:  setVersion("production", ""),
		req:  func(r *Request) { r.PluginVersion = "" },
		want: Decision{Error: CodeRevertTooOld, Channel: "production"},
	},
	{
		name: "builtin channel skips version gates",
		app:  all(setVersion("production", ""), prod(func(c *state.Channel) { c.DisableAutoUpdate = state.DisableVersionNumber })),
		req:  func(r *Request) { r.VersionBuild = "9" },
		want: Decision{Error: CodeAlreadyOnBuiltin, Channel: "production"},
	},
	{
		name: "builtin channel still has the prod gate",
		app:  all(setVersion("production", ""), prod(func(c *state.Channel) { c.AllowProd = false })),
		want: Decision{Error: CodeDisableProdBuild, Version: "builtin", Old: "1.0.0", Channel: "production"},
	},
	{
		name: "builtin channel still has the platform gate",
		app:  all(override("production"), setVersion("production", ""), prod(func(c *state.Channel) { c.Android = false })),
		want: Decision{Error: CodeDisabledAndroid, Version: "builtin", Old: "1.0.0", Channel: "production"},
	},
}

// TestCheckGatesPrivateChannel covers the private-channel gate, which
// Resolve cannot reach: channel resolution only returns a channel that
// is neither public nor self-settable through a device override.
func TestCheckGatesPrivateChannel(t *testing.T) {
	app := newTestApp()
	native, _ := state.CoerceSemver("1.0.0")
	in := gateInput{
		channel:     app.Channels["private"],
		channelName: "private",
		platform:    "android",
		bundle:      "1.0.2",
		release:     app.Releases["1.0.2"],
		native:      native,
		nativeStr:   "1.0.0",
		current:     "1.0.0",
		isProd:      true,
	}
	d := checkGates(in)
	if d.Error != CodePrivateChannel || d.Kind != KindBlocked || d.Version != "" || d.Old != "" || d.Major {
		t.Errorf("private channel without override: %+v", d)
	}
	if !strings.Contains(d.Message, `"private"`) {
		t.Errorf("message does not name the channel: %q", d.Message)
	}
	in.viaOverride = true
	if d := checkGates(in); d.Error != "" {
		t.Errorf("private channel through an override: %+v", d)
	}
	in.viaOverride = false
	in.channel.AllowDeviceSelfSet = true
	if d := checkGates(in); d.Error != "" {
		t.Errorf("self-settable channel: %+v", d)
	}

	// The major gate comes before it.
	in.channel.AllowDeviceSelfSet = false
	in.bundle, in.release = "2.0.0", app.Releases["2.0.0"]
	if d := checkGates(in); d.Error != CodeDisableMajor {
		t.Errorf("major before private: %+v", d)
	}
}

// TestResolveDoesNotModifyApp checks that Resolve leaves the shared,
// immutable state alone.
func TestResolveDoesNotModifyApp(t *testing.T) {
	app := newTestApp()
	app.Devices[devA] = state.DeviceOverride{Channel: "beta"}
	before, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	req := baseRequest()
	req.DeviceID = strings.ToUpper(devA)
	for _, r := range []Request{req, baseRequest(), {}} {
		Resolve(app, r)
		ChannelSet(app, r)
		ChannelGet(app, r)
		ChannelList(app, r)
		ChannelDelete(app, r)
	}
	after, _ := json.Marshal(app)
	if string(before) != string(after) {
		t.Errorf("state changed:\n%s\n%s", before, after)
	}
}
