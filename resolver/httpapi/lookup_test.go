package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"mirrord/consensus/state"
	"mirrord/resolver"
)

// lookupState has app com.example.app with production (public, 1.0.1)
// and beta (self-settable, 1.0.1), release 1.0.2 rolled out on
// production at 10%, and two device overrides: one to beta, one pinned
// to 1.0.2.
func lookupState(t *testing.T) *state.State {
	t.Helper()
	must := func(s *state.State, err error) *state.State {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const app = "com.example.app"
	s := must(state.Empty().CreateApp(1, state.App{ID: app}))
	s = must(s.CreateRelease(2, state.Release{App: app, Version: "1.0.1", ZipCID: "bafy1"}, "production"))
	s = must(s.CreateRelease(3, state.Release{App: app, Version: "1.0.2", ZipCID: "bafy2"}, ""))
	s = must(s.SetChannel(4, app, "beta", 0, state.ChannelPatch{Version: lookupPtr("1.0.1"), AllowDeviceSelfSet: lookupPtr(true)}))
	s = must(s.StartRollout(5, app, "production", "1.0.2", 1000, nil, state.Tally{}, 0))
	s = must(s.SetDevices(6, app, []state.DeviceEntry{
		{DeviceID: "beta-device", Channel: "beta"}, {DeviceID: "pinned-device", Version: "1.0.2"}}))
	return s
}

func lookupPtr[T any](v T) *T { return &v }

// cohortDevice returns a device id whose slot in rollout id is below
// 1000 (in) or not (out).
func cohortDevice(t *testing.T, id string, in bool) (string, int) {
	for i := 0; i < 10000; i++ {
		dev := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if slot := resolver.CohortSlot(dev, id); (slot < 1000) == in {
			return dev, slot
		}
	}
	t.Fatal("no device found")
	return "", 0
}

func TestLookupExplains(t *testing.T) {
	st := lookupState(t)
	app := st.App("com.example.app")
	rid := app.Channels["production"].Rollout.ID
	in, inSlot := cohortDevice(t, rid, true)
	out, outSlot := cohortDevice(t, rid, false)
	req := func(dev, running string) resolver.Request {
		return resolver.Request{AppID: "com.example.app", DeviceID: dev, Platform: "android", VersionBuild: "1.0.0",
			VersionName: running, PluginVersion: "8.51.23", IsProd: true}
	}
	cases := []struct {
		name    string
		req     resolver.Request
		version string
		source  string
		want    []string
	}{
		{"in cohort", req(in, "builtin"), "1.0.2", resolver.SourceRollout, []string{
			"Gets 1.0.2", "channel production, the public channel for android",
			fmt.Sprintf("in the 10.00%% cohort of rollout %s (slot %04d < 1000)", rid, inSlot)}},
		{"not in cohort", req(out, "builtin"), "1.0.1", resolver.SourceChannel, []string{
			"Gets 1.0.1", "the channel's release 1.0.1",
			fmt.Sprintf("not in the 10.00%% cohort of rollout %s (slot %04d >= 1000)", rid, outSlot)}},
		{"sticky", req(out, "1.0.2"), "", resolver.SourceRolloutSticky, []string{
			"Up to date (no_new_version_available)", "already on 1.0.2, the release of active rollout " + rid}},
		{"override", req("beta-device", "builtin"), "1.0.1", resolver.SourceChannel, []string{
			"Gets 1.0.1", "channel beta via device override"}},
		{"pinned", req("pinned-device", "builtin"), "1.0.2", resolver.SourcePinned, []string{
			"release 1.0.2 pinned by operator"}},
		{"no channel", func() resolver.Request { r := req(in, "builtin"); r.DefaultChannel = "nightly"; return r }(), "", "", []string{
			"no_channel", "names channel nightly (defaultChannel), which does not exist"}},
		{"unknown app", func() resolver.Request { r := req(in, "builtin"); r.AppID = "com.other.app"; return r }(), "", "", []string{
			"app_not_found", "app com.other.app is not registered"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ans := Lookup(st.App(c.req.AppID), c.req)
			t.Log(ans.Explanation)
			if ans.Decision.Version != c.version || ans.Decision.Source != c.source {
				t.Errorf("decision %+v, want version %q source %q", ans.Decision, c.version, c.source)
			}
			for _, w := range c.want {
				if !strings.Contains(ans.Explanation, w) {
					t.Errorf("explanation %q lacks %q", ans.Explanation, w)
				}
			}
		})
	}
}

func TestLookupHandler(t *testing.T) {
	api := New(Config{}, fixedState{lookupState(t)}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h := api.LookupHandler()
	get := func(q url.Values) (int, map[string]any) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/admin/v1/lookup?"+q.Encode(), nil))
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		return w.Code, m
	}
	code, m := get(url.Values{"app_id": {"com.example.app"}, "device_id": {"BETA-DEVICE"}, "platform": {"android"},
		"version_build": {"1.0.0"}, "is_prod": {"true"}})
	d, _ := m["decision"].(map[string]any)
	if code != 200 || d["version"] != "1.0.1" || d["channel"] != "beta" || m["channel_via"] != "override" {
		t.Fatalf("HTTP %d %v", code, m)
	}
	if code, m := get(url.Values{"app_id": {"com.example.app"}}); code != http.StatusBadRequest || m["error"] != resolver.CodeMissingDeviceID {
		t.Fatalf("no device: HTTP %d %v", code, m)
	}
	// The device API's mux does not serve it: it is an admin route.
	mux := http.NewServeMux()
	api.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/admin/v1/lookup?app_id=com.example.app&device_id=x", nil))
	if w.Code != http.StatusNotFound {
		t.Fatalf("device mux answers the lookup: HTTP %d", w.Code)
	}
}
