package adminapi

import (
	"context"
	"net/http"
	"slices"

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
func (a *API) Stats(ctx context.Context, appID, channel, version string) (_ StatsAnswer, err error) {
	defer classifyErr(&err)
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
	return out, nil
}

func (a *API) httpStats(r *http.Request) (int, any, error) {
	q := r.URL.Query()
	out, err := a.Stats(r.Context(), r.PathValue("app"), q.Get("channel"), q.Get("version"))
	return http.StatusOK, out, err
}
