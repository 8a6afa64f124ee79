package consensus

import (
	"errors"
	"maps"
	"slices"

	"mirrord/consensus/state"
)

// writeTokens writes the named tokens (by digest) and the audit log (in
// log order) of the cluster.
func (sw *snapshotWriter) writeTokens(c *state.Cluster) {
	for _, d := range slices.Sorted(maps.Keys(c.Tokens)) {
		sw.record(recordNamedToken, c.Tokens[d])
	}
	for _, e := range c.Audit {
		sw.record(recordAudit, e)
	}
}

// readNamedToken adds a named token record.
func (sr *snapshotReader) readNamedToken(payload []byte) error {
	var t state.Token
	if err := decodeStrict(payload, &t); err != nil {
		return err
	}
	if !state.ValidDigest(t.Digest) || t.Name == "" {
		return errors.New("named token record with a bad digest or no name")
	}
	if len(t.Apps) == 0 {
		t.Apps = nil
	}
	c := sr.clusterForWrite()
	if _, dup := c.Tokens[t.Digest]; dup {
		return errors.New("duplicate named token record")
	}
	if c.Tokens == nil {
		c.Tokens = map[string]state.Token{}
	}
	c.Tokens[t.Digest] = t
	return nil
}

// readAudit appends an audit record.
func (sr *snapshotReader) readAudit(payload []byte) error {
	var e state.AuditEntry
	if err := decodeStrict(payload, &e); err != nil {
		return err
	}
	if len(e.Target) == 0 {
		e.Target = nil
	}
	c := sr.clusterForWrite()
	if len(c.Audit) >= state.MaxAudit {
		return errors.New("more audit records than the log keeps")
	}
	c.Audit = append(c.Audit, e)
	return nil
}
