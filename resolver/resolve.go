package resolver

import (
	"fmt"
	"strings"

	"mirrord/consensus/state"
)

// Decision is the answer to one update check, before it is written as
// JSON. Error == "" means success: Release is the bundle to serve and
// Version its name. Otherwise Error, Message and Kind form the body
// (capgo-protocol section 3.2 shape D).
//
// Version, Old and Major are set exactly where Capgo's body carries
// "version", "old" and "major" for that code, so the HTTP layer can
// write each one when it is non-empty (Major when true).
type Decision struct {
	// Error is the Capgo error code, "" on success.
	Error string
	// Message is a short human sentence for the error.
	Message string
	// Kind is ResponseKind(Error): "up_to_date", "blocked" or "failed";
	// "" on success.
	Kind string
	// Version is the target version on success and on the answers that
	// name it: the gate codes, misconfigured_channel, and
	// already_on_builtin ("builtin") unless the device already runs its
	// builtin bundle.
	Version string
	// Old is the device's version on the gate answers: the coerced
	// native version_build for the four disable_auto_update_to_* codes
	// and misconfigured_channel, the running version_name for the
	// others.
	Old string
	// Major is true on the four disable_auto_update_to_* codes.
	Major bool
	// Release is the release to serve on success, nil otherwise.
	Release *state.Release
	// Channel is the name of the channel that decided, for stats; "" when
	// no channel was found.
	Channel string
	// Source says where the bundle came from (one of the Source*
	// constants), "" when no channel was found.
	Source string
	// Rollout is the id of the rollout that chose the bundle, if any.
	Rollout string
	// Revert asks for the bare {"version":"builtin"} body (shape C).
	// mirrord, like Capgo, never sends it: modern plugins get
	// already_on_builtin, plugins before 6.2.0 get
	// revert_to_builtin_plugin_version_too_old. The field stays so that
	// the HTTP layer has one place to handle it should that change.
	Revert bool
}

// Resolve decides what Capgo's cloud would answer to an update check
// from req for app (nil when the app is unknown), following
// capgo-protocol section 8 in order:
//
//  1. unknown app;
//  2. version_build "unknown" or not coercible to semver; a
//     version_name of "builtin" or "" stands for version_build from
//     here on;
//  3. plugin major 4, then a missing platform;
//  4. the channel: the device override if it names an existing channel,
//     else the channel named by defaultChannel (platform enabled and
//     public or self-settable, no fallback), else the first public
//     channel by name with the platform enabled;
//  5. the bundle: "" or "builtin" is the builtin bundle, else a release
//     with a zip or a manifest;
//  6. key_id against the bundle's encryption;
//  7. already on that bundle;
//  8. the channel gates (see checkGates);
//  9. the builtin answers, then success.
//
// Step 5 first applies mirrord's targeting (see chooseBundle): pinned
// releases and rollouts. Resolve never panics on any
// Request and does not modify app.
func Resolve(app *state.AppState, req Request) Decision {
	req.Normalize()
	if app == nil {
		return failed(CodeAppNotFound, fmt.Sprintf(
			"App %q is not registered on this mirrord cluster; create it with `mirrord app create`", req.AppID))
	}
	v, d := readVersions(req)
	if d.Error != "" {
		return d
	}

	// Step 4.
	name, ch, viaOverride, pin := pickChannel(app, req)
	if ch == nil {
		return failed(CodeNoChannel, "No default channel or override")
	}

	// Step 5, with mirrord's targeting: a pinned release, else the
	// channel's rollout, else the channel's release.
	bundle, source, rolloutID := chooseBundle(app, ch, pin, req.DeviceID, v.current)
	d = decideBundle(app, req, v, bundle, gateInput{channel: ch, channelName: name, viaOverride: viaOverride})
	d.Channel, d.Source, d.Rollout = name, source, rolloutID
	return d
}

// versions are the device's versions as steps 2 and 3 read them.
type versions struct {
	native    state.Semver // coerced version_build
	nativeStr string       // its canonical form
	onBuiltin bool         // version_name is "builtin" or empty
	current   string       // version_name, "builtin" replaced by nativeStr
	plugin    state.Semver
}

