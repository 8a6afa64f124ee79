package devicesim

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mirrord/content"
)

// Builtin is the version name of the web assets shipped in the app.
const Builtin = "builtin"

// DefaultPluginVersion is the plugin version a Device reports when
// PluginVersion is empty.
const DefaultPluginVersion = "8.51.23"

const (
	defaultTimeout = 60 * time.Second
	// maxJSONBody bounds every JSON answer the device reads.
	maxJSONBody = 16 << 20
	// maxDownload bounds one downloaded zip or manifest file.
	maxDownload = 2 << 30
	stateFile   = "state.json"
	bundlesDir  = "bundles"
)

// Device is one simulated app install. Its fields are the plugin's
// configuration and native facts; its storage lives under Dir. A Device
// is not safe for concurrent use.
type Device struct {
	// UpdateURL, StatsURL and ChannelURL are the plugin's updateUrl,
	// statsUrl ("" disables stats) and channelUrl.
	UpdateURL, StatsURL, ChannelURL string
	// AppID, DeviceID and Platform ("android" or "ios"; "" means
	// android) identify the install.
	AppID, DeviceID, Platform string
	// VersionBuild, VersionCode and VersionOS are the native facts;
	// PluginVersion defaults to DefaultPluginVersion.
	VersionBuild, VersionCode, VersionOS, PluginVersion string
	IsProd, IsEmulator                                  bool
	// DefaultChannel is the configured defaultChannel; a channel set with
	// SetChannel replaces it (persisted in Dir). CustomID is custom_id.
	DefaultChannel, CustomID string
	// PublicKeyPEM is the plugin's publicKey; nil means none, and then no
	// key_id is sent and nothing is decrypted.
	PublicKeyPEM []byte
	// Dir holds the device storage: Dir/bundles/<version>/ per installed
	// bundle and Dir/state.json (current version, persisted channel).
	Dir string
	// Client is the HTTP client; nil means one with a 60 s timeout that
	// trusts the system's roots. HTTPClient makes one that also trusts a
	// private CA.
	Client *http.Client
}

// Result reports what one Update did.
type Result struct {
	// Answer is the decoded update-check body and Status its HTTP status.
	Answer map[string]any
	Status int
	// Installed is the version current after the update (unchanged when
	// nothing was installed).
	Installed string
	// UsedManifest is true when the delta manifest was used.
	UsedManifest bool
	// Downloaded lists what was fetched over HTTP: manifest file_names,
	// or the zip url. Reused lists manifest file_names copied from the
	// current bundle instead.
	Downloaded []string
	Reused     []string
	// BytesDownloaded counts the response bytes of those downloads.
	BytesDownloaded int64
}

