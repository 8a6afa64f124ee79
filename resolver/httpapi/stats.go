package httpapi

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"net/netip"
	"sync"

	"mirrord/consensus/state"
	"mirrord/resolver"
)

// handleStats keeps device events (capgo-protocol section 6). The body
// is one event object or an array of them (plugins from 8.42.0 batch up
// to 200, always from one device about one app).
//
// Answers, as Capgo gives them (docs/capgo-compat.md lists where mirrord
// differs):
//   - a body that is not JSON: 400 invalid_json_parse_body;
//   - a batch whose events name different app ids: 200 mixed_app_ids,
//     nothing stored;
//   - an event that is not usable (not an object, no action, app_id or
//     device_id): invalid_json_body, as a 200 for a single event (the
//     plugin drops it either way) or the event's result in a batch;
//   - a version_build that is not a version: 400 semver_error for a
//     single event, the event's result in a batch;
//   - an app this cluster does not have: 429 on_premise_app for a single
//     event (no Retry-After, so the plugin does not block), the result
//     of each event in a batch; nothing stored;
//   - otherwise resolver.ClassifyStat decides: counted and stored, or
//     stored marked as ignored (a legacy download_fail, answered ok; an
//     event about a version the app lacks, answered version_not_found).
//
// Unknown actions are kept: the plugin sends some that Capgo's own list
// lacks.
func (a *API) handleStats(w http.ResponseWriter, r *http.Request) {
	src := source(r.RemoteAddr)
	// A source out of budget is refused before its body is read; the
	// events are charged once they are counted.
	if a.limited(w, src, 0) {
		return
	}
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return
	}
	body := bytes.TrimSpace(buf.Bytes())
	// One validating pass over the body (splitArray or validJSON, which
	// check what json.Valid checks); the events are then read by
	// scanStatEvent, which relies on it.
	var events []json.RawMessage
	batch := len(body) > 0 && body[0] == '['
	valid := false
	if batch {
		events, valid = splitArray(body)
	} else if valid = validJSON(body); valid {
		events = []json.RawMessage{json.RawMessage(body)}
	}
	if !valid {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "stats body is not JSON"))
		return
	}
	if a.limited(w, src, len(events)) {
		return
	}
	s := scanStats(events)
	defer s.release()
	switch {
	case s.mixed:
		writeJSON(w, http.StatusOK, errBody(resolver.CodeMixedAppIDs, resolver.MessageMixedAppIDs))
	case batch:
		a.statsBatch(w, s)
	default:
		a.statsSingle(w, s)
	}
}

// limited charges n events to src's budget (0: only looks); when it is spent it answers
// 429 too_many_requests with Retry-After (the plugin keeps its events
// queued and blocks itself until then: capgo-protocol section 3.4) and
// reports true.
func (a *API) limited(w http.ResponseWriter, src netip.Addr, n int) bool {
	if a.limit == nil {
		return false
	}
	wait := a.limit.take(src, n)
	if wait == 0 {
		return false
	}
	secs := retryAfterSeconds(wait)
	w.Header().Set("Retry-After", secs)
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "too_many_requests",
		"message":  "too many stats events from this address; retry after " + secs + " s",
		"moreInfo": map[string]any{"retryAfterSeconds": int(math.Ceil(wait.Seconds()))}})
	return true
}

// statOutcome is one event of a request: what was read of it and what
// became of it.
type statOutcome struct {
	raw json.RawMessage
	ev  statEvent
	// code and msg are the event's error ("" if none).
	code, msg string
	// verdict is ClassifyStat's, for events without an error of their
	// own in a known app.
	verdict resolver.StatVerdict
}

// scanned are the events of one request.
type scanned struct {
	outs  []statOutcome
	appID string // the app the events name ("" if none does)
	mixed bool   // two events name different apps
	pool  *[]statOutcome
}

// release returns the outcomes to their pool, cleared so that they hold
// no request bytes.
func (s scanned) release() {
	clear(s.outs)
	if cap(*s.pool) <= 1024 {
		outsPool.Put(s.pool)
	}
}

// outsPool recycles the per-event outcomes of a request (a batch of
// 200 takes about 40 KB).
var outsPool = sync.Pool{New: func() any { return new([]statOutcome) }}

