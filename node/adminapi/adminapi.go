// Package adminapi is the operator HTTP API of a mirrord node, under
// /admin/v1/, with bearer-token auth. It uploads objects into the local
// block store, validates releases against the stored bytes and proposes
// every change through consensus. The mirrord CLI is its client.
package adminapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/andybalholm/brotli"
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
}

// DefaultMaxBodyBytes is the admin JSON body limit when Config gives
// none. The largest body is a release's manifest, about 700 bytes per
// file when encrypted (a 512-hex sealed hash, a CID, the name), so this
// takes a release of ~90,000 files; its raft entry is the tighter bound
// (consensus.MaxCommandBytes).
const DefaultMaxBodyBytes = 64 << 20

// API serves /admin/v1/.
type API struct {
	cfg   Config
	cons  Consensus
	store Store
	log   *slog.Logger
	now   func() time.Time
}

// New returns the admin API.
func New(cfg Config, cons Consensus, store Store, log *slog.Logger) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = 2 << 30
	}
	return &API{cfg: cfg, cons: cons, store: store, log: log, now: time.Now}
}

// Register adds the admin routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	h := func(pattern string, fn func(*http.Request) (int, any, error)) {
		mux.Handle(pattern, a.auth(fn))
	}
	h("GET /admin/v1/status", a.status)
	h("GET /admin/v1/apps", a.listApps)
	h("POST /admin/v1/apps", a.createApp)
	h("GET /admin/v1/apps/{app}", a.getApp)
	h("DELETE /admin/v1/apps/{app}", a.deleteApp)
	h("POST /admin/v1/objects", a.upload)
	h("GET /admin/v1/apps/{app}/releases", a.listReleases)
	h("POST /admin/v1/apps/{app}/releases", a.createRelease)
	h("DELETE /admin/v1/apps/{app}/releases/{version}", a.deleteRelease)
	h("GET /admin/v1/apps/{app}/channels", a.listChannels)
	h("PUT /admin/v1/apps/{app}/channels/{channel}", a.setChannel)
	h("DELETE /admin/v1/apps/{app}/channels/{channel}", a.deleteChannel)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollback", a.rollback)
	h("GET /admin/v1/apps/{app}/channels/{channel}/rollout", a.getRollout)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollout", a.startRollout)
	h("PATCH /admin/v1/apps/{app}/channels/{channel}/rollout", a.updateRollout)
	h("POST /admin/v1/apps/{app}/channels/{channel}/rollout/{action}", a.controlRollout)
	h("GET /admin/v1/apps/{app}/stats", a.stats)
	h("GET /admin/v1/apps/{app}/devices", a.listDevices)
	h("POST /admin/v1/apps/{app}/devices", a.bulkDevices)
	h("PUT /admin/v1/apps/{app}/devices/{device}", a.setDevice)
	h("DELETE /admin/v1/apps/{app}/devices/{device}", a.unsetDevice)
	h("POST /admin/v1/cluster/tokens", a.joinToken)
	h("POST /admin/v1/gc", a.gc)
	h("DELETE /admin/v1/cluster/nodes/{id}", a.removeNode)
	h("GET /admin/v1/auth", a.whoami)
	mux.Handle("POST /admin/v1/tokens/read", a.adminOnly(a.createReadToken))
	mux.Handle("GET /admin/v1/tokens/read", a.adminOnly(a.listReadTokens))
	mux.Handle("DELETE /admin/v1/tokens/read/{id}", a.adminOnly(a.deleteReadToken))
	mux.Handle("/admin/", a.auth(func(r *http.Request) (int, any, error) {
		return 0, nil, notFound("no admin endpoint %s %s (see the README's HTTP section)", r.Method, r.URL.Path)
	}))
}

// apiError is an error with an HTTP status and a stable code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// rowError is an error about one row (1-based) of a bulk request; the
// answer carries the row so that a client can name the line of its file.
type rowError struct {
	*apiError
	row int
}

func (e *rowError) Unwrap() error { return e.apiError }

func bad(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "invalid", fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, "not_found", fmt.Sprintf(format, args...)}
}

// auth serves fn to the admin token, and for GET and HEAD also to
// read-only tokens (see Protect).
func (a *API) auth(fn func(*http.Request) (int, any, error)) http.Handler {
	return a.Protect(a.handler(fn), false)
}