// ServerError is a business error answered by the server (a JSON body
// with "error"), or an unexpected HTTP status.
type ServerError struct {
	Status  int
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("devicesim: server answered HTTP %d", e.Status)
	}
	return fmt.Sprintf("devicesim: server answered %s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// state is what the device persists in Dir/state.json.
type state struct {
	Current string `json:"current"`
	// Channel is the channel persisted by SetChannel; nil when none.
	Channel *string `json:"default_channel,omitempty"`
}

func (d *Device) loadState() (state, error) {
	st := state{Current: Builtin}
	if d.Dir == "" {
		return st, nil
	}
	b, err := os.ReadFile(filepath.Join(d.Dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("devicesim: read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return state{Current: Builtin}, fmt.Errorf("devicesim: read state: %w", err)
	}
	if st.Current == "" {
		st.Current = Builtin
	}
	return st, nil
}

func (d *Device) saveState(st state) error {
	if d.Dir == "" {
		return errors.New("devicesim: no Dir to persist state in")
	}
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("devicesim: save state: %w", err)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("devicesim: save state: %w", err)
	}
	if err := content.WriteFileAtomic(filepath.Join(d.Dir, stateFile), b, 0o644); err != nil {
		return fmt.Errorf("devicesim: save state: %w", err)
	}
	return nil
}

// Current returns the name of the current bundle version, Builtin at
// first (and when the state cannot be read).
func (d *Device) Current() string {
	st, _ := d.loadState()
	return st.Current
}

// CurrentDir returns the directory of the current bundle, or "" when the
// builtin assets are current.
func (d *Device) CurrentDir() string {
	cur := d.Current()
	if cur == Builtin || d.Dir == "" {
		return ""
	}
	return d.bundleDir(cur)
}

func (d *Device) bundleDir(version string) string {
	return filepath.Join(d.Dir, bundlesDir, version)
}

func (d *Device) channel(st state) string {
	if st.Channel != nil {
		return *st.Channel
	}
	return d.DefaultChannel
}

func (d *Device) platform() string {
	if d.Platform == "" {
		return "android"
	}
	return d.Platform
}

func (d *Device) pluginVersion() string {
	if d.PluginVersion == "" {
		return DefaultPluginVersion
	}
	return d.PluginVersion
}

func (d *Device) client() *http.Client {
	if d.Client != nil {
		return d.Client
	}
	return &http.Client{Timeout: defaultTimeout}
}

func (d *Device) userAgent() string {
	return fmt.Sprintf("CapacitorUpdater/%s (%s) %s/%s", d.pluginVersion(), d.AppID, d.platform(), d.VersionOS)
}

// info builds the device info object of every request (protocol
// section 2). Android always sends install_source (empty when unknown);
// iOS omits it. version_name names the current bundle as the plugin
// build does (versionName: the native version on Android >= 8.51.23
// while the builtin bundle runs).
func (d *Device) info(st state) map[string]any {
	m := map[string]any{
		"platform":       d.platform(),
		"device_id":      strings.ToLower(d.DeviceID),
		"app_id":         d.AppID,
		"custom_id":      d.CustomID,
		"version_build":  d.VersionBuild,
		"version_code":   d.VersionCode,
		"version_os":     d.VersionOS,
		"version_name":   d.versionName(st.Current),
		"plugin_version": d.pluginVersion(),
		"is_emulator":    d.IsEmulator,
		"is_prod":        d.IsProd,
		"defaultChannel": d.channel(st),
	}
	if d.platform() == "android" {
		m["install_source"] = ""
	}
	if d.PublicKeyPEM != nil {
		m["key_id"] = content.KeyID(string(d.PublicKeyPEM))
	}
	return m
}

// do sends one request and returns the status and (bounded) body. A
// non-nil body is sent as JSON.
func (d *Device) do(ctx context.Context, method, rawURL string, body any, limit int64) (int, []byte, error) {
	return d.doType(ctx, method, rawURL, "application/json", body, limit)
}

func (d *Device) doType(ctx context.Context, method, rawURL, contentType string, body any, limit int64) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", d.userAgent())
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := d.client().Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if int64(len(b)) > limit {
		return resp.StatusCode, nil, fmt.Errorf("response larger than %d bytes", limit)
	}
	return resp.StatusCode, b, nil
}

// decodeObject decodes a JSON object body.
func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("body is not a JSON object")
	}
	return m, nil
}

func ok2xx(status int) bool { return status >= 200 && status < 300 }

// Check sends one update check (POST UpdateURL with the info object, the
// current version as version_name) and returns the decoded body and the
// HTTP status. Business answers (errors, kinds) are not Go errors; a
// network failure or a body that is not a JSON object is.
func (d *Device) Check(ctx context.Context) (map[string]any, int, error) {
	st, err := d.loadState()
	if err != nil {
		return nil, 0, err
	}
	// Android labels the update check with a charset; iOS does not.
	ct := "application/json"
	if d.platform() == "android" {
		ct = "application/json; charset=utf-8"
	}
	status, body, err := d.doType(ctx, http.MethodPost, d.UpdateURL, ct, d.info(st), maxJSONBody)
	if err != nil {
		return nil, status, fmt.Errorf("devicesim: update check: %w", err)
	}
	m, err := decodeObject(body)
	if err != nil {
		return nil, status, fmt.Errorf("devicesim: update check: HTTP %d: %w", status, err)
	}
	return m, status, nil
}

// SendStat posts one stats event (the info object plus action,
// version_name, old_version_name and timestamp) as a JSON array, the
// batch form of plugins >= 8.42. It does nothing when StatsURL is "".
func (d *Device) SendStat(ctx context.Context, action, versionName, oldVersionName string) error {
	if d.StatsURL == "" {
		return nil
	}
	st, err := d.loadState()
	if err != nil {
		return err
	}
	ev := d.info(st)
	ev["action"] = action
	ev["version_name"] = versionName
	ev["old_version_name"] = oldVersionName
	ev["timestamp"] = time.Now().UnixMilli()
	status, _, err := d.do(ctx, http.MethodPost, d.StatsURL, []any{ev}, maxJSONBody)
	if err != nil {
		return fmt.Errorf("devicesim: stats %s: %w", action, err)
	}
	if !ok2xx(status) {
		return fmt.Errorf("devicesim: stats %s: %w", action, &ServerError{Status: status})
	}
	return nil
}

