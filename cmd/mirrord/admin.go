package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/consensus/state"
	"mirrord/content"
	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "keys create", help: "Create a Capgo-compatible RSA-2048 key pair (PKCS#1 PEM) in --out DIR.\nThe private key encrypts bundles (keep it off the servers); the public key goes into the app's\ncapacitor config (publicKey) and into `mirrord app create --public-key`.", run: cmdKeysCreate})
	flagSetups["keys create"] = func(fs *flag.FlagSet) {
		fs.String("out", ".", "output `dir`")
	}

	client := clientFlags
	register(command{name: "app create", args: "APP_ID", help: "Register an app (reverse-domain id as in capacitor.config).", run: cmdAppCreate})
	flagSetups["app create"] = client(func(fs *flag.FlagSet) {
		fs.String("public-key", "", "the app's Capgo public key `PEM` file (for encrypted bundles)")
	})
	register(command{name: "app delete", args: "APP_ID", help: "Delete an app with its device overrides and statistics.\nRefused while a rollout of the app is active or paused, and, without --force, while the app has releases or channels.\nThe blocks of its releases are removed by the next garbage collection; devices asking for the app get app_not_found.", run: cmdAppDelete})
	flagSetups["app delete"] = client(func(fs *flag.FlagSet) {
		fs.Bool("force", false, "also delete the app's releases and channels")
	})
	register(command{name: "app list", help: "List apps.", run: cmdAppList})
	flagSetups["app list"] = client(nil)

	register(command{name: "release list", args: "APP_ID", help: "List an app's releases.", run: cmdReleaseList})
	flagSetups["release list"] = client(nil)
	register(command{name: "release delete", args: "APP_ID VERSION", help: "Delete a release that no channel points at.", run: cmdReleaseDelete})
	flagSetups["release delete"] = client(nil)

	register(command{name: "channel list", args: "APP_ID", help: "List an app's channels and their settings.", run: cmdChannelList})
	flagSetups["channel list"] = client(nil)
	register(command{name: "channel set", args: "APP_ID CHANNEL", help: "Create a channel or change its settings (only the flags given change).", run: cmdChannelSet})
	flagSetups["channel set"] = client(func(fs *flag.FlagSet) {
		fs.String("version", "", "release `version` devices on this channel get, or `builtin`")
		for _, b := range channelBools {
			fs.String(b.flag, "", b.help+" (true|false)")
		}
		fs.String("disable-auto-update", "", "block updates across `kind`: major|minor|patch|version_number|none")
	})
	register(command{name: "rollback", args: "APP_ID CHANNEL", help: "Point a channel back at its previous release.", run: cmdRollback})
	flagSetups["rollback"] = client(nil)

	register(command{name: "device set", args: "APP_ID DEVICE_ID", help: "Pin a device to a channel (--channel), a release (--version), or both.\nA pinned release wins over the channel's release and its rollout; the channel's gates still apply.", run: cmdDeviceSet})
	flagSetups["device set"] = client(func(fs *flag.FlagSet) {
		fs.String("channel", "", "`channel` for this device")
		fs.String("version", "", "release `version` to pin for this device (or builtin)")
	})
	register(command{name: "device unset", args: "APP_ID DEVICE_ID", help: "Remove a device's channel override.", run: cmdDeviceUnset})
	flagSetups["device unset"] = client(nil)
	register(command{name: "device list", args: "APP_ID", help: "List device overrides.", run: cmdDeviceList})
	flagSetups["device list"] = client(nil)

	register(command{name: "status", help: "Show every node of the cluster: role, leader, applied index, last contact, and the blocks of each release it holds.\nWith --watch, redraw it (with replication progress bars on a terminal) until Ctrl-C.", run: cmdStatus})
	flagSetups["status"] = client(func(fs *flag.FlagSet) {
		fs.Bool("watch", false, "refresh until interrupted")
		fs.Duration("interval", 2*time.Second, "refresh `interval` with --watch")
	})
}

