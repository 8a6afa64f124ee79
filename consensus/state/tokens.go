package state

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Token scopes: what an operator token may do (see node/adminapi's
// Allow for the routes of each).
const (
	// ScopeAdmin may do everything.
	ScopeAdmin = "admin"
	// ScopeRead may read the admin API (GET and HEAD) but not the
	// tokens, and change nothing.
	ScopeRead = "read"
	// ScopePublish may upload objects, create releases, set and roll
	// back channels, and read, of the apps in Token.Apps only.
	ScopePublish = "publish"
)

// AdminTokenName is the name of the first admin token (the one in
// DATA/admin.token), also the name an unnamed legacy admin token gets.
const AdminTokenName = "admin"

// MaxTokens bounds the named tokens of a cluster.
const MaxTokens = 1000

// Token is a named operator credential. Only the SHA-256 digest of the
// secret is kept; the secret is shown once, when it is made.
type Token struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Scope  string `json:"scope"`
	// Apps are the apps a publish token may change (sorted); empty for
	// the other scopes.
	Apps      []string `json:"apps,omitempty"`
	CreatedAt int64    `json:"created_at"`
	// CreatedBy is the name of the token that made this one ("" for
	// legacy tokens and the first admin token).
	CreatedBy string `json:"created_by,omitempty"`
	// RotatedAt is when the secret was last replaced (unix ms).
	RotatedAt int64 `json:"rotated_at,omitempty"`
}

// CanChange reports whether t may change app (publish tokens: one of
// their apps; admin tokens: any app).
func (t Token) CanChange(app string) bool {
	switch t.Scope {
	case ScopeAdmin:
		return true
	case ScopePublish:
		_, ok := slices.BinarySearch(t.Apps, app)
		return ok
	}
	return false
}

