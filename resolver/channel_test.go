package resolver

import (
	"encoding/json"
	"fmt"
	"testing"

	"mirrord/consensus/state"
)

// renderAnswer writes a ChannelAnswer on one line: the status, the JSON
// body and the override writes it asks for.
func renderAnswer(a ChannelAnswer) string {
	b, err := json.Marshal(a.Payload())
	if err != nil {
		return "marshal error: " + err.Error()
	}
	s := fmt.Sprintf("%d %s", a.Status, b)
	if a.SetOverride != nil {
		s += " set-override=" + *a.SetOverride
	}
	if a.DeleteOverride {
		s += " delete-override"
	}
	return s
}

// shortAnswer is renderAnswer without error messages, for tables.
func shortAnswer(a ChannelAnswer) string {
	if code, ok := a.Body["error"]; ok {
		if _, ok := a.Body["message"].(string); !ok || len(a.Body) != 2 {
			return fmt.Sprintf("malformed error body %v", a.Body)
		}
		return fmt.Sprintf("%d error=%v", a.Status, code)
	}
	return renderAnswer(a)
}

const (
	newPlugin = "8.51.23"
	oldPlugin = "7.33.0"
)

type channelCase struct {
	name   string
	nilApp bool
	app    func(*state.AppState)
	req    func(*Request)
	want   string
}

