package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/content"
	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "keys create", help: "Create a Capgo-compatible RSA-2048 key pair (PKCS#1 PEM) in --out DIR.\nThe private key encrypts bundles (keep it off the servers); the public key goes into the app's\ncapacitor config (publicKey) and into `mirrord app create --public-key`.", setup: withOptions(cmdKeysCreate)})

	register(command{name: "app create", args: "APP_ID", help: "Register an app (reverse-domain id as in capacitor.config).", setup: withOptions(cmdAppCreate)})
	register(command{name: "app delete", args: "APP_ID", help: "Delete an app with its device overrides and statistics.\nRefused while a rollout of the app is active or paused, and, without --force, while the app has releases or channels.\nThe blocks of its releases are removed by the next garbage collection; devices asking for the app get app_not_found.", setup: withOptions(cmdAppDelete)})
	register(command{name: "app list", help: "List apps.", setup: withOptions(cmdAppList)})

	register(command{name: "release list", args: "APP_ID", help: "List an app's releases.", setup: withOptions(cmdReleaseList)})
	register(command{name: "release delete", args: "APP_ID VERSION", help: "Delete a release that no channel points at.", setup: withOptions(cmdReleaseDelete)})

	register(command{name: "status", help: "Show every node of the cluster: role, leader, applied index, last contact, and the blocks of each release it holds.\nWith --watch, redraw it (with replication progress bars on a terminal) until Ctrl-C.", setup: withOptions(cmdStatus)})
}

type keysCreateOptions struct{ out string }

func (o *keysCreateOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.out, "out", ".", "output `dir`")
}

func cmdKeysCreate(ctx context.Context, env *cmdEnv, o *keysCreateOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	dir := o.out
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

type appCreateOptions struct {
	clientOptions
	publicKey string
}

func (o *appCreateOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.publicKey, "public-key", "", "the app's Capgo public key `PEM` file (for encrypted bundles)")
}

func cmdAppCreate(ctx context.Context, env *cmdEnv, o *appCreateOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	req := adminapi.CreateAppRequest{ID: env.args[0]}
	if p := o.publicKey; p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("--public-key: %w", err)
		}
		if _, err := content.ParsePublicKey(b); err != nil {
			return fmt.Errorf("--public-key %s: %w", p, err)
		}
		req.PublicKey = string(b)
	}
	out, err := c.CreateApp(ctx, req)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	if out.KeyID != "" {
		fmt.Fprintf(env.stdout, "created app %s (encrypted bundles, key_id %s)\n", out.ID, out.KeyID)
	} else {
		fmt.Fprintf(env.stdout, "created app %s (plain bundles)\n", out.ID)
	}
	return nil
}

type appDeleteOptions struct {
	clientOptions
	force bool
}

func (o *appDeleteOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.BoolVar(&o.force, "force", false, "also delete the app's releases and channels")
}

func cmdAppDelete(ctx context.Context, env *cmdEnv, o *appDeleteOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.DeleteApp(ctx, env.args[0], o.force)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintf(env.stdout, "deleted app %s (%d release(s), %d channel(s), %d device override(s)); "+
		"the next garbage collection frees its blocks\n", out.ID, out.Releases, out.Channels, out.Devices)
	return nil
}

func cmdAppList(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.Apps(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tKEY_ID\tCHANNELS\tRELEASES\tDEVICE OVERRIDES")
	for _, a := range out {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", a.ID, dash(a.KeyID), a.Channels, a.Releases, a.Devices)
	}
	return tw.Flush()
}

func cmdReleaseList(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	// The table shows only the count of manifest files.
	out, err := c.Releases(ctx, env.args[0], o.json)
	if err != nil {
		return err
	}
	if o.json {
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

func cmdReleaseDelete(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(2, "APP_ID VERSION"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if err := c.DeleteRelease(ctx, env.args[0], env.args[1]); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "deleted release %s of %s\n", env.args[1], env.args[0])
	return nil
}

type statusOptions struct {
	clientOptions
	watch    bool
	interval time.Duration
}

func (o *statusOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.BoolVar(&o.watch, "watch", false, "refresh until interrupted")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "refresh `interval` with --watch")
}

func cmdStatus(ctx context.Context, env *cmdEnv, o *statusOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if o.watch {
		if o.json {
			return usagef("--watch and --json do not go together; poll `status --json` instead")
		}
		if o.interval < 100*time.Millisecond {
			return usagef("--interval %s is too short (at least 100ms)", o.interval)
		}
		return watchStatus(ctx, c, env.stdout, o.interval, isTerminal(env.stdout))
	}
	out, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	printStatus(env.stdout, out)
	return nil
}
