package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "channel list", args: "APP_ID", help: "List an app's channels and their settings.", setup: withOptions(cmdChannelList)})
	register(command{name: "channel set", args: "APP_ID CHANNEL", help: "Create a channel or change its settings (only the flags given change).", setup: withOptions(cmdChannelSet)})
	register(command{name: "rollback", args: "APP_ID CHANNEL", help: "Point a channel back at its previous release.", setup: withOptions(cmdRollback)})
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

func cmdChannelList(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.Channels(ctx, env.args[0])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	printChannels(env.stdout, out)
	return nil
}

func printChannels(w io.Writer, chs []*state.Channel) {
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

// channelSetOptions are the flags of `channel set`: each setting is a
// string so that only the flags given change (a flag given empty, as
// in --public=, means true for the booleans).
type channelSetOptions struct {
	clientOptions
	version, disableAutoUpdate string
	bools                      []string // by channelBools
}

func (o *channelSetOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.version, "version", "", "release `version` devices on this channel get, or `builtin`")
	o.bools = make([]string, len(channelBools))
	for i, b := range channelBools {
		fs.StringVar(&o.bools[i], b.flag, "", b.help+" (true|false)")
	}
	fs.StringVar(&o.disableAutoUpdate, "disable-auto-update", "", "block updates across `kind`: major|minor|patch|version_number|none")
}

// settings are the channel settings the given flags set.
func (o *channelSetOptions) settings(env *cmdEnv) (adminapi.ChannelSettings, error) {
	var s adminapi.ChannelSettings
	if env.given("version") {
		s.Version = &o.version
	}
	if env.given("disable-auto-update") {
		switch v := o.disableAutoUpdate; v {
		case state.DisableMajor, state.DisableMinor, state.DisablePatch, state.DisableVersionNumber, state.DisableNone:
		default:
			return s, usagef("--disable-auto-update %q: want major, minor, patch, version_number or none", v)
		}
		s.DisableAutoUpdate = &o.disableAutoUpdate
	}
	for i, b := range channelBools {
		if !env.given(b.flag) {
			continue
		}
		raw := o.bools[i]
		if raw == "" {
			raw = "true"
		}
		v, err := strconv.ParseBool(raw)
		if err != nil {
			return s, usagef("--%s=%q: want true or false", b.flag, raw)
		}
		*b.field(&s) = &v
	}
	return s, nil
}

func cmdChannelSet(ctx context.Context, env *cmdEnv, o *channelSetOptions) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	s, err := o.settings(env)
	if err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.SetChannel(ctx, env.args[0], env.args[1], s)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	printChannels(env.stdout, []*state.Channel{out})
	return nil
}

func cmdRollback(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.Rollback(ctx, env.args[0], env.args[1])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintf(env.stdout, "channel %s of %s now serves %s\n", out.Name, env.args[0], dash(out.Version))
	return nil
}
