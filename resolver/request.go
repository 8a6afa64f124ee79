package resolver

import (
	"net/url"
	"strings"
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
// (capgo-protocol section 3.5, last bullets): a missing device_id or
// app_id, a device_id that is not a UUID (checked in lower case, since
// Normalize lower-cases it) or an app_id that is not a reverse domain
// name. It returns the error code and a message, or ("", "").
//
// mirrord is more tolerant than Capgo on purpose (capgo-protocol
// section 10): a missing version_name, platform or plugin_version is
// left to Resolve, which answers it with HTTP 200.
func (r *Request) Validate() (code, message string) {
	return r.validate(CodeInvalidJSONBody, true)
}

// ValidateQuery is Validate for the channel_self requests whose fields
// come as query parameters (GET listChannels, DELETE unsetChannel from
// old plugins). Capgo names the format error invalid_query_parameters
// there, and the GET list does not need a device id (requireDevice
// false skips every device_id check).
func (r *Request) ValidateQuery(requireDevice bool) (code, message string) {
	return r.validate(CodeInvalidQueryParams, requireDevice)
}

func (r *Request) validate(invalid string, requireDevice bool) (code, message string) {
	if requireDevice && r.DeviceID == "" {
		return CodeMissingDeviceID, "Cannot find device_id"
	}
	if r.AppID == "" {
		return CodeMissingAppID, "Cannot find app_id"
	}
	if requireDevice && !isUUID(strings.ToLower(r.DeviceID)) {
		return invalid, "device_id must be a UUID"
	}
	if !isReverseDomain(r.AppID) {
		return invalid, "app_id must be a reverse domain name such as com.example.app"
	}
	return "", ""
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
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for i, l := range labels {
		if l == "" {
			return false
		}
		for j := 0; j < len(l); j++ {
			c := l[j]
			ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if i > 0 {
				ok = ok || c == '_' || c == '-'
			}
			if !ok {
				return false
			}
		}
	}
	return true
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
