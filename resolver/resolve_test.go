package resolver

import (
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

// resolveCase is one request to Resolve and the Decision it must give.
type resolveCase struct {
	name        string
	nilApp      bool
	app         func(*state.AppState)
	req         func(*Request)
	want        Decision // Release is checked through wantRelease
	wantRelease string
}

func TestResolve(t *testing.T) {
	// The cases in Capgo's order: up to step 7 here, the gates (steps 8
	// and 9) in resolve_gates_test.go.
	tests := append(append([]resolveCase{}, resolveCases...), gateCases...)
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

// resolveCases are the cases of TestResolve up to step 7.
var resolveCases = []resolveCase{
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
}
