package adminapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/node"
)

// TokenRequest is the body of POST /admin/v1/tokens.
type TokenRequest struct {
	Name  string   `json:"name"`
	Scope string   `json:"scope"`
	Apps  []string `json:"apps,omitempty"`
}

// TokenInfo describes an operator token. Secret is set only in the
// answers that make one (create, rotate): the cluster keeps its SHA-256
// digest alone, which is also its ID. LastUsed is the later of the
// token's last audited action in the cluster and its last use on the
// node that answered (unix ms, 0 if neither is known).
type TokenInfo struct {
	Name      string   `json:"name"`
	ID        string   `json:"id"`
	Scope     string   `json:"scope"`
	Apps      []string `json:"apps,omitempty"`
	CreatedAt int64    `json:"created_at"`
	CreatedBy string   `json:"created_by,omitempty"`
	RotatedAt int64    `json:"rotated_at,omitempty"`
	LastUsed  int64    `json:"last_used,omitempty"`
	Secret    string   `json:"token,omitempty"`
}

func tokenInfo(t state.Token) TokenInfo {
	return TokenInfo{Name: t.Name, ID: t.Digest, Scope: t.Scope, Apps: t.Apps, CreatedAt: t.CreatedAt,
		CreatedBy: t.CreatedBy, RotatedAt: t.RotatedAt}
}

// CreateToken makes a new random token (256 bits, hex) named req.Name
// with req.Scope, made by the token named by; its digest is replicated.
func (a *API) CreateToken(ctx context.Context, req TokenRequest, by string) (_ TokenInfo, err error) {
	defer classifyErr(&err)
	apps := slices.Compact(slices.Sorted(slices.Values(req.Apps)))
	for _, id := range apps {
		if _, err := a.app(id); err != nil {
			return TokenInfo{}, err
		}
	}
	secret, err := node.NewToken()
	if err != nil {
		return TokenInfo{}, err
	}
	t := state.Token{Name: req.Name, Digest: node.TokenDigest(secret), Scope: req.Scope, Apps: apps,
		CreatedAt: a.now().UnixMilli(), CreatedBy: by}
	if err := a.apply(ctx, consensus.TokenCreate{Token: t}); err != nil {
		return TokenInfo{}, err
	}
	out := tokenInfo(t)
	out.Secret = secret
	return out, nil
}

// Tokens lists every operator token (without secrets), oldest first.
func (a *API) Tokens(ctx context.Context) ([]TokenInfo, error) {
	st := a.cons.State()
	last := map[string]int64{}
	for _, e := range st.ClusterInfo().Audit {
		last[e.Token] = max(last[e.Token], e.At)
	}
	out := []TokenInfo{}
	for _, t := range st.TokenList() {
		ti := tokenInfo(t)
		ti.LastUsed = last[t.Name]
		if v, ok := a.used.Load(t.Name); ok {
			ti.LastUsed = max(ti.LastUsed, v.(int64))
		}
		out = append(out, ti)
	}
	return out, nil
}

// RevokeToken revokes the token named name on every node.
func (a *API) RevokeToken(ctx context.Context, name string) (err error) {
	defer classifyErr(&err)
	return a.apply(ctx, consensus.TokenRevoke{Name: name})
}

// RotateToken gives the token named name a new secret; the old one stops
// working on every node. Rotating the first admin token also calls
// Config.Rotated, which stores the new secret in DATA/admin.token.
func (a *API) RotateToken(ctx context.Context, name string) (_ TokenInfo, err error) {
	defer classifyErr(&err)
	secret, err := node.NewToken()
	if err != nil {
		return TokenInfo{}, err
	}
	cmd := consensus.TokenRotate{Name: name, Digest: node.TokenDigest(secret), At: a.now().UnixMilli()}
	if err := a.apply(ctx, cmd); err != nil {
		return TokenInfo{}, err
	}
	t, _ := a.cons.State().TokenByDigest(cmd.Digest)
	if name == state.AdminTokenName && a.cfg.Rotated != nil {
		a.cfg.Rotated(context.WithoutCancel(ctx), secret)
	}
	out := tokenInfo(t)
	out.Secret = secret
	return out, nil
}

func (a *API) httpCreateToken(r *http.Request) (int, any, error) {
	var req TokenRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	by, _ := a.caller(r)
	out, err := a.CreateToken(r.Context(), req, by.Name)
	return http.StatusCreated, out, err
}

func (a *API) httpListTokens(r *http.Request) (int, any, error) {
	out, err := a.Tokens(r.Context())
	return http.StatusOK, out, err
}

func (a *API) httpRevokeToken(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	err := a.RevokeToken(r.Context(), name)
	return http.StatusOK, map[string]string{"status": "revoked", "name": name}, err
}

func (a *API) httpRotateToken(r *http.Request) (int, any, error) {
	out, err := a.RotateToken(r.Context(), strings.TrimSpace(r.PathValue("name")))
	return http.StatusOK, out, err
}