func (a *API) errorAnswer(r *http.Request, err error) (int, any) {
	var ae *apiError
	var ce *consensus.Error
	var mbe *http.MaxBytesError
	status, code, row := http.StatusInternalServerError, "internal", 0
	if re, ok := err.(*rowError); ok {
		row = re.row
	}
	switch {
	case errors.As(err, &ae):
		status, code = ae.status, ae.code
	case errors.As(err, &ce):
		code = ce.Code
		err = errors.New(ce.Msg) // without the package prefix
		switch ce.Code {
		case "not_found":
			status = http.StatusNotFound
		case "conflict":
			status = http.StatusConflict
		default:
			status = http.StatusBadRequest
		}
	case errors.As(err, &mbe):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
		err = fmt.Errorf("request body is larger than %d bytes, this node's limits.max_admin_body_bytes", mbe.Limit)
	case errors.Is(err, consensus.ErrTooLarge):
		status, code = http.StatusRequestEntityTooLarge, "too_large"
		err = fmt.Errorf("the change does not fit in one raft log entry (%v); this bound is fixed, no setting raises it", err)
	case content.IsNoSpace(err):
		status, code = http.StatusInsufficientStorage, "no_space"
		err = fmt.Errorf("this node's disk is full (%v): free space on it, run `mirrord gc` "+
			"(add --grace 0 to also drop uploads no release uses yet) or delete old releases, then try again; "+
			"set replication.disk_budget or replication.min_free so that uploads are refused before the disk fills", err)
	case errors.Is(err, consensus.ErrNotLeader), errors.Is(err, consensus.ErrUnavailable):
		status, code = http.StatusServiceUnavailable, "no_quorum"
		err = fmt.Errorf("admin writes are unavailable: the cluster has no raft leader reachable from this node (%v); devices are still served, try again when quorum returns", err)
	}
	if status >= 500 {
		a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	ans := map[string]any{"error": code, "message": err.Error()}
	if row > 0 {
		ans["row"] = row
	}
	return status, ans
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

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

func (a *API) app(r *http.Request) (*state.AppState, error) {
	id := r.PathValue("app")
	app := a.cons.State().App(id)
	if app == nil {
		return nil, notFound("app %q does not exist: create it with `mirrord app create %s`", id, id)
	}
	return app, nil
}

// ---- status ----

// ReleaseStatus tells whether this node holds a release's bytes.
type ReleaseStatus struct {
	App      string `json:"app"`
	Version  string `json:"version"`
	Objects  int    `json:"objects"`
	Complete int    `json:"complete"`
}

// Status is the answer of GET /admin/v1/status.
type Status struct {
	Node     consensus.NodeStats `json:"node"`
	Apps     int                 `json:"apps"`
	Releases []ReleaseStatus     `json:"releases"`
	// Nodes lists every node of the cluster as it reports itself.
	Nodes []cluster.NodeReport `json:"nodes,omitempty"`
	// Rollouts lists each channel's current or last rollout.
	Rollouts []RolloutInfo `json:"rollouts"`
	// Disk is this node's block store use and free space.
	Disk *replication.DiskStatus `json:"disk,omitempty"`
}

func (a *API) status(r *http.Request) (int, any, error) {
	st := a.cons.State()
	out := Status{Node: a.cons.Stats(), Apps: len(st.Apps), Releases: []ReleaseStatus{}, Rollouts: []RolloutInfo{}}
	for _, id := range st.AppIDs() {
		app := st.Apps[id]
		for _, name := range app.ChannelNames() {
			if app.Channels[name].Rollout != nil {
				out.Rollouts = append(out.Rollouts, rolloutInfo(app, name))
			}
		}
		for _, v := range app.ReleaseVersions() {
			rel := app.Releases[v]
			rs := ReleaseStatus{App: id, Version: v}
			for _, s := range rel.CIDs() {
				rs.Objects++
				if c, err := cid.Decode(s); err == nil {
					if ok, _ := a.store.Complete(r.Context(), c); ok {
						rs.Complete++
					}
				}
			}
			out.Releases = append(out.Releases, rs)
		}
	}
	if a.cfg.Cluster != nil {
		out.Nodes = a.cfg.Cluster.Reports(r.Context())
	}
	if a.cfg.Disk != nil {
		d := a.cfg.Disk()
		out.Disk = &d
	}
	return http.StatusOK, out, nil
}

// ---- apps ----

// AppInfo is an app as the admin API shows it.
type AppInfo struct {
	ID        string `json:"id"`
	KeyID     string `json:"key_id,omitempty"`
	PublicKey string `json:"public_key,omitempty"`
	Channels  int    `json:"channels"`
	Releases  int    `json:"releases"`
	Devices   int    `json:"devices"`
	CreatedAt int64  `json:"created_at"`
}

func appInfo(a *state.AppState) AppInfo {
	return AppInfo{ID: a.App.ID, KeyID: a.App.KeyID, PublicKey: a.App.PublicKey, Channels: len(a.Channels),
		Releases: len(a.Releases), Devices: len(a.Devices), CreatedAt: a.App.CreatedAt}
}

func (a *API) listApps(r *http.Request) (int, any, error) {
	st := a.cons.State()
	out := []AppInfo{}
	for _, id := range st.AppIDs() {
		out = append(out, appInfo(st.Apps[id]))
	}
	return http.StatusOK, out, nil
}

func (a *API) getApp(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, appInfo(app), nil
}

var appIDRe = regexp.MustCompile(`(?i)^[a-z0-9]+(\.[\w-]+)+$`)

// CreateAppRequest is the body of POST /admin/v1/apps.
type CreateAppRequest struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key,omitempty"`
}

func (a *API) createApp(r *http.Request) (int, any, error) {
	var req CreateAppRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	if !appIDRe.MatchString(req.ID) || len(req.ID) > 255 {
		return 0, nil, bad("app id %q is not a reverse-domain id like com.example.app", req.ID)
	}
	cmd := consensus.AppCreate{ID: req.ID, CreatedAt: a.now().UnixMilli()}
	if req.PublicKey != "" {
		if _, err := content.ParsePublicKey([]byte(req.PublicKey)); err != nil {
			return 0, nil, bad("public key: %v (give the .pub PEM made by `mirrord keys create` or `npx @capgo/cli key create`)", err)
		}
		cmd.PublicKey = req.PublicKey
		cmd.KeyID = content.KeyID(req.PublicKey)
	}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, appInfo(a.cons.State().App(req.ID)), nil
}

// DeletedApp is the answer of DELETE /admin/v1/apps/{app}: what went
// with the app.
type DeletedApp struct {
	Status   string `json:"status"`
	ID       string `json:"id"`
	Releases int    `json:"releases"`
	Channels int    `json:"channels"`
	Devices  int    `json:"devices"`
}

// deleteApp removes an app. ?force=true also removes its releases and
// channels; a live rollout always refuses it. The checks are made here
// first for a message that says what to run, and again by the state
// machine, which decides.
func (a *API) deleteApp(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		if force, err = strconv.ParseBool(v); err != nil {
			return 0, nil, bad("force=%q: want true or false", v)
		}
	}
	id := app.App.ID
	for _, name := range app.ChannelNames() {
		if ro := app.Channels[name].Rollout; ro.Live() {
			return 0, nil, &apiError{http.StatusConflict, "conflict", fmt.Sprintf(
				"app %s has a %s rollout of %s on channel %s: devices are being moved by it; "+
					"finish it first with `mirrord rollout abort %s %s` (or `rollout promote`), then delete the app",
				id, ro.State, ro.Version, name, id, name)}
		}
	}
	if !force && (len(app.Releases) > 0 || len(app.Channels) > 0) {
		return 0, nil, &apiError{http.StatusConflict, "conflict", fmt.Sprintf(
			"app %s still has %d release(s) and %d channel(s), which devices may be using; "+
				"`mirrord app delete %s --force` (DELETE ...?force=true) deletes them with the app, "+
				"together with its device overrides and statistics", id, len(app.Releases), len(app.Channels), id)}
	}
	out := DeletedApp{Status: "deleted", ID: id, Releases: len(app.Releases), Channels: len(app.Channels), Devices: len(app.Devices)}
	if _, err := a.cons.Apply(r.Context(), consensus.AppDelete{ID: id, Force: force}); err != nil {
		return 0, nil, err
	}
	a.log.Info("app deleted", "app", id, "releases", out.Releases, "channels", out.Channels, "devices", out.Devices, "force", force)
	return http.StatusOK, out, nil
}

