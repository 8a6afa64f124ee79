package adminapi

import (
	"context"
	"net/http"
	"regexp"
	"strconv"

	"mirrord/consensus"
	"mirrord/consensus/state"
	"mirrord/content"
)

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

// CreateAppRequest is the body of POST /admin/v1/apps.
type CreateAppRequest struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key,omitempty"`
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

var appIDRe = regexp.MustCompile(`(?i)^[a-z0-9]+(\.[\w-]+)+$`)

// Apps lists the apps.
func (a *API) Apps(ctx context.Context) ([]AppInfo, error) {
	st := a.cons.State()
	out := []AppInfo{}
	for _, id := range st.AppIDs() {
		out = append(out, appInfo(st.Apps[id]))
	}
	return out, nil
}

// App returns one app.
func (a *API) App(ctx context.Context, id string) (_ AppInfo, err error) {
	defer classifyErr(&err)
	app, err := a.app(id)
	if err != nil {
		return AppInfo{}, err
	}
	return appInfo(app), nil
}

// CreateApp registers an app, with its Capgo public key for encrypted
// bundles.
func (a *API) CreateApp(ctx context.Context, req CreateAppRequest) (_ AppInfo, err error) {
	defer classifyErr(&err)
	if !appIDRe.MatchString(req.ID) || len(req.ID) > 255 {
		return AppInfo{}, bad("app id %q is not a reverse-domain id like com.example.app", req.ID)
	}
	cmd := consensus.AppCreate{ID: req.ID, CreatedAt: a.now().UnixMilli()}
	if req.PublicKey != "" {
		if _, err := content.ParsePublicKey([]byte(req.PublicKey)); err != nil {
			return AppInfo{}, bad("public key: %v (give the .pub PEM made by `mirrord keys create` or `npx @capgo/cli key create`)", err)
		}
		cmd.PublicKey = req.PublicKey
		cmd.KeyID = content.KeyID(req.PublicKey)
	}
	if err := a.apply(ctx, cmd); err != nil {
		return AppInfo{}, err
	}
	return appInfo(a.cons.State().App(req.ID)), nil
}

// DeleteApp removes an app. force also removes its releases and
// channels; a live rollout always refuses it. The checks are made here
// first for a message that says what to run, and again by the state
// machine, which decides.
func (a *API) DeleteApp(ctx context.Context, id string, force bool) (_ DeletedApp, err error) {
	defer classifyErr(&err)
	app, err := a.app(id)
	if err != nil {
		return DeletedApp{}, err
	}
	for _, name := range app.ChannelNames() {
		if ro := app.Channels[name].Rollout; ro.Live() {
			return DeletedApp{}, conflict(
				"app %s has a %s rollout of %s on channel %s: devices are being moved by it; "+
					"finish it first with `mirrord rollout abort %s %s` (or `rollout promote`), then delete the app",
				id, ro.State, ro.Version, name, id, name)
		}
	}
	if !force && (len(app.Releases) > 0 || len(app.Channels) > 0) {
		return DeletedApp{}, conflict(
			"app %s still has %d release(s) and %d channel(s), which devices may be using; "+
				"`mirrord app delete %s --force` (DELETE ...?force=true) deletes them with the app, "+
				"together with its device overrides and statistics", id, len(app.Releases), len(app.Channels), id)
	}
	out := DeletedApp{Status: "deleted", ID: id, Releases: len(app.Releases), Channels: len(app.Channels), Devices: len(app.Devices)}
	if err := a.apply(ctx, consensus.AppDelete{ID: id, Force: force}); err != nil {
		return DeletedApp{}, err
	}
	a.log.Info("app deleted", "app", id, "releases", out.Releases, "channels", out.Channels, "devices", out.Devices, "force", force)
	return out, nil
}

func (a *API) httpListApps(r *http.Request) (int, any, error) {
	out, err := a.Apps(r.Context())
	return http.StatusOK, out, err
}

func (a *API) httpGetApp(r *http.Request) (int, any, error) {
	out, err := a.App(r.Context(), r.PathValue("app"))
	return http.StatusOK, out, err
}

func (a *API) httpCreateApp(r *http.Request) (int, any, error) {
	var req CreateAppRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.CreateApp(r.Context(), req)
	return http.StatusCreated, out, err
}

func (a *API) httpDeleteApp(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	force, err := boolQuery(r, "force", false)
	if err != nil {
		return 0, nil, err
	}
	out, err := a.DeleteApp(r.Context(), r.PathValue("app"), force)
	return http.StatusOK, out, err
}

// boolQuery reads the boolean query parameter name (def when absent).
func boolQuery(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, bad("%s=%q: want true or false", name, v)
	}
	return b, nil
}
