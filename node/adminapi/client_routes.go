package adminapi

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"mirrord/consensus/state"
	"mirrord/content"
)

// Status is GET /admin/v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return get[Status](ctx, c, "/admin/v1/status")
}

// WhoAmI is GET /admin/v1/auth: what the client's token allows.
func (c *Client) WhoAmI(ctx context.Context) (AuthInfo, error) {
	return get[AuthInfo](ctx, c, "/admin/v1/auth")
}

// Apps is GET /admin/v1/apps.
func (c *Client) Apps(ctx context.Context) ([]AppInfo, error) {
	return get[[]AppInfo](ctx, c, "/admin/v1/apps")
}

// App is GET /admin/v1/apps/{app}.
func (c *Client) App(ctx context.Context, id string) (AppInfo, error) {
	return get[AppInfo](ctx, c, appPath(id))
}

// CreateApp is POST /admin/v1/apps.
func (c *Client) CreateApp(ctx context.Context, req CreateAppRequest) (AppInfo, error) {
	return request[AppInfo](ctx, c, http.MethodPost, "/admin/v1/apps", req)
}

// DeleteApp is DELETE /admin/v1/apps/{app}[?force=true].
func (c *Client) DeleteApp(ctx context.Context, id string, force bool) (DeletedApp, error) {
	p := appPath(id)
	if force {
		p += "?force=true"
	}
	return request[DeletedApp](ctx, c, http.MethodDelete, p, nil)
}

// Upload is POST /admin/v1/objects: it stores size bytes read from r.
func (c *Client) Upload(ctx context.Context, r io.Reader, size int64) (ObjectInfo, error) {
	var o ObjectInfo
	err := c.send(ctx, http.MethodPost, "/admin/v1/objects", "application/octet-stream", r, size, &o)
	return o, err
}

// Releases is GET /admin/v1/apps/{app}/releases; without withManifest
// the releases come without their manifests.
func (c *Client) Releases(ctx context.Context, app string, withManifest bool) ([]ReleaseInfo, error) {
	q := "?manifest=false"
	if withManifest {
		q = ""
	}
	return get[[]ReleaseInfo](ctx, c, appPath(app, "releases")+q)
}

// CreateRelease is POST /admin/v1/apps/{app}/releases.
func (c *Client) CreateRelease(ctx context.Context, app string, req CreateReleaseRequest) (state.Release, error) {
	return request[state.Release](ctx, c, http.MethodPost, appPath(app, "releases"), req)
}

// DeleteRelease is DELETE /admin/v1/apps/{app}/releases/{version}.
func (c *Client) DeleteRelease(ctx context.Context, app, version string) error {
	return c.do(ctx, http.MethodDelete, appPath(app, "releases", version), nil, nil)
}

// Channels is GET /admin/v1/apps/{app}/channels.
func (c *Client) Channels(ctx context.Context, app string) ([]*state.Channel, error) {
	return get[[]*state.Channel](ctx, c, appPath(app, "channels"))
}

// SetChannel is PUT /admin/v1/apps/{app}/channels/{channel}.
func (c *Client) SetChannel(ctx context.Context, app, name string, s ChannelSettings) (*state.Channel, error) {
	return request[*state.Channel](ctx, c, http.MethodPut, appPath(app, "channels", name), s)
}

// DeleteChannel is DELETE /admin/v1/apps/{app}/channels/{channel}.
func (c *Client) DeleteChannel(ctx context.Context, app, name string) error {
	return c.do(ctx, http.MethodDelete, appPath(app, "channels", name), nil, nil)
}

// Rollback is POST .../channels/{channel}/rollback.
func (c *Client) Rollback(ctx context.Context, app, name string) (*state.Channel, error) {
	return request[*state.Channel](ctx, c, http.MethodPost, appPath(app, "channels", name, "rollback"), nil)
}

// Rollout is GET .../channels/{channel}/rollout.
func (c *Client) Rollout(ctx context.Context, app, channel string) (RolloutInfo, error) {
	return get[RolloutInfo](ctx, c, appPath(app, "channels", channel, "rollout"))
}

// StartRollout is POST .../channels/{channel}/rollout.
func (c *Client) StartRollout(ctx context.Context, app, channel string, req StartRolloutRequest) (RolloutInfo, error) {
	return request[RolloutInfo](ctx, c, http.MethodPost, appPath(app, "channels", channel, "rollout"), req)
}

// UpdateRollout is PATCH .../channels/{channel}/rollout.
func (c *Client) UpdateRollout(ctx context.Context, app, channel string, req UpdateRolloutRequest) (RolloutInfo, error) {
	return request[RolloutInfo](ctx, c, http.MethodPatch, appPath(app, "channels", channel, "rollout"), req)
}

// ControlRollout is POST .../channels/{channel}/rollout/{action}
// (pause, resume, promote, abort).
func (c *Client) ControlRollout(ctx context.Context, app, channel, action string) (RolloutInfo, error) {
	return request[RolloutInfo](ctx, c, http.MethodPost, appPath(app, "channels", channel, "rollout", action), nil)
}

