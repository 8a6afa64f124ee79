package resolver

import (
	"strings"

	"mirrord/consensus/state"
)

// Codes of the stats endpoint (capgo-protocol section 6.2).
const (
	// CodeOnPremiseApp answers events for an app this cluster does not
	// have, as Capgo answers apps it does not host.
	CodeOnPremiseApp = "on_premise_app"
	// CodeVersionNotFound answers an event about a version the app does
	// not have.
	CodeVersionNotFound = "version_not_found"
	// CodeMixedAppIDs answers a batch whose events name different apps.
	CodeMixedAppIDs = "mixed_app_ids"
)

// Messages of those codes, Capgo's words.
const (
	MessageOnPremiseApp    = "On-premise app detected"
	MessageVersionNotFound = "Version not found"
	MessageMixedAppIDs     = "All events in a batch must have the same app_id"
)

// Markers of events kept in the raw event log but not counted.
const (
	// IgnoredLegacyDownloadFail: a download_fail from a plugin that sends
	// it when there was no new version (PluginReportsNoUpdateAsFailure).
	IgnoredLegacyDownloadFail = "legacy_download_fail"
	// IgnoredVersionNotFound: an event about a version the app does not
	// have (answered version_not_found).
	IgnoredVersionNotFound = "version_not_found"
)

// Stat is what the device API reads of one stats event.
type Stat struct {
	Action        string
	VersionName   string
	VersionBuild  string
	PluginVersion string
}

// StatVerdict is what to do with one well-formed stats event of a known
// app: count it (fleet counters, hence the halt policy) or not, what to
// mark it with in the raw event log ("" for a counted event), and the
// per-event error to answer ("" for ok).
type StatVerdict struct {
	Count   bool
	Ignored string
	Error   string
}

// ClassifyStat decides about one stats event of app (not nil), in
// Capgo's order (plugins/stats.ts post):
//
//  1. a download_fail from a plugin that also sends it when there was
//     no new version is kept only as ignored, and answered ok without
//     looking at its version (Capgo skips the version check for it);
//  2. the event's version (version_name, without the ":file" of
//     file-level failures) must be a release of the app, or name the
//     builtin bundle: "builtin", "unknown", "" (an event about no
//     bundle, which Resolve also reads as builtin) or the device's
//     native version_build, which Android 8.51.23 sends instead of
//     "builtin" ("2.0" and "2.0.0" are the same). Otherwise the answer
//     is version_not_found and the event is not counted;
//  3. everything else is counted (the fleet counters pick the actions
//     and the releases they keep), unknown actions included.
func ClassifyStat(app *state.AppState, s Stat) StatVerdict {
	if s.Action == "download_fail" && PluginReportsNoUpdateAsFailure(s.PluginVersion) {
		return StatVerdict{Ignored: IgnoredLegacyDownloadFail}
	}
	if !statVersionKnown(app, s.VersionName, s.VersionBuild) {
		return StatVerdict{Ignored: IgnoredVersionNotFound, Error: CodeVersionNotFound}
	}
	return StatVerdict{Count: true}
}

// statVersionKnown is step 2 of ClassifyStat.
func statVersionKnown(app *state.AppState, name, build string) bool {
	if i := strings.IndexByte(name, ':'); i > 0 {
		name = name[:i]
	}
	switch name {
	case "", state.Builtin, "unknown":
		return true
	}
	if app.Releases[name] != nil {
		return true
	}
	if build == "" {
		return false
	}
	if name == build {
		return true
	}
	nv, ok1 := state.CoerceSemver(name)
	bv, ok2 := state.CoerceSemver(build)
	return ok1 && ok2 && nv.Compare(bv) == 0
}
