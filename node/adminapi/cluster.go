package adminapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"mirrord/content"
	"mirrord/node/cluster"
)

// JoinTokenRequest is the body of POST /admin/v1/cluster/tokens.
type JoinTokenRequest struct {
	// TTL is how long the token is valid, as a Go duration ("24h").
	TTL string `json:"ttl,omitempty"`
}

// JoinToken is its answer.
type JoinToken struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// GCRequest is the optional body of POST /admin/v1/gc.
type GCRequest struct {
	// Grace, a Go duration, replaces replication.gc_grace for this run:
	// "0s" also removes objects uploaded for a release not created yet.
	Grace string `json:"grace,omitempty"`
}

func noCluster() error { return notFound("this node runs without cluster support") }

// NewJoinToken makes a token a new node joins the cluster with.
func (a *API) NewJoinToken(ctx context.Context, req JoinTokenRequest) (_ JoinToken, err error) {
	defer classifyErr(&err)
	if a.cfg.Cluster == nil {
		return JoinToken{}, noCluster()
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 365*24*time.Hour {
			return JoinToken{}, bad("ttl %q: want a positive Go duration up to 8760h, like 24h", req.TTL)
		}
		ttl = d
	}
	tok, exp, err := a.cfg.Cluster.NewJoinToken(ctx, ttl)
	if err != nil {
		return JoinToken{}, err
	}
	return JoinToken{Token: tok, ExpiresAt: exp.UTC()}, nil
}

// RemoveNode removes a node from the cluster.
func (a *API) RemoveNode(ctx context.Context, id string) (err error) {
	defer classifyErr(&err)
	if a.cfg.Cluster == nil {
		return noCluster()
	}
	if err := a.cfg.Cluster.Remove(ctx, id); err != nil {
		if errors.Is(err, cluster.ErrInvalid) {
			return bad("%v", err)
		}
		return err
	}
	return nil
}

// GC runs garbage collection on this node now.
func (a *API) GC(ctx context.Context, req GCRequest) (_ content.GCResult, err error) {
	defer classifyErr(&err)
	if a.cfg.GC == nil {
		return content.GCResult{}, notFound("this node runs without garbage collection")
	}
	grace := time.Duration(-1)
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		if err != nil || d < 0 {
			return content.GCResult{}, bad("grace %q: want a Go duration of 0 or more, like 0s or 10m", req.Grace)
		}
		grace = d
	}
	return a.cfg.GC(ctx, grace)
}

func (a *API) httpJoinToken(r *http.Request) (int, any, error) {
	if a.cfg.Cluster == nil {
		return 0, nil, noCluster()
	}
	var req JoinTokenRequest
	if err := a.decodeOptional(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.NewJoinToken(r.Context(), req)
	return http.StatusCreated, out, err
}

func (a *API) httpRemoveNode(r *http.Request) (int, any, error) {
	id := r.PathValue("id")
	err := a.RemoveNode(r.Context(), id)
	return http.StatusOK, map[string]string{"removed": id}, err
}

func (a *API) httpGC(r *http.Request) (int, any, error) {
	if a.cfg.GC == nil {
		return 0, nil, notFound("this node runs without garbage collection")
	}
	var req GCRequest
	if err := a.decodeOptional(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.GC(r.Context(), req)
	return http.StatusOK, out, err
}
