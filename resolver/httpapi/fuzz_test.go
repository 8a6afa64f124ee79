package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
)

func FuzzUpdates(f *testing.F) {
	fx := newFixture(f, 100)
	f.Add([]byte(deviceBody))
	f.Add([]byte(`{"app_id":"com.example.app","device_id":"8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F","version_build":"1","plugin_version":"4.0.0","key_id":"abc"}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, r := range []struct{ m, path string }{{"POST", "/updates"}, {"POST", "/channel_self"}, {"PUT", "/channel_self"}, {"DELETE", "/channel_self"}} {
			{
				m, path := r.m, r.path
				w := fx.do(m, path, string(body))
				if w.Code >= 500 {
					t.Fatalf("%s %s: HTTP %d for %q", m, path, w.Code, body)
				}
				if !json.Valid(w.Body.Bytes()) {
					t.Fatalf("%s %s: answer is not JSON: %s", m, path, w.Body)
				}
			}
		}
	})
}

func FuzzStats(f *testing.F) {
	fx := newFixture(f, 100)
	f.Add([]byte(`{"action":"set","app_id":"com.example.app","device_id":"x"}`))
	f.Add([]byte(`[{"action":"set"},{"action":"unknown_thing"},3]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := fx.do("POST", "/stats", string(body))
		if w.Code != 200 && w.Code != 400 && w.Code != 413 && w.Code != 429 {
			t.Fatalf("HTTP %d for %q", w.Code, body)
		}
	})
}

func FuzzChannelQuery(f *testing.F) {
	fx := newFixture(f, 100)
	f.Add("app_id=com.example.app&platform=android&device_id=8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f")
	f.Fuzz(func(t *testing.T, q string) {
		for _, m := range []string{"GET", "DELETE"} {
			req := httptest.NewRequest(m, "/channel_self", nil)
			req.URL.RawQuery = q
			w := httptest.NewRecorder()
			fx.h.ServeHTTP(w, req)
			if w.Code >= 500 {
				t.Fatalf("%s ?%s: HTTP %d", m, q, w.Code)
			}
		}
	})
}

// FuzzStatsBody: any body gets 200, 400 exactly when it is not JSON or
// is one event whose version_build is not a version, 429
// on_premise_app only for one event of an unknown app, and never a
// panic.
func FuzzStatsBody(f *testing.F) {
	for _, s := range []string{fmt.Sprintf(statEv, "set"), "[" + fmt.Sprintf(statEv, "x") + `,{}]`, `[]`, `{`, `null`, `[1,"a",{"action":"set"}]`,
		`{"action":"set","app_id":"com.other.app","device_id":"d"}`, `{"action":"set","app_id":"com.example.app","device_id":"d","version_build":"x"}`} {
		f.Add(s)
	}
	fx := newFixture(f, 10)
	f.Fuzz(func(t *testing.T, body string) {
		w := fx.do("POST", "/stats", body)
		b := bytes.TrimSpace([]byte(body))
		valid := json.Valid(b)
		var ans struct{ Error string }
		_ = json.Unmarshal(w.Body.Bytes(), &ans)
		ok := false
		switch w.Code {
		case 200:
			ok = valid
		case 400:
			ok = !valid || ans.Error == "semver_error" && b[0] == '{'
		case 429:
			ok = valid && b[0] == '{' && ans.Error == "on_premise_app"
		case 413:
			ok = true
		}
		if !ok || !json.Valid(w.Body.Bytes()) {
			t.Fatalf("body %q: %d %s", body, w.Code, w.Body)
		}
	})
}

// FuzzScanStatEvent checks the fast field scanner against encoding/json
// on every valid JSON object.
func FuzzScanStatEvent(f *testing.F) {
	for _, s := range []string{
		fmt.Sprintf(statEv, "set"), `{}`, `{"action":null,"ACTION":"x"}`, `{"Action":"a","action":"b"}`,
		`{"app_id":5}`, `{"\u0061ction":"esc","device_id":"\u00e9\ud83d\ude00"}`, `{"version_name":"a\"b\\c"}`,
		`{"x":{"action":"nested"},"y":[1,{"a":"]"}],"action":"top"}`, "{\"action\":\"\xff\xfe\"}",
		`{"ſction":"fold"}`, ` { "action" : "sp" , "app_id" : "a" } `,
		`{"action":"download_fail","plugin_version":"7.16.9","version_build":"1.0","PLUGIN_VERSION":null}`,
		`{"Version_Build":"x","plugin_version":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if !json.Valid(b) || len(b) == 0 || b[0] != '{' {
			return
		}
		var want statEvent
		werr := json.Unmarshal(b, &want)
		got, gerr := scanStatEvent(b, nil)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json err %v, scanner err %v", b, werr, gerr)
		}
		if werr == nil && got != want {
			t.Fatalf("%q: scanner %+v, encoding/json %+v", b, got, want)
		}
		// The event before in a batch only saves copies: with any prev,
		// the same event reads the same.
		for _, prev := range []*statEvent{&got, {Action: "set", AppID: "com.example.app", VersionName: "1.0.1"}} {
			again, aerr := scanStatEvent(b, prev)
			if (aerr == nil) != (gerr == nil) || again != got {
				t.Fatalf("%q with prev %+v: %+v %v, without: %+v %v", b, prev, again, aerr, got, gerr)
			}
		}
	})
}

// FuzzSplitArray checks the array splitter against encoding/json.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[1, "a,b", {"x":[1,2]}, null , true]`, `[[],[[]],{}]`, `["\"]",{"a":"]"}]`, `{"a":1}`, ` [ 1 ] `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = bytes.TrimSpace(b)
		if !json.Valid(b) {
			return
		}
		var want []json.RawMessage
		werr := json.Unmarshal(b, &want)
		got, ok := splitArray(b)
		if ok != (werr == nil && b[0] == '[') {
			t.Fatalf("%q: split ok %v, encoding/json err %v", b, ok, werr)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d elements, want %d", b, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d %q, want %q", b, i, got[i], want[i])
			}
		}
	})
}
