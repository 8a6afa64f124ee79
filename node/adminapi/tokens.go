package adminapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"sort"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/node"
)

// ---- read-only tokens ----

// ReadToken is a read-only operator token. Token is set only in the
// answer that creates it: the cluster keeps the token's SHA-256 digest
// alone, which is also its ID (for revoking it).
type ReadToken struct {
	Token     string `json:"token,omitempty"`
	ID        string `json:"id"`
	CreatedAt int64  `json:"created_at"`
}

// AuthInfo is the answer of GET /admin/v1/auth: what the caller's token
// allows ("read" or "admin").
type AuthInfo struct {
	Access string `json:"access"`
}

func (a *API) whoami(r *http.Request) (int, any, error) {
	return http.StatusOK, AuthInfo{Access: a.AccessOf(r).String()}, nil
}

// createReadToken serves POST /admin/v1/tokens/read: a new random token
// (256 bits, hex) whose digest is replicated, valid on every node.
func (a *API) createReadToken(r *http.Request) (int, any, error) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	tok := hex.EncodeToString(b[:])
	cmd := consensus.ReadTokenAdd{Digest: node.TokenDigest(tok), CreatedAt: a.now().UnixMilli()}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, ReadToken{Token: tok, ID: cmd.Digest, CreatedAt: cmd.CreatedAt}, nil
}

func (a *API) listReadTokens(r *http.Request) (int, any, error) {
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
	return http.StatusOK, out, nil
}

func (a *API) deleteReadToken(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	if !state.ValidDigest(id) {
		return 0, nil, bad("token id %q: want the 64 hex characters `mirrord token list` shows", id)
	}
	if _, err := a.cons.Apply(r.Context(), consensus.ReadTokenDelete{Digest: id}); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "deleted", "id": id}, nil
}
