package resolver

// Kinds of a non-success update answer, as the plugin (>= 8.45.11)
// normalises them: only KindFailed makes it report download_fail.
const (
	KindUpToDate = "up_to_date"
	KindBlocked  = "blocked"
	KindFailed   = "failed"
)

// Error codes of the update endpoint (capgo-protocol section 3.5). The
// strings are wire values: the plugin and Capgo's dashboard know them.
const (
	// Up to date.
	CodeNoNewVersion     = "no_new_version_available"
	CodeAlreadyOnBuiltin = "already_on_builtin"

	// Blocked.
	CodePrivateChannel      = "cannot_update_via_private_channel"
	CodeDisabledIOS         = "disabled_platform_ios"
	CodeDisabledAndroid     = "disabled_platform_android"
	CodeDisabledElectron    = "disabled_platform_electron"
	CodeDisableMajor        = "disable_auto_update_to_major"
	CodeDisableMinor        = "disable_auto_update_to_minor"
	CodeDisablePatch        = "disable_auto_update_to_patch"
	CodeDisableMetadata     = "disable_auto_update_to_metadata"
	CodeDisableUnderNative  = "disable_auto_update_under_native"
	CodeDisableProdBuild    = "disable_prod_build"
	CodeDisableDevBuild     = "disable_dev_build"
	CodeDisableDevice       = "disable_device"
	CodeDisableEmulator     = "disable_emulator"
	CodeKeyIDMismatch       = "key_id_mismatch"
	CodeProviderInfraBlocks = "provider_infrastructure_request_blocked"

	// Failed.
	CodeAppNotFound          = "app_not_found"
	CodeUnknownVersionBuild  = "unknown_version_build"
	CodeSemver               = "semver_error"
	CodeUnsupportedPlugin    = "unsupported_plugin_version"
	CodeMissingInfo          = "missing_info"
	CodeNoChannel            = "no_channel"
	CodeNullChannelData      = "null_channel_data"
	CodeNoBundle             = "no_bundle"
	CodeMisconfiguredChannel = "misconfigured_channel"
	CodeRevertTooOld         = "revert_to_builtin_plugin_version_too_old"
	CodeNoBundleURL          = "no_bundle_url"
	CodeNoURLOrManifest      = "no_url_or_manifest"

	// Request validation (HTTP 400 on Capgo).
	CodeMissingDeviceID    = "missing_device_id"
	CodeMissingAppID       = "missing_app_id"
	CodeInvalidJSONBody    = "invalid_json_body"
	CodeInvalidQueryParams = "invalid_query_parameters"
)

// Error codes of the channel_self endpoint (capgo-protocol section 7).
const (
	CodeMissingChannel              = "missing_channel"
	CodeChannelNotFound             = "channel_not_found"
	CodeChannelSelfSetNotAllowed    = "channel_self_set_not_allowed"
	CodePublicChannelSelfSetBlocked = "public_channel_self_set_not_allowed"
	CodeCannotOverride              = "cannot_override"
	CodeOverrideNotAllowed          = "override_not_allowed"
	CodeInvalidPlatform             = "invalid_platform"
)

// ResponseKind maps an update error code to its kind exactly as Capgo's
// getUpdateResponseKind does: two codes are up_to_date, a fixed list is
// blocked, and everything else (including codes this package never
// produces) is failed. It returns "" for "" (success).
func ResponseKind(code string) string {
	switch code {
	case "":
		return ""
	case CodeNoNewVersion, CodeAlreadyOnBuiltin:
		return KindUpToDate
	case CodePrivateChannel,
		CodeDisabledIOS, CodeDisabledAndroid, CodeDisabledElectron,
		CodeDisableMajor, CodeDisableMinor, CodeDisablePatch,
		CodeDisableMetadata, CodeDisableUnderNative,
		CodeDisableProdBuild, CodeDisableDevBuild,
		CodeDisableDevice, CodeDisableEmulator,
		CodeKeyIDMismatch, CodeProviderInfraBlocks:
		return KindBlocked
	}
	return KindFailed
}
