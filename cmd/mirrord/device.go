package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "device set", args: "APP_ID DEVICE_ID", help: "Pin a device to a channel (--channel), a release (--version), or both.\nA pinned release wins over the channel's release and its rollout; the channel's gates still apply.", setup: withOptions(cmdDeviceSet)})
	register(command{name: "device unset", args: "APP_ID DEVICE_ID", help: "Remove a device's channel override.", setup: withOptions(cmdDeviceUnset)})
	register(command{name: "device list", args: "APP_ID", help: "List device overrides.", setup: withOptions(cmdDeviceList)})
}

type deviceSetOptions struct {
	clientOptions
	adminapi.SetDeviceRequest
}

func (o *deviceSetOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.Channel, "channel", "", "`channel` for this device")
	fs.StringVar(&o.Version, "version", "", "release `version` to pin for this device (or builtin)")
}

func cmdDeviceSet(ctx context.Context, env *cmdEnv, o *deviceSetOptions) error {
	if err := env.needArgs(2, "APP_ID DEVICE_ID"); err != nil {
		return err
	}
	if o.Channel == "" && o.Version == "" {
		return usagef("give --channel, --version or both")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.SetDevice(ctx, env.args[0], env.args[1], o.SetDeviceRequest)
	if err != nil {
		return err
	}
	if o.json {
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

func cmdDeviceUnset(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(2, "APP_ID DEVICE_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if err := c.UnsetDevice(ctx, env.args[0], env.args[1]); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "removed the channel override of device %s\n", strings.ToLower(env.args[1]))
	return nil
}

func cmdDeviceList(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.Devices(ctx, env.args[0])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tCHANNEL\tPINNED")
	for _, d := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", d.DeviceID, dash(d.Channel), dash(d.Version))
	}
	return tw.Flush()
}
