package adminapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// ---- rollouts ----

// PolicyRequest is a halt policy in a rollout request. Zero fields take
// the defaults: confidence 0.95, action pause, min events 50.
type PolicyRequest struct {
	FailureRate float64 `json:"failure_rate"`
	MinEvents   int64   `json:"min_events,omitempty"`
	Confidence  float64 `json:"confidence,omitempty"`
	Action      string  `json:"action,omitempty"`
}

// DefaultHaltMinEvents is the policy's sample size when none is given.
const DefaultHaltMinEvents = 50

func (p *PolicyRequest) policy() *state.HaltPolicy {
	if p == nil {
		return nil
	}
	out := &state.HaltPolicy{FailureRate: p.FailureRate, MinEvents: p.MinEvents,
		Confidence: p.Confidence, Action: p.Action}
	if out.MinEvents == 0 {
		out.MinEvents = DefaultHaltMinEvents
	}
	if out.Confidence == 0 {
		out.Confidence = state.DefaultHaltConfidence
	}
	if out.Action == "" {
		out.Action = state.HaltPause
	}
	return out
}

// StartRolloutRequest is the body of POST .../channels/{channel}/rollout.
type StartRolloutRequest struct {
	Version     string         `json:"version"`
	BasisPoints int            `json:"basis_points"`
	Policy      *PolicyRequest `json:"policy,omitempty"`
}

// UpdateRolloutRequest is the body of PATCH .../channels/{channel}/rollout.
type UpdateRolloutRequest struct {
	BasisPoints *int           `json:"basis_points,omitempty"`
	Policy      *PolicyRequest `json:"policy,omitempty"`
	ClearPolicy bool           `json:"clear_policy,omitempty"`
}

// RolloutInfo is a channel's rollout as the admin API shows it, with the
// release's tally since the rollout's baseline.
type RolloutInfo struct {
	App     string         `json:"app"`
	Channel string         `json:"channel"`
	Stable  string         `json:"stable"`
	Rollout *state.Rollout `json:"rollout"`
	// Percent is BasisPoints / 100.
	Percent float64 `json:"percent"`
	// Since is the tally the halt policy looks at.
	Since state.Tally `json:"since_baseline"`
	// FailureRate is Since's failures / events (0 without events).
	FailureRate float64 `json:"failure_rate"`
}

func rolloutInfo(app *state.AppState, name string) RolloutInfo {
	c := app.Channels[name]
	out := RolloutInfo{App: app.App.ID, Channel: name}
	if c == nil {
		return out
	}
	out.Stable, out.Rollout = c.Version, c.Rollout
	if r := c.Rollout; r != nil {
		out.Percent = float64(r.BasisPoints) / 100
		out.Since = app.Tally(r.Version).Sub(r.Baseline)
		if n := out.Since.Events(); n > 0 {
			out.FailureRate = float64(out.Since.Failures) / float64(n)
		}
	}
	return out
}

func (a *API) getRollout(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	name := r.PathValue("channel")
	if app.Channels[name] == nil {
		return 0, nil, notFound("channel %q of app %q not found", name, app.App.ID)
	}
	return http.StatusOK, rolloutInfo(app, name), nil
}

func (a *API) startRollout(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	var req StartRolloutRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.Version == "" {
		return 0, nil, bad("version is required")
	}
	ch := r.PathValue("channel")
	if app.Channels[ch] == nil {
		return 0, nil, notFound("channel %q of app %q not found; create it with `mirrord channel set %s %s --version STABLE`",
			ch, app.App.ID, app.App.ID, ch)
	}
	if app.Releases[req.Version] == nil {
		return 0, nil, notFound("release %q of app %q not found; publish it first (without --channel to only store it)",
			req.Version, app.App.ID)
	}
	cmd := consensus.RolloutStart{App: app.App.ID, Channel: r.PathValue("channel"), Version: req.Version,
		BasisPoints: req.BasisPoints, Policy: req.Policy.policy(), Baseline: app.Tally(req.Version),
		At: a.now().UnixMilli()}
	return a.applyRollout(r, cmd, cmd.App, cmd.Channel)
}

func (a *API) updateRollout(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	var req UpdateRolloutRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if req.BasisPoints == nil && req.Policy == nil && !req.ClearPolicy {
		return 0, nil, bad("nothing to change: give basis_points, policy or clear_policy")
	}
	cmd := consensus.RolloutUpdate{App: app.App.ID, Channel: r.PathValue("channel"), BasisPoints: req.BasisPoints,
		Policy: req.Policy.policy(), ClearPolicy: req.ClearPolicy, At: a.now().UnixMilli()}
	return a.applyRollout(r, cmd, cmd.App, cmd.Channel)
}

