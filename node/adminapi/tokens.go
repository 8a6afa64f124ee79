package adminapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sort"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/node"
)

// ReadToken is a read-only operator token. Token is set only in the
// answer that creates it: the cluster keeps the token's SHA-256 digest
// alone, which is also its ID (for revoking it).
type ReadToken struct {
	Token     string `json:"token,omitempty"`
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"`
}

// AuthInfo is the answer of GET /admin/v1/auth: what the caller's token
// allows ("read", "publish" or "admin"), its name and, for publish
// tokens, its apps.
type AuthInfo struct {
	Access string   `json:"access"`
	Name   string   `json:"name,omitempty"`
	Apps   []string `json:"apps,omitempty"`
}

func (a *API) httpWhoami(r *http.Request) (int, any, error) {
	tok, _ := a.caller(r)
	return http.StatusOK, AuthInfo{Access: accessOfScope(tok.Scope).String(), Name: tok.Name, Apps: tok.Apps}, nil
}

// CreateReadToken makes a new random read-only token (256 bits, hex)
// whose digest is replicated, valid on every node.
func (a *API) CreateReadToken(ctx context.Context) (_ ReadToken, err error) {
	defer classifyErr(&err)
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	tok := hex.EncodeToString(b[:])
	cmd := consensus.ReadTokenAdd{Digest: node.TokenDigest(tok), CreatedAt: a.now().UnixMilli()}
	if err := a.apply(ctx, cmd); err != nil {
		return ReadToken{}, err
	}
	return ReadToken{Token: tok, ID: cmd.Digest, CreatedAt: cmd.CreatedAt}, nil
}

// ReadTokens lists the read-only tokens (without the tokens), oldest
// first.
func (a *API) ReadTokens(ctx context.Context) ([]ReadToken, error) {
	out := []ReadToken{}
	for d, at := range a.cons.State().ClusterInfo().ReadTokens {
		out = append(out, ReadToken{ID: d, CreatedAt: at})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedAt != out[j].CreatedAt {
			return out[i].CreatedAt < out[j].CreatedAt
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeleteReadToken revokes the read-only token whose digest is id.
func (a *API) DeleteReadToken(ctx context.Context, id string) (err error) {
	defer classifyErr(&err)
	if !state.ValidDigest(id) {
		return bad("token id %q: want the 64 hex characters `mirrord token list` shows", id)
	}
	return a.apply(ctx, consensus.ReadTokenDelete{Digest: id})
}

func (a *API) httpCreateReadToken(r *http.Request) (int, any, error) {
	out, err := a.CreateReadToken(r.Context())
	return http.StatusCreated, out, err
}

func (a *API) httpListReadTokens(r *http.Request) (int, any, error) {
	out, err := a.ReadTokens(r.Context())
	return http.StatusOK, out, err
}

func (a *API) httpDeleteReadToken(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	err := a.DeleteReadToken(r.Context(), id)
	return http.StatusOK, map[string]string{"status": "deleted", "id": id}, err
}
