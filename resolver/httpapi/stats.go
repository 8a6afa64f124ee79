package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// handleStats keeps device events (capgo-protocol section 6). The body
// is one event object or an array of them (plugins from 8.42.0 batch up
// to 200). Only a body that is not JSON at all is a 400: a batch gets a
// result per index, and a single event that is not usable gets a 200
// with an error, which the plugin treats as delivered (it would retry a
// 5xx or drop any 4xx anyway). Unknown actions are kept: the plugin sends
// some that Capgo's own list lacks.
func (a *API) handleStats(w http.ResponseWriter, r *http.Request) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return
	}
	body := bytes.TrimSpace(buf.Bytes())
	// One validating pass over the body; the events are then split and
	// read by the scanners of statscan.go, which rely on it.
	if !json.Valid(body) {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "stats body is not JSON"))
		return
	}
	var events []json.RawMessage
	batch := body[0] == '['
	if batch {
		var ok bool
		if events, ok = splitArray(body); !ok {
			writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "stats body is not a JSON array"))
			return
		}
	} else {
		events = []json.RawMessage{json.RawMessage(body)}
	}
	var results []statResult
	if batch {
		results = make([]statResult, len(events))
	}
	keep := make([]json.RawMessage, 0, len(events))
	for i, ev := range events {
		e, msg := parseStatEvent(ev)
		if msg != "" {
			if !batch {
				writeJSON(w, http.StatusOK, map[string]any{"status": "error", "error": "invalid_json_body", "message": msg})
				return
			}
			results[i] = statResult{Status: "error", Index: i, Error: "invalid_json_body", Message: msg}
			continue
		}
		if batch {
			results[i] = statResult{Status: "ok", Index: i}
		}
		if bytes.IndexAny(ev, "\r\n") < 0 {
			keep = append(keep, ev) // already one line: stored as sent
		} else {
			var c bytes.Buffer
			if err := json.Compact(&c, ev); err == nil {
				keep = append(keep, c.Bytes())
			}
		}
		if a.cfg.Counter != nil {
			a.cfg.Counter.CountEvent(e.AppID, e.VersionName, e.Action)
		}
		if a.cfg.Observer != nil {
			a.cfg.Observer.ObserveStat(e.Action)
		}
	}
	if len(keep) > 0 && a.stats != nil {
		if err := a.stats.Append(keep); err != nil {
			// Losing a stats batch must not make the plugin retry forever
			// against a broken disk: log it and still answer 200.
			a.log.Warn("stats append failed", "err", err, "events", len(keep))
		}
	}
	if batch {
		writeJSON(w, http.StatusOK, statBatchAnswer{Status: "ok", Results: results})
		return
	}
	writeRaw(w, http.StatusOK, okBody)
}

type statResult struct {
	Status  string `json:"status"`
	Index   int    `json:"index"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

type statBatchAnswer struct {
	Status  string       `json:"status"`
	Results []statResult `json:"results"`
}

// statEvent is the part of a stats event that is checked on receipt.
type statEvent struct {
	Action      string `json:"action"`
	AppID       string `json:"app_id"`
	DeviceID    string `json:"device_id"`
	VersionName string `json:"version_name"`
}

// parseStatEvent decodes the checked fields of one event, or says what
// is wrong with it.
func parseStatEvent(ev json.RawMessage) (statEvent, string) {
	if len(ev) == 0 || ev[0] != '{' {
		return statEvent{}, "event must be a JSON object"
	}
	e, err := scanStatEvent(ev)
	if err != nil {
		return e, "event fields have the wrong types: action, app_id, device_id and version_name are strings"
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