// channelBools maps CLI flags to channel fields.
var channelBools = []struct {
	flag, help string
	field      func(*adminapi.ChannelSettings) **bool
}{
	{"public", "default channel for devices that name none", func(s *adminapi.ChannelSettings) **bool { return &s.Public }},
	{"ios", "serve iOS devices", func(s *adminapi.ChannelSettings) **bool { return &s.IOS }},
	{"android", "serve Android devices", func(s *adminapi.ChannelSettings) **bool { return &s.Android }},
	{"electron", "serve Electron apps", func(s *adminapi.ChannelSettings) **bool { return &s.Electron }},
	{"allow-emulator", "serve emulators", func(s *adminapi.ChannelSettings) **bool { return &s.AllowEmulator }},
	{"allow-device", "serve physical devices", func(s *adminapi.ChannelSettings) **bool { return &s.AllowDevice }},
	{"allow-dev", "serve development builds", func(s *adminapi.ChannelSettings) **bool { return &s.AllowDev }},
	{"allow-prod", "serve production builds", func(s *adminapi.ChannelSettings) **bool { return &s.AllowProd }},
	{"allow-device-self-set", "let devices pick this channel (setChannel)", func(s *adminapi.ChannelSettings) **bool { return &s.AllowDeviceSelfSet }},
	{"disable-auto-update-under-native", "never offer a bundle older than the native version", func(s *adminapi.ChannelSettings) **bool { return &s.DisableAutoUpdateUnderNative }},
}

func cmdKeysCreate(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	dir := flagString(env.fs, "out")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	privPath, pubPath := filepath.Join(dir, "private_key.pem"), filepath.Join(dir, "public_key.pem")
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s already exists: refusing to overwrite a key (use another --out)", p)
		}
	}
	priv, pub, err := content.GenerateKeys()
	if err != nil {
		return err
	}
	if err := os.WriteFile(privPath, priv, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "private key: %s (keep it secret; it encrypts bundles)\npublic key:  %s (key_id %s)\n", privPath, pubPath, content.KeyID(string(pub)))
	fmt.Fprintf(env.stdout, "next: put the public key in capacitor.config (plugins.CapacitorUpdater.publicKey) and run\n  mirrord app create APP_ID --public-key %s\n", pubPath)
	return nil
}

