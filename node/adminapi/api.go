package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node/cluster"
	"mirrord/node/replication"
)

// Consensus is what the admin API needs of the consensus node.
type Consensus interface {
	Apply(ctx context.Context, cmd consensus.Command) (any, error)
	State() *state.State
	Stats() consensus.NodeStats
}

// Store is what the admin API needs of the block store.
type Store interface {
	Add(ctx context.Context, r io.Reader) (content.Object, error)
	Complete(ctx context.Context, c cid.Cid) (bool, error)
	Open(ctx context.Context, c cid.Cid) (content.File, error)
}

// Cluster is what the admin API needs of the node's cluster membership.
type Cluster interface {
	Reports(ctx context.Context) []cluster.NodeReport
	NewJoinToken(ctx context.Context, ttl time.Duration) (string, time.Time, error)
	Remove(ctx context.Context, id string) error
}

// Config tunes the admin API.
type Config struct {
	// Token is this node's bearer token. Tokens whose SHA-256 digest is
	// in the cluster state are accepted too (one token for the cluster).
	Token string
	// MaxBodyBytes bounds JSON bodies (limits.max_admin_body_bytes);
	// 0 means DefaultMaxBodyBytes.
	MaxBodyBytes   int64
	MaxUploadBytes int64 // one object upload
	// ZipLimits bounds the plain zips this node inspects.
	ZipLimits content.ZipLimits
	// Cluster, if set, serves the cluster endpoints and the node list
	// of the status.
	Cluster Cluster
	// Barrier, if set, runs before each request so that reads on a
	// follower include writes made through other nodes; its error is
	// ignored (the local state is served).
	Barrier func(ctx context.Context) error
	// GC, if set, runs garbage collection on this node now
	// (POST /admin/v1/gc) with the given grace period (< 0: the node's
	// replication.gc_grace).
	GC func(ctx context.Context, grace time.Duration) (content.GCResult, error)
	// Budget, if set, is asked before an upload of n bytes is stored,
	// and again every few MiB of it with the bytes still to come (0 if
	// unknown); an error refuses or stops it with 507.
	Budget func(n int64) error
	// Reclaim, if set, is called when an upload fails, so that the
	// blocks it wrote (which the store leaves collectable at once) give
	// their space back now rather than at the next GC round.
	Reclaim func()
	// Disk, if set, reports the block store's use of its disk in the
	// status.
	Disk func() replication.DiskStatus
	// Rotated, if set, is called after the secret of the first admin
	// token (state.AdminTokenName) was rotated through this node, with
	// the new secret: the node writes it to DATA/admin.token and hands
	// it to the other nodes (see docs/operations.md, Tokens).
	Rotated func(ctx context.Context, secret string)
}

// DefaultMaxBodyBytes is the admin JSON body limit when Config gives
// none. The largest body is a release's manifest, about 700 bytes per
// file when encrypted (a 512-hex sealed hash, a CID, the name), so this
// takes a release of ~90,000 files; its raft entry is the tighter bound
// (consensus.MaxCommandBytes).
const DefaultMaxBodyBytes = 64 << 20

// API is the admin service. Its exported methods are the operations;
// Register serves them over HTTP. Every error they return is an *Error.
type API struct {
	cfg   Config
	cons  Consensus
	store Store
	log   *slog.Logger
	now   func() time.Time
	// refusals bounds the refusals written to the audit log.
	refusals refusalLimit
	// used maps a token name to when this node last admitted it (unix
	// ms, an int64).
	used sync.Map
}

// New returns the admin API. It does no I/O.
func New(cfg Config, cons Consensus, store Store, log *slog.Logger) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 2 << 30
	}
	return &API{cfg: cfg, cons: cons, store: store, log: log, now: time.Now}
}

// endpoint is an HTTP form of an operation: it answers a status and a
// value to write as JSON, or an error.
type endpoint func(*http.Request) (int, any, error)

