package resolver

import (
	"net/url"
	"strings"

	"mirrord/consensus/state"
)

// Request is the device info object the plugin sends to the update,
// stats and channel_self endpoints (capgo-protocol section 2), as
// decoded from JSON. iOS omits nil keys and Android sends "" for unset
// strings, so every field may be empty.
type Request struct {
	Platform       string  `json:"platform"`
	DeviceID       string  `json:"device_id"`
	AppID          string  `json:"app_id"`
	CustomID       string  `json:"custom_id"`
	VersionBuild   string  `json:"version_build"`
	VersionCode    string  `json:"version_code"`
	VersionOS      string  `json:"version_os"`
	VersionName    string  `json:"version_name"`
	PluginVersion  string  `json:"plugin_version"`
	IsEmulator     bool    `json:"is_emulator"`
	IsProd         bool    `json:"is_prod"`
	InstallSource  string  `json:"install_source"`
	DefaultChannel string  `json:"defaultChannel"`
	KeyID          *string `json:"key_id"`
	// Channel is only sent by channel_self POST (setChannel).
	Channel string `json:"channel,omitempty"`
}

// Normalize lower-cases the device id. Plugins before 7.0.0 send it in
// upper case; Capgo stores and looks devices up in lower case.
func (r *Request) Normalize() {
	r.DeviceID = strings.ToLower(r.DeviceID)
}

// Validate reports what Capgo rejects with HTTP 400 before any decision
// on /updates (capgo-protocol section 3.5, last bullets): a missing
// device_id or app_id, a device_id that is not a UUID (checked in lower
// case, since Normalize lower-cases it) or an app_id that is not a
// reverse domain name. It returns the error code and a message, or
// ("", "").
//
// mirrord is more tolerant than Capgo on purpose (capgo-protocol
// section 10): a missing version_name, platform or plugin_version is
// left to Resolve, which answers it with HTTP 200, and so is a
// version_build that is not a version (200 semver_error; see
// docs/capgo-compat.md).
func (r *Request) Validate() (code, message string) {
	ref := r.Check(UpdateChecks)
	return ref.Code, ref.Message
}

// ValidateQuery is Validate for the channel_self requests whose fields
// come as query parameters (GET listChannels, DELETE unsetChannel from
// old plugins). Capgo names the format error invalid_query_parameters
// there, and the GET list does not need a device id but a platform
// (requireDevice false selects the GET checks).
func (r *Request) ValidateQuery(requireDevice bool) (code, message string) {
	c := ChannelListChecks
	if requireDevice {
		c = ChannelDeleteChecks
	}
	ref := r.Check(c)
	return ref.Code, ref.Message
}

// Checks selects what Request.Check refuses. Capgo's parsePluginBody
// checks in this order: device_id present (when Device), app_id
// present, version_build a version (when VersionBuild and it is not
// empty), then the format of device_id and app_id and (when Platform)
// the platform.
type Checks struct {
	// Invalid is the code of a malformed field: invalid_json_body for
	// bodies, invalid_query_parameters for query strings.
	Invalid string
	// Device requires a device_id (all but GET channel_self).
	Device bool
	// VersionBuild refuses a version_build that is not a version with
	// 400 semver_error.
	VersionBuild bool
	// Platform requires ios, android or electron.
	Platform bool
}

// The checks of each device endpoint.
var (
	// UpdateChecks: POST /updates leaves version_build and platform to
	// Resolve, which answers them with HTTP 200.
	UpdateChecks = Checks{Invalid: CodeInvalidJSONBody, Device: true}
	// ChannelBodyChecks: POST and PUT /channel_self. The platform is
	// left to ChannelSet/ChannelGet (200 invalid_platform, as before).
	ChannelBodyChecks = Checks{Invalid: CodeInvalidJSONBody, Device: true, VersionBuild: true}
	// ChannelDeleteChecks: DELETE /channel_self from query parameters.
	ChannelDeleteChecks = Checks{Invalid: CodeInvalidQueryParams, Device: true, VersionBuild: true}
	// ChannelListChecks: GET /channel_self (no device needed).
	ChannelListChecks = Checks{Invalid: CodeInvalidQueryParams, VersionBuild: true, Platform: true}
)

// Refusal is a 400 answer: Capgo's {"error","message","moreInfo"}.
// Code is "" when the request passed.
type Refusal struct {
	Code    string
	Message string
	// MoreInfo is the moreInfo object, nil for none.
	MoreInfo map[string]any
}

