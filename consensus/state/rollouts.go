package state

import (
	"fmt"
	"math"
)

// MaxBasisPoints is 100% of a rollout, in basis points.
const MaxBasisPoints = 10000

// Rollout states. Only an active rollout takes new devices; a paused one
// keeps the devices already on its release; aborted and promoted ones are
// finished and stay on the channel only so that operators can see what
// happened (and why, for a halt) until the next rollout starts.
const (
	RolloutActive   = "active"
	RolloutPaused   = "paused"
	RolloutAborted  = "aborted"
	RolloutPromoted = "promoted"
)

// Halt actions of a HaltPolicy.
const (
	HaltPause = "pause"
	HaltAbort = "abort"
)

// DefaultHaltConfidence is the confidence of the Wilson bound when a
// policy does not set one.
const DefaultHaltConfidence = 0.95

// Rollout offers Version to a slice of a channel's devices, chosen by a
// stable hash of (device id, ID) against BasisPoints. The rest of the
// channel keeps Channel.Version (the stable release).
type Rollout struct {
	// ID names the rollout in the cohort hash: app/channel/version#seq,
	// where seq counts the rollouts of the channel. It does not depend on
	// the raft index, so the same command history gives the same cohorts.
	ID          string `json:"id"`
	Version     string `json:"version"`
	BasisPoints int    `json:"basis_points"`
	State       string `json:"state"`
	// Policy, when set, lets the leader halt the rollout on failures.
	Policy *HaltPolicy `json:"policy,omitempty"`
	// Baseline is the cluster-wide tally of Version when the rollout
	// started or was last resumed; the policy looks at what came since.
	Baseline Tally `json:"baseline"`
	// Halt says why the policy stopped the rollout, nil otherwise.
	Halt      *Halt `json:"halt,omitempty"`
	StartedAt int64 `json:"started_at"` // unix ms, proposer's clock
	UpdatedAt int64 `json:"updated_at"`
}

// Live reports whether the rollout still decides for devices: active or
// paused (a paused rollout keeps the devices already on its release).
func (r *Rollout) Live() bool {
	return r != nil && (r.State == RolloutActive || r.State == RolloutPaused)
}

// HaltPolicy is when a rollout stops itself: once MinEvents installs and
// failures of its release have been seen since the baseline, and the
// Wilson lower bound of the failure rate at Confidence exceeds
// FailureRate, the rollout is paused or aborted (Action).
type HaltPolicy struct {
	FailureRate float64 `json:"failure_rate"`
	MinEvents   int64   `json:"min_events"`
	Confidence  float64 `json:"confidence"`
	Action      string  `json:"action"`
}

// Validate checks the policy's ranges.
func (p *HaltPolicy) Validate() error {
	switch {
	case !(p.FailureRate > 0 && p.FailureRate < 1):
		return invalid("halt failure rate %v must be between 0 and 1 (exclusive)", p.FailureRate)
	case p.MinEvents < 1:
		return invalid("halt minimum events %d must be at least 1", p.MinEvents)
	case !(p.Confidence > 0 && p.Confidence < 1):
		return invalid("halt confidence %v must be between 0 and 1 (exclusive)", p.Confidence)
	case p.Action != HaltPause && p.Action != HaltAbort:
		return invalid("halt action %q must be %q or %q", p.Action, HaltPause, HaltAbort)
	}
	return nil
}

// Tally is what the halt policy counts for a release: installs (stat
// "set") and failures (any "*_fail" action and app_launch_timeout).
type Tally struct {
	Installs int64 `json:"installs"`
	Failures int64 `json:"failures"`
}

// Sub returns t - base, floored at zero.
func (t Tally) Sub(base Tally) Tally {
	return Tally{Installs: max(t.Installs-base.Installs, 0), Failures: max(t.Failures-base.Failures, 0)}
}

// Events is Installs + Failures.
func (t Tally) Events() int64 { return t.Installs + t.Failures }

// Halt records an automatic halt.
type Halt struct {
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Tally is what the leader saw since the baseline; Rate the failure
	// rate and Lower its Wilson lower bound.
	Tally Tally   `json:"tally"`
	Rate  float64 `json:"rate"`
	Lower float64 `json:"lower"`
	At    int64   `json:"at"` // unix ms, leader's clock
}

