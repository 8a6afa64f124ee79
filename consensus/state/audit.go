package state

import "slices"

// Audit log bounds: the cluster keeps the last MaxAudit entries; one
// command appends at most MaxAuditBatch.
const (
	MaxAudit      = 5000
	MaxAuditBatch = 100
	maxAuditField = 256
	maxAuditKeys  = 8
)

// AuditEntry records one admin action that changed something, or a
// refused request: who (the token's name), what (method, route pattern
// and the route's values, never bodies or secrets), when, from where and
// the answer's HTTP status.
type AuditEntry struct {
	At     int64  `json:"at"` // unix ms, the serving node's clock
	Node   string `json:"node,omitempty"`
	Token  string `json:"token,omitempty"` // "" when the token is unknown
	Method string `json:"method"`
	Route  string `json:"route"` // the route's pattern, e.g. /admin/v1/apps/{app}
	// Target holds the route's values (app, version, channel, …).
	Target map[string]string `json:"target,omitempty"`
	Remote string            `json:"remote,omitempty"`
	Status int               `json:"status"`
}

func checkAudit(e AuditEntry) error {
	if e.Method == "" || e.Route == "" || len(e.Target) > maxAuditKeys {
		return invalid("audit entry without a method or route, or with more than %d targets", maxAuditKeys)
	}
	fields := []string{e.Node, e.Token, e.Method, e.Route, e.Remote}
	for k, v := range e.Target {
		fields = append(fields, k, v)
	}
	for _, f := range fields {
		if len(f) > maxAuditField {
			return invalid("audit entry field longer than %d bytes", maxAuditField)
		}
	}
	return nil
}

// AppendAudit adds entries to the audit log, dropping the oldest beyond
// MaxAudit. A batch is checked whole: one bad entry rejects it.
func (s *State) AppendAudit(index uint64, entries []AuditEntry) (*State, error) {
	if len(entries) == 0 || len(entries) > MaxAuditBatch {
		return nil, invalid("an audit batch has 1 to %d entries", MaxAuditBatch)
	}
	for _, e := range entries {
		if err := checkAudit(e); err != nil {
			return nil, err
		}
	}
	entries = slices.Clone(entries)
	for i := range entries {
		if len(entries[i].Target) == 0 {
			entries[i].Target = nil // as a snapshot restores it
		}
	}
	c := s.editCluster()
	keep := min(len(c.Audit), MaxAudit-len(entries))
	next := make([]AuditEntry, 0, keep+len(entries))
	next = append(next, c.Audit[len(c.Audit)-keep:]...)
	next = append(next, entries...)
	c.Audit = slices.Clip(next)
	return s.withCluster(index, c), nil
}

// AuditLog returns the audit entries at or after since (unix ms), in
// log order (oldest first, as committed: nodes' clocks may disagree a
// little). The entries' Target maps must not be modified.
func (s *State) AuditLog(since int64) []AuditEntry {
	out := []AuditEntry{}
	for _, e := range s.ClusterInfo().Audit {
		if e.At >= since {
			out = append(out, e)
		}
	}
	return out
}
