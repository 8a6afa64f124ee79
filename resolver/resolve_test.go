package resolver

import (
	"encoding/json"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

// setVersion points a channel at a bundle.
func setVersion(name, version string) func(*state.AppState) {
	return func(a *state.AppState) { a.Channels[name].Version = version }
}

// override pins devA to a channel.
func override(channel string) func(*state.AppState) {
	return func(a *state.AppState) { a.Devices[devA] = state.DeviceOverride{Channel: channel} }
}

// prod edits the production channel.
func prod(f func(*state.Channel)) func(*state.AppState) {
	return func(a *state.AppState) { f(a.Channels["production"]) }
}

// all applies several app edits in order.
func all(fs ...func(*state.AppState)) func(*state.AppState) {
	return func(a *state.AppState) {
		for _, f := range fs {
			f(a)
		}
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name        string
		nilApp      bool
		app         func(*state.AppState)
		req         func(*Request)
		want        Decision // Release is checked through wantRelease
		wantRelease string
	}{
		// Success and channel resolution.
		{
			name:        "public channel",
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name:        "device on an earlier bundle",
			req:         func(r *Request) { r.VersionName = "1.0.0" },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name:        "version_name unknown is a plain name",
			req:         func(r *Request) { r.VersionName = "unknown" },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name:        "first public channel by name",
			app:         func(a *state.AppState) { addChannel(a, "alpha", "1.0.2", func(c *state.Channel) { c.Public = true }) },
			want:        Decision{Version: "1.0.2", Channel: "alpha"},
			wantRelease: "1.0.2",
		},
		{
			name: "public channel of the device platform",
			app: all(
				prod(func(c *state.Channel) { c.IOS = false }),
				func(a *state.AppState) {
					addChannel(a, "ios-prod", "1.0.2", func(c *state.Channel) { c.Public, c.Android = true, false })
				}),
			req:         func(r *Request) { r.Platform = "ios" },
			want:        Decision{Version: "1.0.2", Channel: "ios-prod"},
			wantRelease: "1.0.2",
		},
		{
			name: "no public channel",
			app:  prod(func(c *state.Channel) { c.Public = false }),
			want: Decision{Error: CodeNoChannel},
		},
		{
			name: "public channel has the platform disabled",
			app:  prod(func(c *state.Channel) { c.Android = false }),
			want: Decision{Error: CodeNoChannel},
		},
		{
			name:        "defaultChannel self-settable",
			req:         func(r *Request) { r.DefaultChannel = "beta" },
			want:        Decision{Version: "1.1.0", Channel: "beta"},
			wantRelease: "1.1.0",
		},
		{
			name:        "defaultChannel public",
			req:         func(r *Request) { r.DefaultChannel = "production" },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name: "defaultChannel unknown does not fall back",
			req:  func(r *Request) { r.DefaultChannel = "nope" },
			want: Decision{Error: CodeNoChannel},
		},
		{
			name: "defaultChannel is case-sensitive",
			req:  func(r *Request) { r.DefaultChannel = "Beta" },
			want: Decision{Error: CodeNoChannel},
		},
		{
			name: "defaultChannel private",
			req:  func(r *Request) { r.DefaultChannel = "private" },
			want: Decision{Error: CodeNoChannel},
		},
		{
			name: "defaultChannel with the platform disabled",
			app:  func(a *state.AppState) { a.Channels["beta"].Android = false },
			req:  func(r *Request) { r.DefaultChannel = "beta" },
			want: Decision{Error: CodeNoChannel},
		},
		{
			name:        "override wins over defaultChannel, even private",
			app:         override("private"),
			req:         func(r *Request) { r.DefaultChannel = "beta" },
			want:        Decision{Version: "1.0.2", Channel: "private"},
			wantRelease: "1.0.2",
		},
		{
			name:        "override found for an upper-case device id",
			app:         override("private"),
			req:         func(r *Request) { r.DeviceID = strings.ToUpper(devA) },
			want:        Decision{Version: "1.0.2", Channel: "private"},
			wantRelease: "1.0.2",
		},
		{
			name:        "override of another device is ignored",
			app:         func(a *state.AppState) { a.Devices[devB] = state.DeviceOverride{Channel: "private"} },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name:        "override naming a missing channel is ignored",
			app:         override("gone"),
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},

		// Steps 1 to 3.
		{
			name:   "unknown app",
			nilApp: true,
			want:   Decision{Error: CodeAppNotFound},
		},
		{
			name: "version_build unknown",
			req:  func(r *Request) { r.VersionBuild = "unknown" },
			want: Decision{Error: CodeUnknownVersionBuild},
		},
		{
			name: "version_build not semver",
			req:  func(r *Request) { r.VersionBuild = "1.0.0.1" },
			want: Decision{Error: CodeSemver},
		},
		{
			name: "version_build empty",
			req:  func(r *Request) { r.VersionBuild = "" },
			want: Decision{Error: CodeSemver},
		},
		{
			name:        "version_build coerced",
			req:         func(r *Request) { r.VersionBuild = "v1" },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name: "plugin version not semver",
			req:  func(r *Request) { r.PluginVersion = "8.51" },
			want: Decision{Error: CodeSemver},
		},
		{
			name: "plugin v4",
			req:  func(r *Request) { r.PluginVersion = "4.13.9" },
			want: Decision{Error: CodeUnsupportedPlugin},
		},
		{
			name: "v4 check comes after the native version",
			req:  func(r *Request) { r.PluginVersion, r.VersionBuild = "4.0.0", "x" },
			want: Decision{Error: CodeSemver},
		},
		{
			name:        "missing plugin version is an old plugin",
			req:         func(r *Request) { r.PluginVersion = "" },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name: "missing platform",
			req:  func(r *Request) { r.Platform = "" },
			want: Decision{Error: CodeMissingInfo},
		},
		{
			name: "unknown platform",
			req:  func(r *Request) { r.Platform = "web" },
			want: Decision{Error: CodeMissingInfo},
		},

		// Step 5.
		{
			name: "channel names a missing release",
			app:  setVersion("production", "3.0.0"),
			want: Decision{Error: CodeNoBundle, Channel: "production"},
		},
		{
			name: "release without zip or manifest",
			app:  func(a *state.AppState) { a.Releases["1.0.1"].ZipCID = "" },
			want: Decision{Error: CodeNoBundle, Channel: "production"},
		},
		{
			name: "manifest-only release",
			app: func(a *state.AppState) {
				r := a.Releases["1.0.1"]
				r.ZipCID = ""
				r.Manifest = []state.ManifestFile{{FileName: "index.html", FileHash: "ab", CID: "bafy-f", Size: 2}}
			},
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},

		// Step 6: key_id.
		{
			name:        "encrypted release, matching key",
			app:         setVersion("production", "1.0.3"),
			req:         func(r *Request) { r.KeyID = strPtr(testKeyID) },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name: "encrypted release, other key",
			app:  setVersion("production", "1.0.3"),
			req:  func(r *Request) { r.KeyID = strPtr("MIIBCgKCAQEAotherKey") },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name: "encrypted release, device without key",
			app:  setVersion("production", "1.0.3"),
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name: "encrypted release, empty key_id is no key",
			app:  setVersion("production", "1.0.3"),
			req:  func(r *Request) { r.KeyID = strPtr("") },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name:        "encrypted release, plugin too old to send key_id",
			app:         setVersion("production", "1.0.3"),
			req:         func(r *Request) { r.PluginVersion = "7.50.0" },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name:        "encrypted release, old plugin key_id is not checked",
			app:         setVersion("production", "1.0.3"),
			req:         func(r *Request) { r.PluginVersion, r.KeyID = "6.40.0", strPtr("XXXX") },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name:        "encrypted release, short key_id of plugin 8.40.7",
			app:         setVersion("production", "1.0.3"),
			req:         func(r *Request) { r.PluginVersion, r.KeyID = "8.40.7", strPtr("MIIB") },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name:        "encrypted release, short key_id of plugin 7.50.1",
			app:         setVersion("production", "1.0.3"),
			req:         func(r *Request) { r.PluginVersion, r.KeyID = "7.50.1", strPtr("MIIB") },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name: "encrypted release, wrong short key_id",
			app:  setVersion("production", "1.0.3"),
			req:  func(r *Request) { r.PluginVersion, r.KeyID = "8.30.0", strPtr("XXXX") },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name: "encrypted release, short key_id after 8.40.7",
			app:  setVersion("production", "1.0.3"),
			req:  func(r *Request) { r.PluginVersion, r.KeyID = "8.40.8", strPtr("MIIB") },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name:        "encrypted release without key id uses the app's",
			app:         all(setVersion("production", "1.0.3"), func(a *state.AppState) { a.Releases["1.0.3"].KeyID = "" }),
			req:         func(r *Request) { r.KeyID = strPtr(testKeyID) },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name: "encrypted release without key id, app key differs",
			app:  all(setVersion("production", "1.0.3"), func(a *state.AppState) { a.Releases["1.0.3"].KeyID = "" }),
			req:  func(r *Request) { r.KeyID = strPtr("MIIBCgKCAQEAotherKey") },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name: "encrypted release, no key id known anywhere",
			app: all(setVersion("production", "1.0.3"), func(a *state.AppState) {
				a.Releases["1.0.3"].KeyID = ""
				a.App.KeyID = ""
			}),
			req:         func(r *Request) { r.KeyID = strPtr("anything") },
			want:        Decision{Version: "1.0.3", Channel: "production"},
			wantRelease: "1.0.3",
		},
		{
			name: "plain release, device with key",
			req:  func(r *Request) { r.KeyID = strPtr(testKeyID) },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name:        "plain release, key_id from a plugin that does not send it",
			req:         func(r *Request) { r.PluginVersion, r.KeyID = "5.49.0", strPtr(testKeyID) },
			want:        Decision{Version: "1.0.1", Channel: "production"},
			wantRelease: "1.0.1",
		},
		{
			name: "key check comes before no_new_version_available",
			app:  setVersion("production", "1.0.3"),
			req:  func(r *Request) { r.VersionName = "1.0.3" },
			want: Decision{Error: CodeKeyIDMismatch, Channel: "production"},
		},
		{
			name: "builtin bundle has no key check",
			app:  setVersion("production", ""),
			req:  func(r *Request) { r.KeyID = strPtr(testKeyID) },
			want: Decision{Error: CodeAlreadyOnBuiltin, Channel: "production"},
		},

		// Step 7.
		{
			name: "already on the bundle",
			req:  func(r *Request) { r.VersionName = "1.0.1" },
			want: Decision{Error: CodeNoNewVersion, Channel: "production"},
		},
		{
			name: "builtin stands for the native version",
			req:  func(r *Request) { r.VersionBuild = "1.0.1" },
			want: Decision{Error: CodeNoNewVersion, Channel: "production"},
		},
		{
			name: "empty version_name stands for the native version",
			req:  func(r *Request) { r.VersionBuild, r.VersionName = "1.0.1", "" },
			want: Decision{Error: CodeNoNewVersion, Channel: "production"},
		},
		{
			name: "no_new_version_available comes before the gates",
			app:  prod(func(c *state.Channel) { c.AllowProd = false }),
			req:  func(r *Request) { r.VersionName = "1.0.1" },
			want: Decision{Error: CodeNoNewVersion, Channel: "production"},
		},

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
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var app *state.AppState
			if !tt.nilApp {
				app = newTestApp()
				if tt.app != nil {
					tt.app(app)
				}
			}
			req := baseRequest()
			if tt.req != nil {
				tt.req(&req)
			}
			got := Resolve(app, req)
			checkInvariants(t, got)
			gotRelease := ""
			if got.Release != nil {
				gotRelease = got.Release.Version
			}
			if gotRelease != tt.wantRelease {
				t.Errorf("Release = %q, want %q", gotRelease, tt.wantRelease)
			}
			got.Release, got.Message, got.Kind = nil, "", ""
			if tt.want.Source == "" && got.Source == SourceChannel {
				got.Source = "" // the cases here are all about the channel's release
			}
			if got != tt.want {
				t.Errorf("Resolve() = %+v\n           want %+v", got, tt.want)
			}
		})
	}
}