// Evaluate applies the policy to t, the tally since the baseline. It
// returns the halt to propose, or nil. Pure: the same inputs give the
// same answer on every node.
func (p *HaltPolicy) Evaluate(t Tally) *Halt {
	n := t.Events()
	if p == nil || n < p.MinEvents || n == 0 {
		return nil
	}
	rate := float64(t.Failures) / float64(n)
	lower := WilsonLower(t.Failures, n, p.Confidence)
	if lower <= p.FailureRate {
		return nil
	}
	return &Halt{
		Action: p.Action,
		Reason: fmt.Sprintf("failure rate %.3f (%d failures, %d installs); its %.0f%% Wilson lower bound %.3f exceeds the %.3f threshold",
			rate, t.Failures, t.Installs, p.Confidence*100, lower, p.FailureRate),
		Tally: t,
		Rate:  rate,
		Lower: lower,
	}
}

// WilsonLower is the lower bound of the Wilson score interval for k
// successes in n trials at the given two-sided confidence.
func WilsonLower(k, n int64, confidence float64) float64 {
	if n <= 0 {
		return 0
	}
	z := normalQuantile(1 - (1-confidence)/2)
	p := float64(k) / float64(n)
	nf := float64(n)
	z2 := z * z
	centre := p + z2/(2*nf)
	margin := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max((centre-margin)/(1+z2/nf), 0)
}