// EmptyRefusal is the answer to a body or query that carries no field
// at all ({}, null, [] or no query string): Capgo's "Cannot parse body"
// under the endpoint's invalid code.
func EmptyRefusal(c Checks) Refusal {
	return Refusal{Code: c.Invalid, Message: "Cannot parse body", MoreInfo: map[string]any{"body": map[string]any{}}}
}

// Check applies c to r in Capgo's order (see Checks).
func (r *Request) Check(c Checks) Refusal {
	if c.Device && r.DeviceID == "" {
		return Refusal{Code: CodeMissingDeviceID, Message: "Cannot find device_id"}
	}
	if r.AppID == "" {
		return Refusal{Code: CodeMissingAppID, Message: "Cannot find app_id"}
	}
	if c.VersionBuild && !ValidVersionBuild(r.VersionBuild) {
		return SemverRefusal(r.VersionBuild)
	}
	if c.Device && !isUUID(strings.ToLower(r.DeviceID)) {
		return Refusal{Code: c.Invalid, Message: "device_id must be a UUID"}
	}
	if !isReverseDomain(r.AppID) {
		return Refusal{Code: c.Invalid, Message: "app_id must be a reverse domain name such as com.example.app"}
	}
	if c.Platform && !knownPlatform(r.Platform) {
		return Refusal{Code: c.Invalid, Message: "platform must be ios, android or electron",
			MoreInfo: map[string]any{"platform": r.Platform}}
	}
	return Refusal{}
}

// SemverRefusal is Capgo's 400 semver_error for a version_build that is
// not a version.
func SemverRefusal(versionBuild string) Refusal {
	return Refusal{Code: CodeSemver,
		Message: "Native version: " + versionBuild + " doesn't follow semver convention, please check " +
			"https://capgo.app/semver_tester/ to learn more about semver usage in Capgo",
		MoreInfo: map[string]any{"version_build": versionBuild}}
}

// ValidVersionBuild reports whether a version_build passes Capgo's body
// check: empty (not sent), or a version once coerced ("1" is 1.0.0,
// "1.2" is 1.2.0). "unknown" is not a version. A plain x.y.z is
// recognised without allocating (the stats hot path).
func ValidVersionBuild(s string) bool {
	if s == "" || isPlainSemver(s) {
		return true
	}
	_, ok := state.CoerceSemver(s)
	return ok
}

// isPlainSemver matches ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$.
func isPlainSemver(s string) bool {
	parts, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
			continue
		}
		n := s[start:i]
		if n == "" || len(n) > 1 && n[0] == '0' {
			return false
		}
		parts++
		start = i + 1
	}
	return parts == 3
}

// isUUID reports whether s has the lower-case 8-4-4-4-12 hex form. The
// form is exactly 36 characters long, which also covers Capgo's
// 36-character limit.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// isReverseDomain matches Capgo's app id rule ^[a-z0-9]+(\.[\w-]+)+$
// (case-insensitive): a first label of letters and digits, then at
// least one more label of letters, digits, "_" or "-".
func isReverseDomain(s string) bool {
	label, labels := 0, 1 // length and number of labels so far
	for j := 0; j < len(s); j++ {
		c := s[j]
		if c == '.' {
			if label == 0 {
				return false
			}
			label, labels = 0, labels+1
			continue
		}
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if labels > 1 {
			ok = ok || c == '_' || c == '-'
		}
		if !ok {
			return false
		}
		label++
	}
	return labels >= 2 && label > 0
}

// RequestFromQuery builds a Request from the query parameters of a
// channel_self GET or DELETE, as Capgo's convertQueryToBody does:
// booleans are the strings "true"/"false", a missing is_emulator is
// false and a missing is_prod is true (plugins before 5.0.0 sent
// neither), and the device id is lower-cased. An empty key_id counts as
// absent.
func RequestFromQuery(q url.Values) Request {
	r := Request{
		Platform:       q.Get("platform"),
		DeviceID:       q.Get("device_id"),
		AppID:          q.Get("app_id"),
		CustomID:       q.Get("custom_id"),
		VersionBuild:   q.Get("version_build"),
		VersionCode:    q.Get("version_code"),
		VersionOS:      q.Get("version_os"),
		VersionName:    q.Get("version_name"),
		PluginVersion:  q.Get("plugin_version"),
		IsEmulator:     q.Get("is_emulator") == "true",
		IsProd:         !q.Has("is_prod") || q.Get("is_prod") == "true",
		InstallSource:  q.Get("install_source"),
		DefaultChannel: q.Get("defaultChannel"),
		Channel:        q.Get("channel"),
	}
	if k := q.Get("key_id"); k != "" {
		r.KeyID = &k
	}
	r.Normalize()
	return r
}
