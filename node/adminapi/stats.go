package adminapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"mirrord/consensus/state"
)

// CounterView is a set of counters with the derived rates.
type CounterView struct {
	Offered   int64            `json:"offered"`
	Downloads int64            `json:"downloads"`
	Installs  int64            `json:"installs"`
	Failures  int64            `json:"failures"`
	ByAction  map[string]int64 `json:"failures_by_action"`
	// FailureRate is failures / (installs + failures), 0 without events.
	FailureRate float64 `json:"failure_rate"`
	// UpdatedAt is the newest report behind these counts (unix ms).
	UpdatedAt int64 `json:"updated_at,omitempty"`
}

func counterView(c state.Counters) CounterView {
	v := CounterView{Offered: c.Offered, Downloads: c.Downloads, Installs: c.Installs,
		Failures: c.FailureTotal(), ByAction: c.Failures, UpdatedAt: c.At}
	if v.ByAction == nil {
		v.ByAction = map[string]int64{}
	}
	if n := v.Installs + v.Failures; n > 0 {
		v.FailureRate = float64(v.Failures) / float64(n)
	}
	return v
}

// NodeCounters are one node's counts for a release.
type NodeCounters struct {
	Node string `json:"node"`
	CounterView
}

// ReleaseStats are a release's counts, cluster-wide and per node.
type ReleaseStats struct {
	Version string `json:"version"`
	// Channels names the channels that serve the release, roll it out
	// or served it before (from their history).
	Channels []string       `json:"channels"`
	Total    CounterView    `json:"total"`
	Nodes    []NodeCounters `json:"nodes"`
}

// StatsAnswer is the answer of GET /admin/v1/apps/{app}/stats.
type StatsAnswer struct {
	App      string         `json:"app"`
	Channel  string         `json:"channel,omitempty"`
	Releases []ReleaseStats `json:"releases"`
	// Rollouts lists the rollouts of the channels shown.
	Rollouts []RolloutInfo `json:"rollouts"`
	// History is the hourly history of the releases shown, when the
	// query asked for one (since).
	History *StatsHistory `json:"history,omitempty"`
}

// StatsQuery narrows a stats answer: Channel and Version to the releases
// of that channel and to that release; Since > 0 adds the hourly
// history of that last period (at most HistoryRetention).
type StatsQuery struct {
	Channel string
	Version string
	Since   time.Duration
}

// HistoryRetention is how far back the cluster keeps hourly counts.
const HistoryRetention = time.Duration(state.HistoryRetention) * time.Millisecond

// StatsHistory is the cluster-wide hourly history of releases: the same
// on every node (derived from the raft log), read through a window that
// the answering node's clock places.
type StatsHistory struct {
	// From is the start of the first hour in the window and To the
	// node's clock at the answer (unix ms).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// BucketMillis is the width of a bucket (one hour).
	BucketMillis int64 `json:"bucket_ms"`
	// Newest is the newest report time behind the app's history (unix
	// ms), 0 when none was seen.
	Newest int64 `json:"newest"`
	// Releases are the releases shown, in the order of the answer's
	// Releases; those without counts in the window have no buckets.
	Releases []ReleaseHistory `json:"releases"`
	// WaitingFor lists the nodes that have not announced that they keep
	// the history (an older build during a rolling upgrade): until they
	// do, counts reach the counters but not the history.
	WaitingFor []string `json:"waiting_for,omitempty"`
}

// ReleaseHistory is one release's buckets in the window (hours without
// counts are left out) and their sum.
type ReleaseHistory struct {
	Version string         `json:"version"`
	Buckets []state.Bucket `json:"buckets"`
	Total   CounterView    `json:"total"`
}

// ParseSince reads a history window: a Go duration ("90m", "24h") or a
// whole number of days ("7d"). It must be positive and at most
// HistoryRetention.
func ParseSince(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int64
		days, err = strconv.ParseInt(n, 10, 32)
		d = time.Duration(days) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	switch {
	case err != nil:
		return 0, fmt.Errorf("since %q: want a duration such as 24h or 7d", s)
	case d <= 0:
		return 0, fmt.Errorf("since %q: want a positive duration", s)
	case d > HistoryRetention:
		return 0, fmt.Errorf("since %q: the cluster keeps %d days of hourly counts", s, HistoryRetention/(24*time.Hour))
	}
	return d, nil
}

// releaseChannels maps each version to the channels that use it.
func releaseChannels(app *state.AppState) map[string][]string {
	out := map[string][]string{}
	add := func(v, ch string) {
		if v == "" || v == state.Builtin {
			return
		}
		if !slices.Contains(out[v], ch) {
			out[v] = append(out[v], ch)
		}
	}
	for _, name := range app.ChannelNames() {
		c := app.Channels[name]
		add(c.Version, name)
		if c.Rollout != nil {
			add(c.Rollout.Version, name)
		}
		for _, v := range c.History {
			add(v, name)
		}
	}
	return out
}

