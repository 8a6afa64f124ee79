package httpapi

import (
	"time"

	"mirrord/resolver"
)

// Observer receives what the device API did, for metrics. Its methods
// are called on the request path and must be cheap and safe for
// concurrent use. Config.Observer is optional: with none, the handlers
// neither time nor report anything.
type Observer interface {
	// ObserveCheck reports one POST /updates: its outcome (one of
	// CheckOutcomes) and how long the handler took.
	ObserveCheck(outcome string, d time.Duration)
	// ObserveStat reports one accepted stats event by its action, as the
	// device sent it (any string up to 128 bytes: an observer that keeps
	// label values must bound them, see StatActions).
	ObserveStat(action string)
}

// Outcomes of an update check that are not a Capgo error code.
const (
	// OutcomeOK: the device was offered a release.
	OutcomeOK = "ok"
	// OutcomeRevert: the device was told to go back to its builtin
	// bundle ({"version":"builtin"}).
	OutcomeRevert = "revert"
	// OutcomeBadRequest: the request was refused before any decision
	// (body too large or not JSON, or a required field missing: the
	// answer carries a code such as missing_device_id).
	OutcomeBadRequest = "bad_request"
)

// CheckOutcomes returns every outcome ObserveCheck can receive: the
// outcomes above and the Capgo error codes of an update decision
// (capgo-protocol section 3.5; request validation codes count as
// bad_request), in a fixed order. It returns a new slice on each call.
func CheckOutcomes() []string {
	return []string{
		OutcomeOK, OutcomeRevert, OutcomeBadRequest,
		resolver.CodeNoNewVersion, resolver.CodeAlreadyOnBuiltin,
		resolver.CodePrivateChannel, resolver.CodeDisabledIOS, resolver.CodeDisabledAndroid,
		resolver.CodeDisabledElectron, resolver.CodeDisableMajor, resolver.CodeDisableMinor,
		resolver.CodeDisablePatch, resolver.CodeDisableMetadata, resolver.CodeDisableUnderNative,
		resolver.CodeDisableProdBuild, resolver.CodeDisableDevBuild, resolver.CodeDisableDevice,
		resolver.CodeDisableEmulator, resolver.CodeKeyIDMismatch, resolver.CodeProviderInfraBlocks,
		resolver.CodeAppNotFound, resolver.CodeUnknownVersionBuild, resolver.CodeSemver,
		resolver.CodeUnsupportedPlugin, resolver.CodeMissingInfo, resolver.CodeNoChannel,
		resolver.CodeNullChannelData, resolver.CodeNoBundle, resolver.CodeMisconfiguredChannel,
		resolver.CodeRevertTooOld, resolver.CodeNoBundleURL, resolver.CodeNoURLOrManifest,
	}
}

// StatActions returns the stats actions devices send: those of the
// plugin (capgo-protocol section 6.3, plugin 8.51.23) and the few more
// that Capgo's backend whitelist accepts from devices. The backend's own
// generated actions (noNew, disablePlatformIos, ...) are not sent by
// devices and are left out. Devices may send others (the API keeps
// them); an observer should count those under one label. It returns a
// new slice on each call.
func StatActions() []string {
	return []string{
		"set", "set_fail", "set_next", "reset", "delete", "update_fail",
		"download_fail",
		"download_0", "download_10", "download_20", "download_30", "download_40",
		"download_50", "download_60", "download_70", "download_80", "download_90",
		"download_complete",
		"download_zip_start", "download_zip_complete",
		"download_manifest_start", "download_manifest_complete",
		"download_manifest_file_fail", "download_manifest_checksum_fail",
		"download_manifest_brotli_fail", "finish_download_fail",
		"checksum_fail", "checksum_required", "session_key_required",
		"decrypt_fail", "unzip_fail", "windows_path_fail", "canonical_path_fail",
		"directory_path_fail", "manifest_path_fail", "low_mem_fail",
		"insufficient_disk_space",
		"app_moved_to_foreground", "app_moved_to_background",
		"app_launch_start", "app_launch_ready", "app_launch_timeout",
		"blocked_by_server_url", "rate_limit_reached",
		"os_version_changed", "native_app_version_changed",
		"app_crash", "app_crash_native", "app_anr", "app_killed_low_memory",
		"app_killed_excessive_resource_usage", "app_initialization_failure",
		"app_memory_warning",
		"webview_javascript_error", "webview_unhandled_rejection",
		"webview_resource_error", "webview_security_policy_violation",
		"webview_unclean_restart", "webview_render_process_gone",
		"webview_content_process_terminated", "webview_dom_content_loaded",
		"webview_page_loaded",
		"ping", "get", "uninstall",
	}
}
