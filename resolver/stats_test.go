package resolver

import (
	"testing"

	"mirrord/consensus/state"
)

// TestPluginReportsNoUpdateAsFailure pins Capgo's shouldRecordStatsAction
// thresholds: 7.17.0 on major 7 and above, 6.14.25 on major 6, never
// below, and never for a plugin_version that is not a version.
func TestPluginReportsNoUpdateAsFailure(t *testing.T) {
	tests := []struct {
		plugin string
		legacy bool
	}{
		{"", true},
		{"garbage", true},
		{"7.17", true},
		{"unknown", true},
		{"2.3.3", true},
		{"4.99.99", true},
		{"5.99.0", true},
		{"6.0.0", true},
		{"6.14.24", true},
		{"6.14.25-beta.1", true},
		{"6.14.25", false},
		{"6.15.0", false},
		{"6.99.0", false},
		{"7.0.0", true},
		{"7.16.9", true},
		{"7.17.0-rc.1", true},
		{"7.17.0", false},
		{"7.17.1", false},
		{"7.50.1", false},
		{"8.0.0", false},
		{"8.0.0-alpha.1", false},
		{"8.51.23", false},
		{"v8.51.23", false},
		{"9.0.0", false},
	}
	for _, tt := range tests {
		if got := PluginReportsNoUpdateAsFailure(tt.plugin); got != tt.legacy {
			t.Errorf("PluginReportsNoUpdateAsFailure(%q) = %v, want %v", tt.plugin, got, tt.legacy)
		}
	}
}

func TestClassifyStat(t *testing.T) {
	app := &state.AppState{App: state.App{ID: "com.example.app"}, Releases: map[string]*state.Release{
		"1.0.1": {App: "com.example.app", Version: "1.0.1"},
		"2.0":   {App: "com.example.app", Version: "2.0"},
	}}
	counted := StatVerdict{Count: true}
	legacy := StatVerdict{Ignored: IgnoredLegacyDownloadFail}
	notFound := StatVerdict{Ignored: IgnoredVersionNotFound, Error: CodeVersionNotFound}
	tests := []struct {
		name string
		stat Stat
		want StatVerdict
	}{
		{"install of a release", Stat{Action: "set", VersionName: "1.0.1", PluginVersion: "8.51.23"}, counted},
		{"failure of a release", Stat{Action: "update_fail", VersionName: "1.0.1", PluginVersion: "8.51.23"}, counted},
		{"download_fail from 8.51", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "8.51.23"}, counted},
		{"download_fail from 7.17.0", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "7.17.0"}, counted},
		{"download_fail from 6.14.25", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "6.14.25"}, counted},
		{"legacy download_fail 7.16.9", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "7.16.9"}, legacy},
		{"legacy download_fail 6.14.24", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "6.14.24"}, legacy},
		{"legacy download_fail 5.x", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "5.50.1"}, legacy},
		{"legacy download_fail, no plugin_version", Stat{Action: "download_fail", VersionName: "1.0.1"}, legacy},
		{"legacy download_fail, plugin_version not a version", Stat{Action: "download_fail", VersionName: "1.0.1", PluginVersion: "latest"}, legacy},
		{"legacy download_fail about a version the app lacks: still only ignored",
			Stat{Action: "download_fail", VersionName: "9.9.9", PluginVersion: "7.16.9"}, legacy},
		{"other failures from old plugins count", Stat{Action: "update_fail", VersionName: "1.0.1", PluginVersion: "7.16.9"}, counted},
		{"download_complete from old plugins counts", Stat{Action: "download_complete", VersionName: "1.0.1", PluginVersion: "6.0.0"}, counted},
		{"file-level failure of a release", Stat{Action: "download_manifest_file_fail", VersionName: "1.0.1:js/app.js", PluginVersion: "8.51.23"}, counted},
		{"file-level failure of an unknown version", Stat{Action: "download_manifest_file_fail", VersionName: "1.0.9:js/app.js", PluginVersion: "8.51.23"}, notFound},
		{"leading colon is not a file-level name", Stat{Action: "set", VersionName: ":1.0.1", PluginVersion: "8.51.23"}, notFound},
		{"unknown version", Stat{Action: "set", VersionName: "1.0.9", PluginVersion: "8.51.23"}, notFound},
		{"unknown version, unknown action", Stat{Action: "made_up", VersionName: "1.0.9", PluginVersion: "8.51.23"}, notFound},
		{"builtin", Stat{Action: "app_moved_to_foreground", VersionName: "builtin", VersionBuild: "1.0.0", PluginVersion: "8.51.23"}, counted},
		{"unknown names the builtin too", Stat{Action: "reset", VersionName: "unknown", PluginVersion: "8.51.23"}, counted},
		{"no version name", Stat{Action: "app_launch_start", VersionName: "", PluginVersion: "8.51.23"}, counted},
		{"native version as Android 8.51.23 sends it", Stat{Action: "app_moved_to_foreground", VersionName: "3.1", VersionBuild: "3.1", PluginVersion: "8.51.23"}, counted},
		{"native version, coerced", Stat{Action: "app_moved_to_foreground", VersionName: "3.1.0", VersionBuild: "3.1", PluginVersion: "8.51.23"}, counted},
		{"native version, other spelling", Stat{Action: "app_moved_to_foreground", VersionName: "3.1", VersionBuild: "3.1.0", PluginVersion: "8.51.23"}, counted},
		{"not the native version", Stat{Action: "app_moved_to_foreground", VersionName: "3.2", VersionBuild: "3.1", PluginVersion: "8.51.23"}, notFound},
		{"native version without version_build", Stat{Action: "set", VersionName: "3.1", PluginVersion: "8.51.23"}, notFound},
		{"release named like a short version", Stat{Action: "set", VersionName: "2.0", PluginVersion: "8.51.23"}, counted},
	}
	for _, tt := range tests {
		if got := ClassifyStat(app, tt.stat); got != tt.want {
			t.Errorf("%s: ClassifyStat(%+v) = %+v, want %+v", tt.name, tt.stat, got, tt.want)
		}
	}
}

