package resolver

import (
	"encoding/json"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

const (
	devA = "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f"
	devB = "00000000-0000-4000-8000-000000000001"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		deviceID string
		appID    string
		want     string
	}{
		{"ok", devA, "com.example.app", ""},
		{"upper-case device id is fine", "8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F", "com.example.app", ""},
		{"upper-case app id", devA, "COM.Example.App", ""},
		{"app id with dash and underscore", devA, "com.my-company.my_app", ""},
		{"two labels", devA, "a.b", ""},
		{"missing device id", "", "com.example.app", CodeMissingDeviceID},
		{"missing both reports device first", "", "", CodeMissingDeviceID},
		{"missing app id", devA, "", CodeMissingAppID},
		{"device id not a uuid", "not-a-uuid", "com.example.app", CodeInvalidJSONBody},
		{"device id too long", devA + "0", "com.example.app", CodeInvalidJSONBody},
		{"device id without dashes", "8f0c1d2e3b4a4c5d9e6f0a1b2c3d4e5f", "com.example.app", CodeInvalidJSONBody},
		{"device id dash misplaced", "8f0c1d2e3-b4a-4c5d-9e6f-0a1b2c3d4e5f", "com.example.app", CodeInvalidJSONBody},
		{"device id non hex", "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5g", "com.example.app", CodeInvalidJSONBody},
		{"app id single label", devA, "example", CodeInvalidJSONBody},
		{"app id empty label", devA, "com..app", CodeInvalidJSONBody},
		{"app id trailing dot", devA, "com.example.", CodeInvalidJSONBody},
		{"app id first label with dash", devA, "my-co.app", CodeInvalidJSONBody},
		{"app id first label with underscore", devA, "my_co.app", CodeInvalidJSONBody},
		{"app id with space", devA, "com.example app", CodeInvalidJSONBody},
		{"app id with slash", devA, "com.example/app", CodeInvalidJSONBody},
		{"app id non ascii", devA, "com.exämple", CodeInvalidJSONBody},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Request{DeviceID: tt.deviceID, AppID: tt.appID}
			code, msg := r.Validate()
			if code != tt.want {
				t.Fatalf("Validate() = %q, want %q", code, tt.want)
			}
			if (code == "") != (msg == "") {
				t.Errorf("message %q does not match code %q", msg, code)
			}
		})
	}
}