// normalQuantile is the inverse of the standard normal CDF, through
// math.Erfinv.
func normalQuantile(p float64) float64 {
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

// rolloutInput is the validated content of a rollout start.
type rolloutInput struct {
	version     string
	basisPoints int
	policy      *HaltPolicy
	baseline    Tally
	at          int64
}

func validBasisPoints(bp int) error {
	if bp < 0 || bp > MaxBasisPoints {
		return invalid("rollout percentage %d basis points is outside 0..%d", bp, MaxBasisPoints)
	}
	return nil
}

// StartRollout returns a new state at index where channel offers version
// to basisPoints/10000 of its devices. The channel and the release must
// exist, the release must differ from the channel's, and no live rollout
// may be running on the channel (a finished one is replaced).
func (s *State) StartRollout(index uint64, app, channel, version string, basisPoints int, policy *HaltPolicy, baseline Tally, at int64) (*State, error) {
	if err := validBasisPoints(basisPoints); err != nil {
		return nil, err
	}
	if policy != nil {
		if err := policy.Validate(); err != nil {
			return nil, err
		}
	}
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	old, ok := t.app.Channels[channel]
	if !ok {
		return nil, notFound("channel %q of app %q not found", channel, app)
	}
	if version == "" || version == Builtin {
		return nil, invalid("a rollout needs a release version")
	}
	if _, ok := t.app.Releases[version]; !ok {
		return nil, notFound("release %q of app %q not found", version, app)
	}
	if old.Version == version {
		return nil, conflict("channel %q already serves %q to every device", channel, version)
	}
	if old.Rollout.Live() {
		return nil, conflict("channel %q already has a %s rollout of %q; promote or abort it first",
			channel, old.Rollout.State, old.Rollout.Version)
	}
	c := old.clone()
	c.RolloutSeq++
	var pol *HaltPolicy
	if policy != nil {
		cp := *policy
		pol = &cp
	}
	c.Rollout = &Rollout{
		ID:          fmt.Sprintf("%s/%s/%s#%d", app, channel, version, c.RolloutSeq),
		Version:     version,
		BasisPoints: basisPoints,
		State:       RolloutActive,
		Policy:      pol,
		Baseline:    baseline,
		StartedAt:   at,
		UpdatedAt:   at,
	}
	t.putChannel(c)
	return s.commit(index, t), nil
}

// RolloutUpdate changes a live rollout: nil fields stay.
type RolloutUpdate struct {
	BasisPoints *int
	Policy      *HaltPolicy
	// ClearPolicy removes the policy (ignored when Policy is set).
	ClearPolicy bool
}

// UpdateRollout returns a new state at index with the live rollout of
// the channel changed by u. Raising the percentage only adds devices:
// the cohort of a device is a pure function of its id and the rollout id.
func (s *State) UpdateRollout(index uint64, app, channel string, u RolloutUpdate, at int64) (*State, error) {
	if u.BasisPoints != nil {
		if err := validBasisPoints(*u.BasisPoints); err != nil {
			return nil, err
		}
	}
	if u.Policy != nil {
		if err := u.Policy.Validate(); err != nil {
			return nil, err
		}
	}
	t, c, err := s.liveRollout(app, channel)
	if err != nil {
		return nil, err
	}
	r := *c.Rollout
	if u.BasisPoints != nil {
		r.BasisPoints = *u.BasisPoints
	}
	switch {
	case u.Policy != nil:
		p := *u.Policy
		r.Policy = &p
	case u.ClearPolicy:
		r.Policy = nil
	}
	r.UpdatedAt = at
	c.Rollout = &r
	t.putChannel(c)
	return s.commit(index, t), nil
}

// Rollout actions of ControlRollout.
const (
	ActionPause   = "pause"
	ActionResume  = "resume"
	ActionPromote = "promote"
	ActionAbort   = "abort"
)

// ControlRollout returns a new state at index after an operator action on
// the channel's live rollout: pause (new devices stop getting the
// release), resume (again; baseline restarts the policy's count, and a
// halt is cleared), promote (the release becomes the channel's version,
// with the old one pushed on History) or abort (every device goes back
// to the channel's version).
func (s *State) ControlRollout(index uint64, app, channel, action string, baseline Tally, at int64) (*State, error) {
	t, c, err := s.liveRollout(app, channel)
	if err != nil {
		return nil, err
	}
	r := *c.Rollout
	switch action {
	case ActionPause:
		r.State = RolloutPaused
	case ActionResume:
		r.State = RolloutActive
		r.Halt = nil
		r.Baseline = baseline
	case ActionPromote:
		if err := t.checkVersion(r.Version); err != nil {
			return nil, err
		}
		r.State = RolloutPromoted
		c.setVersion(r.Version)
	case ActionAbort:
		r.State = RolloutAborted
	default:
		return nil, invalid("rollout action %q is not pause, resume, promote or abort", action)
	}
	r.UpdatedAt = at
	c.Rollout = &r
	t.putChannel(c)
	return s.commit(index, t), nil
}

// HaltRollout returns a new state at index where the active rollout id
// of the channel is stopped by its policy. It is a conflict when the
// channel's rollout is another one or no longer active, so that a halt
// decided on an older state never stops a newer rollout.
func (s *State) HaltRollout(index uint64, app, channel, id string, h Halt) (*State, error) {
	t, c, err := s.liveRollout(app, channel)
	if err != nil {
		return nil, err
	}
	if c.Rollout.ID != id || c.Rollout.State != RolloutActive {
		return nil, conflict("rollout %q of channel %q is not active", id, channel)
	}
	if h.Action != HaltPause && h.Action != HaltAbort {
		return nil, invalid("halt action %q must be %q or %q", h.Action, HaltPause, HaltAbort)
	}
	r := *c.Rollout
	r.State = RolloutPaused
	if h.Action == HaltAbort {
		r.State = RolloutAborted
	}
	hc := h
	r.Halt = &hc
	r.UpdatedAt = h.At
	c.Rollout = &r
	t.putChannel(c)
	return s.commit(index, t), nil
}

// liveRollout starts a change of the channel, which must have a live
// rollout; the returned channel is a private copy.
func (s *State) liveRollout(app, channel string) (*appTxn, *Channel, error) {
	t, err := s.editApp(app)
	if err != nil {
		return nil, nil, err
	}
	old, ok := t.app.Channels[channel]
	if !ok {
		return nil, nil, notFound("channel %q of app %q not found", channel, app)
	}
	if !old.Rollout.Live() {
		return nil, nil, notFound("channel %q of app %q has no rollout in progress", channel, app)
	}
	return t, old.clone(), nil
}