func TestValidVersionBuild(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "1.0.0": true, "0.0.0": true, "10.20.30": true, "1": true, "1.2": true, "v1.2.3": true,
		"1.2.3-rc.1": true, "1.2.3+42": true,
		"unknown": false, "1.0 (42)": false, "1.2.3.4": false, "a.b.c": false, "01.2.3": false, "1..2": false,
		"1.0.0-": false, " 1.0.0": false,
	} {
		if got := ValidVersionBuild(s); got != want {
			t.Errorf("ValidVersionBuild(%q) = %v, want %v", s, got, want)
		}
	}
	for s, want := range map[string]bool{
		"1.0.0": true, "0.10.0": true, "1.0": false, "01.0.0": false, "1.0.00": false, "1.0.0.": false, ".1.0": false, "1.0.x": false,
	} {
		if got := isPlainSemver(s); got != want {
			t.Errorf("isPlainSemver(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestCheckOrder pins Capgo's order of body checks: device_id, app_id,
// version_build, then the formats, then the platform.
func TestCheckOrder(t *testing.T) {
	full := Request{DeviceID: devA, AppID: "com.example.app", VersionBuild: "1.0.0", Platform: "android"}
	tests := []struct {
		name   string
		checks Checks
		edit   func(*Request)
		want   string
	}{
		{"ok body", ChannelBodyChecks, func(*Request) {}, ""},
		{"ok list", ChannelListChecks, func(*Request) {}, ""},
		{"semver on channel body", ChannelBodyChecks, func(r *Request) { r.VersionBuild = "1.0 (42)" }, CodeSemver},
		{"unknown version_build on channel body", ChannelBodyChecks, func(r *Request) { r.VersionBuild = "unknown" }, CodeSemver},
		{"short version_build is fine", ChannelBodyChecks, func(r *Request) { r.VersionBuild = "2" }, ""},
		{"no version_build is fine", ChannelBodyChecks, func(r *Request) { r.VersionBuild = "" }, ""},
		{"updates leave version_build to Resolve", UpdateChecks, func(r *Request) { r.VersionBuild = "x" }, ""},
		{"semver on delete query", ChannelDeleteChecks, func(r *Request) { r.VersionBuild = "x" }, CodeSemver},
		{"semver on list query", ChannelListChecks, func(r *Request) { r.VersionBuild = "x" }, CodeSemver},
		{"missing device before semver", ChannelBodyChecks, func(r *Request) { r.DeviceID, r.VersionBuild = "", "x" }, CodeMissingDeviceID},
		{"missing app before semver", ChannelBodyChecks, func(r *Request) { r.AppID, r.VersionBuild = "", "x" }, CodeMissingAppID},
		{"semver before device format", ChannelBodyChecks, func(r *Request) { r.DeviceID, r.VersionBuild = "nope", "x" }, CodeSemver},
		{"semver before app format", ChannelBodyChecks, func(r *Request) { r.AppID, r.VersionBuild = "nope", "x" }, CodeSemver},
		{"list needs no device", ChannelListChecks, func(r *Request) { r.DeviceID = "" }, ""},
		{"list platform missing", ChannelListChecks, func(r *Request) { r.Platform = "" }, CodeInvalidQueryParams},
		{"list platform unknown", ChannelListChecks, func(r *Request) { r.Platform = "windows" }, CodeInvalidQueryParams},
		{"list platform case matters", ChannelListChecks, func(r *Request) { r.Platform = "iOS" }, CodeInvalidQueryParams},
		{"list electron", ChannelListChecks, func(r *Request) { r.Platform = "electron" }, ""},
		{"app format before platform", ChannelListChecks, func(r *Request) { r.AppID, r.Platform = "nope", "x" }, CodeInvalidQueryParams},
		{"body platform left to the channel answer", ChannelBodyChecks, func(r *Request) { r.Platform = "windows" }, ""},
	}
	for _, tt := range tests {
		r := full
		tt.edit(&r)
		got := r.Check(tt.checks)
		if got.Code != tt.want || (got.Code == "") != (got.Message == "") {
			t.Errorf("%s: Check = %+v, want code %q", tt.name, got, tt.want)
		}
		if got.Code == CodeSemver && got.MoreInfo["version_build"] != r.VersionBuild {
			t.Errorf("%s: moreInfo %v", tt.name, got.MoreInfo)
		}
	}
}
