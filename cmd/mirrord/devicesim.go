package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"

	"mirrord/devicesim"
)

func init() {
	register(command{name: "device-sim", args: "[check|update|set-channel CH|get-channel|list-channels]",
		help: "Act as a Capgo device against a node: check for an update, or download, decrypt, verify\nand install it as the plugin does (default: update). State is kept in --dir.", setup: withOptions(cmdDeviceSim)})
}

// deviceSimOptions are the flags of device-sim: the device it claims
// to be.
type deviceSimOptions struct {
	server, app, dir, deviceID, platform, versionBuild, pluginVersion, publicKey, channel, ca string
	emulator, dev                                                                             bool
}

func (o *deviceSimOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.server, "server", "", "device-facing base `URL` of a node (env MIRRORD_SERVER; default http://127.0.0.1:8080)")
	fs.StringVar(&o.app, "app", "", "app `id` (required)")
	fs.StringVar(&o.dir, "dir", "./device-sim", "`dir` keeping the simulated device's bundles and state")
	fs.StringVar(&o.deviceID, "device-id", "", "device `uuid` (default: kept in --dir, random at first)")
	fs.StringVar(&o.platform, "platform", "android", "`platform`: android, ios or electron")
	fs.StringVar(&o.versionBuild, "version-build", "1.0.0", "native app `version` (version_build)")
	fs.StringVar(&o.pluginVersion, "plugin-version", "8.51.23", "plugin `version` to claim")
	fs.StringVar(&o.publicKey, "public-key", "", "app public key `PEM` (as in capacitor.config publicKey); none = no encryption")
	fs.StringVar(&o.channel, "channel", "", "defaultChannel from the app config")
	fs.BoolVar(&o.emulator, "emulator", false, "claim to be an emulator")
	fs.BoolVar(&o.dev, "dev", false, "claim to be a development build (is_prod false)")
	fs.StringVar(&o.ca, "ca", "", "PEM `file` of a private CA the device trusts for an https --server, besides the system's (env MIRRORD_CA)")
}

func cmdDeviceSim(ctx context.Context, env *cmdEnv, o *deviceSimOptions) error {
	action := "update"
	if len(env.args) > 0 {
		action = env.args[0]
	}
	d, err := o.device()
	if err != nil {
		return err
	}
	switch action {
	case "check":
		ans, status, err := d.Check(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "HTTP %d\n", status)
		return printJSON(env.stdout, ans)
	case "update":
		res, err := d.Update(ctx)
		if res != nil {
			_ = printJSON(env.stdout, res)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(env.stderr, "device %s now runs %s (bundle dir %s)\n", d.DeviceID, d.Current(), dash(d.CurrentDir()))
		return nil
	case "set-channel":
		if len(env.args) != 2 {
			return usagef("set-channel needs a channel name")
		}
		return printAnswer(env, func() (any, error) { return d.SetChannel(ctx, env.args[1]) })
	case "get-channel":
		return printAnswer(env, func() (any, error) { return d.GetChannel(ctx) })
	case "list-channels":
		return printAnswer(env, func() (any, error) { return d.ListChannels(ctx) })
	}
	return usagef("unknown device-sim action %q: want check, update, set-channel, get-channel or list-channels", action)
}

// printAnswer prints what ask answers as JSON.
func printAnswer(env *cmdEnv, ask func() (any, error)) error {
	ans, err := ask()
	if err != nil {
		return err
	}
	return printJSON(env.stdout, ans)
}

// device is the simulated device the options describe, its state kept
// in --dir (with a device id made once when --device-id is not given).
func (o *deviceSimOptions) device() (*devicesim.Device, error) {
	server := strings.TrimRight(serverURL(o.server), "/")
	if o.app == "" {
		return nil, usagef("--app is required")
	}
	dir := o.dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	id := o.deviceID
	if id == "" {
		var err error
		if id, err = persistentDeviceID(dir); err != nil {
			return nil, err
		}
	}
	d := &devicesim.Device{
		UpdateURL: server + "/updates", StatsURL: server + "/stats", ChannelURL: server + "/channel_self",
		AppID: o.app, DeviceID: id, Platform: o.platform,
		VersionBuild: o.versionBuild, VersionCode: "1", VersionOS: "14",
		PluginVersion: o.pluginVersion, IsProd: !o.dev,
		IsEmulator: o.emulator, DefaultChannel: o.channel, Dir: dir,
	}
	if err := o.trust(d); err != nil {
		return nil, err
	}
	if p := o.publicKey; p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--public-key: %w", err)
		}
		d.PublicKeyPEM = b
	}
	return d, nil
}

// trust gives d a client that trusts the CA in --ca or MIRRORD_CA.
func (o *deviceSimOptions) trust(d *devicesim.Device) error {
	ca := o.ca
	if ca == "" {
		ca = os.Getenv("MIRRORD_CA")
	}
	if ca == "" {
		return nil
	}
	b, err := os.ReadFile(ca)
	if err != nil {
		return usagef("--ca: %v", err)
	}
	if d.Client, err = devicesim.HTTPClient(b); err != nil {
		return usagef("--ca %s: %v", ca, err)
	}
	return nil
}

func persistentDeviceID(dir string) (string, error) {
	p := dir + "/device-id"
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	return id, os.WriteFile(p, []byte(id+"\n"), 0o644)
}
