package resolver

import "mirrord/consensus/state"

// defaultPluginVersion is what Capgo assumes when a request carries no
// plugin_version (its destructuring default in updateWithPG). Capgo
// rejects such bodies at validation; mirrord tolerates them and treats
// the sender as this very old plugin.
const defaultPluginVersion = "2.3.3"

// Plugin versions that changed the protocol. Features were backported
// to several majors, so most thresholds are per major (see atLeastByMajor).
const (
	// builtinAnswerMin is the first plugin that understands
	// already_on_builtin; older ones get
	// revert_to_builtin_plugin_version_too_old.
	builtinAnswerMin = "6.2.0"
	// shortKeyIDMax is the last plugin that sent a short (4-character)
	// key_id; Capgo compares key ids only above it.
	shortKeyIDMax = "8.40.7"
)

// PluginKeepsChannelLocally reports whether the plugin stores the
// channel chosen with setChannel on the device and sends it as
// defaultChannel (capgo-protocol section 7): from 5.34.0, 6.34.0,
// 7.34.0 and 8.0.0 on, any later major included. Older plugins rely on
// a server-side device override written by channel_self POST.
//
// Capgo's own test treats every major below 5 (and an empty version, as
// 0.0.0) as new; mirrord treats them as old, since they predate the
// feature. An unparseable version is old, as in Capgo.
func PluginKeepsChannelLocally(pluginVersion string) bool {
	v, ok := state.ParseSemver(pluginVersion)
	return ok && atLeastByMajor(v, "5.34.0", "6.34.0", "7.34.0", "8.0.0")
}

// pluginSendsKeyID reports whether the plugin sends key_id whenever it
// has a publicKey (commit b70ef369, first tagged 5.50.1, 6.50.1, 7.50.1
// and 8.2.0). For these plugins an absent key_id means the device has
// no key and cannot decrypt.
func pluginSendsKeyID(v state.Semver) bool {
	return atLeastByMajor(v, "5.50.1", "6.50.1", "7.50.1", "8.2.0")
}

// atLeastByMajor reports whether v is at least the minimum given for
// its major (v5, v6, v7, v8 in that order). Majors below 5 are too old
// for every feature gated this way, majors above 8 have them all.
func atLeastByMajor(v state.Semver, min5, min6, min7, min8 string) bool {
	var min string
	switch {
	case v.Major < 5:
		return false
	case v.Major == 5:
		min = min5
	case v.Major == 6:
		min = min6
	case v.Major == 7:
		min = min7
	case v.Major == 8:
		min = min8
	default:
		return true
	}
	return !v.Less(mustSemver(min))
}

// atLeast reports whether v >= min.
func atLeast(v state.Semver, min string) bool { return !v.Less(mustSemver(min)) }

// mustSemver parses a version constant of this package.
func mustSemver(s string) state.Semver {
	v, ok := state.ParseSemver(s)
	if !ok {
		panic("resolver: bad version constant " + s)
	}
	return v
}

// Plugins before these versions report download_fail when an update
// check found no new version (capgo-protocol section 3.2, Capgo's
// plugins/stats.ts shouldRecordStatsAction).
var (
	downloadFailFixed   = mustSemver("7.17.0")
	downloadFailFixedV6 = mustSemver("6.14.25")
)

// PluginReportsNoUpdateAsFailure reports whether a download_fail from
// this plugin may only mean "there was no new version": plugins below
// 7.17.0 on major 7, below 6.14.25 on major 6, every older major, and a
// plugin_version that is not a version at all (empty included). Capgo
// drops such events; the device API keeps them out of the fleet
// counters and the halt policy. Majors from 8 on are fixed.
//
// A pre-release ranks below its release, as in Capgo's greaterOrEqual:
// 7.17.0-beta.1 still sends the legacy event.
func PluginReportsNoUpdateAsFailure(pluginVersion string) bool {
	v, ok := state.ParseSemver(pluginVersion)
	if !ok {
		return true
	}
	if v.Major == 6 {
		return v.Less(downloadFailFixedV6)
	}
	return v.Less(downloadFailFixed)
}
