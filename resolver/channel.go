package resolver

import (
	"fmt"
	"sort"

	"mirrord/consensus/state"
)

// defaultChannelName is what Capgo's getChannel answers to a new plugin
// that has no channel of its own and no defaultChannel.
const defaultChannelName = "production"

// statusOK is HTTP 200; the package does not import net/http.
const statusOK = 200

// ChannelAnswer is the answer to one channel_self request
// (capgo-protocol section 7).
//
// Status is the HTTP status. The body is Body when it is non-nil, else
// List written as a top-level JSON array (Payload does this choice).
// Capgo answers every business error with 200 and {"error","message"},
// and so does mirrord.
//
// SetOverride and DeleteOverride ask the caller to write (or remove) a
// server-side device override for req.DeviceID; only old plugins, which
// do not keep the channel locally, cause them. The answer is correct to
// send once that write is committed.
type ChannelAnswer struct {
	Status         int
	Body           map[string]any
	List           []map[string]any
	SetOverride    *string
	DeleteOverride bool
}

// Payload returns the value to encode as the response body: Body, or
// else List (never nil, so an empty list encodes as []).
func (a ChannelAnswer) Payload() any {
	if a.Body != nil {
		return a.Body
	}
	if a.List == nil {
		return []map[string]any{}
	}
	return a.List
}

// ChannelSet answers POST channel_self (setChannel).
//
// Checks, in Capgo's order: a channel must be named (missing_channel);
// for old plugins, a device override on a channel that does not allow
// self-assignment, or one that pins a release (mirrord's operator pin),
// cannot be changed by the device (cannot_override); the
// channel must exist (channel_not_found) and allow self-assignment
// (public_channel_self_set_not_allowed for a public channel,
// channel_self_set_not_allowed otherwise).
//
// New plugins (PluginKeepsChannelLocally) then get
// {"status":"ok","allowSet":true} and store the channel themselves.
// Old plugins get {"status":"ok"} and a server-side override: removed
// when the channel is the platform's public channel (the device falls
// back to it anyway), left alone when it already names the channel,
// set otherwise.
//
// Capgo answers public_channel_self_set_not_allowed even to new
// plugins, which then keep using the public channel by default; mirrord
// does the same.
func ChannelSet(app *state.AppState, req Request) ChannelAnswer {
	req.Normalize()
	if app == nil {
		return appNotFound(req)
	}
	if req.Channel == "" {
		return channelError(CodeMissingChannel, "Cannot find channel in body")
	}
	isNew := PluginKeepsChannelLocally(req.PluginVersion)

	var (
		hasOverride bool
		overrideTo  string
	)
	if !isNew {
		var o state.DeviceOverride
		o, hasOverride = app.Devices[req.DeviceID]
		overrideTo = o.Channel
		if cur := app.Channels[o.Channel]; hasOverride && (o.Version != "" || cur != nil && !cur.AllowDeviceSelfSet) {
			return channelError(CodeCannotOverride,
				"The device's channel override does not allow the device to change it")
		}
	}

	ch := app.Channels[req.Channel]
	if ch == nil {
		return channelError(CodeChannelNotFound, "Cannot find channel")
	}
	if !ch.AllowDeviceSelfSet {
		if ch.Public {
			return channelError(CodePublicChannelSelfSetBlocked,
				"This channel is public and does not allow device self-assignment; "+
					"unset the channel and the device will use the public channel")
		}
		return channelError(CodeChannelSelfSetNotAllowed, "This channel does not allow devices to self associate")
	}

	if isNew {
		return ChannelAnswer{Status: statusOK, Body: map[string]any{"status": "ok", "allowSet": true}}
	}
	ok := ChannelAnswer{Status: statusOK, Body: map[string]any{"status": "ok"}}
	if main, _ := publicChannel(app, req.Platform); main != "" && main == req.Channel {
		// Only a stored override needs removing; Capgo deletes
		// unconditionally, which is a no-op without one.
		ok.DeleteOverride = hasOverride
		return ok
	}
	if hasOverride && overrideTo == req.Channel {
		return ok
	}
	set := req.Channel
	ok.SetOverride = &set
	return ok
}