// scanStats reads every event and checks what does not need the state:
// the event's shape, its version_build, and that all events name one app.
// The caller calls release once done with the result.
func scanStats(events []json.RawMessage) scanned {
	p := outsPool.Get().(*[]statOutcome)
	if cap(*p) < len(events) {
		*p = make([]statOutcome, len(events))
	}
	s := scanned{outs: (*p)[:len(events)], pool: p}
	for i, raw := range events {
		o := &s.outs[i]
		o.raw = raw
		var prev *statEvent
		if i > 0 {
			prev = &s.outs[i-1].ev
		}
		o.ev, o.msg = parseStatEvent(raw, prev)
		switch {
		case o.msg != "":
			o.code = resolver.CodeInvalidJSONBody
		case !resolver.ValidVersionBuild(o.ev.VersionBuild):
			ref := resolver.SemverRefusal(o.ev.VersionBuild)
			o.code, o.msg = ref.Code, ref.Message
		}
		if id := o.ev.AppID; id != "" {
			if s.appID == "" {
				s.appID = id
			} else if id != s.appID {
				s.mixed = true
			}
		}
	}
	return s
}

// classify decides about every event without an error, against the
// current state; it reports false when the app is unknown (then nothing
// is classified).
func (a *API) classify(s scanned) bool {
	app := a.state.State().App(s.appID)
	if app == nil {
		return false
	}
	for i := range s.outs {
		o := &s.outs[i]
		if o.code != "" {
			continue
		}
		o.verdict = resolver.ClassifyStat(app, resolver.Stat{Action: o.ev.Action, VersionName: o.ev.VersionName,
			VersionBuild: o.ev.VersionBuild, PluginVersion: o.ev.PluginVersion})
		o.code = o.verdict.Error
		if o.code == resolver.CodeVersionNotFound {
			o.msg = resolver.MessageVersionNotFound
		}
	}
	return true
}

func (a *API) statsSingle(w http.ResponseWriter, s scanned) {
	o := &s.outs[0]
	switch o.code {
	case resolver.CodeInvalidJSONBody:
		writeJSON(w, http.StatusOK, map[string]any{"status": "error", "error": o.code, "message": o.msg})
		return
	case resolver.CodeSemver:
		ref := resolver.SemverRefusal(o.ev.VersionBuild)
		writeJSON(w, http.StatusBadRequest, refusalBody(ref))
		return
	}
	if !a.classify(s) {
		writeJSON(w, http.StatusTooManyRequests, errBody(resolver.CodeOnPremiseApp, resolver.MessageOnPremiseApp))
		return
	}
	a.keep(s.outs)
	if o.code == resolver.CodeVersionNotFound {
		// Capgo spreads moreInfo into the body of a 200 error.
		writeJSON(w, http.StatusOK, versionNotFound{Error: o.code, Message: o.msg,
			AppID: o.ev.AppID, VersionName: o.ev.VersionName})
		return
	}
	writeRaw(w, http.StatusOK, okBody)
}

func (a *API) statsBatch(w http.ResponseWriter, s scanned) {
	known := a.classify(s)
	results := make([]statResult, len(s.outs))
	for i := range s.outs {
		o := &s.outs[i]
		switch {
		case o.code == resolver.CodeVersionNotFound:
			results[i] = statResult{Status: "error", Index: i, Error: o.code, Message: o.msg,
				MoreInfo: map[string]string{"app_id": o.ev.AppID, "version_name": o.ev.VersionName}}
		case o.code != "":
			results[i] = statResult{Status: "error", Index: i, Error: o.code, Message: o.msg}
		case !known:
			results[i] = statResult{Status: "error", Index: i, Error: resolver.CodeOnPremiseApp, Message: resolver.MessageOnPremiseApp}
		default:
			results[i] = statResult{Status: "ok", Index: i}
		}
	}
	if known {
		a.keep(s.outs)
	}
	writeJSON(w, http.StatusOK, statBatchAnswer{Status: "ok", Results: results})
}