// ---- objects ----

// ObjectInfo names an uploaded object.
type ObjectInfo struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

func (a *API) upload(r *http.Request) (int, any, error) {
	if r.ContentLength > a.cfg.MaxUploadBytes {
		return 0, nil, &apiError{http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("object of %d bytes is larger than limits.max_upload_bytes (%d)", r.ContentLength, a.cfg.MaxUploadBytes)}
	}
	var body io.Reader = http.MaxBytesReader(nil, r.Body, a.cfg.MaxUploadBytes)
	if a.cfg.Budget != nil {
		if err := a.cfg.Budget(max(r.ContentLength, 0)); err != nil {
			return 0, nil, &apiError{http.StatusInsufficientStorage, "over_budget", err.Error()}
		}
		body = &budgetReader{r: body, budget: a.cfg.Budget, size: r.ContentLength, next: budgetEvery}
	}
	obj, err := a.store.Add(r.Context(), body)
	if err != nil {
		if a.cfg.Reclaim != nil {
			a.cfg.Reclaim()
		}
		var mbe *http.MaxBytesError
		var be *budgetError
		switch {
		case errors.As(err, &mbe):
			return 0, nil, &apiError{http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("object is larger than limits.max_upload_bytes (%d)", a.cfg.MaxUploadBytes)}
		case errors.As(err, &be):
			return 0, nil, &apiError{http.StatusInsufficientStorage, "over_budget", be.err.Error()}
		}
		return 0, nil, fmt.Errorf("store object: %w", err)
	}
	return http.StatusCreated, ObjectInfo{CID: obj.CID.String(), Size: obj.Size}, nil
}