// checkInvariants checks what holds for every Decision.
func checkInvariants(t *testing.T, d Decision) {
	t.Helper()
	if d.Kind != ResponseKind(d.Error) {
		t.Errorf("Kind = %q for %q, want %q", d.Kind, d.Error, ResponseKind(d.Error))
	}
	if d.Error != "" && d.Kind != KindUpToDate && d.Kind != KindBlocked && d.Kind != KindFailed {
		t.Errorf("Kind = %q", d.Kind)
	}
	if (d.Error == "") != (d.Message == "") {
		t.Errorf("Error %q with Message %q", d.Error, d.Message)
	}
	if (d.Release != nil) != (d.Error == "") {
		t.Errorf("Release %v with Error %q", d.Release != nil, d.Error)
	}
	if d.Error == "" && (d.Version == "" || d.Channel == "") {
		t.Errorf("success without Version or Channel: %+v", d)
	}
	if d.Revert {
		t.Errorf("Revert set: %+v", d)
	}
	wantMajor := d.Error == CodeDisableMajor || d.Error == CodeDisableMinor ||
		d.Error == CodeDisablePatch || d.Error == CodeDisableMetadata
	if d.Major != wantMajor {
		t.Errorf("Major = %v for %q", d.Major, d.Error)
	}
}

// TestCheckGatesPrivateChannel covers the private-channel gate, which
// Resolve cannot reach: channel resolution only returns a channel that
// is neither public nor self-settable through a device override.
func TestCheckGatesPrivateChannel(t *testing.T) {
	app := newTestApp()
	native, _ := CoerceSemver("1.0.0")
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
