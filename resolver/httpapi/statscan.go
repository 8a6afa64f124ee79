package httpapi

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// errFieldType is what scanStatEvent reports for a checked field whose
// value is not a string (or null).
var errFieldType = errors.New("a field has the wrong type")

// splitArray returns the elements of a JSON array as subslices of b, or
// false when b is not a valid JSON array (whitespace around it allowed):
// it validates as it splits, so the body needs no json.Valid pass.
func splitArray(b []byte) ([]json.RawMessage, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var out []json.RawMessage
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, skipWS(b, i+1) == len(b)
	}
	for i < len(b) {
		end := nestedEnd(b, i, 1)
		if end < 0 {
			return nil, false
		}
		out = append(out, b[i:end])
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ']' {
			return out, skipWS(b, i+1) == len(b)
		}
		if b[i] != ',' {
			return nil, false
		}
		i = skipWS(b, i+1)
	}
	return nil, false
}

// scanStatEvent reads the checked fields (action, app_id, device_id,
// version_name, version_build, plugin_version) of one stats event, which
// must be valid JSON (the caller's decoder validated the whole body). It
// walks the top-level object once instead of running encoding/json's
// reflection decoder over the whole event, which dominated the cost of
// ingesting stats. Its results equal json.Unmarshal into statEvent,
// including case-insensitive and escaped keys, the last duplicate
// winning, null leaving a field empty and invalid UTF-8 replaced
// (FuzzScanStatEvent checks this against encoding/json).
//
// prev, if not nil, is the event before in the same batch: a plain
// value equal to prev's is shared rather than copied. A plugin's batch
// comes from one device about one app, so most fields repeat and the
// scan allocates little beyond the first event.
func scanStatEvent(ev []byte, prev *statEvent) (statEvent, error) {
	var e statEvent
	i := skipWS(ev, 0)
	if i >= len(ev) || ev[i] != '{' {
		return e, errors.New("not an object")
	}
	i = skipWS(ev, i+1)
	if i < len(ev) && ev[i] == '}' {
		return e, nil
	}
	for i < len(ev) {
		kEnd := stringEnd(ev, i)
		if kEnd < 0 {
			return e, errors.New("bad key")
		}
		key := ev[i+1 : kEnd]
		i = skipWS(ev, kEnd+1)
		if i >= len(ev) || ev[i] != ':' {
			return e, errors.New("no colon")
		}
		i = skipWS(ev, i+1)
		vEnd := valueEnd(ev, i)
		if vEnd < 0 {
			return e, errors.New("bad value")
		}
		if f := statField(key); f >= 0 {
			var same string
			if prev != nil {
				same = prev.get(f)
			}
			v, isNull, err := decodeString(ev[i:vEnd], f, same)
			if err != nil {
				return e, err
			}
			if !isNull {
				e.set(f, v)
			}
		}
		i = skipWS(ev, vEnd)
		if i >= len(ev) {
			break
		}
		if ev[i] == '}' {
			return e, nil
		}
		if ev[i] != ',' {
			return e, errors.New("no comma")
		}
		i = skipWS(ev, i+1)
	}
	return e, errors.New("unterminated object")
}

// statFields are the JSON names of the checked fields, in the order of
// statEvent.at.
var statFields = [...]string{"action", "app_id", "device_id", "version_name", "version_build", "plugin_version"}

// get returns the field numbered f (an index of statFields).
func (e statEvent) get(f int) string {
	switch f {
	case 0:
		return e.Action
	case 1:
		return e.AppID
	case 2:
		return e.DeviceID
	case 3:
		return e.VersionName
	case 4:
		return e.VersionBuild
	}
	return e.PluginVersion
}

// set stores v in the field numbered f.
func (e *statEvent) set(f int, v string) {
	switch f {
	case 0:
		e.Action = v
	case 1:
		e.AppID = v
	case 2:
		e.DeviceID = v
	case 3:
		e.VersionName = v
	case 4:
		e.VersionBuild = v
	default:
		e.PluginVersion = v
	}
}

