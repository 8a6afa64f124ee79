package state

import (
	"maps"
	"regexp"
	"slices"
)

// Cluster is what every node knows about the cluster besides the apps:
// its nodes (so that any node can dial any other, and status can list
// them) and the tokens that authorize operators and joining nodes.
// Tokens are stored as lowercase hex SHA-256 digests only.
type Cluster struct {
	Nodes map[string]NodeInfo `json:"nodes,omitempty"`
	// AdminTokens maps a token digest to when it was added (unix ms).
	AdminTokens map[string]int64 `json:"admin_tokens,omitempty"`
	// JoinTokens maps a token digest to when it expires (unix ms).
	JoinTokens map[string]int64 `json:"join_tokens,omitempty"`
	// ReadTokens maps the digest of a read-only operator token to when
	// it was added (unix ms).
	ReadTokens map[string]int64 `json:"read_tokens,omitempty"`
	// Features maps a node id to the features its build announced
	// (sorted), e.g. FeatureStatsHistory.
	Features map[string][]string `json:"features,omitempty"`
	// Tokens maps the digest of a named operator token to it (see
	// Token); AdminTokens and ReadTokens hold the unnamed tokens of
	// older builds, which TokenList names.
	Tokens map[string]Token `json:"tokens,omitempty"`
	// Audit is the audit log, oldest first, at most MaxAudit entries.
	Audit []AuditEntry `json:"audit,omitempty"`
}

// NodeInfo describes one node: its libp2p peer id (also its raft server
// id), the multiaddrs it listens on and the base URL of its HTTP API.
type NodeInfo struct {
	ID       string   `json:"id"`
	Addrs    []string `json:"addrs,omitempty"`
	HTTP     string   `json:"http,omitempty"`
	JoinedAt int64    `json:"joined_at"`
}

var digestRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ValidDigest reports whether d is a lowercase hex SHA-256 digest.
func ValidDigest(d string) bool { return digestRE.MatchString(d) }

// cluster returns s.Cluster or an empty value, tolerating nil.
func (s *State) cluster() *Cluster {
	if s == nil {
		return nil
	}
	return s.Cluster
}

// ClusterInfo returns the cluster metadata, never nil (callers must not
// modify it).
func (s *State) ClusterInfo() *Cluster {
	if c := s.cluster(); c != nil {
		return c
	}
	return &Cluster{}
}

// AdminTokenValid reports whether digest names an admin token.
func (s *State) AdminTokenValid(digest string) bool {
	t, ok := s.TokenByDigest(digest)
	return ok && t.Scope == ScopeAdmin
}

// ReadTokenValid reports whether digest names a read-only token.
func (s *State) ReadTokenValid(digest string) bool {
	t, ok := s.TokenByDigest(digest)
	return ok && t.Scope == ScopeRead
}

// JoinTokenValid reports whether digest names a join token that has not
// expired at now (unix ms).
func (s *State) JoinTokenValid(digest string, now int64) bool {
	exp, ok := s.ClusterInfo().JoinTokens[digest]
	return ok && now < exp
}

// editCluster returns a copy of the cluster metadata whose maps may be
// replaced (never written in place) by the caller.
func (s *State) editCluster() *Cluster {
	cp := *s.ClusterInfo()
	return &cp
}

func (s *State) withCluster(index uint64, c *Cluster) *State {
	return &State{Index: index, Apps: s.apps(), Cluster: c}
}

// SetNode adds or replaces a node's record.
func (s *State) SetNode(index uint64, n NodeInfo) (*State, error) {
	if n.ID == "" {
		return nil, invalid("node id is empty")
	}
	c := s.editCluster()
	if old, ok := c.Nodes[n.ID]; ok && n.JoinedAt == 0 {
		n.JoinedAt = old.JoinedAt
	}
	n.Addrs = slices.Clone(n.Addrs)
	c.Nodes = cloneMap(c.Nodes)
	c.Nodes[n.ID] = n
	return s.withCluster(index, c), nil
}

// DeleteNode removes a node's record; not found if there is none.
func (s *State) DeleteNode(index uint64, id string) (*State, error) {
	c := s.editCluster()
	if _, ok := c.Nodes[id]; !ok {
		return nil, notFound("node %q not found", id)
	}
	c.Nodes = maps.Clone(c.Nodes)
	delete(c.Nodes, id)
	c.dropFeatures(id)
	return s.withCluster(index, c), nil
}

// AddAdminToken authorizes the admin token with the given digest.
func (s *State) AddAdminToken(index uint64, digest string, at int64) (*State, error) {
	if !ValidDigest(digest) {
		return nil, invalid("admin token digest must be 64 lowercase hex characters")
	}
	c := s.editCluster()
	if _, ok := c.AdminTokens[digest]; ok {
		return s.WithIndex(index), nil
	}
	if _, ok := c.Tokens[digest]; ok { // already a named token
		return s.WithIndex(index), nil
	}
	c.AdminTokens = cloneMap(c.AdminTokens)
	c.AdminTokens[digest] = at
	return s.withCluster(index, c), nil
}

// AddJoinToken adds a join token valid until expires (unix ms). Join
// tokens that expired before now are dropped at the same time, so the
// set stays small.
func (s *State) AddJoinToken(index uint64, digest string, now, expires int64) (*State, error) {
	if !ValidDigest(digest) {
		return nil, invalid("join token digest must be 64 lowercase hex characters")
	}
	if expires <= now {
		return nil, invalid("join token expires before it is created")
	}
	c := s.editCluster()
	next := map[string]int64{}
	for d, exp := range c.JoinTokens {
		if exp > now {
			next[d] = exp
		}
	}
	next[digest] = expires
	c.JoinTokens = next
	return s.withCluster(index, c), nil
}

// AddReadToken authorizes the read-only token with the given digest
// (added at, unix ms). Adding a known digest changes nothing.
func (s *State) AddReadToken(index uint64, digest string, at int64) (*State, error) {
	if !ValidDigest(digest) {
		return nil, invalid("read token digest must be 64 lowercase hex characters")
	}
	c := s.editCluster()
	if _, ok := c.ReadTokens[digest]; ok {
		return s.WithIndex(index), nil
	}
	if _, ok := c.Tokens[digest]; ok { // already a named token
		return s.WithIndex(index), nil
	}
	c.ReadTokens = cloneMap(c.ReadTokens)
	c.ReadTokens[digest] = at
	return s.withCluster(index, c), nil
}

// DeleteReadToken revokes a read-only token; not found if there is none.
func (s *State) DeleteReadToken(index uint64, digest string) (*State, error) {
	c := s.editCluster()
	if _, ok := c.ReadTokens[digest]; !ok {
		return nil, notFound("read token %q not found", digest)
	}
	c.ReadTokens = maps.Clone(c.ReadTokens)
	delete(c.ReadTokens, digest)
	if len(c.ReadTokens) == 0 {
		c.ReadTokens = nil // as a restored snapshot has it
	}
	return s.withCluster(index, c), nil
}
