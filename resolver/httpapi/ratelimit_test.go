package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/state"
)

// TestStatsVerdictsStoredApart: events the counter judges unverified or
// duplicate are answered as any other (the plugin must not retry them)
// and stored as ignored with their marker, apart from the counted ones.
func TestStatsVerdictsStoredApart(t *testing.T) {
	f := newFixture(t, 10)
	f.count.judge = func(device, action string) state.EventVerdict {
		switch {
		case strings.HasPrefix(device, "forged"):
			return state.VerdictUnverified
		case action == "update_fail":
			return state.VerdictDuplicate
		}
		return state.VerdictCounted
	}
	ev := func(dev, action string) string {
		return strings.Replace(fmt.Sprintf(statEv, action), "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f", dev, 1)
	}
	body := "[" + ev("forged-1", "update_fail") + "," + ev("real", "set") + "," + ev("real", "update_fail") + "," +
		ev("forged-2", "set") + "]"
	w := f.do("POST", "/stats", body)
	if w.Code != 200 || strings.Contains(w.Body.String(), `"error"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if len(f.stats.events) != 1 || !strings.Contains(string(f.stats.events[0]), `"device_id":"real","app_id":"com.example.app","action":"set"`) {
		t.Fatalf("counted %s", f.stats.events)
	}
	if len(f.stats.ignored[state.IgnoredUnverified]) != 2 || len(f.stats.ignored[state.IgnoredDuplicate]) != 1 {
		t.Fatalf("ignored %v", f.stats.ignored)
	}
}

// TestStatsRateLimit: a source past its budget gets 429
// too_many_requests with Retry-After; another source is not affected;
// the budget refills with time.
func TestStatsRateLimit(t *testing.T) {
	f := newFixture(t, 10)
	clock := time.Unix(1_700_000_000, 0)
	f.api.limit = newLimiter(RateLimit{Rate: 100, Burst: 400}, func() time.Time { return clock })
	batch := "[" + strings.Repeat(fmt.Sprintf(statEv, "set")+",", 199) + fmt.Sprintf(statEv, "set") + "]"
	post := func(from string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/stats", strings.NewReader(batch))
		req.RemoteAddr = from
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, req)
		return w
	}
	for i := range 2 {
		if w := post("198.51.100.7:4000"); w.Code != 200 {
			t.Fatalf("batch %d within the burst: %d %s", i, w.Code, w.Body)
		}
	}
	// Out of budget: refused before the body is read, for one event's
	// wait (rounded up to a second).
	w := post("198.51.100.7:4001")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" || decode(t, w)["error"] != "too_many_requests" {
		t.Fatalf("past the burst: %d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if more := decode(t, w)["moreInfo"].(map[string]any); more["retryAfterSeconds"] != float64(1) {
		t.Fatalf("moreInfo %v", more)
	}
	if w := post("[2001:db8::1]:4000"); w.Code != 200 {
		t.Fatalf("another source: %d", w.Code)
	}
	// A second later, 100 events of budget: the batch of 200 waits one
	// more second.
	clock = clock.Add(time.Second)
	if w := post("198.51.100.7:4001"); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("half the budget: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	clock = clock.Add(time.Second)
	if w := post("198.51.100.7:4002"); w.Code != 200 {
		t.Fatalf("after Retry-After: %d %s", w.Code, w.Body)
	}
	if len(f.stats.events) != 4*200 {
		t.Fatalf("kept %d events", len(f.stats.events))
	}
}

func TestSource(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"198.51.100.7:4000", "198.51.100.7"},
		{"[::ffff:198.51.100.7]:1", "198.51.100.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::9]:443", "2001:db8:1:2::"},
		{"garbage", "invalid IP"},
	} {
		if got := source(tc.in); got.String() != tc.want {
			t.Errorf("source(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if source("[2001:db8:1:2::1]:1") != netip.MustParseAddr("2001:db8:1:2::") {
		t.Error("one /64, one budget")
	}
}