// budgetEvery is how many bytes of an upload are read between two asks
// of the budget.
const budgetEvery = 4 << 20

// budgetReader asks the budget again as an upload is read, with the
// bytes still to come: an upload of unknown length, or several at once
// that each fitted when they started, stop at the budget instead of at
// a full disk.
type budgetReader struct {
	r      io.Reader
	budget func(n int64) error
	size   int64 // Content-Length; < 0 unknown
	read   int64
	next   int64 // read count of the next ask
}

// budgetError is a refusal of the budget during an upload.
type budgetError struct{ err error }

func (e *budgetError) Error() string { return e.err.Error() }
func (e *budgetError) Unwrap() error { return e.err }

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read >= b.next && err == nil {
		b.next = b.read + budgetEvery
		if berr := b.budget(max(b.size-b.read, 0)); berr != nil {
			return n, &budgetError{berr}
		}
	}
	return n, err
}

// ---- releases ----

// ReleaseFile is one manifest entry of a release create request.
type ReleaseFile struct {
	FileName string `json:"file_name"`
	FileHash string `json:"file_hash"`
	CID      string `json:"cid"`
}

// CreateReleaseRequest is the body of POST /admin/v1/apps/{app}/releases.
type CreateReleaseRequest struct {
	Version    string        `json:"version"`
	ZipCID     string        `json:"zip_cid"`
	Checksum   string        `json:"checksum"`
	SessionKey string        `json:"session_key,omitempty"`
	KeyID      string        `json:"key_id,omitempty"`
	Manifest   []ReleaseFile `json:"manifest,omitempty"`
	MinNative  string        `json:"min_native,omitempty"`
	Channel    string        `json:"channel,omitempty"`
}