// Stats is GET /admin/v1/apps/{app}/stats[?channel=&version=].
func (c *Client) Stats(ctx context.Context, app, channel, version string) (StatsAnswer, error) {
	return c.StatsFor(ctx, app, StatsQuery{Channel: channel, Version: version})
}

// StatsFor is GET /admin/v1/apps/{app}/stats[?channel=&version=&since=]:
// with q.Since the answer holds the hourly history of that last period.
func (c *Client) StatsFor(ctx context.Context, app string, sq StatsQuery) (StatsAnswer, error) {
	q := url.Values{}
	if sq.Channel != "" {
		q.Set("channel", sq.Channel)
	}
	if sq.Version != "" {
		q.Set("version", sq.Version)
	}
	if sq.Since != 0 {
		q.Set("since", sq.Since.String())
	}
	p := appPath(app, "stats")
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return get[StatsAnswer](ctx, c, p)
}

// Devices is GET /admin/v1/apps/{app}/devices.
func (c *Client) Devices(ctx context.Context, app string) ([]DeviceInfo, error) {
	return get[[]DeviceInfo](ctx, c, appPath(app, "devices"))
}

// SetDevice is PUT /admin/v1/apps/{app}/devices/{device}.
func (c *Client) SetDevice(ctx context.Context, app, device string, req SetDeviceRequest) (DeviceInfo, error) {
	return request[DeviceInfo](ctx, c, http.MethodPut, appPath(app, "devices", device), req)
}

// UnsetDevice is DELETE /admin/v1/apps/{app}/devices/{device}.
func (c *Client) UnsetDevice(ctx context.Context, app, device string) error {
	return c.do(ctx, http.MethodDelete, appPath(app, "devices", device), nil, nil)
}

// BulkDevices is POST /admin/v1/apps/{app}/devices[?dry_run=true].
func (c *Client) BulkDevices(ctx context.Context, app string, req BulkDevicesRequest, dryRun bool) (BulkDevicesAnswer, error) {
	p := appPath(app, "devices")
	if dryRun {
		p += "?dry_run=true"
	}
	return request[BulkDevicesAnswer](ctx, c, http.MethodPost, p, req)
}

// NewJoinToken is POST /admin/v1/cluster/tokens.
func (c *Client) NewJoinToken(ctx context.Context, req JoinTokenRequest) (JoinToken, error) {
	return request[JoinToken](ctx, c, http.MethodPost, "/admin/v1/cluster/tokens", req)
}

// RemoveNode is DELETE /admin/v1/cluster/nodes/{id}.
func (c *Client) RemoveNode(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/cluster/nodes/"+esc(id), nil, nil)
}

// GC is POST /admin/v1/gc.
// A request without Grace is sent without a body.
func (c *Client) GC(ctx context.Context, req GCRequest) (content.GCResult, error) {
	var body any
	if req != (GCRequest{}) {
		body = req
	}
	return request[content.GCResult](ctx, c, http.MethodPost, "/admin/v1/gc", body)
}

// CreateReadToken is POST /admin/v1/tokens/read.
func (c *Client) CreateReadToken(ctx context.Context) (ReadToken, error) {
	return request[ReadToken](ctx, c, http.MethodPost, "/admin/v1/tokens/read", nil)
}

// ReadTokens is GET /admin/v1/tokens/read.
func (c *Client) ReadTokens(ctx context.Context) ([]ReadToken, error) {
	return get[[]ReadToken](ctx, c, "/admin/v1/tokens/read")
}

// DeleteReadToken is DELETE /admin/v1/tokens/read/{id}.
func (c *Client) DeleteReadToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/tokens/read/"+esc(id), nil, nil)
}

// CreateToken is POST /admin/v1/tokens.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (TokenInfo, error) {
	return request[TokenInfo](ctx, c, http.MethodPost, "/admin/v1/tokens", req)
}

// Tokens is GET /admin/v1/tokens.
func (c *Client) Tokens(ctx context.Context) ([]TokenInfo, error) {
	return get[[]TokenInfo](ctx, c, "/admin/v1/tokens")
}

// RevokeToken is DELETE /admin/v1/tokens/{name}.
func (c *Client) RevokeToken(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/admin/v1/tokens/"+esc(name), nil, nil)
}

// RotateToken is POST /admin/v1/tokens/{name}/rotate.
func (c *Client) RotateToken(ctx context.Context, name string) (TokenInfo, error) {
	return request[TokenInfo](ctx, c, http.MethodPost, "/admin/v1/tokens/"+esc(name)+"/rotate", nil)
}

// Audit is GET /admin/v1/audit?since=MS.
func (c *Client) Audit(ctx context.Context, since int64) ([]state.AuditEntry, error) {
	return get[[]state.AuditEntry](ctx, c, "/admin/v1/audit?since="+strconv.FormatInt(since, 10))
}