func (a *API) controlRollout(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	name := r.PathValue("channel")
	action := r.PathValue("action")
	var base state.Tally
	if c := app.Channels[name]; c != nil && c.Rollout != nil {
		base = app.Tally(c.Rollout.Version)
	}
	cmd := consensus.RolloutControl{App: app.App.ID, Channel: name, Action: action, Baseline: base, At: a.now().UnixMilli()}
	return a.applyRollout(r, cmd, cmd.App, cmd.Channel)
}

func (a *API) applyRollout(r *http.Request, cmd consensus.Command, app, channel string) (int, any, error) {
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rolloutInfo(a.cons.State().App(app), channel), nil
}

// ---- stats ----

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

func (a *API) stats(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	channel, version := q.Get("channel"), q.Get("version")
	if channel != "" && app.Channels[channel] == nil {
		return 0, nil, notFound("channel %q of app %q not found", channel, app.App.ID)
	}
	if version != "" && app.Releases[version] == nil {
		return 0, nil, notFound("release %q of app %q not found", version, app.App.ID)
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
	return http.StatusOK, out, nil
}

// ---- bulk devices ----

// BulkDevicesRequest is the body of POST /admin/v1/apps/{app}/devices:
// rows of device -> channel and/or pinned release, or removals. Every
// row is checked before the first is written; then the rows go into
// raft entries of state.MaxDeviceBatch rows, in order, each all or
// nothing. With ?dry_run=true the rows are only checked.
//
// A request is bounded by limits.max_admin_body_bytes; `mirrord device
// import` sends a file of any size as requests of one entry each, all
// checked (dry run) before the first is sent for real.
type BulkDevicesRequest struct {
	Devices []state.DeviceEntry `json:"devices"`
	// FirstRow is the number of the first row in errors and answers
	// (default 1), so that a client sending a file in parts gets errors
	// numbered as in the whole file.
	FirstRow int `json:"first_row,omitempty"`
}

// BulkDevicesAnswer tells what happened to the rows of a request.
type BulkDevicesAnswer struct {
	// Checked is the number of rows checked (all of them, or the error
	// answer names the first bad row).
	Checked int `json:"checked"`
	// Applied is the number of rows written, Batches the raft entries
	// they took; both 0 for a dry run.
	Applied int  `json:"applied"`
	Batches int  `json:"batches"`
	DryRun  bool `json:"dry_run,omitempty"`
}

func (a *API) bulkDevices(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	dry := false
	if v := r.URL.Query().Get("dry_run"); v != "" {
		if dry, err = strconv.ParseBool(v); err != nil {
			return 0, nil, bad("dry_run=%q: want true or false", v)
		}
	}
	var req BulkDevicesRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if len(req.Devices) == 0 {
		return 0, nil, bad("devices is empty")
	}
	first := req.FirstRow
	if first == 0 {
		first = 1
	}
	if first < 1 {
		return 0, nil, bad("first_row %d: want 1 or more", req.FirstRow)
	}
	for i, d := range req.Devices {
		if err := checkDeviceRow(app, d); err != nil {
			row := first + i
			return 0, nil, &rowError{&apiError{http.StatusBadRequest, "invalid",
				fmt.Sprintf("row %d (device %q): %s", row, d.DeviceID, err)}, row}
		}
	}
	out := BulkDevicesAnswer{Checked: len(req.Devices), DryRun: dry}
	if dry {
		return http.StatusOK, out, nil
	}
	for start := 0; start < len(req.Devices); start += state.MaxDeviceBatch {
		end := min(start+state.MaxDeviceBatch, len(req.Devices))
		cmd := consensus.DevicesSet{App: app.App.ID, Devices: req.Devices[start:end]}
		if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
			if out.Applied > 0 {
				return 0, nil, &apiError{http.StatusConflict, "partial", fmt.Sprintf(
					"rows %d-%d were applied in %d raft entries, rows %d-%d were not: %v (sending the same rows again is safe: a row sets the same override again)",
					first, first+out.Applied-1, out.Batches, first+out.Applied, first+len(req.Devices)-1, err)}
			}
			return 0, nil, err
		}
		out.Applied = end
		out.Batches++
	}
	return http.StatusOK, out, nil
}

// checkDeviceRow gives early, row-numbered errors for a bulk import.
func checkDeviceRow(app *state.AppState, d state.DeviceEntry) error {
	id := strings.TrimSpace(d.DeviceID)
	switch {
	case id == "":
		return errString("empty device id")
	case len(id) > 64:
		return errString("device id longer than 64 characters")
	case d.Remove:
		return nil
	case d.Channel == "" && d.Version == "":
		return errString("give a channel, a version, or both")
	case d.Channel != "" && app.Channels[d.Channel] == nil:
		return errString("channel " + d.Channel + " not found")
	case d.Version != "" && d.Version != state.Builtin && app.Releases[d.Version] == nil:
		return errString("release " + d.Version + " not found")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