// readVersions applies steps 2 and 3: the native and plugin versions
// and the platform. A Decision with an Error refuses the request.
func readVersions(req Request) (versions, Decision) {
	// Step 2. Capgo coerces version_build while parsing the body and
	// answers 400 semver_error there; mirrord answers 200 here, with the
	// same code.
	if req.VersionBuild == "unknown" {
		return versions{}, failed(CodeUnknownVersionBuild, "Version build is unknown, cannot proceed with update")
	}
	native, ok := state.CoerceSemver(req.VersionBuild)
	if !ok {
		return versions{}, failed(CodeSemver, fmt.Sprintf("Native version %q does not follow semver", req.VersionBuild))
	}
	v := versions{native: native, nativeStr: native.String()}
	v.onBuiltin = req.VersionName == state.Builtin || req.VersionName == ""
	v.current = req.VersionName
	if v.onBuiltin {
		v.current = v.nativeStr
	}

	// Step 3.
	pluginStr := req.PluginVersion
	if pluginStr == "" {
		pluginStr = defaultPluginVersion
	}
	if v.plugin, ok = state.ParseSemver(pluginStr); !ok {
		return versions{}, failed(CodeSemver, fmt.Sprintf("Plugin version %q does not follow semver", req.PluginVersion))
	}
	if v.plugin.Major == 4 {
		return versions{}, failed(CodeUnsupportedPlugin, fmt.Sprintf(
			"Plugin version %s (v4) is no longer supported, upgrade to v5.10.0 or later", pluginStr))
	}
	if !knownPlatform(req.Platform) {
		// Capgo rejects such bodies with 400 invalid_json_body; its
		// missing_info check for an empty platform comes at this point.
		return versions{}, failed(CodeMissingInfo, "Cannot find a supported platform (ios, android or electron)")
	}
	return v, Decision{}
}

// decideBundle applies steps 5 to 9 to the bundle chosen for the device
// on the channel of gates (whose channel fields are set; the rest is
// filled here).
func decideBundle(app *state.AppState, req Request, v versions, bundle string, gates gateInput) Decision {
	var rel *state.Release
	if bundle != state.Builtin {
		rel = app.Releases[bundle]
		if rel == nil || (rel.ZipCID == "" && len(rel.Manifest) == 0) {
			return failed(CodeNoBundle, "Cannot get bundle")
		}
		// Step 6.
		if msg := keyIDMismatch(app, rel, req.KeyID, v.plugin); msg != "" {
			return answer(CodeKeyIDMismatch, msg)
		}
	}

	// Step 7.
	if v.current == bundle {
		return answer(CodeNoNewVersion, "No new version available")
	}

	// Step 8.
	gates.platform, gates.bundle, gates.release = req.Platform, bundle, rel
	gates.native, gates.nativeStr, gates.current = v.native, v.nativeStr, v.current
	gates.isProd, gates.isEmulator = req.IsProd, req.IsEmulator
	if d := checkGates(gates); d.Error != "" {
		return d
	}

	// Step 9.
	if bundle == state.Builtin {
		if !atLeast(v.plugin, builtinAnswerMin) {
			return failed(CodeRevertTooOld,
				"The channel reverts to the builtin bundle, but this plugin version is too old for it")
		}
		d := answer(CodeAlreadyOnBuiltin, "Already on builtin")
		if !v.onBuiltin {
			d.Version = state.Builtin
		}
		return d
	}
	// The version served is the channel's name for the release (the key
	// of app.Releases, which is also rel.Version): the device reports it
	// back as version_name and step 7 compares against the same string.
	return Decision{Version: bundle, Release: rel}
}

// pickChannel finds the channel that decides for the device (step 4).
// viaOverride is true when it came from a device override, which
// bypasses the private-channel gate. pin is the release an operator
// pinned for the device, "" if none; a pin without a channel leaves the
// channel choice to the usual rules.
func pickChannel(app *state.AppState, req Request) (name string, ch *state.Channel, viaOverride bool, pin string) {
	o, ok := app.Devices[req.DeviceID]
	if ok {
		pin = o.Version
		if c := app.Channels[o.Channel]; c != nil {
			return o.Channel, c, true, pin
		}
	}
	if req.DefaultChannel != "" {
		// No fallback to the public channel: a device configured for a
		// channel it may not use gets no_channel, as on Capgo.
		c := app.Channels[req.DefaultChannel]
		if c != nil && c.PlatformEnabled(req.Platform) && (c.Public || c.AllowDeviceSelfSet) {
			return req.DefaultChannel, c, false, pin
		}
		return "", nil, false, pin
	}
	name, ch = publicChannel(app, req.Platform)
	return name, ch, false, pin
}