func cmdAppCreate(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	req := adminapi.CreateAppRequest{ID: env.args[0]}
	if p := flagString(env.fs, "public-key"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
		if _, err := content.ParsePublicKey(b); err != nil {
			return fmt.Errorf("--public-key %s: %w", p, err)
		}
		req.PublicKey = string(b)
	}
	var out adminapi.AppInfo
	if err := c.do(ctx, "POST", "/admin/v1/apps", req, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	if out.KeyID != "" {
		fmt.Fprintf(env.stdout, "created app %s (encrypted bundles, key_id %s)\n", out.ID, out.KeyID)
	} else {
		fmt.Fprintf(env.stdout, "created app %s (plain bundles)\n", out.ID)
	}
	return nil
}

func cmdAppDelete(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	p := "/admin/v1/apps/" + pathEsc(env.args[0])
	if flagBool(env.fs, "force") {
		p += "?force=true"
	}
	var out adminapi.DeletedApp
	if err := c.do(ctx, "DELETE", p, nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintf(env.stdout, "deleted app %s (%d release(s), %d channel(s), %d device override(s)); "+
		"the next garbage collection frees its blocks\n", out.ID, out.Releases, out.Channels, out.Devices)
	return nil
}

func cmdAppList(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out []adminapi.AppInfo
	if err := c.do(ctx, "GET", "/admin/v1/apps", nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tKEY_ID\tCHANNELS\tRELEASES\tDEVICE OVERRIDES")
	for _, a := range out {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", a.ID, dash(a.KeyID), a.Channels, a.Releases, a.Devices)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func cmdReleaseList(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out []adminapi.ReleaseInfo
	asJSON := flagBool(env.fs, "json")
	q := "?manifest=false" // the table shows only the count
	if asJSON {
		q = ""
	}
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(env.args[0])+"/releases"+q, nil, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tENCRYPTED\tSIZE\tFILES\tMIN_NATIVE\tCHANNELS\tCREATED")
	for _, r := range out {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%s\t%s\n", r.Version, r.Encrypted(), humanBytes(r.ZipSize), r.Files,
			dash(r.MinNative), dash(strings.Join(r.Channels, ",")), time.UnixMilli(r.CreatedAt).UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdReleaseDelete(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID VERSION"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	if err := c.do(ctx, "DELETE", "/admin/v1/apps/"+pathEsc(env.args[0])+"/releases/"+pathEsc(env.args[1]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "deleted release %s of %s\n", env.args[1], env.args[0])
	return nil
}

func cmdChannelList(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out []state.Channel
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(env.args[0])+"/channels", nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	printChannels(env.stdout, out)
	return nil
}

func printChannels(w io.Writer, chs []state.Channel) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tVERSION\tPUBLIC\tSELF_SET\tPLATFORMS\tDISABLE_AUTO_UPDATE\tUNDER_NATIVE\tEMU/DEV/DEVBUILD/PROD")
	for _, ch := range chs {
		var plat []string
		for _, p := range []struct {
			on   bool
			name string
		}{{ch.IOS, "ios"}, {ch.Android, "android"}, {ch.Electron, "electron"}} {
			if p.on {
				plat = append(plat, p.name)
			}
		}
		v := ch.Version
		if v == "" {
			v = state.Builtin
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%v\t%s\t%s\t%v\t%v/%v/%v/%v\n", ch.Name, v, ch.Public, ch.AllowDeviceSelfSet,
			dash(strings.Join(plat, ",")), ch.DisableAutoUpdate, ch.DisableAutoUpdateUnderNative,
			ch.AllowEmulator, ch.AllowDevice, ch.AllowDev, ch.AllowProd)
	}
	tw.Flush()
}

func cmdChannelSet(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	var s adminapi.ChannelSettings
	if flagSet(env.fs, "version") {
		v := flagString(env.fs, "version")
		s.Version = &v
	}
	if flagSet(env.fs, "disable-auto-update") {
		v := flagString(env.fs, "disable-auto-update")
		switch v {
		case state.DisableMajor, state.DisableMinor, state.DisablePatch, state.DisableVersionNumber, state.DisableNone:
		default:
			return usagef("--disable-auto-update %q: want major, minor, patch, version_number or none", v)
		}
		s.DisableAutoUpdate = &v
	}
	for _, b := range channelBools {
		if !flagSet(env.fs, b.flag) {
			continue
		}
		raw := flagString(env.fs, b.flag)
		if raw == "" {
			raw = "true"
		}
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return usagef("--%s=%q: want true or false", b.flag, raw)
		}
		*b.field(&s) = &v
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out state.Channel
	if err := c.do(ctx, "PUT", "/admin/v1/apps/"+pathEsc(env.args[0])+"/channels/"+pathEsc(env.args[1]), s, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	printChannels(env.stdout, []state.Channel{out})
	return nil
}

func cmdRollback(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out state.Channel
	if err := c.do(ctx, "POST", "/admin/v1/apps/"+pathEsc(env.args[0])+"/channels/"+pathEsc(env.args[1])+"/rollback", nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintf(env.stdout, "channel %s of %s now serves %s\n", out.Name, env.args[0], dash(out.Version))
	return nil
}

func cmdDeviceSet(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID DEVICE_ID"); err != nil {
		return err
	}
	ch, ver := flagString(env.fs, "channel"), flagString(env.fs, "version")
	if ch == "" && ver == "" {
		return usagef("give --channel, --version or both")
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out adminapi.DeviceInfo
	if err := c.do(ctx, "PUT", "/admin/v1/apps/"+pathEsc(env.args[0])+"/devices/"+pathEsc(env.args[1]), adminapi.SetDeviceRequest{Channel: ch, Version: ver}, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	switch {
	case out.Version == "":
		fmt.Fprintf(env.stdout, "device %s of %s now uses channel %s\n", out.DeviceID, env.args[0], out.Channel)
	case out.Channel == "":
		fmt.Fprintf(env.stdout, "device %s of %s is pinned to %s\n", out.DeviceID, env.args[0], out.Version)
	default:
		fmt.Fprintf(env.stdout, "device %s of %s uses channel %s, pinned to %s\n", out.DeviceID, env.args[0], out.Channel, out.Version)
	}
	return nil
}

func cmdDeviceUnset(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID DEVICE_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	if err := c.do(ctx, "DELETE", "/admin/v1/apps/"+pathEsc(env.args[0])+"/devices/"+pathEsc(env.args[1]), nil, nil); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "removed the channel override of device %s\n", strings.ToLower(env.args[1]))
	return nil
}

func cmdDeviceList(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out []adminapi.DeviceInfo
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(env.args[0])+"/devices", nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tCHANNEL\tPINNED")
	for _, d := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.DeviceID, dash(d.Channel), dash(d.Version))
	}
	return tw.Flush()
}

func cmdStatus(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	if flagBool(env.fs, "watch") {
		if flagBool(env.fs, "json") {
			return usagef("--watch and --json do not go together; poll `status --json` instead")
		}
		iv := env.fs.Lookup("interval").Value.(flag.Getter).Get().(time.Duration)
		if iv < 100*time.Millisecond {
			return usagef("--interval %s is too short (at least 100ms)", iv)
		}
		return watchStatus(ctx, c, env.stdout, iv, isTerminal(env.stdout))
	}
	var out adminapi.Status
	if err := c.do(ctx, "GET", "/admin/v1/status", nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	printStatus(env.stdout, out)
	return nil
}

// ---- publish ----

func init() {
	register(command{name: "publish", args: "PATH", help: "Publish a release from a directory or a zip.\nWith --key the zip and every manifest file are encrypted (Capgo v2). With --session-key and\n--checksum, PATH is a zip the Capgo CLI already encrypted (`npx @capgo/cli bundle encrypt`).", run: cmdPublish})
	flagSetups["publish"] = func(fs *flag.FlagSet) {
		addClientFlags(fs, true)
		fs.String("app", "", "app `id` (required)")
		fs.String("version", "", "release `version`, semver (required)")
		fs.String("channel", "", "point this `channel` at the release (created if missing)")
		fs.String("key", "", "private key `PEM` to encrypt with (Capgo v2)")
		fs.String("session-key", "", "ivSessionKey printed by `capgo bundle encrypt` (PATH is its encrypted zip)")
		fs.String("checksum", "", "checksum printed by `capgo bundle encrypt`")
		fs.String("min-native", "", "minimum native `version` (Capgo min_update_version, for --disable-auto-update version_number)")
		fs.Bool("plain", false, "publish unencrypted even though the app has a public key")
		fs.Bool("fresh-session-key", false, "with --key, encrypt with a new random session key instead of reusing the one (AES key and IV)\n"+
			"of the app's latest release encrypted with this key. Reuse keeps unchanged manifest files\n"+
			"byte-identical, so nodes store and replicate only the changed ones; the cost is that anyone who\n"+
			"sees both releases' encrypted bytes can tell which files are identical and how long a changed\n"+
			"file's (or the zip's) common prefix with its old version is, to 16 bytes; nothing else")
	}
}

func cmdPublish(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "PATH (a directory or a zip)"); err != nil {
		return err
	}
	o := publishOptions{
		App: flagString(env.fs, "app"), Version: flagString(env.fs, "version"), Path: env.args[0],
		Key: flagString(env.fs, "key"), SessionKey: flagString(env.fs, "session-key"),
		Checksum: flagString(env.fs, "checksum"), FreshKey: flagBool(env.fs, "fresh-session-key"),
		Plain: flagBool(env.fs, "plain"), MinNative: flagString(env.fs, "min-native"),
		Channel: flagString(env.fs, "channel"),
	}
	if err := o.check(); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	// With --json stdout holds only the JSON answer.
	note := env.stdout
	if flagBool(env.fs, "json") {
		note = env.stderr
	}
	if isTerminal(env.stderr) {
		o.Progress = &uploadProgress{w: env.stderr}
	}
	rel, total, err := publish(ctx, c, o, note)
	if err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, rel)
	}
	kind := "plain"
	if rel.Encrypted() {
		kind = "encrypted, key_id " + rel.KeyID
	}
	fmt.Fprintf(env.stdout, "published %s %s (%s; zip %s, %d manifest files, %s uploaded)\n", o.App, o.Version, kind,
		humanBytes(rel.ZipSize), len(rel.Manifest), humanBytes(total))
	if o.Channel != "" {
		fmt.Fprintf(env.stdout, "channel %s now serves %s\n", o.Channel, o.Version)
	}
	return nil
}

// publishOptions is what `mirrord publish` and the watch folder give
// publish.
type publishOptions struct {
	App, Version string
	// Path is a directory of web files or a zip.
	Path string
	// Skip lists files of a directory Path left out of the bundle.
	Skip []string
	// Key is the private key file mirrord encrypts with.
	Key string
	// SessionKey and Checksum come with a zip the Capgo CLI encrypted.
	SessionKey, Checksum string
	FreshKey, Plain      bool
	MinNative, Channel   string
	// Progress, if set, is told the size of each uploaded object after
	// start(total bytes, objects).
	Progress interface {
		start(total int64, objects int)
		add(n int64)
	}
}

// check refuses contradictory options (usage errors).
func (o publishOptions) check() error {
	switch {
	case o.App == "" || o.Version == "":
		return usagef("--app and --version are required")
	case (o.SessionKey == "") != (o.Checksum == ""):
		return usagef("--session-key and --checksum go together (both printed by `capgo bundle encrypt`)")
	case o.SessionKey != "" && o.Key != "":
		return usagef("use either --key (mirrord encrypts) or --session-key/--checksum (already encrypted), not both")
	case o.FreshKey && o.Key == "":
		return usagef("--fresh-session-key goes with --key (it chooses the session key mirrord encrypts with)")
	}
	return nil
}

// publish builds the bundle of o (encrypting with o.Key, importing a
// Capgo-encrypted zip, or plain), uploads its objects and creates the
// release. Notes about the session key go to note. It returns the
// release and the bytes uploaded.
func publish(ctx context.Context, c *client, o publishOptions, note io.Writer) (state.Release, int64, error) {
	var rel state.Release
	var app adminapi.AppInfo
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(o.App), nil, &app); err != nil {
		if isNotFound(err) {
			return rel, 0, fmt.Errorf("app %s does not exist on %s: create it first with `mirrord app create %s [--public-key PUB.pem]`", o.App, c.server, o.App)
		}
		return rel, 0, err
	}

	info, err := os.Stat(o.Path)
	if err != nil {
		return rel, 0, fmt.Errorf("bundle path: %w", err)
	}
	var zipData []byte
	if info.IsDir() {
		if o.SessionKey != "" {
			return rel, 0, usagef("--session-key/--checksum need the encrypted zip made by the Capgo CLI, not a directory")
		}
		if zipData, err = content.ZipDirSkipping(o.Path, o.Skip...); err != nil {
			return rel, 0, err
		}
	} else if zipData, err = os.ReadFile(o.Path); err != nil {
		return rel, 0, err
	}

	lim := content.ZipLimits{}
	var b *content.Bundle
	switch {
	case o.SessionKey != "":
		if app.PublicKey == "" {
			return rel, 0, fmt.Errorf("app %s has no public key, so its devices cannot decrypt this bundle: recreate the app with --public-key", o.App)
		}
		pub, err := content.ParsePublicKey([]byte(app.PublicKey))
		if err != nil {
			return rel, 0, err
		}
		if b, err = content.ImportEncrypted(zipData, o.SessionKey, o.Checksum, pub, lim); err != nil {
			return rel, 0, fmt.Errorf("%s: %w", o.Path, err)
		}
	case o.Key != "":
		pem, err := os.ReadFile(o.Key)
		if err != nil {
			return rel, 0, fmt.Errorf("--key: %w", err)
		}
		priv, err := content.ParsePrivateKey(pem)
		if err != nil {
			return rel, 0, fmt.Errorf("--key %s: %w", o.Key, err)
		}
		if err := matchKey(app, priv); err != nil {
			return rel, 0, err
		}
		reuse, msg, err := reusableSessionKey(ctx, c, app, priv, o.FreshKey)
		if err != nil {
			return rel, 0, err
		}
		fmt.Fprintln(note, msg)
		if reuse != nil {
			b, err = content.BuildBundleWithKey(zipData, priv, *reuse, lim)
		} else {
			b, err = content.BuildBundle(zipData, priv, lim)
		}
		if err != nil {
			return rel, 0, fmt.Errorf("%s: %w", o.Path, err)
		}
	default:
		if app.PublicKey != "" && !o.Plain {
			return rel, 0, fmt.Errorf("app %s has a public key, so its devices expect encrypted bundles: pass --key PRIVATE.pem (or --plain to publish unencrypted anyway)", o.App)
		}
		if b, err = content.BuildBundle(zipData, nil, lim); err != nil {
			return rel, 0, fmt.Errorf("%s: %w", o.Path, err)
		}
	}

	req := adminapi.CreateReleaseRequest{
		Version: o.Version, Checksum: b.Checksum, SessionKey: b.SessionKey, KeyID: b.KeyID,
		MinNative: o.MinNative, Channel: o.Channel,
	}
	total := int64(len(b.Zip))
	if o.Progress != nil {
		all := total
		for _, f := range b.Files {
			all += int64(len(f.Data))
		}
		o.Progress.start(all, 1+len(b.Files))
	}
	zobj, err := c.upload(ctx, b.Zip)
	if err != nil {
		return rel, 0, fmt.Errorf("upload zip: %w", err)
	}
	if o.Progress != nil {
		o.Progress.add(int64(len(b.Zip)))
	}
	req.ZipCID = zobj.CID
	for _, f := range b.Files {
		obj, err := c.upload(ctx, f.Data)
		if err != nil {
			return rel, 0, fmt.Errorf("upload %s: %w", f.Name, err)
		}
		if o.Progress != nil {
			o.Progress.add(int64(len(f.Data)))
		}
		total += int64(len(f.Data))
		req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: f.Name, FileHash: f.Hash, CID: obj.CID})
	}
	if err := c.do(ctx, "POST", "/admin/v1/apps/"+pathEsc(o.App)+"/releases", req, &rel); err != nil {
		return rel, 0, fmt.Errorf("create release %s of %s (%d manifest files, all uploaded): %w", o.Version, o.App, len(req.Manifest), err)
	}
	return rel, total, nil
}