// Stats returns an app's counts per release, cluster-wide and per node;
// channel and version, when given, narrow it to the releases of that
// channel and to that release.
func (a *API) Stats(ctx context.Context, appID, channel, version string) (StatsAnswer, error) {
	return a.StatsFor(ctx, appID, StatsQuery{Channel: channel, Version: version})
}

// StatsFor is Stats with a query; with q.Since it adds the hourly
// history of the releases shown over that last period.
func (a *API) StatsFor(ctx context.Context, appID string, q StatsQuery) (_ StatsAnswer, err error) {
	defer classifyErr(&err)
	if q.Since < 0 || q.Since > HistoryRetention {
		return StatsAnswer{}, bad("since: at most %s, the history's retention", HistoryRetention)
	}
	channel, version := q.Channel, q.Version
	app, err := a.app(appID)
	if err != nil {
		return StatsAnswer{}, err
	}
	if channel != "" && app.Channels[channel] == nil {
		return StatsAnswer{}, notFound("channel %q of app %q not found", channel, app.App.ID)
	}
	if version != "" && app.Releases[version] == nil {
		return StatsAnswer{}, notFound("release %q of app %q not found", version, app.App.ID)
	}
	uses := releaseChannels(app)
	out := StatsAnswer{App: app.App.ID, Channel: channel, Releases: []ReleaseStats{}, Rollouts: []RolloutInfo{}}
	for _, v := range app.ReleaseVersions() {
		if version != "" && v != version {
			continue
		}
		chs := uses[v]
		if channel != "" && !slices.Contains(chs, channel) {
			continue
		}
		rs := ReleaseStats{Version: v, Channels: chs, Total: counterView(app.ReleaseStats(v)), Nodes: []NodeCounters{}}
		if rs.Channels == nil {
			rs.Channels = []string{}
		}
		var newest int64
		for _, id := range app.StatsNodes(v) {
			c := app.Stats[v][id]
			newest = max(newest, c.At)
			rs.Nodes = append(rs.Nodes, NodeCounters{Node: id, CounterView: counterView(c)})
		}
		rs.Total.UpdatedAt = newest
		out.Releases = append(out.Releases, rs)
	}
	for _, name := range app.ChannelNames() {
		if channel != "" && name != channel {
			continue
		}
		if c := app.Channels[name]; c.Rollout != nil && (version == "" || c.Rollout.Version == version) {
			out.Rollouts = append(out.Rollouts, rolloutInfo(app, name))
		}
	}
	if q.Since > 0 {
		out.History = history(app, out.Releases, a.now(), q.Since)
		out.History.WaitingFor = waitingFor(a.cons.State().ClusterInfo())
	}
	return out, nil
}

// history reads the buckets of the releases shown from the start of the
// hour that now-since falls in.
func history(app *state.AppState, rels []ReleaseStats, now time.Time, since time.Duration) *StatsHistory {
	from := state.HourOf(max(now.Add(-since).UnixMilli(), 0))
	h := &StatsHistory{From: from, To: now.UnixMilli(), BucketMillis: state.HistoryBucketMillis,
		Newest: app.HistoryAt, Releases: []ReleaseHistory{}}
	for _, rs := range rels {
		rh := ReleaseHistory{Version: rs.Version, Buckets: slices.Clone(app.HistorySince(rs.Version, from))}
		if rh.Buckets == nil {
			rh.Buckets = []state.Bucket{}
		}
		var sum state.Bucket
		for _, b := range rh.Buckets {
			sum.Add(b)
		}
		rh.Total = bucketView(sum)
		h.Releases = append(h.Releases, rh)
	}
	return h
}

// waitingFor lists the nodes without state.FeatureStatsHistory, sorted.
func waitingFor(c *state.Cluster) []string {
	var out []string
	for id := range c.Nodes {
		if !c.HasFeature(id, state.FeatureStatsHistory) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// bucketView is a bucket's counts as a CounterView (no failure kinds:
// the history keeps totals).
func bucketView(b state.Bucket) CounterView {
	v := CounterView{Offered: b.Offered, Downloads: b.Downloads, Installs: b.Installs, Failures: b.Failures,
		ByAction: map[string]int64{}}
	if n := v.Installs + v.Failures; n > 0 {
		v.FailureRate = float64(v.Failures) / float64(n)
	}
	return v
}

func (a *API) httpStats(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	sq := StatsQuery{Channel: q.Get("channel"), Version: q.Get("version")}
	if s := q.Get("since"); s != "" {
		d, err := ParseSince(s)
		if err != nil {
			return 0, nil, bad("%v", err)
		}
		sq.Since = d
	}
	out, err := a.StatsFor(r.Context(), r.PathValue("app"), sq)
	return http.StatusOK, out, err
}
