package adminapi

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

func TestParseSince(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"24h", 24 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"8d", 8 * 24 * time.Hour, true},
		{"192h0m0s", 192 * time.Hour, true},
		{"9d", 0, false},
		{"193h", 0, false},
		{"0s", 0, false},
		{"-1h", 0, false},
		{"d", 0, false},
		{"1.5d", 0, false},
		{"yesterday", 0, false},
		{"", 0, false},
	} {
		got, err := ParseSince(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSince(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestStatsHistoryAnswer: GET .../stats?since= answers the buckets of
// the window the node's clock places, per release shown, with totals;
// without since there is no history; a bad since is 400.
func TestStatsHistoryAnswer(t *testing.T) {
	s := newTestServer(t, Config{})
	h0 := state.HourOf(1_700_000_000_000)
	hr := func(n int64) int64 { return h0 + n*state.HistoryBucketMillis }
	s.api.now = func() time.Time { return time.UnixMilli(hr(30) + 5) }
	cons := s.api.cons.(*consensus.Node)
	ctx := context.Background()
	for _, cmd := range []consensus.Command{
		consensus.AppCreate{ID: "com.example.app", CreatedAt: 1},
		consensus.ReleaseCreate{Release: state.Release{App: "com.example.app", Version: "1.0.0", ZipCID: "z", Checksum: "c", CreatedAt: 1}, Channel: "production"},
		consensus.ReleaseCreate{Release: state.Release{App: "com.example.app", Version: "1.1.0", ZipCID: "z", Checksum: "c", CreatedAt: 2}},
		report("A", 1, hr(0), "1.0.0", 10, 4, 0),
		report("A", 2, hr(10), "1.0.0", 20, 9, 1),
		report("B", 1, hr(29), "1.0.0", 5, 5, 5),
		report("B", 2, hr(30), "1.0.0", 6, 6, 5),
	} {
		if _, err := cons.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	c := s.client(testToken)
	// A node that has not announced the feature is named.
	for _, cmd := range []consensus.Command{consensus.NodeSet{Node: state.NodeInfo{ID: "A"}}, consensus.NodeSet{Node: state.NodeInfo{ID: "old"}},
		consensus.NodeFeatures{Node: "A", Features: []string{state.FeatureStatsHistory}}} {
		if _, err := cons.Apply(ctx, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if ans, err := c.StatsFor(ctx, "com.example.app", StatsQuery{Since: time.Hour}); err != nil || !reflect.DeepEqual(ans.History.WaitingFor, []string{"old"}) {
		t.Fatalf("waiting for %v, %v", ans.History, err)
	}
	if _, err := cons.Apply(ctx, consensus.NodeDelete{ID: "old"}); err != nil {
		t.Fatal(err)
	}
	plain, err := c.Stats(ctx, "com.example.app", "", "")
	if err != nil || plain.History != nil {
		t.Fatalf("without since: %+v, %v", plain.History, err)
	}
	for _, tc := range []struct {
		name  string
		q     StatsQuery
		hours []int64 // of 1.0.0
		total CounterView
	}{
		{"last day", StatsQuery{Since: 24 * time.Hour}, []int64{10, 29, 30},
			CounterView{Offered: 16, Installs: 11, Failures: 6, ByAction: map[string]int64{}, FailureRate: 6.0 / 17}},
		{"last week", StatsQuery{Since: 7 * 24 * time.Hour}, []int64{0, 10, 29, 30},
			CounterView{Offered: 26, Installs: 15, Failures: 6, ByAction: map[string]int64{}, FailureRate: 6.0 / 21}},
		{"last hour", StatsQuery{Since: time.Hour, Version: "1.0.0"}, []int64{29, 30},
			CounterView{Offered: 6, Installs: 6, Failures: 5, ByAction: map[string]int64{}, FailureRate: 5.0 / 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := c.StatsFor(ctx, "com.example.app", tc.q)
			if err != nil {
				t.Fatal(err)
			}
			h := ans.History
			if h == nil || h.To != hr(30)+5 || h.From != state.HourOf(hr(30)+5-tc.q.Since.Milliseconds()) ||
				h.BucketMillis != state.HistoryBucketMillis || h.Newest != hr(30) || len(h.Releases) != len(ans.Releases) || h.WaitingFor != nil {
				t.Fatalf("history %+v", h)
			}
			var got []int64
			for _, b := range h.Releases[0].Buckets {
				got = append(got, (b.Hour-h0)/state.HistoryBucketMillis)
			}
			if h.Releases[0].Version != "1.0.0" || !reflect.DeepEqual(got, tc.hours) || !reflect.DeepEqual(h.Releases[0].Total, tc.total) {
				t.Errorf("1.0.0: hours %v total %+v", got, h.Releases[0].Total)
			}
			if len(h.Releases) > 1 && (h.Releases[1].Version != "1.1.0" || h.Releases[1].Buckets == nil || len(h.Releases[1].Buckets) != 0) {
				t.Errorf("1.1.0: %+v", h.Releases[1])
			}
		})
	}
	for _, q := range []string{"since=9d", "since=0s", "since=soon"} {
		if status, code, _ := s.raw(t, testToken, "GET", "/admin/v1/apps/com.example.app/stats?"+q, ""); status != http.StatusBadRequest || code != "invalid" {
			t.Errorf("%s: %d %s", q, status, code)
		}
	}
	if _, err := s.api.StatsFor(ctx, "com.example.app", StatsQuery{Since: 10 * 24 * time.Hour}); !errors.Is(err, ErrInvalid) {
		t.Errorf("StatsFor with 10 days: %v", err)
	}
}

func report(node string, seq uint64, at int64, version string, offered, installs, failures int64) consensus.Command {
	c := state.Counters{Seq: seq, Offered: offered, Installs: installs, At: at}
	if failures > 0 {
		c.Failures = map[string]int64{"update_fail": failures}
	}
	return consensus.StatsReportAt{Node: node, At: at, Releases: []state.ReleaseCounters{{App: "com.example.app", Version: version, Counters: c}}}
}