// matchKey refuses a private key that does not belong to the app's
// public key: devices would fail every bundle with checksum errors.
func matchKey(app adminapi.AppInfo, priv *rsa.PrivateKey) error {
	if app.PublicKey == "" {
		return fmt.Errorf("app %s has no public key, so its devices cannot decrypt: recreate it with --public-key (the .pub of this key), or publish without --key", app.ID)
	}
	pub, err := content.ParsePublicKey([]byte(app.PublicKey))
	if err != nil {
		return err
	}
	if !pub.Equal(&priv.PublicKey) {
		return fmt.Errorf("--key does not match app %s's public key (key_id %s): devices could not decrypt", app.ID, app.KeyID)
	}
	return nil
}

func (c *client) upload(ctx context.Context, data []byte) (adminapi.ObjectInfo, error) {
	var o adminapi.ObjectInfo
	err := c.send(ctx, "POST", "/admin/v1/objects", "application/octet-stream", bytes.NewReader(data), int64(len(data)), &o)
	if err == nil && o.Size != int64(len(data)) {
		err = fmt.Errorf("server stored %d bytes of %d", o.Size, len(data))
	}
	return o, err
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func pathEsc(s string) string { return url.PathEscape(s) }

// reusableSessionKey picks the session key for `publish --key`: the one
// of the app's most recent release (highest created_at) encrypted with
// priv's key, opened with the public key as a device does, so that the
// unchanged files of the new release keep their encrypted bytes and
// CIDs. It returns nil (BuildBundle then draws a new key) when fresh is
// set, when no such release exists, or when that release's session key
// does not open; msg is the line telling the user which case it was.
func reusableSessionKey(ctx context.Context, c *client, app adminapi.AppInfo, priv *rsa.PrivateKey, fresh bool) (sk *content.SessionKey, msg string, err error) {
	if fresh {
		return nil, "session key: new random key (--fresh-session-key)", nil
	}
	keyID := content.KeyID(string(content.PublicKeyPEM(&priv.PublicKey)))
	var rels []adminapi.ReleaseInfo
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(app.ID)+"/releases?manifest=false", nil, &rels); err != nil {
		return nil, "", fmt.Errorf("list releases of %s to reuse their session key (--fresh-session-key skips this): %w", app.ID, err)
	}
	var latest *state.Release
	for _, r := range rels {
		if r.Release == nil || r.SessionKey == "" || (r.KeyID != keyID && r.KeyID != app.KeyID) {
			continue
		}
		if latest == nil || r.CreatedAt > latest.CreatedAt || (r.CreatedAt == latest.CreatedAt && r.Version > latest.Version) {
			latest = r.Release
		}
	}
	if latest == nil {
		return nil, fmt.Sprintf("session key: new random key (no earlier release of %s is encrypted with key_id %s)", app.ID, keyID), nil
	}
	k, err := content.OpenSessionKey(latest.SessionKey, &priv.PublicKey)
	if err != nil {
		return nil, fmt.Sprintf("session key: new random key (the session key of release %s does not open with this key: %v)", latest.Version, err), nil
	}
	return &k, fmt.Sprintf("session key: reused from release %s, so unchanged files keep their encrypted bytes (--fresh-session-key for a new one)", latest.Version), nil
}