// pluginActions are the actions plugin 8.51.23 sends (capgo-protocol
// section 6.3): their names are shared, not copied, when scanned.
var pluginActions = func() map[string]string {
	names := []string{"set", "set_fail", "set_next", "reset", "delete", "update_fail", "download_fail",
		"download_10", "download_20", "download_30", "download_40", "download_50", "download_60",
		"download_70", "download_80", "download_90", "download_complete", "download_zip_start",
		"download_zip_complete", "download_manifest_start", "download_manifest_complete",
		"download_manifest_file_fail", "download_manifest_checksum_fail", "download_manifest_brotli_fail",
		"finish_download_fail", "checksum_fail", "checksum_required", "session_key_required", "decrypt_fail",
		"unzip_fail", "low_mem_fail", "insufficient_disk_space", "app_moved_to_foreground",
		"app_moved_to_background", "app_launch_start", "app_launch_ready", "app_launch_timeout",
		"blocked_by_server_url", "rate_limit_reached", "os_version_changed", "native_app_version_changed",
		"app_crash", "app_crash_native", "app_anr", "webview_javascript_error", "webview_unhandled_rejection",
		"webview_resource_error", "webview_dom_content_loaded", "webview_page_loaded"}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()

// statField returns the number of the field a key names, or -1 for
// keys not checked. Keys match case-insensitively, as encoding/json
// matches struct fields.
func statField(rawKey []byte) int {
	// Fast path: the plugin's own lower-case keys, without allocating.
	for f, name := range statFields {
		if string(rawKey) == name {
			return f
		}
	}
	plain := true
	for _, c := range rawKey {
		if c == '\\' || c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return -1 // lower-case ASCII and none of the above
	}
	key := string(rawKey)
	if strings.IndexByte(key, '\\') >= 0 || !utf8.ValidString(key) {
		var k string
		if json.Unmarshal(append(append([]byte{'"'}, rawKey...), '"'), &k) != nil {
			return -1
		}
		key = k
	}
	for f, name := range statFields {
		if strings.EqualFold(key, name) {
			return f
		}
	}
	return -1
}

// decodeString decodes a JSON string value of field f; isNull reports a
// null, which leaves the field as it is, as encoding/json does. A plain
// value equal to same, or naming a plugin action, is returned without a
// copy.
func decodeString(v []byte, f int, same string) (s string, isNull bool, err error) {
	switch {
	case len(v) == 4 && string(v) == "null":
		return "", true, nil
	case len(v) < 2 || v[0] != '"':
		return "", false, errFieldType
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			// Escapes or non-ASCII: let encoding/json unquote it (it
			// also replaces invalid UTF-8).
			return unquote(v)
		}
	}
	if string(body) == same {
		return same, false, nil
	}
	if f == 0 {
		if a, ok := pluginActions[string(body)]; ok {
			return a, false, nil
		}
	}
	return string(body), false, nil
}

// unquote is decodeString's slow path (kept apart so that only it pays
// for the string encoding/json writes to).
func unquote(v []byte) (string, bool, error) {
	var s string
	err := json.Unmarshal(v, &s)
	return s, false, err
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the closing quote of the string that
// starts at b[i], or -1 when there is none or the string is not valid
// JSON (a control character, an unknown escape). Like json.Valid it
// accepts any other byte, invalid UTF-8 included.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		if !stringSpecial[b[j]] {
			continue
		}
		switch c := b[j]; {
		case c == '"':
			return j
		case c < 0x20:
			return -1
		case c == '\\':
			j++
			if j >= len(b) {
				return -1
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) || !isHex(b[j+1]) || !isHex(b[j+2]) || !isHex(b[j+3]) || !isHex(b[j+4]) {
					return -1
				}
				j += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// stringSpecial marks the bytes stringEnd must look at: the quote, the
// backslash and control characters (one table load per byte on the hot
// path instead of three comparisons).
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// maxDepth is encoding/json's limit on nested objects and arrays.
const maxDepth = 10000

// validJSON reports whether b is one JSON value (whitespace around it
// allowed), as json.Valid does, in one pass.
func validJSON(b []byte) bool {
	end := valueEnd(b, skipWS(b, 0))
	return end >= 0 && skipWS(b, end) == len(b)
}

// valueEnd returns the index just past the JSON value that starts at
// b[i], or -1 when no valid value starts there. It checks what
// json.Valid checks, so the scanners need no validation pass before.
func valueEnd(b []byte, i int) int { return nestedEnd(b, i, 0) }

// nestedEnd is valueEnd for a value inside depth levels of nesting.
func nestedEnd(b []byte, i, depth int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		if j := stringEnd(b, i); j >= 0 {
			return j + 1
		}
		return -1
	case '{':
		return objectEnd(b, i, depth+1)
	case '[':
		return arrayEnd(b, i, depth+1)
	case 't':
		return literalEnd(b, i, "true")
	case 'f':
		return literalEnd(b, i, "false")
	case 'n':
		return literalEnd(b, i, "null")
	}
	return numberEnd(b, i)
}

func objectEnd(b []byte, i, depth int) int {
	if depth > maxDepth {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		k := stringEnd(b, i)
		if k < 0 {
			return -1
		}
		i = skipWS(b, k+1)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = nestedEnd(b, skipWS(b, i+1), depth); i < 0 {
			return -1
		}
		if i = skipWS(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case '}':
			return i + 1
		case ',':
			i = skipWS(b, i+1)
		default:
			return -1
		}
	}
}

func arrayEnd(b []byte, i, depth int) int {
	if depth > maxDepth {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		if i = nestedEnd(b, i, depth); i < 0 {
			return -1
		}
		if i = skipWS(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case ']':
			return i + 1
		case ',':
			i = skipWS(b, i+1)
		default:
			return -1
		}
	}
}

func literalEnd(b []byte, i int, lit string) int {
	if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

// numberEnd returns the index past the JSON number at b[i], or -1.
func numberEnd(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digitsEnd(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digitsEnd(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digitsEnd(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
