package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"reflect"
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

// channelFlag is a flag of `channel set`: one field of
// state.ChannelPatch, named by its flag tag.
type channelFlag struct {
	name, help string
	field      int // index in state.ChannelPatch
	isBool     bool
}

// channelFlags are derived from state.ChannelPatch's flag and help tags,
// in field order: a new channel setting gets its flag with no change here.
var channelFlags = func() []channelFlag {
	t := reflect.TypeFor[state.ChannelPatch]()
	var out []channelFlag
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("flag")
		if name == "" {
			continue
		}
		cf := channelFlag{name: name, help: f.Tag.Get("help"), field: i, isBool: f.Type.Elem().Kind() == reflect.Bool}
		if cf.isBool {
			cf.help += " (true|false)"
		}
		out = append(out, cf)
	}
	return out
}()

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
	raw []string // by channelFlags
}

func (o *channelSetOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	o.raw = make([]string, len(channelFlags))
	for i, f := range channelFlags {
		fs.StringVar(&o.raw[i], f.name, "", f.help)
	}
}

// settings are the channel settings the given flags set.
func (o *channelSetOptions) settings(env *cmdEnv) (adminapi.ChannelSettings, error) {
	var s adminapi.ChannelSettings
	fields := reflect.ValueOf(&s).Elem()
	for i, f := range channelFlags {
		if !env.given(f.name) {
			continue
		}
		raw := o.raw[i]
		var v any = &raw
		switch {
		case f.isBool:
			if raw == "" {
				raw = "true"
			}
			b, err := strconv.ParseBool(raw)
			if err != nil {
				return s, usagef("--%s=%q: want true or false", f.name, raw)
			}
			v = &b
		case f.name == "disable-auto-update" && !state.ValidDisableAutoUpdate(raw):
			return s, usagef("--disable-auto-update %q: want major, minor, patch, version_number or none", raw)
		}
		fields.Field(f.field).Set(reflect.ValueOf(v))
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