var (
	semverRe  = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	hex64Re   = regexp.MustCompile(`^[0-9a-f]{64}$`)
	channelRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

func (a *API) createRelease(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	var req CreateReleaseRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	rel, err := a.validateRelease(r.Context(), app, &req)
	if err != nil {
		return 0, nil, err
	}
	if _, err := a.cons.Apply(r.Context(), consensus.ReleaseCreate{Release: *rel, Channel: req.Channel}); err != nil {
		if errors.Is(err, consensus.ErrTooLarge) {
			return 0, nil, &apiError{http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf(
				"release %s: its manifest of %d files does not fit in one raft log entry (%v); this bound is fixed, no setting raises it: ship fewer files (merge small assets) or shorter paths",
				req.Version, len(rel.Manifest), err)}
		}
		return 0, nil, err
	}
	return http.StatusCreated, rel, nil
}

// validateRelease checks a release against the stored bytes: every object
// complete; for plain releases the checksum, zip safety and file hashes;
// for encrypted ones that the session key, checksum and file hashes open
// with the app's public key (the node never decrypts bundle bytes).
func (a *API) validateRelease(ctx context.Context, app *state.AppState, req *CreateReleaseRequest) (*state.Release, error) {
	if !semverRe.MatchString(req.Version) {
		return nil, bad("version %q is not semver (like 1.2.3)", req.Version)
	}
	if req.Channel != "" && !channelRe.MatchString(req.Channel) {
		return nil, bad("channel name %q: use letters, digits, '.', '_' and '-' (at most 64)", req.Channel)
	}
	if req.MinNative != "" && !semverRe.MatchString(req.MinNative) {
		return nil, bad("min native version %q is not semver (like 1.2.3)", req.MinNative)
	}
	if _, ok := app.Releases[req.Version]; ok {
		return nil, &apiError{http.StatusConflict, "conflict", fmt.Sprintf("release %s of %s already exists; publish a new version", req.Version, app.App.ID)}
	}
	rel := &state.Release{
		App: app.App.ID, Version: req.Version, ZipCID: req.ZipCID,
		Checksum: strings.ToLower(req.Checksum), SessionKey: req.SessionKey,
		MinNative: req.MinNative, CreatedAt: a.now().UnixMilli(),
	}
	// Objects are streamed, never read whole into memory: a release of
	// hundreds of MB held (and copied) in memory made the node's Go
	// runtime stall for hundreds of ms, long enough for raft to lose its
	// leader (docs/BENCHMARKS.md, "Publish and raft").
	zf, err := a.openObject(ctx, req.ZipCID, "zip")
	if err != nil {
		return nil, err
	}
	defer zf.Close()
	zipSize := int64(zf.Size())
	rel.ZipSize = zipSize
	encrypted := req.SessionKey != ""
	if encrypted {
		if app.App.PublicKey == "" {
			return nil, bad("release is encrypted but app %s has no public key: recreate the app with --public-key", app.App.ID)
		}
		pub, err := content.ParsePublicKey([]byte(app.App.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("app public key: %w", err)
		}
		if req.KeyID != "" && req.KeyID != app.App.KeyID {
			return nil, bad("release was encrypted for key %s but app %s has key %s", req.KeyID, app.App.ID, app.App.KeyID)
		}
		rel.KeyID = app.App.KeyID
		if _, err := content.OpenSessionKey(req.SessionKey, pub); err != nil {
			return nil, bad("session key does not open with the app's public key (%v): was the bundle encrypted with this app's private key?", err)
		}
		if _, err := content.OpenChecksum(pub, rel.Checksum); err != nil {
			return nil, bad("checksum does not open with the app's public key (%v): pass the checksum printed by the encrypting CLI", err)
		}
		if zipSize%16 != 0 {
			return nil, bad("encrypted zip is %d bytes, not a multiple of the AES block size", zipSize)
		}
		seen := map[string]bool{}
		for _, f := range req.Manifest {
			if err := checkName(f.FileName, seen); err != nil {
				return nil, err
			}
			if _, err := content.OpenChecksum(pub, strings.ToLower(f.FileHash)); err != nil {
				return nil, bad("manifest file %s: hash does not open with the app's public key: %v", f.FileName, err)
			}
			size, err := a.objectSize(ctx, f.CID, f.FileName)
			if err != nil {
				return nil, err
			}
			rel.Manifest = append(rel.Manifest, state.ManifestFile{FileName: f.FileName, FileHash: strings.ToLower(f.FileHash), CID: f.CID, Size: size})
		}
		return rel, nil
	}
	if req.KeyID != "" {
		return nil, bad("key_id given for a plain release")
	}
	if !hex64Re.MatchString(rel.Checksum) {
		return nil, bad("checksum %q is not a hex SHA-256", req.Checksum)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zf); err != nil {
		return nil, fmt.Errorf("zip %s: %w", req.ZipCID, err)
	}
	if sum := h.Sum(nil); hex.EncodeToString(sum) != rel.Checksum {
		return nil, bad("checksum does not match the uploaded zip (sha256 %x)", sum)
	}
	if err := content.CheckZip(&fileReaderAt{f: zf, off: -1}, zipSize, a.cfg.ZipLimits); err != nil {
		var rerr *readError
		if errors.As(err, &rerr) {
			return nil, fmt.Errorf("zip %s: %w", req.ZipCID, rerr.err)
		}
		return nil, bad("zip refused: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range req.Manifest {
		if err := checkName(f.FileName, seen); err != nil {
			return nil, err
		}
		size, err := a.checkFileHash(ctx, f)
		if err != nil {
			return nil, err
		}
		rel.Manifest = append(rel.Manifest, state.ManifestFile{FileName: f.FileName, FileHash: strings.ToLower(f.FileHash), CID: f.CID, Size: size})
	}
	return rel, nil
}

// checkFileHash streams a plain manifest file (decompressing a ".br"
// one) through SHA-256 and compares it with its file_hash. It returns
// the stored size.
func (a *API) checkFileHash(ctx context.Context, f ReleaseFile) (int64, error) {
	obj, err := a.openObject(ctx, f.CID, f.FileName)
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	stored := &errReader{r: obj}
	var src io.Reader = stored
	if strings.HasSuffix(f.FileName, ".br") {
		src = brotli.NewReader(stored)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(src, a.cfg.MaxUploadBytes+1))
	switch {
	case stored.err != nil:
		return 0, fmt.Errorf("%s %s: %w", f.FileName, f.CID, stored.err)
	case err != nil && strings.HasSuffix(f.FileName, ".br"):
		return 0, bad("manifest file %s is not valid Brotli: %v", f.FileName, err)
	case err != nil:
		return 0, fmt.Errorf("%s %s: %w", f.FileName, f.CID, err)
	case n > a.cfg.MaxUploadBytes:
		return 0, bad("manifest file %s decompresses to more than limits.max_upload_bytes (%d)", f.FileName, a.cfg.MaxUploadBytes)
	}
	if hex.EncodeToString(h.Sum(nil)) != strings.ToLower(f.FileHash) {
		return 0, bad("manifest file %s: file_hash does not match its bytes", f.FileName)
	}
	return int64(obj.Size()), nil
}

func checkName(name string, seen map[string]bool) error {
	clean := path.Clean(name)
	if name == "" || clean != name || strings.HasPrefix(name, "/") || clean == ".." || strings.HasPrefix(clean, "../") ||
		strings.ContainsAny(name, "\\\x00") || (len(name) > 1 && name[1] == ':') {
		return bad("manifest file name %q is not a safe relative path", name)
	}
	if seen[name] {
		return bad("manifest file %q appears twice", name)
	}
	seen[name] = true
	return nil
}

// openObject checks that an object is complete in the local store and
// opens it.
func (a *API) openObject(ctx context.Context, s, what string) (content.File, error) {
	c, err := content.ParseCID(s)
	if err != nil {
		return nil, bad("%s: %v", what, err)
	}
	ok, err := a.store.Complete(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, s, err)
	}
	if !ok {
		return nil, bad("%s: object %s is not on this node: upload it first (POST /admin/v1/objects)", what, s)
	}
	f, err := a.store.Open(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, s, err)
	}
	return f, nil
}

// errReader remembers the error of its reader other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// objectSize is the size of a complete stored object.
func (a *API) objectSize(ctx context.Context, s, what string) (int64, error) {
	f, err := a.openObject(ctx, s, what)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return int64(f.Size()), nil
}

// fileReaderAt reads a stored object at offsets for archive/zip, which
// reads the central directory at the end and then each entry front to
// back: it seeks only when the offset is not where the last read ended
// (off, -1 before the first read, whatever the file's position).
// A read error of the store (a corrupt block) is wrapped in readError so
// that it is not reported as a bad zip.
type fileReaderAt struct {
	mu  sync.Mutex
	f   content.File
	off int64
}

type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (r *fileReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off != r.off {
		if _, err := r.f.Seek(off, io.SeekStart); err != nil {
			return 0, &readError{err}
		}
		r.off = off
	}
	n, err := io.ReadFull(r.f, p)
	r.off += int64(n)
	switch {
	case err == io.ErrUnexpectedEOF:
		err = io.EOF
	case err != nil && err != io.EOF:
		err = &readError{err}
	}
	return n, err
}

// ReleaseInfo is a release as listed, with the channels pointing at it.
type ReleaseInfo struct {
	*state.Release
	// Files is the number of manifest files, also when the listing
	// leaves the manifests out.
	Files    int      `json:"files"`
	Channels []string `json:"channels"`
}

// listReleases lists an app's releases. With ?manifest=false each
// release comes without its manifest: a release of 50,000 files is tens
// of MB of JSON, and callers that look for a version or a session key
// do not need it.
func (a *API) listReleases(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	withManifest := true
	if m := r.URL.Query().Get("manifest"); m != "" {
		b, err := strconv.ParseBool(m)
		if err != nil {
			return 0, nil, bad("manifest=%q: want true or false", m)
		}
		withManifest = b
	}
	out := []ReleaseInfo{}
	for _, v := range app.ReleaseVersions() {
		rel := app.Releases[v]
		ri := ReleaseInfo{Release: rel, Files: len(rel.Manifest), Channels: []string{}}
		if !withManifest && rel.Manifest != nil {
			cp := *rel
			cp.Manifest = nil
			ri.Release = &cp
		}
		for _, n := range app.ChannelNames() {
			if app.Channels[n].Version == v {
				ri.Channels = append(ri.Channels, n)
			}
		}
		out = append(out, ri)
	}
	return http.StatusOK, out, nil
}

func (a *API) deleteRelease(r *http.Request) (int, any, error) {
	if _, err := a.app(r); err != nil {
		return 0, nil, err
	}
	cmd := consensus.ReleaseDelete{App: r.PathValue("app"), Version: r.PathValue("version")}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "deleted", "version": cmd.Version}, nil
}