// keep counts the counted events and stores them, and stores the
// ignored ones with their marker (grouped by marker, in the order the
// markers first appear); events with an error of their own are dropped.
// An event the counter judges unverified or duplicate (state.JudgeEvent)
// is stored as ignored with that marker, in the stats log's bounded
// area for ignored events.
func (a *API) keep(outs []statOutcome) {
	counted := make([]json.RawMessage, 0, len(outs))
	var ignored []ignoredGroup
	for i := range outs {
		o := &outs[i]
		v := o.verdict
		if !v.Count && v.Ignored == "" {
			continue // an error of its own, or not classified
		}
		line := oneLine(o.raw)
		if line == nil {
			continue
		}
		if !v.Count {
			ignored = addIgnored(ignored, v.Ignored, line)
			continue
		}
		if a.cfg.Observer != nil {
			a.cfg.Observer.ObserveStat(o.ev.Action) // floods show here
		}
		if a.cfg.Counter != nil {
			switch ev := a.cfg.Counter.CountEvent(o.ev.AppID, o.ev.VersionName, o.ev.Action, o.ev.DeviceID); ev {
			case state.VerdictUnverified, state.VerdictDuplicate:
				ignored = addIgnored(ignored, ev.String(), line)
				continue
			}
		}
		counted = append(counted, line)
	}
	if a.stats == nil {
		return
	}
	// Losing a stats batch must not make the plugin retry forever
	// against a broken disk: log it and still answer.
	if len(counted) > 0 {
		if err := a.stats.Append(counted); err != nil {
			a.log.Warn("stats append failed", "err", err, "events", len(counted))
		}
	}
	for _, g := range ignored {
		if err := a.stats.AppendIgnored(g.reason, g.events); err != nil {
			a.log.Warn("stats append failed", "err", err, "events", len(g.events), "ignored", g.reason)
		}
	}
}

// ignoredGroup are the ignored events of a request with one marker.
type ignoredGroup struct {
	reason string
	events []json.RawMessage
}

func addIgnored(gs []ignoredGroup, reason string, line json.RawMessage) []ignoredGroup {
	for i := range gs {
		if gs[i].reason == reason {
			gs[i].events = append(gs[i].events, line)
			return gs
		}
	}
	return append(gs, ignoredGroup{reason: reason, events: []json.RawMessage{line}})
}

// oneLine returns the event as one line: as sent when it already is,
// compacted otherwise (nil if that fails).
func oneLine(ev json.RawMessage) json.RawMessage {
	if bytes.IndexByte(ev, '\n') < 0 && bytes.IndexByte(ev, '\r') < 0 {
		return ev
	}
	var c bytes.Buffer
	if err := json.Compact(&c, ev); err != nil {
		return nil
	}
	return c.Bytes()
}

// refusalBody is Capgo's 400 body: error, message and moreInfo.
func refusalBody(ref resolver.Refusal) map[string]any {
	more := ref.MoreInfo
	if more == nil {
		more = map[string]any{}
	}
	return map[string]any{"error": ref.Code, "message": ref.Message, "moreInfo": more}
}

// versionNotFound is the answer to one event about a version the app
// does not have: Capgo's 200 error with its moreInfo spread in.
type versionNotFound struct {
	Error       string `json:"error"`
	Message     string `json:"message"`
	AppID       string `json:"app_id"`
	VersionName string `json:"version_name"`
}

type statResult struct {
	Status   string            `json:"status"`
	Index    int               `json:"index"`
	Error    string            `json:"error,omitempty"`
	Message  string            `json:"message,omitempty"`
	MoreInfo map[string]string `json:"moreInfo,omitempty"`
}

type statBatchAnswer struct {
	Status  string       `json:"status"`
	Results []statResult `json:"results"`
}

// statEvent is the part of a stats event that is checked on receipt.
type statEvent struct {
	Action        string `json:"action"`
	AppID         string `json:"app_id"`
	DeviceID      string `json:"device_id"`
	VersionName   string `json:"version_name"`
	VersionBuild  string `json:"version_build"`
	PluginVersion string `json:"plugin_version"`
}

// parseStatEvent decodes the checked fields of one event, or says what
// is wrong with it. prev is the event before in the batch, or nil (see
// scanStatEvent).
func parseStatEvent(ev json.RawMessage, prev *statEvent) (statEvent, string) {
	if len(ev) == 0 || ev[0] != '{' {
		return statEvent{}, "event must be a JSON object"
	}
	e, err := scanStatEvent(ev, prev)
	if err != nil {
		return e, "event fields have the wrong types: action, app_id, device_id, version_name, version_build and plugin_version are strings"
	}
	switch {
	case e.Action == "":
		return e, "event has no action"
	case e.AppID == "":
		return e, "event has no app_id"
	case e.DeviceID == "":
		return e, "event has no device_id"
	case len(e.Action) > 128:
		return e, "event action is longer than 128 bytes"
	}
	return e, ""
}
