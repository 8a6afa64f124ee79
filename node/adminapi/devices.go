package adminapi

import (
	"context"
	"net/http"
	"sort"
	"strings"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// DeviceInfo is one device override.
type DeviceInfo struct {
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	// Version is the pinned release, "" if none.
	Version string `json:"version,omitempty"`
}

// SetDeviceRequest is the body of PUT .../devices/{device}: a channel, a
// pinned release, or both.
type SetDeviceRequest struct {
	Channel string `json:"channel,omitempty"`
	Version string `json:"version,omitempty"`
}

// Devices lists an app's device overrides, by device id.
func (a *API) Devices(ctx context.Context, app string) (_ []DeviceInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return nil, err
	}
	out := make([]DeviceInfo, 0, len(as.Devices))
	for id, o := range as.Devices {
		out = append(out, DeviceInfo{DeviceID: id, Channel: o.Channel, Version: o.Version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out, nil
}

// SetDevice pins a device to a channel, a release, or both.
func (a *API) SetDevice(ctx context.Context, app, device string, req SetDeviceRequest) (_ DeviceInfo, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return DeviceInfo{}, err
	}
	dev := strings.ToLower(device)
	if dev == "" || len(dev) > 64 {
		return DeviceInfo{}, bad("device id %q: want the device_id the plugin sends (a UUID)", dev)
	}
	if req.Channel == "" && req.Version == "" {
		return DeviceInfo{}, bad("give a channel, a version to pin, or both")
	}
	if req.Channel != "" && as.Channels[req.Channel] == nil {
		return DeviceInfo{}, notFound("channel %q of app %q not found; create it first with `mirrord channel set %s %s --version V`",
			req.Channel, as.App.ID, as.App.ID, req.Channel)
	}
	if req.Version != "" && req.Version != state.Builtin && as.Releases[req.Version] == nil {
		return DeviceInfo{}, notFound("release %q of app %q not found (see `mirrord release list %s`)", req.Version, as.App.ID, as.App.ID)
	}
	var cmd consensus.Command = consensus.DeviceSet{App: app, DeviceID: dev, Channel: req.Channel}
	if req.Version != "" {
		cmd = consensus.DevicesSet{App: app, Devices: []state.DeviceEntry{
			{DeviceID: dev, Channel: req.Channel, Version: req.Version}}}
	}
	if err := a.apply(ctx, cmd); err != nil {
		return DeviceInfo{}, err
	}
	return DeviceInfo{DeviceID: dev, Channel: req.Channel, Version: req.Version}, nil
}

// UnsetDevice removes a device's override.
func (a *API) UnsetDevice(ctx context.Context, app, device string) (err error) {
	defer classifyErr(&err)
	if _, err := a.app(app); err != nil {
		return err
	}
	return a.apply(ctx, consensus.DeviceUnset{App: app, DeviceID: strings.ToLower(device)})
}

func (a *API) httpListDevices(r *http.Request) (int, any, error) {
	out, err := a.Devices(r.Context(), r.PathValue("app"))
	return http.StatusOK, out, err
}

func (a *API) httpSetDevice(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	var req SetDeviceRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.SetDevice(r.Context(), r.PathValue("app"), r.PathValue("device"), req)
	return http.StatusOK, out, err
}

func (a *API) httpUnsetDevice(r *http.Request) (int, any, error) {
	dev := strings.ToLower(r.PathValue("device"))
	err := a.UnsetDevice(r.Context(), r.PathValue("app"), dev)
	return http.StatusOK, map[string]string{"status": "deleted", "device_id": dev}, err
}