func TestValidateQuery(t *testing.T) {
	tests := []struct {
		name          string
		deviceID      string
		appID         string
		requireDevice bool
		want          string
	}{
		{"delete ok", devA, "com.example.app", true, ""},
		{"delete missing device", "", "com.example.app", true, CodeMissingDeviceID},
		{"delete bad device", "x", "com.example.app", true, CodeInvalidQueryParams},
		{"delete bad app", devA, "x", true, CodeInvalidQueryParams},
		{"list without device", "", "com.example.app", false, ""},
		{"list ignores bad device", "x", "com.example.app", false, ""},
		{"list missing app", "", "", false, CodeMissingAppID},
		{"list bad app", "", "app", false, CodeInvalidQueryParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The list also needs a platform (TestCheckOrder covers it).
			r := Request{DeviceID: tt.deviceID, AppID: tt.appID, Platform: "ios"}
			if code, _ := r.ValidateQuery(tt.requireDevice); code != tt.want {
				t.Errorf("ValidateQuery(%v) = %q, want %q", tt.requireDevice, code, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	r := Request{DeviceID: "8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F", AppID: "Com.Example"}
	r.Normalize()
	if r.DeviceID != devA {
		t.Errorf("DeviceID = %q", r.DeviceID)
	}
	if r.AppID != "Com.Example" {
		t.Errorf("Normalize changed AppID to %q", r.AppID)
	}
}

// TestRequestJSONNames pins the wire names of the device info object.
func TestRequestJSONNames(t *testing.T) {
	body := `{"platform":"android","device_id":"` + devA + `",
	 "app_id":"com.example.mirrord","custom_id":"c","version_build":"1.0.0",
	 "version_code":"10","version_os":"14","version_name":"builtin",
	 "plugin_version":"8.51.23","is_emulator":true,"is_prod":true,
	 "install_source":"google_play","defaultChannel":"beta","key_id":"MIIBCgKCAQEAxiHQEJu8",
	 "channel":"beta2"}`
	var r Request
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatal(err)
	}
	key := "MIIBCgKCAQEAxiHQEJu8"
	want := Request{
		Platform: "android", DeviceID: devA, AppID: "com.example.mirrord", CustomID: "c",
		VersionBuild: "1.0.0", VersionCode: "10", VersionOS: "14", VersionName: "builtin",
		PluginVersion: "8.51.23", IsEmulator: true, IsProd: true, InstallSource: "google_play",
		DefaultChannel: "beta", KeyID: &key, Channel: "beta2",
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("decoded %+v\nwant    %+v", r, want)
	}
	var noKey Request
	if err := json.Unmarshal([]byte(`{"key_id":null}`), &noKey); err != nil || noKey.KeyID != nil {
		t.Errorf("null key_id: %v %v", noKey.KeyID, err)
	}
}

func TestRequestFromQuery(t *testing.T) {
	key := "MIIB"
	tests := []struct {
		name  string
		query string
		want  Request
	}{
		{
			name:  "defaults for plugins before 5.0.0",
			query: "app_id=com.example.app&device_id=8F0C1D2E-3B4A-4C5D-9E6F-0A1B2C3D4E5F&platform=ios",
			want:  Request{AppID: "com.example.app", DeviceID: devA, Platform: "ios", IsProd: true},
		},
		{
			name: "all fields",
			query: "app_id=com.example.app&device_id=" + devA + "&platform=android&is_emulator=true&is_prod=false" +
				"&version_name=1.0.1&version_build=1.0&version_code=3&version_os=14&plugin_version=5.2.0" +
				"&custom_id=c&install_source=x&defaultChannel=beta&channel=dev&key_id=MIIB",
			want: Request{
				AppID: "com.example.app", DeviceID: devA, Platform: "android", IsEmulator: true, IsProd: false,
				VersionName: "1.0.1", VersionBuild: "1.0", VersionCode: "3", VersionOS: "14",
				PluginVersion: "5.2.0", CustomID: "c", InstallSource: "x", DefaultChannel: "beta",
				Channel: "dev", KeyID: &key,
			},
		},
		{
			name:  "empty key_id is absent, odd booleans are false",
			query: "app_id=a.b&key_id=&is_emulator=1&is_prod=yes",
			want:  Request{AppID: "a.b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if got := RequestFromQuery(q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestResponseKind(t *testing.T) {
	tests := map[string]string{
		"":                              "",
		CodeNoNewVersion:                KindUpToDate,
		CodeAlreadyOnBuiltin:            KindUpToDate,
		CodePrivateChannel:              KindBlocked,
		CodeDisabledIOS:                 KindBlocked,
		CodeDisabledAndroid:             KindBlocked,
		CodeDisabledElectron:            KindBlocked,
		CodeDisableMajor:                KindBlocked,
		CodeDisableMinor:                KindBlocked,
		CodeDisablePatch:                KindBlocked,
		CodeDisableMetadata:             KindBlocked,
		CodeDisableUnderNative:          KindBlocked,
		CodeDisableProdBuild:            KindBlocked,
		CodeDisableDevBuild:             KindBlocked,
		CodeDisableDevice:               KindBlocked,
		CodeDisableEmulator:             KindBlocked,
		CodeKeyIDMismatch:               KindBlocked,
		CodeProviderInfraBlocks:         KindBlocked,
		CodeAppNotFound:                 KindFailed,
		CodeUnknownVersionBuild:         KindFailed,
		CodeSemver:                      KindFailed,
		CodeUnsupportedPlugin:           KindFailed,
		CodeMissingInfo:                 KindFailed,
		CodeNoChannel:                   KindFailed,
		CodeNullChannelData:             KindFailed,
		CodeNoBundle:                    KindFailed,
		CodeMisconfiguredChannel:        KindFailed,
		CodeRevertTooOld:                KindFailed,
		CodeNoBundleURL:                 KindFailed,
		CodeNoURLOrManifest:             KindFailed,
		"something_capgo_adds_later":    KindFailed,
		"No_New_Version_Available":      KindFailed,
		CodeInvalidJSONBody:             KindFailed,
		CodePublicChannelSelfSetBlocked: KindFailed,
	}
	for code, want := range tests {
		if got := ResponseKind(code); got != want {
			t.Errorf("ResponseKind(%q) = %q, want %q", code, got, want)
		}
	}
}