// SetChannel asks the server to put the device in channel (POST
// ChannelURL with the info object and "channel"). On success without
// "error" it persists channel locally as the device's defaultChannel,
// as plugins >= x.34 do. A business error returns the decoded body and a
// *ServerError.
func (d *Device) SetChannel(ctx context.Context, channel string) (map[string]any, error) {
	st, err := d.loadState()
	if err != nil {
		return nil, err
	}
	body := d.info(st)
	body["channel"] = channel
	m, err := d.channelCall(ctx, http.MethodPost, d.ChannelURL, body)
	if err != nil {
		return m, fmt.Errorf("devicesim: set channel: %w", err)
	}
	st.Channel = &channel
	if err := d.saveState(st); err != nil {
		return m, err
	}
	return m, nil
}

// GetChannel asks the server for the device's channel (PUT ChannelURL
// with the info object). As the plugin does, an HTTP 400 mentioning
// channel_not_found answers the local defaultChannel when there is one.
func (d *Device) GetChannel(ctx context.Context) (map[string]any, error) {
	st, err := d.loadState()
	if err != nil {
		return nil, err
	}
	status, body, err := d.do(ctx, http.MethodPut, d.ChannelURL, d.info(st), maxJSONBody)
	if err != nil {
		return nil, fmt.Errorf("devicesim: get channel: %w", err)
	}
	if status == http.StatusBadRequest && bytes.Contains(body, []byte("channel_not_found")) && d.channel(st) != "" {
		return map[string]any{"channel": d.channel(st), "status": "default"}, nil
	}
	m, err := objectAnswer(status, body)
	if err != nil {
		return m, fmt.Errorf("devicesim: get channel: %w", err)
	}
	return m, nil
}

// ListChannels asks for the channels the device may choose (GET
// ChannelURL with the info fields as query parameters). The answer is a
// JSON array on success; a body with "error" returns a *ServerError.
func (d *Device) ListChannels(ctx context.Context) (any, error) {
	st, err := d.loadState()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(d.ChannelURL)
	if err != nil {
		return nil, fmt.Errorf("devicesim: list channels: %w", err)
	}
	q := u.Query()
	for k, v := range d.info(st) {
		q.Set(k, fmt.Sprint(v))
	}
	u.RawQuery = q.Encode()
	status, body, err := d.do(ctx, http.MethodGet, u.String(), nil, maxJSONBody)
	if err != nil {
		return nil, fmt.Errorf("devicesim: list channels: %w", err)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("devicesim: list channels: HTTP %d: %w", status, err)
	}
	if m, ok := v.(map[string]any); ok {
		if e := serverError(status, m); e != nil {
			return v, fmt.Errorf("devicesim: list channels: %w", e)
		}
	}
	if !ok2xx(status) {
		return v, fmt.Errorf("devicesim: list channels: %w", &ServerError{Status: status})
	}
	return v, nil
}

func (d *Device) channelCall(ctx context.Context, method, rawURL string, body any) (map[string]any, error) {
	status, b, err := d.do(ctx, method, rawURL, body, maxJSONBody)
	if err != nil {
		return nil, err
	}
	return objectAnswer(status, b)
}

// objectAnswer decodes a JSON object answer; an "error" key or a non-2xx
// status gives a *ServerError (with the decoded body when there is one).
func objectAnswer(status int, body []byte) (map[string]any, error) {
	m, err := decodeObject(body)
	if err != nil {
		if !ok2xx(status) {
			return nil, &ServerError{Status: status}
		}
		return nil, fmt.Errorf("HTTP %d: %w", status, err)
	}
	if e := serverError(status, m); e != nil {
		return m, e
	}
	if !ok2xx(status) {
		return m, &ServerError{Status: status}
	}
	return m, nil
}

func serverError(status int, m map[string]any) *ServerError {
	code, has := m["error"]
	if !has {
		return nil
	}
	msg, _ := m["message"].(string)
	return &ServerError{Status: status, Code: fmt.Sprint(code), Message: msg}
}

// publicKey parses PublicKeyPEM, nil when there is none.
func (d *Device) publicKey() (*rsa.PublicKey, error) {
	if d.PublicKeyPEM == nil {
		return nil, nil
	}
	pub, err := content.ParsePublicKey(d.PublicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("devicesim: publicKey: %w", err)
	}
	return pub, nil
}