// ChannelGet answers PUT channel_self (getChannel).
//
// New plugins: the channel they sent, if any, comes back with status
// "override"; otherwise their defaultChannel with status "default".
// Without a defaultChannel Capgo answers "production" whatever the
// app's channels are. The plugin stores the answer as its
// defaultChannel and sends it in later update checks, so an app whose
// public channel has another name would be cut off from updates.
// mirrord answers the name of the public channel the device would get
// instead, and "production" only when there is none.
//
// Old plugins: the device's server-side override (status "override",
// allowSet from the channel), else the channel named by defaultChannel
// or the platform's public channel (status "default"), else
// channel_not_found.
func ChannelGet(app *state.AppState, req Request) ChannelAnswer {
	req.Normalize()
	if app == nil {
		return appNotFound(req)
	}
	if PluginKeepsChannelLocally(req.PluginVersion) {
		if req.Channel != "" {
			return ChannelAnswer{Status: statusOK, Body: map[string]any{
				"channel": req.Channel, "status": "override", "allowSet": true,
			}}
		}
		name := req.DefaultChannel
		if name == "" {
			name, _ = publicChannel(app, req.Platform)
		}
		if name == "" {
			name = defaultChannelName
		}
		return channelDefault(name)
	}

	if o, ok := app.Devices[req.DeviceID]; ok {
		if c := app.Channels[o.Channel]; c != nil {
			return ChannelAnswer{Status: statusOK, Body: map[string]any{
				"channel": o.Channel, "status": "override", "allowSet": c.AllowDeviceSelfSet,
			}}
		}
	}
	if req.DefaultChannel != "" {
		if app.Channels[req.DefaultChannel] == nil {
			return channelError(CodeChannelNotFound, "Cannot find channel")
		}
		if !knownPlatform(req.Platform) {
			return invalidPlatform(req)
		}
		return channelDefault(req.DefaultChannel)
	}
	if !anyPublic(app) {
		return channelError(CodeChannelNotFound, "Cannot find channel")
	}
	if !knownPlatform(req.Platform) {
		return invalidPlatform(req)
	}
	name, _ := publicChannel(app, req.Platform)
	if name == "" {
		return channelError(CodeChannelNotFound, "Cannot find channel")
	}
	return channelDefault(name)
}

// ChannelList answers GET channel_self (listChannels) with the channels
// the device may choose: platform enabled, public or self-settable,
// allow_emulator or allow_device as the device is an emulator or not,
// and allow_prod or allow_dev as it is a production build or not. The
// list is ordered by channel id (creation order), then name.
func ChannelList(app *state.AppState, q Request) ChannelAnswer {
	if app == nil {
		return appNotFound(q)
	}
	names := make([]string, 0, len(app.Channels))
	for n, c := range app.Channels {
		if c == nil || !c.PlatformEnabled(q.Platform) || !(c.Public || c.AllowDeviceSelfSet) {
			continue
		}
		if q.IsEmulator && !c.AllowEmulator || !q.IsEmulator && !c.AllowDevice {
			continue
		}
		if q.IsProd && !c.AllowProd || !q.IsProd && !c.AllowDev {
			continue
		}
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := app.Channels[names[i]], app.Channels[names[j]]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		return names[i] < names[j]
	})
	list := make([]map[string]any, 0, len(names))
	for _, n := range names {
		c := app.Channels[n]
		list = append(list, map[string]any{
			"id": c.ID, "name": n, "public": c.Public, "allow_self_set": c.AllowDeviceSelfSet,
		})
	}
	return ChannelAnswer{Status: statusOK, List: list}
}

// ChannelDelete answers DELETE channel_self, which only plugins before
// the local channel storage send (unsetChannel). New plugins get
// {"status":"ok"} and nothing changes, as on Capgo.
//
// For old plugins: no override -> cannot_override; an override on a
// channel that does not allow self-assignment -> cannot_override (an
// operator pinned the device); otherwise the override is removed. An
// override naming a channel that no longer exists is removed too
// (Capgo cannot have one: its overrides reference channel rows).
func ChannelDelete(app *state.AppState, req Request) ChannelAnswer {
	req.Normalize()
	if app == nil {
		return appNotFound(req)
	}
	ok := ChannelAnswer{Status: statusOK, Body: map[string]any{"status": "ok"}}
	if PluginKeepsChannelLocally(req.PluginVersion) {
		return ok
	}
	o, has := app.Devices[req.DeviceID]
	if !has {
		return channelError(CodeCannotOverride, "The device has no channel override to remove")
	}
	if c := app.Channels[o.Channel]; o.Version != "" || c != nil && !c.AllowDeviceSelfSet {
		return channelError(CodeCannotOverride,
			"The device's channel override does not allow the device to change it")
	}
	ok.DeleteOverride = true
	return ok
}

// anyPublic reports whether the app has a public channel at all.
func anyPublic(app *state.AppState) bool {
	for _, c := range app.Channels {
		if c != nil && c.Public {
			return true
		}
	}
	return false
}

func channelDefault(name string) ChannelAnswer {
	return ChannelAnswer{Status: statusOK, Body: map[string]any{"channel": name, "status": "default"}}
}

func channelError(code, message string) ChannelAnswer {
	return ChannelAnswer{Status: statusOK, Body: map[string]any{"error": code, "message": message}}
}

func appNotFound(req Request) ChannelAnswer {
	return channelError(CodeAppNotFound, fmt.Sprintf(
		"App %q is not registered on this mirrord cluster; create it with `mirrord app create`", req.AppID))
}

func invalidPlatform(req Request) ChannelAnswer {
	return channelError(CodeInvalidPlatform, fmt.Sprintf("Invalid device platform %q", req.Platform))
}