// ---- channels ----

func (a *API) listChannels(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	out := []*state.Channel{}
	for _, n := range app.ChannelNames() {
		out = append(out, app.Channels[n])
	}
	return http.StatusOK, out, nil
}

// ChannelSettings is the body of PUT .../channels/{channel}: every field
// optional; only the given ones change.
type ChannelSettings struct {
	Version                      *string `json:"version,omitempty"`
	Public                       *bool   `json:"public,omitempty"`
	IOS                          *bool   `json:"ios,omitempty"`
	Android                      *bool   `json:"android,omitempty"`
	Electron                     *bool   `json:"electron,omitempty"`
	AllowEmulator                *bool   `json:"allow_emulator,omitempty"`
	AllowDevice                  *bool   `json:"allow_device,omitempty"`
	AllowDev                     *bool   `json:"allow_dev,omitempty"`
	AllowProd                    *bool   `json:"allow_prod,omitempty"`
	AllowDeviceSelfSet           *bool   `json:"allow_device_self_set,omitempty"`
	DisableAutoUpdate            *string `json:"disable_auto_update,omitempty"`
	DisableAutoUpdateUnderNative *bool   `json:"disable_auto_update_under_native,omitempty"`
}

func (a *API) setChannel(r *http.Request) (int, any, error) {
	if _, err := a.app(r); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("channel")
	if !channelRe.MatchString(name) {
		return 0, nil, bad("channel name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	var s ChannelSettings
	if err := a.decode(r, &s); err != nil {
		return 0, nil, err
	}
	cmd := consensus.ChannelSet{
		App: r.PathValue("app"), Name: name, CreatedAt: a.now().UnixMilli(),
		Version: s.Version, Public: s.Public, IOS: s.IOS, Android: s.Android, Electron: s.Electron,
		AllowEmulator: s.AllowEmulator, AllowDevice: s.AllowDevice, AllowDev: s.AllowDev, AllowProd: s.AllowProd,
		AllowDeviceSelfSet: s.AllowDeviceSelfSet, DisableAutoUpdate: s.DisableAutoUpdate,
		DisableAutoUpdateUnderNative: s.DisableAutoUpdateUnderNative,
	}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.cons.State().App(cmd.App).Channels[name], nil
}

func (a *API) deleteChannel(r *http.Request) (int, any, error) {
	if _, err := a.app(r); err != nil {
		return 0, nil, err
	}
	cmd := consensus.ChannelDelete{App: r.PathValue("app"), Name: r.PathValue("channel")}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "deleted", "channel": cmd.Name}, nil
}

func (a *API) rollback(r *http.Request) (int, any, error) {
	if _, err := a.app(r); err != nil {
		return 0, nil, err
	}
	cmd := consensus.ChannelRollback{App: r.PathValue("app"), Name: r.PathValue("channel")}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, a.cons.State().App(cmd.App).Channels[cmd.Name], nil
}

// ---- devices ----

// DeviceInfo is one device override.
type DeviceInfo struct {
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	// Version is the pinned release, "" if none.
	Version string `json:"version,omitempty"`
}

func (a *API) listDevices(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	out := make([]DeviceInfo, 0, len(app.Devices))
	for id, o := range app.Devices {
		out = append(out, DeviceInfo{DeviceID: id, Channel: o.Channel, Version: o.Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return http.StatusOK, out, nil
}

// SetDeviceRequest is the body of PUT .../devices/{device}: a channel, a
// pinned release, or both.
type SetDeviceRequest struct {
	Channel string `json:"channel,omitempty"`
	Version string `json:"version,omitempty"`
}

func (a *API) setDevice(r *http.Request) (int, any, error) {
	app, err := a.app(r)
	if err != nil {
		return 0, nil, err
	}
	var req SetDeviceRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	dev := strings.ToLower(r.PathValue("device"))
	if dev == "" || len(dev) > 64 {
		return 0, nil, bad("device id %q: want the device_id the plugin sends (a UUID)", dev)
	}
	if req.Channel == "" && req.Version == "" {
		return 0, nil, bad("give a channel, a version to pin, or both")
	}
	if req.Channel != "" && app.Channels[req.Channel] == nil {
		return 0, nil, notFound("channel %q of app %q not found; create it first with `mirrord channel set %s %s --version V`",
			req.Channel, app.App.ID, app.App.ID, req.Channel)
	}
	if req.Version != "" && req.Version != state.Builtin && app.Releases[req.Version] == nil {
		return 0, nil, notFound("release %q of app %q not found (see `mirrord release list %s`)", req.Version, app.App.ID, app.App.ID)
	}
	var cmd consensus.Command = consensus.DeviceSet{App: r.PathValue("app"), DeviceID: dev, Channel: req.Channel}
	if req.Version != "" {
		cmd = consensus.DevicesSet{App: r.PathValue("app"), Devices: []state.DeviceEntry{
			{DeviceID: dev, Channel: req.Channel, Version: req.Version}}}
	}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, DeviceInfo{DeviceID: dev, Channel: req.Channel, Version: req.Version}, nil
}

func (a *API) unsetDevice(r *http.Request) (int, any, error) {
	if _, err := a.app(r); err != nil {
		return 0, nil, err
	}
	cmd := consensus.DeviceUnset{App: r.PathValue("app"), DeviceID: strings.ToLower(r.PathValue("device"))}
	if _, err := a.cons.Apply(r.Context(), cmd); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"status": "deleted", "device_id": cmd.DeviceID}, nil
}

// ---- cluster ----

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

func (a *API) joinToken(r *http.Request) (int, any, error) {
	if a.cfg.Cluster == nil {
		return 0, nil, notFound("this node runs without cluster support")
	}
	var req JoinTokenRequest
	if r.ContentLength != 0 {
		if err := a.decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	ttl := 24 * time.Hour
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 365*24*time.Hour {
			return 0, nil, bad("ttl %q: want a positive Go duration up to 8760h, like 24h", req.TTL)
		}
		ttl = d
	}
	tok, exp, err := a.cfg.Cluster.NewJoinToken(r.Context(), ttl)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, JoinToken{Token: tok, ExpiresAt: exp.UTC()}, nil
}

func (a *API) removeNode(r *http.Request) (int, any, error) {
	if a.cfg.Cluster == nil {
		return 0, nil, notFound("this node runs without cluster support")
	}
	id := r.PathValue("id")
	if err := a.cfg.Cluster.Remove(r.Context(), id); err != nil {
		if errors.Is(err, cluster.ErrInvalid) {
			return 0, nil, bad("%v", err)
		}
		return 0, nil, err
	}
	return http.StatusOK, map[string]string{"removed": id}, nil
}

// GCRequest is the optional body of POST /admin/v1/gc.
type GCRequest struct {
	// Grace, a Go duration, replaces replication.gc_grace for this run:
	// "0s" also removes objects uploaded for a release not created yet.
	Grace string `json:"grace,omitempty"`
}

func (a *API) gc(r *http.Request) (int, any, error) {
	if a.cfg.GC == nil {
		return 0, nil, notFound("this node runs without garbage collection")
	}
	var req GCRequest
	if r.ContentLength != 0 {
		if err := a.decode(r, &req); err != nil {
			return 0, nil, err
		}
	}
	grace := time.Duration(-1)
	if req.Grace != "" {
		d, err := time.ParseDuration(req.Grace)
		if err != nil || d < 0 {
			return 0, nil, bad("grace %q: want a Go duration of 0 or more, like 0s or 10m", req.Grace)
		}
		grace = d
	}
	res, err := a.cfg.GC(r.Context(), grace)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}
