package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
)

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

// ReleaseInfo is a release as listed, with the channels pointing at it.
type ReleaseInfo struct {
	*state.Release
	// Files is the number of manifest files, also when the listing
	// leaves the manifests out.
	Files    int      `json:"files"`
	Channels []string `json:"channels"`
}

// CreateRelease checks a release against the objects stored on this
// node (content.CheckRelease) and creates it, pointing req.Channel at it
// when given.
func (a *API) CreateRelease(ctx context.Context, app string, req CreateReleaseRequest) (_ state.Release, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return state.Release{}, err
	}
	rel, err := a.validateRelease(ctx, as, &req)
	if err != nil {
		return state.Release{}, err
	}
	if err := a.apply(ctx, consensus.ReleaseCreate{Release: *rel, Channel: req.Channel}); err != nil {
		if errors.Is(err, consensus.ErrTooLarge) {
			return state.Release{}, newError(http.StatusRequestEntityTooLarge, "too_large",
				"release %s: its manifest of %d files does not fit in one raft log entry (%v); this bound is fixed, no setting raises it: ship fewer files (merge small assets) or shorter paths",
				req.Version, len(rel.Manifest), err)
		}
		return state.Release{}, err
	}
	return *rel, nil
}

// validateRelease checks the request's names and versions, then the
// release against the stored bytes.
func (a *API) validateRelease(ctx context.Context, app *state.AppState, req *CreateReleaseRequest) (*state.Release, error) {
	if !state.ValidVersion(req.Version) {
		return nil, bad("version %q is not semver (like 1.2.3)", req.Version)
	}
	if req.Channel != "" {
		if err := checkChannelName(req.Channel); err != nil {
			return nil, err
		}
	}
	if req.MinNative != "" && !state.ValidVersion(req.MinNative) {
		return nil, bad("min native version %q is not semver (like 1.2.3)", req.MinNative)
	}
	if _, ok := app.Releases[req.Version]; ok {
		return nil, conflict("release %s of %s already exists; publish a new version", req.Version, app.App.ID)
	}
	spec := content.ReleaseSpec{App: app.App.ID, PublicKey: app.App.PublicKey, KeyID: app.App.KeyID,
		ZipCID: req.ZipCID, Checksum: req.Checksum, SessionKey: req.SessionKey, ReleaseKeyID: req.KeyID,
		Limits: a.cfg.ZipLimits, MaxFileBytes: a.cfg.MaxUploadBytes}
	for _, f := range req.Manifest {
		spec.Files = append(spec.Files, content.ReleaseFile{Name: f.FileName, Hash: f.FileHash, CID: f.CID})
	}
	checked, err := content.CheckRelease(ctx, a.store, spec)
	if err != nil {
		return nil, err
	}
	rel := &state.Release{
		App: app.App.ID, Version: req.Version, ZipCID: req.ZipCID, ZipSize: checked.ZipSize,
		Checksum: strings.ToLower(req.Checksum), SessionKey: req.SessionKey, KeyID: checked.KeyID,
		MinNative: req.MinNative, CreatedAt: a.now().UnixMilli(),
	}
	for _, f := range checked.Files {
		rel.Manifest = append(rel.Manifest, state.ManifestFile{FileName: f.Name, FileHash: f.Hash, CID: f.CID, Size: f.Size})
	}
	return rel, nil
}

// Releases lists an app's releases. Without withManifest each release
// comes without its manifest: a release of 50,000 files is tens of MB
// of JSON, and callers that look for a version or a session key do not
// need it.
func (a *API) Releases(ctx context.Context, app string, withManifest bool) (_ []ReleaseInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return nil, err
	}
	out := []ReleaseInfo{}
	for _, v := range as.ReleaseVersions() {
		rel := as.Releases[v]
		ri := ReleaseInfo{Release: rel, Files: len(rel.Manifest), Channels: []string{}}
		if !withManifest && rel.Manifest != nil {
			cp := *rel
			cp.Manifest = nil
			ri.Release = &cp
		}
		for _, n := range as.ChannelNames() {
			if as.Channels[n].Version == v {
				ri.Channels = append(ri.Channels, n)
			}
		}
		out = append(out, ri)
	}
	return out, nil
}

// DeleteRelease deletes a release that no channel points at.
func (a *API) DeleteRelease(ctx context.Context, app, version string) (err error) {
	defer classifyErr(&err)
	if _, err := a.app(app); err != nil {
		return err
	}
	return a.apply(ctx, consensus.ReleaseDelete{App: app, Version: version})
}

func (a *API) httpCreateRelease(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	var req CreateReleaseRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.CreateRelease(r.Context(), r.PathValue("app"), req)
	return http.StatusCreated, &out, err
}

func (a *API) httpListReleases(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	withManifest, err := boolQuery(r, "manifest", true)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.Releases(r.Context(), r.PathValue("app"), withManifest)
	return http.StatusOK, out, err
}

func (a *API) httpDeleteRelease(r *http.Request) (int, any, error) {
	version := r.PathValue("version")
	err := a.DeleteRelease(r.Context(), r.PathValue("app"), version)
	return http.StatusOK, map[string]string{"status": "deleted", "version": version}, err
}