// Sources of the bundle a decision is about (Decision.Source).
const (
	SourceChannel       = "channel"        // the channel's release
	SourcePinned        = "pinned"         // an operator pinned the release for the device
	SourceRollout       = "rollout"        // the device is in the rollout's cohort
	SourceRolloutSticky = "rollout_sticky" // the device already runs the rollout's release
)

// chooseBundle picks the bundle for a device on ch: its pinned release;
// else, while the channel's rollout is live, the rollout's release for a
// device already running it (even when paused, so that it is not sent
// back) or for a device in the cohort of an active rollout; else the
// channel's release. The cohort is a pure function of the device id,
// the rollout id and the percentage, so every node decides the same and
// no per-device state is kept.
func chooseBundle(app *state.AppState, ch *state.Channel, pin, deviceID, current string) (bundle, source, rolloutID string) {
	if pin != "" {
		return pin, SourcePinned, ""
	}
	if r := ch.Rollout; r.Live() && app.Releases[r.Version] != nil {
		switch {
		case current == r.Version:
			return r.Version, SourceRolloutSticky, r.ID
		case r.State == state.RolloutActive && InCohort(deviceID, r.ID, r.BasisPoints):
			return r.Version, SourceRollout, r.ID
		}
	}
	if ch.Version == "" {
		return state.Builtin, SourceChannel, ""
	}
	return ch.Version, SourceChannel, ""
}

// publicChannel returns the public channel with the platform enabled
// that comes first by name (Capgo orders by name, then id; names are
// unique here), or "" and nil.
func publicChannel(app *state.AppState, platform string) (string, *state.Channel) {
	for _, n := range app.ChannelNames() {
		if c := app.Channels[n]; c != nil && c.Public && c.PlatformEnabled(platform) {
			return n, c
		}
	}
	return "", nil
}

// keyIDMismatch checks that the device can use the release (step 6) and
// returns why not, or "".
//
// The plugin sends key_id only when it has a publicKey, and only from
// 5.50.1, 6.50.1, 7.50.1 and 8.2.0 on (capgo-protocol sections 2 and
// 5.1). For those plugins:
//   - an encrypted release needs a key_id equal to the release's (or,
//     when the release does not record one, the app's); plugins up to
//     8.40.7 sent a short form, so for them the key_id only has to be
//     a prefix of it;
//   - an encrypted release and no key_id: the device has no key and
//     would fail the checksum after downloading;
//   - a plain release and a key_id: the device has a key and refuses a
//     bundle without a session key (stat session_key_required).
//
// Capgo itself only checks the first case, and only above 8.40.7; the
// other two are mirrord's, so that a device is told "blocked" instead
// of downloading a bundle it cannot install. Older plugins are not
// checked: whether they hold the key cannot be known.
func keyIDMismatch(app *state.AppState, rel *state.Release, keyID *string, plugin state.Semver) string {
	if !pluginSendsKeyID(plugin) {
		return ""
	}
	device := ""
	if keyID != nil {
		device = *keyID
	}
	if !rel.Encrypted() {
		if device != "" {
			return "The device has an encryption key but the bundle is not encrypted"
		}
		return ""
	}
	if device == "" {
		return "The bundle is encrypted but the device has no encryption key"
	}
	want := rel.KeyID
	if want == "" {
		want = app.App.KeyID
	}
	if want == "" {
		// The key of an imported encrypted release may be unknown;
		// nothing to compare against.
		return ""
	}
	match := device == want
	if plugin.Compare(mustSemver(shortKeyIDMax)) <= 0 {
		match = strings.HasPrefix(want, device)
	}
	if !match {
		return "Device encryption key does not match bundle encryption key"
	}
	return ""
}

// gateInput is what the channel gates look at.
type gateInput struct {
	channel     *state.Channel
	channelName string
	viaOverride bool
	platform    string
	bundle      string         // bundle name, state.Builtin included
	release     *state.Release // nil for the builtin bundle
	native      state.Semver   // coerced version_build
	nativeStr   string         // its canonical form
	current     string         // version_name, "builtin" replaced
	isProd      bool
	isEmulator  bool
}

