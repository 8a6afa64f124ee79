package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"mirrord/consensus/state"
	"mirrord/resolver"
)

// LookupDecision is the part of a resolver.Decision an operator reads:
// what the device would get, or the Capgo error code it would get
// instead, and which channel, rule and rollout decided.
type LookupDecision struct {
	Version string `json:"version,omitempty"`
	Old     string `json:"old,omitempty"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Source is one of resolver's Source* constants.
	Source  string `json:"source,omitempty"`
	Rollout string `json:"rollout,omitempty"`
}

// LookupCohort places the device in the live rollout of its channel.
type LookupCohort struct {
	Rollout     string `json:"rollout"`
	Version     string `json:"version"`
	State       string `json:"state"`
	BasisPoints int    `json:"basis_points"`
	// Slot is resolver.CohortSlot of the device in this rollout; the
	// device is in the cohort when Slot < BasisPoints.
	Slot     int  `json:"slot"`
	InCohort bool `json:"in_cohort"`
}

// LookupAnswer is the answer of GET /admin/v1/lookup.
type LookupAnswer struct {
	Decision LookupDecision `json:"decision"`
	// Explanation is one or two human sentences: why this answer.
	Explanation string `json:"explanation"`
	// ChannelVia says how the channel was found: "override" (a device
	// override), "default_channel" (named by the device) or "public"
	// (the platform's public channel); "" when none was found.
	ChannelVia string `json:"channel_via,omitempty"`
	// Cohort is set when the channel has a live rollout.
	Cohort *LookupCohort `json:"cohort,omitempty"`
}

// LookupHandler answers "which release would this device get, and why"
// from this node's state, without counting anything: GET with the query
// parameters app_id and device_id (required) and platform,
// version_build, version_name, plugin_version, is_prod, is_emulator,
// defaultChannel and key_id, named and read as the plugin's device info
// (resolver.RequestFromQuery: is_prod defaults to true). It runs
// resolver.Resolve exactly as an update check would and writes a
// LookupAnswer.
//
// It is an operator route: the caller must register it behind the admin
// API's auth, never on the public device mux.
func (a *API) LookupHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := resolver.RequestFromQuery(r.URL.Query())
		switch {
		case req.AppID == "":
			writeJSON(w, http.StatusBadRequest, errBody(resolver.CodeMissingAppID, "give app_id, the app's id (like com.example.app)"))
			return
		case req.DeviceID == "":
			writeJSON(w, http.StatusBadRequest, errBody(resolver.CodeMissingDeviceID, "give device_id, the device id the plugin sends"))
			return
		}
		app := a.state.State().App(req.AppID)
		writeJSON(w, http.StatusOK, Lookup(app, req))
	})
}

// Lookup resolves req against app (nil when unknown) and explains the
// decision.
func Lookup(app *state.AppState, req resolver.Request) LookupAnswer {
	req.Normalize()
	d := resolver.Resolve(app, req)
	out := LookupAnswer{Decision: LookupDecision{
		Version: d.Version, Old: d.Old, Error: d.Error, Message: d.Message, Kind: d.Kind,
		Channel: d.Channel, Source: d.Source, Rollout: d.Rollout,
	}}
	if app == nil {
		out.Explanation = fmt.Sprintf("No update (%s, %s): app %s is not registered on this cluster.", d.Kind, d.Error, req.AppID)
		return out
	}
	var why []string
	if d.Channel == "" {
		out.Explanation = outcome(d) + ": " + noChannelReason(app, req, d) + "."
		return out
	}
	ch := app.Channels[d.Channel]
	out.ChannelVia, why = channelReason(app, req, d.Channel)
	if r := ch.Rollout; r.Live() {
		slot := resolver.CohortSlot(req.DeviceID, r.ID)
		out.Cohort = &LookupCohort{Rollout: r.ID, Version: r.Version, State: r.State, BasisPoints: r.BasisPoints,
			Slot: slot, InCohort: slot < r.BasisPoints}
	}
	why = append(why, bundleReason(app, req, d, ch, out.Cohort)...)
	out.Explanation = outcome(d) + ": " + strings.Join(why, "; ") + "."
	return out
}

// outcome is the first words of the explanation: the version the device
// gets, or why it gets none.
func outcome(d resolver.Decision) string {
	if d.Error == "" {
		return "Gets " + d.Version
	}
	if d.Kind == resolver.KindUpToDate {
		return fmt.Sprintf("Up to date (%s)", d.Error)
	}
	return fmt.Sprintf("No update (%s, %s: %s)", d.Kind, d.Error, strings.TrimSuffix(d.Message, "."))
}

// channelReason says how Resolve's channel choice (capgo-protocol step
// 4) came about.
func channelReason(app *state.AppState, req resolver.Request, name string) (via string, why []string) {
	if o, ok := app.Devices[req.DeviceID]; ok && o.Channel == name && app.Channels[o.Channel] != nil {
		return "override", []string{fmt.Sprintf("channel %s via device override", name)}
	}
	if req.DefaultChannel != "" {
		return "default_channel", []string{fmt.Sprintf("channel %s, named by the device (defaultChannel)", name)}
	}
	return "public", []string{fmt.Sprintf("channel %s, the public channel for %s", name, req.Platform)}
}

// noChannelReason explains a decision made before a channel was found.
func noChannelReason(app *state.AppState, req resolver.Request, d resolver.Decision) string {
	if d.Error != resolver.CodeNoChannel {
		return "the request is refused before a channel is chosen"
	}
	if req.DefaultChannel != "" {
		c := app.Channels[req.DefaultChannel]
		switch {
		case c == nil:
			return fmt.Sprintf("the device names channel %s (defaultChannel), which does not exist; there is no fallback to the public channel", req.DefaultChannel)
		case !c.PlatformEnabled(req.Platform):
			return fmt.Sprintf("the device names channel %s (defaultChannel), which does not serve %s", req.DefaultChannel, req.Platform)
		default:
			return fmt.Sprintf("the device names channel %s (defaultChannel), which is neither public nor open to device self-assignment", req.DefaultChannel)
		}
	}
	return fmt.Sprintf("the device has no override and no public channel serves %s", req.Platform)
}

// bundleReason explains which rule chose the bundle (resolver's
// chooseBundle) and, where it matters, why the rollout did not.
func bundleReason(app *state.AppState, req resolver.Request, d resolver.Decision, ch *state.Channel, co *LookupCohort) []string {
	pct := func(bp int) string { return fmt.Sprintf("%.2f%%", float64(bp)/100) }
	switch d.Source {
	case resolver.SourcePinned:
		return []string{fmt.Sprintf("release %s pinned by operator for this device (a pin wins over the channel and its rollout; the channel's gates still apply)",
			app.Devices[req.DeviceID].Version)}
	case resolver.SourceRollout:
		return []string{fmt.Sprintf("in the %s cohort of rollout %s (slot %04d < %d)", pct(co.BasisPoints), co.Rollout, co.Slot, co.BasisPoints)}
	case resolver.SourceRolloutSticky:
		return []string{fmt.Sprintf("already on %s, the release of %s rollout %s, so it keeps it", co.Version, co.State, co.Rollout)}
	}
	stable := ch.Version
	if stable == "" || stable == state.Builtin {
		stable = "the builtin bundle"
	}
	out := []string{"the channel's release " + stable}
	if d.Error == resolver.CodeNoNewVersion {
		out[0] += ", which the device already runs"
	}
	if co != nil {
		switch {
		case co.State == state.RolloutPaused:
			out = append(out, fmt.Sprintf("rollout %s of %s is paused: only devices already on %s keep it", co.Rollout, co.Version, co.Version))
		case !co.InCohort:
			out = append(out, fmt.Sprintf("not in the %s cohort of rollout %s (slot %04d >= %d)", pct(co.BasisPoints), co.Rollout, co.Slot, co.BasisPoints))
		}
	}
	return out
}