// Register adds the admin routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	h := func(pattern string, fn endpoint) { mux.Handle(pattern, a.auth(fn)) }
	h("GET /admin/v1/status", a.httpStatus)
	h("GET /admin/v1/apps", a.httpListApps)
	h("POST /admin/v1/apps", a.httpCreateApp)
	h("GET /admin/v1/apps/{app}", a.httpGetApp)
	h("DELETE /admin/v1/apps/{app}", a.httpDeleteApp)
	h("POST /admin/v1/objects", a.httpUpload)
	h("GET /admin/v1/apps/{app}/releases", a.httpListReleases)
	h("POST /admin/v1/apps/{app}/releases", a.httpCreateRelease)
	h("DELETE /admin/v1/apps/{app}/releases/{version}", a.httpDeleteRelease)
	h("GET /admin/v1/apps/{app}/channels", a.httpListChannels)
	h("PUT /admin/v1/apps/{app}/channels/{channel}", a.httpSetChannel)
	h("DELETE /admin/v1/apps/{app}/channels/{channel}", a.httpDeleteChannel)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollback", a.httpRollback)
	h("GET /admin/v1/apps/{app}/channels/{channel}/rollout", a.httpGetRollout)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollout", a.httpStartRollout)
	h("PATCH /admin/v1/apps/{app}/channels/{channel}/rollout", a.httpUpdateRollout)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollout/{action}", a.httpControlRollout)
	h("GET /admin/v1/apps/{app}/stats", a.httpStats)
	h("GET /admin/v1/apps/{app}/devices", a.httpListDevices)
	h("POST /admin/v1/apps/{app}/devices", a.httpBulkDevices)
	h("PUT /admin/v1/apps/{app}/devices/{device}", a.httpSetDevice)
	h("DELETE /admin/v1/apps/{app}/devices/{device}", a.httpUnsetDevice)
	h("POST /admin/v1/cluster/tokens", a.httpJoinToken)
	h("POST /admin/v1/gc", a.httpGC)
	h("DELETE /admin/v1/cluster/nodes/{id}", a.httpRemoveNode)
	h("GET /admin/v1/auth", a.httpWhoami)
	h("GET /admin/v1/audit", a.httpAudit)
	mux.Handle("POST /admin/v1/tokens", a.adminOnly(a.httpCreateToken))
	mux.Handle("GET /admin/v1/tokens", a.adminOnly(a.httpListTokens))
	mux.Handle("DELETE /admin/v1/tokens/{name}", a.adminOnly(a.httpRevokeToken))
	mux.Handle("POST /admin/v1/tokens/{name}/rotate", a.adminOnly(a.httpRotateToken))
	mux.Handle("POST /admin/v1/tokens/read", a.adminOnly(a.httpCreateReadToken))
	mux.Handle("GET /admin/v1/tokens/read", a.adminOnly(a.httpListReadTokens))
	mux.Handle("DELETE /admin/v1/tokens/read/{id}", a.adminOnly(a.httpDeleteReadToken))
	mux.Handle("/admin/", a.auth(func(r *http.Request) (int, any, error) {
		return 0, nil, notFound("no admin endpoint %s %s (see the README's HTTP section)", r.Method, r.URL.Path)
	}))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decode reads a JSON body of at most MaxBodyBytes into v, strictly.
func (a *API) decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, a.cfg.MaxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return bad("request body is not valid JSON for this endpoint: %v", err)
	}
	return nil
}

// decodeOptional decodes a body that may be absent (Content-Length 0).
func (a *API) decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return a.decode(r, v)
}

// app looks an app up in the local state.
func (a *API) app(id string) (*state.AppState, error) {
	app := a.cons.State().App(id)
	if app == nil {
		return nil, notFound("app %q does not exist: create it with `mirrord app create %s`", id, id)
	}
	return app, nil
}

// pathApp is the app of the request's {app}: handlers look it up first
// so that an unknown app is the answer before any other check.
func (a *API) pathApp(r *http.Request) (*state.AppState, error) {
	return a.app(r.PathValue("app"))
}

// apply proposes cmd through consensus.
func (a *API) apply(ctx context.Context, cmd consensus.Command) error {
	_, err := a.cons.Apply(ctx, cmd)
	return err
}