func runChannelCases(t *testing.T, f func(*state.AppState, Request) ChannelAnswer, tests []channelCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var app *state.AppState
			if !tt.nilApp {
				app = newTestApp()
				if tt.app != nil {
					tt.app(app)
				}
			}
			req := baseRequest()
			if tt.req != nil {
				tt.req(&req)
			}
			if got := shortAnswer(f(app, req)); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func plugin(v string) func(*Request) { return func(r *Request) { r.PluginVersion = v } }

func setTo(channel, pluginVersion string) func(*Request) {
	return func(r *Request) { r.Channel, r.PluginVersion = channel, pluginVersion }
}

func TestChannelSet(t *testing.T) {
	selfSettableProd := prod(func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	runChannelCases(t, ChannelSet, []channelCase{
		{name: "unknown app", nilApp: true, req: setTo("beta", newPlugin), want: "200 error=app_not_found"},
		{name: "missing channel", req: setTo("", newPlugin), want: "200 error=missing_channel"},
		{
			name: "missing channel comes before cannot_override",
			app:  override("private"), req: setTo("", oldPlugin), want: "200 error=missing_channel",
		},
		{name: "unknown channel", req: setTo("nope", newPlugin), want: "200 error=channel_not_found"},
		{name: "private channel", req: setTo("private", newPlugin), want: "200 error=channel_self_set_not_allowed"},
		{
			name: "public channel without self-set, new plugin",
			req:  setTo("production", newPlugin), want: "200 error=public_channel_self_set_not_allowed",
		},
		{
			name: "public channel without self-set, old plugin",
			req:  setTo("production", oldPlugin), want: "200 error=public_channel_self_set_not_allowed",
		},
		{name: "new plugin", req: setTo("beta", newPlugin), want: `200 {"allowSet":true,"status":"ok"}`},
		{name: "plugin 5.34.0 is new", req: setTo("beta", "5.34.0"), want: `200 {"allowSet":true,"status":"ok"}`},
		{
			name: "new plugin ignores a server-side override",
			app:  override("private"), req: setTo("beta", newPlugin), want: `200 {"allowSet":true,"status":"ok"}`,
		},
		{name: "old plugin", req: setTo("beta", oldPlugin), want: `200 {"status":"ok"} set-override=beta`},
		{name: "plugin without version is old", req: setTo("beta", ""), want: `200 {"status":"ok"} set-override=beta`},
		{
			name: "old plugin already on the channel",
			app:  override("beta"), req: setTo("beta", oldPlugin), want: `200 {"status":"ok"}`,
		},
		{
			name: "old plugin pinned to a channel it may not leave",
			app:  override("private"), req: setTo("beta", oldPlugin), want: "200 error=cannot_override",
		},
		{
			name: "old plugin moving between self-settable channels",
			app: all(override("beta"), func(a *state.AppState) {
				addChannel(a, "beta2", "1.0.2", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
			}),
			req:  setTo("beta2", oldPlugin),
			want: `200 {"status":"ok"} set-override=beta2`,
		},
		{
			name: "old plugin with an override on a deleted channel",
			app:  override("gone"), req: setTo("beta", oldPlugin), want: `200 {"status":"ok"} set-override=beta`,
		},
		{
			name: "old plugin back to the public channel removes the override",
			app:  all(selfSettableProd, override("beta")), req: setTo("production", oldPlugin),
			want: `200 {"status":"ok"} delete-override`,
		},
		{
			name: "old plugin to the public channel without override",
			app:  selfSettableProd, req: setTo("production", oldPlugin), want: `200 {"status":"ok"}`,
		},
		{
			name: "public channel of another platform is a plain override",
			app:  all(selfSettableProd, prod(func(c *state.Channel) { c.Android = false })),
			req:  setTo("production", oldPlugin),
			want: `200 {"status":"ok"} set-override=production`,
		},
		{
			name: "new plugin to the self-settable public channel",
			app:  selfSettableProd, req: setTo("production", newPlugin), want: `200 {"allowSet":true,"status":"ok"}`,
		},
	})
}

func TestChannelGet(t *testing.T) {
	stable := func(a *state.AppState) {
		delete(a.Channels, "production")
		addChannel(a, "stable", "1.0.1", func(c *state.Channel) { c.Public = true })
	}
	noPublic := prod(func(c *state.Channel) { c.Public = false })
	runChannelCases(t, ChannelGet, []channelCase{
		{name: "unknown app", nilApp: true, want: "200 error=app_not_found"},
		{
			name: "new plugin sending its channel",
			req:  setTo("beta", newPlugin), want: `200 {"allowSet":true,"channel":"beta","status":"override"}`,
		},
		{
			name: "new plugin with defaultChannel",
			req:  func(r *Request) { r.DefaultChannel = "beta" }, want: `200 {"channel":"beta","status":"default"}`,
		},
		{
			name: "new plugin with an unknown defaultChannel",
			req:  func(r *Request) { r.DefaultChannel = "nope" }, want: `200 {"channel":"nope","status":"default"}`,
		},
		{name: "new plugin, public channel", want: `200 {"channel":"production","status":"default"}`},
		{name: "new plugin, public channel not named production", app: stable, want: `200 {"channel":"stable","status":"default"}`},
		{name: "new plugin, no public channel", app: noPublic, want: `200 {"channel":"production","status":"default"}`},
		{
			name: "new plugin ignores a server-side override",
			app:  override("beta"), want: `200 {"channel":"production","status":"default"}`,
		},
		{
			name: "old plugin with an override",
			app:  override("beta"), req: plugin(oldPlugin),
			want: `200 {"allowSet":true,"channel":"beta","status":"override"}`,
		},
		{
			name: "old plugin pinned by the operator",
			app:  override("private"), req: plugin(oldPlugin),
			want: `200 {"allowSet":false,"channel":"private","status":"override"}`,
		},
		{
			name: "old plugin with an override on a deleted channel",
			app:  override("gone"), req: plugin(oldPlugin), want: `200 {"channel":"production","status":"default"}`,
		},
		{
			name: "old plugin with defaultChannel",
			req:  func(r *Request) { r.PluginVersion, r.DefaultChannel = oldPlugin, "private" },
			want: `200 {"channel":"private","status":"default"}`,
		},
		{
			name: "old plugin with an unknown defaultChannel",
			req:  func(r *Request) { r.PluginVersion, r.DefaultChannel = oldPlugin, "nope" },
			want: "200 error=channel_not_found",
		},
		{
			name: "old plugin with defaultChannel and a bad platform",
			req:  func(r *Request) { r.PluginVersion, r.DefaultChannel, r.Platform = oldPlugin, "beta", "web" },
			want: "200 error=invalid_platform",
		},
		{name: "old plugin, public channel", req: plugin(oldPlugin), want: `200 {"channel":"production","status":"default"}`},
		{name: "old plugin, no public channel", app: noPublic, req: plugin(oldPlugin), want: "200 error=channel_not_found"},
		{
			name: "old plugin, bad platform",
			req:  func(r *Request) { r.PluginVersion, r.Platform = oldPlugin, "web" }, want: "200 error=invalid_platform",
		},
		{
			name: "old plugin, public channel of another platform",
			app:  prod(func(c *state.Channel) { c.Android = false }), req: plugin(oldPlugin),
			want: "200 error=channel_not_found",
		},
	})
}

func TestChannelList(t *testing.T) {
	prodCh := `{"allow_self_set":false,"id":1,"name":"production","public":true}`
	betaCh := `{"allow_self_set":true,"id":2,"name":"beta","public":false}`
	runChannelCases(t, ChannelList, []channelCase{
		{name: "unknown app", nilApp: true, want: "200 error=app_not_found"},
		{name: "public and self-settable channels", want: "200 [" + prodCh + "," + betaCh + "]"},
		{
			name: "emulator",
			app:  func(a *state.AppState) { a.Channels["beta"].AllowEmulator = false },
			req:  func(r *Request) { r.IsEmulator = true },
			want: "200 [" + prodCh + "]",
		},
		{
			name: "physical device",
			app: func(a *state.AppState) {
				a.Channels["beta"].AllowEmulator = false
				a.Channels["production"].AllowDevice = false
			},
			want: "200 [" + betaCh + "]",
		},
		{
			name: "dev build",
			app:  prod(func(c *state.Channel) { c.AllowDev = false }),
			req:  func(r *Request) { r.IsProd = false },
			want: "200 [" + betaCh + "]",
		},
		{
			name: "prod build",
			app:  prod(func(c *state.Channel) { c.AllowProd = false }),
			want: "200 [" + betaCh + "]",
		},
		{
			name: "platform",
			app:  func(a *state.AppState) { a.Channels["beta"].IOS = false },
			req:  func(r *Request) { r.Platform = "ios" },
			want: "200 [" + prodCh + "]",
		},
		{name: "unknown platform", req: func(r *Request) { r.Platform = "web" }, want: "200 []"},
		{name: "no channels", app: func(a *state.AppState) { a.Channels = nil }, want: "200 []"},
		{
			name: "ordered by id",
			app: func(a *state.AppState) {
				addChannel(a, "aaa", "", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
			},
			want: "200 [" + prodCh + "," + betaCh + `,{"allow_self_set":true,"id":4,"name":"aaa","public":false}]`,
		},
	})
}

func TestChannelDelete(t *testing.T) {
	runChannelCases(t, ChannelDelete, []channelCase{
		{name: "unknown app", nilApp: true, want: "200 error=app_not_found"},
		{name: "new plugin", app: override("beta"), want: `200 {"status":"ok"}`},
		{name: "old plugin without override", req: plugin(oldPlugin), want: "200 error=cannot_override"},
		{name: "old plugin", app: override("beta"), req: plugin(oldPlugin), want: `200 {"status":"ok"} delete-override`},
		{
			name: "old plugin pinned by the operator",
			app:  override("private"), req: plugin(oldPlugin), want: "200 error=cannot_override",
		},
		{
			name: "old plugin with an override on a deleted channel",
			app:  override("gone"), req: plugin(oldPlugin), want: `200 {"status":"ok"} delete-override`,
		},
	})
}

func TestChannelAnswerPayload(t *testing.T) {
	if b, _ := json.Marshal(ChannelAnswer{}.Payload()); string(b) != "[]" {
		t.Errorf("empty answer encodes as %s", b)
	}
	a := ChannelAnswer{Body: map[string]any{"status": "ok"}, List: []map[string]any{{"id": 1}}}
	if b, _ := json.Marshal(a.Payload()); string(b) != `{"status":"ok"}` {
		t.Errorf("Body must win: %s", b)
	}
}
