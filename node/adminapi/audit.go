package adminapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// auditTargets are the route values an audit entry keeps.
var auditTargets = []string{"app", "version", "channel", "device", "action", "id", "name"}

// Refusals recorded in the audit log: at most refusalBurst per
// refusalWindow on each node, so that a flood of bad tokens cannot turn
// into a flood of raft writes (the rest are only logged).
const (
	refusalBurst  = 10
	refusalWindow = 10 * time.Second
)

// refusalLimit counts the refusals recorded in the current window.
type refusalLimit struct {
	mu    sync.Mutex
	start time.Time
	n     int
}

func (l *refusalLimit) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= refusalWindow {
		l.start, l.n = now, 0
	}
	l.n++
	return l.n <= refusalBurst
}

// audited reports whether a request is recorded when admitted: the ones
// that may change something, except object uploads (they change no
// cluster state: the release that references them is recorded, and a
// publish uploads one object per file).
func audited(r *http.Request) bool {
	return !isRead(r.Method) && r.Pattern != "POST /admin/v1/objects"
}

// entry describes a request for the audit log: no body, no secret.
func (a *API) entry(r *http.Request, token string, status int) state.AuditEntry {
	e := state.AuditEntry{At: a.now().UnixMilli(), Node: a.cons.Stats().ID, Token: token,
		Method: r.Method, Route: routeOf(r.Pattern), Remote: r.RemoteAddr, Status: status}
	if r.Pattern == "" {
		e.Route = "(no route)"
	}
	for _, k := range auditTargets {
		if v := r.PathValue(k); v != "" {
			if e.Target == nil {
				e.Target = map[string]string{}
			}
			e.Target[k] = clip(v)
		}
	}
	e.Node, e.Method, e.Remote = clip(e.Node), clip(e.Method), clip(e.Remote)
	return e
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// record writes an admitted request's audit entry through raft before
// the answer is sent, so a client that saw the answer finds it.
func (a *API) record(r *http.Request, token string, status int) {
	a.appendAudit(r.Context(), a.entry(r, token, status))
}

// refused records a refusal, within the refusal rate limit.
func (a *API) refused(r *http.Request, token string, status int) {
	if !a.refusals.allow(a.now()) {
		a.log.Info("admin request refused (not audited: too many refusals)", "method", r.Method,
			"path", r.URL.Path, "remote", r.RemoteAddr, "status", status)
		return
	}
	a.appendAudit(r.Context(), a.entry(r, token, status))
}

func (a *API) appendAudit(ctx context.Context, e state.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := a.cons.Apply(ctx, consensus.AuditAppend{Entries: []state.AuditEntry{e}}); err != nil {
		a.log.Warn("audit entry not recorded", "method", e.Method, "route", e.Route, "token", e.Token,
			"status", e.Status, "err", err)
	}
}

// Audit returns the audit log entries at or after since (unix ms; 0 for
// all), oldest first.
func (a *API) Audit(ctx context.Context, since int64) ([]state.AuditEntry, error) {
	return a.cons.State().AuditLog(since), nil
}

func (a *API) httpAudit(r *http.Request) (int, any, error) {
	var since int64
	if s := r.URL.Query().Get("since"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return 0, nil, bad("since=%q: want unix milliseconds", s)
		}
		since = v
	}
	out, err := a.Audit(r.Context(), since)
	return http.StatusOK, out, err
}
