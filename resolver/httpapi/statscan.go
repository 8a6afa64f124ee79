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

// splitArray returns the elements of a JSON array that is valid JSON,
// as subslices of b, or false when b is not an array.
func splitArray(b []byte) ([]json.RawMessage, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	var out []json.RawMessage
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return out, true
	}
	for i < len(b) {
		end := valueEnd(b, i)
		if end < 0 {
			return nil, false
		}
		out = append(out, b[i:end])
		i = skipWS(b, end)
		if i >= len(b) {
			return nil, false
		}
		if b[i] == ']' {
			return out, true
		}
		if b[i] != ',' {
			return nil, false
		}
		i = skipWS(b, i+1)
	}
	return nil, false
}

// scanStatEvent reads the checked fields (action, app_id, device_id,
// version_name) of one stats event, which must be valid JSON (the
// caller's decoder validated the whole body). It walks the top-level
// object once instead of running encoding/json's reflection decoder over
// the whole event, which dominated the cost of ingesting stats. Its
// results equal json.Unmarshal into statEvent, including
// case-insensitive and escaped keys, the last duplicate winning, null
// leaving a field empty and invalid UTF-8 replaced (FuzzScanStatEvent
// checks this against encoding/json).
func scanStatEvent(ev []byte) (statEvent, error) {
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
		if dst := e.field(key); dst != nil {
			if err := decodeString(ev[i:vEnd], dst); err != nil {
				return e, err
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

// field returns where a key's value goes, or nil for keys not checked.
// Keys match case-insensitively, as encoding/json matches struct fields.
func (e *statEvent) field(rawKey []byte) *string {
	// Fast path: the plugin's own lower-case keys, without allocating.
	switch string(rawKey) {
	case "action":
		return &e.Action
	case "app_id":
		return &e.AppID
	case "device_id":
		return &e.DeviceID
	case "version_name":
		return &e.VersionName
	}
	plain := true
	for _, c := range rawKey {
		if c == '\\' || c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			plain = false
			break
		}
	}
	if plain {
		return nil // lower-case ASCII and none of the above
	}
	key := string(rawKey)
	if strings.IndexByte(key, '\\') >= 0 || !utf8.ValidString(key) {
		var k string
		if json.Unmarshal(append(append([]byte{'"'}, rawKey...), '"'), &k) != nil {
			return nil
		}
		key = k
	}
	switch {
	case strings.EqualFold(key, "action"):
		return &e.Action
	case strings.EqualFold(key, "app_id"):
		return &e.AppID
	case strings.EqualFold(key, "device_id"):
		return &e.DeviceID
	case strings.EqualFold(key, "version_name"):
		return &e.VersionName
	}
	return nil
}

// decodeString stores a JSON string value in dst; null leaves dst as it
// is, as encoding/json does.
func decodeString(v []byte, dst *string) error {
	switch {
	case len(v) == 4 && string(v) == "null":
		return nil
	case len(v) < 2 || v[0] != '"':
		return errFieldType
	}
	body := v[1 : len(v)-1]
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			// Escapes or non-ASCII: let encoding/json unquote it (it
			// also replaces invalid UTF-8).
			return json.Unmarshal(v, dst)
		}
	}
	*dst = string(body)
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the closing quote of the string that
// starts at b[i], or -1.
func stringEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j
		}
	}
	return -1
}

// valueEnd returns the index just past the value that starts at b[i],
// or -1. b is valid JSON, so only strings and nesting need care.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		if j := stringEnd(b, i); j >= 0 {
			return j + 1
		}
		return -1
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				if j = stringEnd(b, j); j < 0 {
					return -1
				}
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
		j++
	}
	return j
}
