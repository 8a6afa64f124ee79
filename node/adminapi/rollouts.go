package adminapi

import (
	"context"
	"net/http"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

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

// Rollout returns a channel's current or last rollout.
func (a *API) Rollout(ctx context.Context, app, channel string) (_ RolloutInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return RolloutInfo{}, err
	}
	if as.Channels[channel] == nil {
		return RolloutInfo{}, notFound("channel %q of app %q not found", channel, as.App.ID)
	}
	return rolloutInfo(as, channel), nil
}

// StartRollout offers req.Version to a share of the channel's devices.
func (a *API) StartRollout(ctx context.Context, app, channel string, req StartRolloutRequest) (_ RolloutInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return RolloutInfo{}, err
	}
	if req.Version == "" {
		return RolloutInfo{}, bad("version is required")
	}
	if as.Channels[channel] == nil {
		return RolloutInfo{}, notFound("channel %q of app %q not found; create it with `mirrord channel set %s %s --version STABLE`",
			channel, as.App.ID, as.App.ID, channel)
	}
	if as.Releases[req.Version] == nil {
		return RolloutInfo{}, notFound("release %q of app %q not found; publish it first (without --channel to only store it)",
			req.Version, as.App.ID)
	}
	cmd := consensus.RolloutStart{App: as.App.ID, Channel: channel, Version: req.Version,
		BasisPoints: req.BasisPoints, Policy: req.Policy.policy(), Baseline: as.Tally(req.Version),
		At: a.now().UnixMilli()}
	return a.applyRollout(ctx, cmd, cmd.App, cmd.Channel)
}

// UpdateRollout changes a rollout's share or halt policy.
func (a *API) UpdateRollout(ctx context.Context, app, channel string, req UpdateRolloutRequest) (_ RolloutInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return RolloutInfo{}, err
	}
	if req.BasisPoints == nil && req.Policy == nil && !req.ClearPolicy {
		return RolloutInfo{}, bad("nothing to change: give basis_points, policy or clear_policy")
	}
	cmd := consensus.RolloutUpdate{App: as.App.ID, Channel: channel, BasisPoints: req.BasisPoints,
		Policy: req.Policy.policy(), ClearPolicy: req.ClearPolicy, At: a.now().UnixMilli()}
	return a.applyRollout(ctx, cmd, cmd.App, cmd.Channel)
}

// ControlRollout pauses, resumes, promotes or aborts a rollout (action).
func (a *API) ControlRollout(ctx context.Context, app, channel, action string) (_ RolloutInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return RolloutInfo{}, err
	}
	var base state.Tally
	if c := as.Channels[channel]; c != nil && c.Rollout != nil {
		base = as.Tally(c.Rollout.Version)
	}
	cmd := consensus.RolloutControl{App: as.App.ID, Channel: channel, Action: action, Baseline: base, At: a.now().UnixMilli()}
	return a.applyRollout(ctx, cmd, cmd.App, cmd.Channel)
}

func (a *API) applyRollout(ctx context.Context, cmd consensus.Command, app, channel string) (RolloutInfo, error) {
	if err := a.apply(ctx, cmd); err != nil {
		return RolloutInfo{}, err
	}
	return rolloutInfo(a.cons.State().App(app), channel), nil
}

func (a *API) httpGetRollout(r *http.Request) (int, any, error) {
	out, err := a.Rollout(r.Context(), r.PathValue("app"), r.PathValue("channel"))
	return http.StatusOK, out, err
}

func (a *API) httpStartRollout(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	var req StartRolloutRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.StartRollout(r.Context(), r.PathValue("app"), r.PathValue("channel"), req)
	return http.StatusOK, out, err
}

func (a *API) httpUpdateRollout(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	var req UpdateRolloutRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.UpdateRollout(r.Context(), r.PathValue("app"), r.PathValue("channel"), req)
	return http.StatusOK, out, err
}

func (a *API) httpControlRollout(r *http.Request) (int, any, error) {
	out, err := a.ControlRollout(r.Context(), r.PathValue("app"), r.PathValue("channel"), r.PathValue("action"))
	return http.StatusOK, out, err
}