var (
	tokenNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,47}$`)
	// legacyNameRE are the names legacy tokens get; new tokens may not
	// take them.
	legacyNameRE = regexp.MustCompile(`^(admin|read)-[0-9a-f]{12}$`)
)

// ValidTokenName reports whether name may name a new token: 1 to 48
// characters of a-z, 0-9, '.', '_' and '-', starting with a letter or a
// digit, and not of the form of a legacy token's name.
func ValidTokenName(name string) bool {
	return tokenNameRE.MatchString(name) && !legacyNameRE.MatchString(name)
}

// legacyTokens are the tokens of the maps older builds wrote
// (AdminTokens, ReadTokens), named: the oldest admin digest is "admin"
// unless a named token has that name, the others admin-DIGEST[:12];
// read-only tokens are read-DIGEST[:12].
func (c *Cluster) legacyTokens() []Token {
	if len(c.AdminTokens) == 0 && len(c.ReadTokens) == 0 {
		return nil
	}
	adminTaken := false
	for _, t := range c.Tokens {
		adminTaken = adminTaken || t.Name == AdminTokenName
	}
	out := make([]Token, 0, len(c.AdminTokens)+len(c.ReadTokens))
	for _, d := range sortedByTime(c.AdminTokens) {
		name := "admin-" + d[:12]
		if !adminTaken {
			name, adminTaken = AdminTokenName, true
		}
		out = append(out, Token{Name: name, Digest: d, Scope: ScopeAdmin, CreatedAt: c.AdminTokens[d]})
	}
	for _, d := range sortedByTime(c.ReadTokens) {
		out = append(out, Token{Name: "read-" + d[:12], Digest: d, Scope: ScopeRead, CreatedAt: c.ReadTokens[d]})
	}
	return out
}

// sortedByTime returns m's digests, oldest first (ties by digest).
func sortedByTime(m map[string]int64) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		return cmp.Or(cmp.Compare(m[a], m[b]), strings.Compare(a, b))
	})
}

// TokenList returns every operator token (named and legacy), oldest
// first. Callers must not modify the slices inside.
func (s *State) TokenList() []Token {
	c := s.ClusterInfo()
	out := c.legacyTokens()
	for _, t := range c.Tokens {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Token) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.Name, b.Name))
	})
	return out
}

// TokenByDigest finds the operator token with the given digest.
func (s *State) TokenByDigest(digest string) (Token, bool) {
	c := s.ClusterInfo()
	if t, ok := c.Tokens[digest]; ok {
		return t, true
	}
	_, admin := c.AdminTokens[digest]
	_, read := c.ReadTokens[digest]
	if !admin && !read {
		return Token{}, false
	}
	for _, t := range c.legacyTokens() {
		if t.Digest == digest {
			return t, true
		}
	}
	return Token{}, false
}

// TokenByName finds the operator token named name.
func (s *State) TokenByName(name string) (Token, bool) {
	for _, t := range s.TokenList() {
		if t.Name == name {
			return t, true
		}
	}
	return Token{}, false
}

// HasAdminToken reports whether the cluster knows an admin-scope token.
// Until it does, a node accepts its own DATA/admin.token (the first
// start of a cluster, before that token's digest is committed).
func (s *State) HasAdminToken() bool {
	c := s.ClusterInfo()
	if len(c.AdminTokens) > 0 {
		return true
	}
	for _, t := range c.Tokens {
		if t.Scope == ScopeAdmin {
			return true
		}
	}
	return false
}

// knownDigest reports whether any token (operator or join) has digest d.
func (c *Cluster) knownDigest(d string) bool {
	_, a := c.AdminTokens[d]
	_, r := c.ReadTokens[d]
	_, n := c.Tokens[d]
	_, j := c.JoinTokens[d]
	return a || r || n || j
}

// checkToken validates a new token's fields.
func checkToken(t Token) error {
	if !ValidTokenName(t.Name) {
		return invalid("token name %q: 1 to 48 characters a-z 0-9 . _ -, not admin-HEX12 or read-HEX12", t.Name)
	}
	if !ValidDigest(t.Digest) {
		return invalid("token digest must be 64 lowercase hex characters")
	}
	switch t.Scope {
	case ScopeAdmin, ScopeRead:
		if len(t.Apps) > 0 {
			return invalid("a %s token has no apps (only publish tokens do)", t.Scope)
		}
	case ScopePublish:
		if len(t.Apps) == 0 || len(t.Apps) > 100 {
			return invalid("a publish token needs 1 to 100 apps")
		}
		if !slices.IsSorted(t.Apps) || len(slices.Compact(slices.Clone(t.Apps))) != len(t.Apps) {
			return invalid("a publish token's apps must be sorted and distinct")
		}
		for _, a := range t.Apps {
			if a == "" || len(a) > 255 {
				return invalid("app id %q in a publish token", a)
			}
		}
	default:
		return invalid("token scope %q: want admin, read or publish", t.Scope)
	}
	return nil
}

// CreateToken adds a named operator token. The name and the digest must
// be new (legacy tokens' names included).
func (s *State) CreateToken(index uint64, t Token) (*State, error) {
	if err := checkToken(t); err != nil {
		return nil, err
	}
	c := s.editCluster()
	if _, taken := s.TokenByName(t.Name); taken {
		return nil, conflict("a token named %q exists: revoke it first or pick another name", t.Name)
	}
	if c.knownDigest(t.Digest) {
		return nil, conflict("a token with this digest exists")
	}
	if len(c.Tokens) >= MaxTokens {
		return nil, conflict("the cluster has %d tokens, the most it keeps: revoke some", MaxTokens)
	}
	t.RotatedAt = 0
	t.Apps = slices.Clone(t.Apps)
	if len(t.Apps) == 0 {
		t.Apps = nil // as a snapshot restores it
	}
	c.Tokens = cloneMap(c.Tokens)
	c.Tokens[t.Digest] = t
	return s.withCluster(index, c), nil
}

// RevokeToken removes the operator token named name (named or legacy).
// Revoking the last admin-scope token is a conflict: nobody could
// administer the cluster any more.
func (s *State) RevokeToken(index uint64, name string) (*State, error) {
	t, ok := s.TokenByName(name)
	if !ok {
		return nil, notFound("no token named %q (see `mirrord token list`)", name)
	}
	if t.Scope == ScopeAdmin && s.adminTokenCount() == 1 {
		return nil, conflict("%q is the last admin token: make another (`mirrord token create NAME --scope admin`) or rotate it instead", name)
	}
	c := s.editCluster()
	c.dropDigest(t.Digest)
	return s.withCluster(index, c), nil
}

// RotateToken gives the token named name a new secret (digest), keeping
// its name, scope and apps; the old secret stops working. A legacy
// token becomes a named one.
func (s *State) RotateToken(index uint64, name, digest string, at int64) (*State, error) {
	if !ValidDigest(digest) {
		return nil, invalid("token digest must be 64 lowercase hex characters")
	}
	t, ok := s.TokenByName(name)
	if !ok {
		return nil, notFound("no token named %q (see `mirrord token list`)", name)
	}
	c := s.editCluster()
	if c.knownDigest(digest) {
		return nil, conflict("a token with this digest exists")
	}
	c.dropDigest(t.Digest)
	t.Digest, t.RotatedAt = digest, at
	c.Tokens = cloneMap(c.Tokens)
	c.Tokens[digest] = t
	return s.withCluster(index, c), nil
}

func (s *State) adminTokenCount() int {
	n := 0
	for _, t := range s.TokenList() {
		if t.Scope == ScopeAdmin {
			n++
		}
	}
	return n
}

// dropDigest removes the operator token d from whichever map holds it;
// c is owned, its maps are replaced, not written.
func (c *Cluster) dropDigest(d string) {
	drop := func(m map[string]int64) map[string]int64 {
		if _, ok := m[d]; !ok {
			return m
		}
		m = maps.Clone(m)
		delete(m, d)
		if len(m) == 0 {
			return nil
		}
		return m
	}
	c.AdminTokens, c.ReadTokens = drop(c.AdminTokens), drop(c.ReadTokens)
	if _, ok := c.Tokens[d]; ok {
		c.Tokens = maps.Clone(c.Tokens)
		delete(c.Tokens, d)
		if len(c.Tokens) == 0 {
			c.Tokens = nil
		}
	}
}
