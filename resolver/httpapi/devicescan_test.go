package httpapi

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"mirrord/resolver"
)

// deviceSeeds are bodies for the decoder tests: the plugin's, and the
// unusual ones the fast path must leave to encoding/json.
var deviceSeeds = []string{
	deviceBody, `{}`, ` { } `, `null`, `[]`, `[1]`, `"x"`, `1`, ``, `{`, `{"a":1}x`, `{"a":1} `,
	`{"app_id":"com.example.app","device_id":"8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F","key_id":"abc"}`,
	`{"key_id":"a","key_id":null}`, `{"key_id":null}`, `{"KEY_ID":"a","Key_Id":"b"}`,
	`{"platform":"a","PLATFORM":"b","platform":null}`, `{"DefaultChannel":"x","defaultchannel":"y"}`,
	`{"is_prod":true,"is_prod":null,"is_emulator":"true"}`, `{"is_prod":1}`, `{"is_prod":tru}`,
	`{"app_id":5}`, `{"app_id":{"x":1}}`, `{"app_id":["a"]}`, `{"app_id":"a\"b"}`, `{"app_id":"\u0061"}`,
	`{"\u0061pp_id":"esc"}`, `{"ſhannel":"fold"}`, `{"platform":"é😀"}`, "{\"platform\":\"\xff\"}",
	"{\"platform\":\"a\x01\"}", `{"x":{"y":[1,2.5e-3,-0,true,false,null,"s"]},"app_id":"a"}`,
	`{"x":01}`, `{"x":1.}`, `{"x":-}`, `{"x":1e}`, `{"x":"\x"}`, `{"x":"\u12"}`, `{"a":1,}`, `{,}`,
	`{"a" 1}`, `{"a":1 "b":2}`, `{"version_name":"1.0.0","custom_id":"","channel":"beta"}`,
	`{"a_very_long_unknown_key_name":"x","Another_Very_Long_Key":1}`,
}

// FuzzDecodeDevice checks decodeDevice against json.Unmarshal: the
// same Request, or both an error.
func FuzzDecodeDevice(f *testing.F) {
	for _, s := range deviceSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var want, got resolver.Request
		werr := json.Unmarshal(b, &want)
		gerr := decodeDevice(b, &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json err %v, decodeDevice err %v", b, werr, gerr)
		}
		if werr != nil {
			if gerr.Error() != werr.Error() {
				t.Fatalf("%q: error %q, encoding/json %q", b, gerr, werr)
			}
			return
		}
		if !sameRequest(got, want) {
			t.Fatalf("%q: decodeDevice %+v, encoding/json %+v", b, got, want)
		}
	})
}

func sameRequest(a, b resolver.Request) bool {
	ka, kb := a.KeyID, b.KeyID
	a.KeyID, b.KeyID = nil, nil
	if a != b || (ka == nil) != (kb == nil) {
		return false
	}
	return ka == nil || *ka == *kb
}

// FuzzValidJSON checks the validating scanner against json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range deviceSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{`[1,[2,{"a":[]}]]`, `[1,]`, `[,1]`, `[] []`, "\t[\r\n]\n", `"\ud800"`, `"\/\b\f\n\r\t"`,
		`1E+2`, `-0.0e0`, `- 1`, `+1`, `.5`, `truex`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("%q: validJSON %v, json.Valid %v", b, got, want)
		}
		if bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("[")) {
			if _, ok := splitArray(b); ok != json.Valid(b) {
				t.Fatalf("%q: splitArray ok %v, json.Valid %v", b, ok, json.Valid(b))
			}
		}
	})
}

// TestValidJSONDepth: encoding/json's nesting limit (10,000) holds.
func TestValidJSONDepth(t *testing.T) {
	for _, n := range []int{maxDepth - 1, maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closeTok := "]"
			if open != "[" {
				closeTok = "}"
			}
			b := []byte(strings.Repeat(open, n) + "1" + strings.Repeat(closeTok, n))
			if got, want := validJSON(b), json.Valid(b); got != want {
				t.Errorf("depth %d %s: validJSON %v, json.Valid %v", n, open, got, want)
			}
			if open == "[" {
				if _, ok := splitArray(b); ok != json.Valid(b) {
					t.Errorf("depth %d: splitArray ok %v", n, ok)
				}
			}
			var req resolver.Request
			body := []byte(`{"x":` + string(b) + `}`)
			werr := json.Unmarshal(body, &req)
			if gerr := decodeDevice(body, &resolver.Request{}); (gerr == nil) != (werr == nil) {
				t.Errorf("depth %d %s in a device body: err %v, encoding/json %v", n, open, gerr, werr)
			}
		}
	}
}

// TestDecodeDeviceFastPath: the plugin's bodies take the fast path.
func TestDecodeDeviceFastPath(t *testing.T) {
	for _, s := range []string{deviceBody, `{"app_id":"a","key_id":"k","is_prod":false,"platform":"ios"}`, `{}`} {
		var req resolver.Request
		if !scanDevice([]byte(s), &req) {
			t.Errorf("%s: fast path not taken", s)
		}
	}
}
