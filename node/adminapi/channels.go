package adminapi

import (
	"context"
	"net/http"
	"regexp"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// ChannelSettings is the body of PUT .../channels/{channel}: every field
// optional; only the given ones change. It is state.ChannelPatch, the
// one definition of channel settings.
type ChannelSettings = state.ChannelPatch

var channelRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkChannelName(name string) error {
	if !channelRe.MatchString(name) {
		return bad("channel name %q: use letters, digits, '.', '_' and '-' (at most 64)", name)
	}
	return nil
}

// Channels lists an app's channels.
func (a *API) Channels(ctx context.Context, app string) (_ []*state.Channel, err error) {
	defer classifyErr(&err)
	as, err := a.app(app)
	if err != nil {
		return nil, err
	}
	out := []*state.Channel{}
	for _, n := range as.ChannelNames() {
		out = append(out, as.Channels[n])
	}
	return out, nil
}

// SetChannel creates a channel or changes the settings given in s.
func (a *API) SetChannel(ctx context.Context, app, name string, s ChannelSettings) (_ *state.Channel, err error) {
	defer classifyErr(&err)
	if _, err := a.app(app); err != nil {
		return nil, err
	}
	if err := checkChannelName(name); err != nil {
		return nil, err
	}
	cmd := consensus.ChannelSet{App: app, Name: name, CreatedAt: a.now().UnixMilli(), ChannelPatch: s}
	if err := a.apply(ctx, cmd); err != nil {
		return nil, err
	}
	return a.cons.State().App(app).Channels[name], nil
}

// DeleteChannel deletes a channel.
func (a *API) DeleteChannel(ctx context.Context, app, name string) (err error) {
	defer classifyErr(&err)
	if _, err := a.app(app); err != nil {
		return err
	}
	return a.apply(ctx, consensus.ChannelDelete{App: app, Name: name})
}

// Rollback points a channel back at its previous release.
func (a *API) Rollback(ctx context.Context, app, name string) (_ *state.Channel, err error) {
	defer classifyErr(&err)
	if _, err := a.app(app); err != nil {
		return nil, err
	}
	if err := a.apply(ctx, consensus.ChannelRollback{App: app, Name: name}); err != nil {
		return nil, err
	}
	return a.cons.State().App(app).Channels[name], nil
}

func (a *API) httpListChannels(r *http.Request) (int, any, error) {
	out, err := a.Channels(r.Context(), r.PathValue("app"))
	return http.StatusOK, out, err
}

func (a *API) httpSetChannel(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("channel")
	if err := checkChannelName(name); err != nil {
		return 0, nil, err
	}
	var s ChannelSettings
	if err := a.decode(r, &s); err != nil {
		return 0, nil, err
	}
	out, err := a.SetChannel(r.Context(), r.PathValue("app"), name, s)
	return http.StatusOK, out, err
}

func (a *API) httpDeleteChannel(r *http.Request) (int, any, error) {
	name := r.PathValue("channel")
	err := a.DeleteChannel(r.Context(), r.PathValue("app"), name)
	return http.StatusOK, map[string]string{"status": "deleted", "channel": name}, err
}

func (a *API) httpRollback(r *http.Request) (int, any, error) {
	out, err := a.Rollback(r.Context(), r.PathValue("app"), r.PathValue("channel"))
	return http.StatusOK, out, err
}