// checkGates applies the channel's gates in Capgo's order (step 8) and
// returns the first that blocks, or a zero Decision.
//
// Version gates (disable_auto_update and under-native) are skipped for
// the builtin and unknown bundles, as on Capgo. They are also skipped
// when the bundle name is not a semantic version, which Capgo cannot
// store (it would fail with a server error); the version_number gate
// still applies there since it compares the release's minimum native
// version, not its name. An unknown disable_auto_update value counts as
// "none".
func checkGates(in gateInput) Decision {
	ch := in.channel
	gate := func(code, msg, old string) Decision {
		d := answer(code, msg)
		d.Version, d.Old = in.bundle, old
		return d
	}
	switch {
	case in.platform == "ios" && !ch.IOS:
		return gate(CodeDisabledIOS, "Cannot update, ios is disabled", in.current)
	case in.platform == "android" && !ch.Android:
		return gate(CodeDisabledAndroid, "Cannot update, android is disabled", in.current)
	case in.platform == "electron" && !ch.Electron:
		return gate(CodeDisabledElectron, "Cannot update, electron is disabled", in.current)
	}

	internal := in.bundle == state.Builtin || in.bundle == "unknown"
	bv, semverBundle := state.Semver{}, false
	if !internal {
		bv, semverBundle = state.ParseSemver(in.bundle)
	}
	versionGates := semverBundle
	n := in.native

	if versionGates && ch.DisableAutoUpdate == state.DisableMajor && bv.Major > n.Major {
		return gate(CodeDisableMajor, "Cannot upgrade major version", in.nativeStr)
	}
	if !ch.AllowDeviceSelfSet && !ch.Public && !in.viaOverride {
		// Capgo sends neither version nor old here. Channel resolution
		// only picks such a channel through an override, so this is a
		// safety net.
		return answer(CodePrivateChannel, fmt.Sprintf(
			"Cannot update via a private channel: %q allows neither public use nor device self-assignment",
			in.channelName))
	}
	if versionGates && ch.DisableAutoUpdate == state.DisableMinor && (bv.Major != n.Major || bv.Minor != n.Minor) {
		return gate(CodeDisableMinor, "Cannot upgrade minor version", in.nativeStr)
	}
	if versionGates && ch.DisableAutoUpdate == state.DisablePatch &&
		(bv.Major != n.Major || bv.Minor != n.Minor || bv.Patch != n.Patch) {
		return gate(CodeDisablePatch, "Cannot upgrade patch version", in.nativeStr)
	}
	if !internal && in.release != nil && ch.DisableAutoUpdate == state.DisableVersionNumber {
		minStr := in.release.MinNative
		if minStr == "" {
			return gate(CodeMisconfiguredChannel, fmt.Sprintf(
				"Channel %s is misconfigured: bundle %s has no minimum native version", in.channelName, in.bundle),
				in.nativeStr)
		}
		min, ok := state.CoerceSemver(minStr)
		if !ok {
			return gate(CodeMisconfiguredChannel, fmt.Sprintf(
				"Channel %s is misconfigured: minimum native version %q of bundle %s is not semver",
				in.channelName, minStr, in.bundle), in.nativeStr)
		}
		if n.Less(min) {
			return gate(CodeDisableMetadata, "Cannot upgrade version, min update version > current version", in.nativeStr)
		}
	}
	if versionGates && ch.DisableAutoUpdateUnderNative && bv.Less(n) {
		return gate(CodeDisableUnderNative, "Cannot revert under native version", in.current)
	}
	switch {
	case !ch.AllowProd && in.isProd:
		return gate(CodeDisableProdBuild, "Cannot update, prod build is disabled", in.current)
	case !ch.AllowDev && !in.isProd:
		return gate(CodeDisableDevBuild, "Cannot update, dev build is disabled", in.current)
	case !ch.AllowDevice && !in.isEmulator:
		return gate(CodeDisableDevice, "Cannot update, device is disabled", in.current)
	case !ch.AllowEmulator && in.isEmulator:
		return gate(CodeDisableEmulator, "Cannot update, emulator is disabled", in.current)
	}
	return Decision{}
}

// knownPlatform reports whether p is a platform Capgo channels have a
// flag for.
func knownPlatform(p string) bool {
	return p == "ios" || p == "android" || p == "electron"
}

// answer builds an error Decision with the code's kind, and Major set
// for the four disable_auto_update_to_* codes.
func answer(code, message string) Decision {
	return Decision{
		Error:   code,
		Message: message,
		Kind:    ResponseKind(code),
		Major: code == CodeDisableMajor || code == CodeDisableMinor ||
			code == CodeDisablePatch || code == CodeDisableMetadata,
	}
}

// failed is answer for codes of kind failed; it only reads better.
func failed(code, message string) Decision { return answer(code, message) }
