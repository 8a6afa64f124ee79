package httpapi

import (
	"encoding/json"
	"unicode/utf8"

	"mirrord/resolver"
)

// decodeDevice decodes a device info body into req (which must be the
// zero Request) with the same result as json.Unmarshal: the same fields,
// or an error exactly when json.Unmarshal gives one
// (FuzzDecodeDevice checks this).
//
// The plugin's body is one flat object of plain strings and booleans,
// so the fast path walks it once with statscan.go's validating pieces
// and takes only that: keys of ASCII without escapes, strings without
// escapes, true, false and null for the known fields, any valid JSON for
// the others. Anything else (escapes, a number or an object where a
// string belongs, a body that is not one object, invalid JSON) goes to
// json.Unmarshal, which then decides and words the error.
func decodeDevice(body []byte, req *resolver.Request) error {
	if scanDevice(body, req) {
		return nil
	}
	*req = resolver.Request{}
	return json.Unmarshal(body, req)
}

// scanDevice is decodeDevice's fast path; false means "not taken" (req
// may then hold part of the fields).
func scanDevice(b []byte, req *resolver.Request) bool {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipWS(b, i+1) == len(b)
	}
	for {
		kEnd := stringEnd(b, i)
		if kEnd < 0 {
			return false
		}
		f, ok := deviceField(b[i+1 : kEnd])
		if !ok {
			return false
		}
		i = skipWS(b, kEnd+1)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		vEnd := nestedEnd(b, i, 1)
		if vEnd < 0 || f != fieldUnknown && !setDeviceField(req, f, b[i:vEnd]) {
			return false
		}
		if i = skipWS(b, vEnd); i >= len(b) {
			return false
		}
		switch b[i] {
		case '}':
			return skipWS(b, i+1) == len(b)
		case ',':
			i = skipWS(b, i+1)
		default:
			return false
		}
	}
}

// deviceFieldID numbers the fields of resolver.Request.
type deviceFieldID int

const (
	fieldUnknown deviceFieldID = iota
	fieldPlatform
	fieldDeviceID
	fieldAppID
	fieldCustomID
	fieldVersionBuild
	fieldVersionCode
	fieldVersionOS
	fieldVersionName
	fieldPluginVersion
	fieldIsEmulator
	fieldIsProd
	fieldInstallSource
	fieldDefaultChannel
	fieldKeyID
	fieldChannel
)

// deviceField returns the field a raw key names (fieldUnknown for
// others), matching case-insensitively as encoding/json does; ok is
// false for keys the fast path leaves to encoding/json (escapes or
// non-ASCII, where its case folding goes beyond ASCII).
func deviceField(raw []byte) (deviceFieldID, bool) {
	var lower [16]byte
	if len(raw) > len(lower) {
		for _, c := range raw {
			if c == '\\' || c >= utf8.RuneSelf {
				return fieldUnknown, false
			}
		}
		return fieldUnknown, true // longer than any field's name
	}
	for j, c := range raw {
		switch {
		case c == '\\' || c >= utf8.RuneSelf:
			return fieldUnknown, false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		lower[j] = c
	}
	switch string(lower[:len(raw)]) {
	case "platform":
		return fieldPlatform, true
	case "device_id":
		return fieldDeviceID, true
	case "app_id":
		return fieldAppID, true
	case "custom_id":
		return fieldCustomID, true
	case "version_build":
		return fieldVersionBuild, true
	case "version_code":
		return fieldVersionCode, true
	case "version_os":
		return fieldVersionOS, true
	case "version_name":
		return fieldVersionName, true
	case "plugin_version":
		return fieldPluginVersion, true
	case "is_emulator":
		return fieldIsEmulator, true
	case "is_prod":
		return fieldIsProd, true
	case "install_source":
		return fieldInstallSource, true
	case "defaultchannel":
		return fieldDefaultChannel, true
	case "key_id":
		return fieldKeyID, true
	case "channel":
		return fieldChannel, true
	}
	return fieldUnknown, true
}

// setDeviceField stores the valid JSON value v in field f as
// encoding/json would, or reports false to leave it to encoding/json
// (a type it would refuse, or a string with escapes).
func setDeviceField(req *resolver.Request, f deviceFieldID, v []byte) bool {
	if string(v) == "null" {
		// null leaves a string or bool as it is and clears a pointer.
		if f == fieldKeyID {
			req.KeyID = nil
		}
		return true
	}
	switch f {
	case fieldIsEmulator, fieldIsProd:
		if v[0] != 't' && v[0] != 'f' {
			return false
		}
		if f == fieldIsEmulator {
			req.IsEmulator = v[0] == 't'
		} else {
			req.IsProd = v[0] == 't'
		}
		return true
	}
	s, ok := plainString(v)
	if !ok {
		return false
	}
	if f == fieldKeyID {
		k := s // its own variable: taking s's address would move every s to the heap
		req.KeyID = &k
		return true
	}
	*deviceString(req, f) = s
	return true
}

// deviceString is the string field numbered f.
func deviceString(req *resolver.Request, f deviceFieldID) *string {
	switch f {
	case fieldPlatform:
		return &req.Platform
	case fieldDeviceID:
		return &req.DeviceID
	case fieldAppID:
		return &req.AppID
	case fieldCustomID:
		return &req.CustomID
	case fieldVersionBuild:
		return &req.VersionBuild
	case fieldVersionCode:
		return &req.VersionCode
	case fieldVersionOS:
		return &req.VersionOS
	case fieldVersionName:
		return &req.VersionName
	case fieldPluginVersion:
		return &req.PluginVersion
	case fieldInstallSource:
		return &req.InstallSource
	case fieldDefaultChannel:
		return &req.DefaultChannel
	}
	return &req.Channel
}

// plainString returns the JSON string v (valid JSON) when it has no
// escapes and is valid UTF-8, so that its bytes are its value.
func plainString(v []byte) (string, bool) {
	if v[0] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	ascii := true
	for _, c := range body {
		if c == '\\' {
			return "", false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(body) {
		return "", false
	}
	if len(body) == 0 {
		return "", true
	}
	return string(body), true
}
