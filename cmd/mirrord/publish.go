package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"mirrord/node/publish"
)

func init() {
	register(command{name: "publish", args: "PATH", help: "Publish a release from a directory or a zip.\nWith --key the zip and every manifest file are encrypted (Capgo v2); a bundle holding an empty file is then\nserved as a zip only, without a delta manifest (Capgo's Android plugin fails an encrypted manifest with an\nempty file). With --session-key and --checksum, PATH is a zip the Capgo CLI already encrypted\n(`npx @capgo/cli bundle encrypt`).", setup: withOptions(cmdPublish)})
}

type publishOptions struct {
	clientOptions
	publish.Options
}

func (o *publishOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	p := &o.Options
	fs.StringVar(&p.App, "app", "", "app `id` (required)")
	fs.StringVar(&p.Version, "version", "", "release `version`, semver (required)")
	fs.StringVar(&p.Channel, "channel", "", "point this `channel` at the release (created if missing)")
	fs.StringVar(&p.Key, "key", "", "private key `PEM` to encrypt with (Capgo v2)")
	fs.StringVar(&p.SessionKey, "session-key", "", "ivSessionKey printed by `capgo bundle encrypt` (PATH is its encrypted zip)")
	fs.StringVar(&p.Checksum, "checksum", "", "checksum printed by `capgo bundle encrypt`")
	fs.StringVar(&p.MinNative, "min-native", "", "minimum native `version` (Capgo min_update_version, for --disable-auto-update version_number)")
	fs.BoolVar(&p.Plain, "plain", false, "publish unencrypted even though the app has a public key")
	fs.BoolVar(&p.FreshKey, "fresh-session-key", false, "with --key, encrypt with a new random session key instead of reusing the one (AES key and IV)\n"+
		"of the app's latest release encrypted with this key. Reuse keeps unchanged manifest files\n"+
		"byte-identical, so nodes store and replicate only the changed ones; the cost is that anyone who\n"+
		"sees both releases' encrypted bytes can tell which files are identical and how long a changed\n"+
		"file's (or the zip's) common prefix with its old version is, to 16 bytes; nothing else")
}

// usageOf makes a refusal of contradictory publish options a usage
// error (exit code 2).
func usageOf(err error) error {
	if errors.Is(err, publish.ErrOptions) {
		return usageError{err.Error()}
	}
	return err
}

func cmdPublish(ctx context.Context, env *cmdEnv, o *publishOptions) error {
	if err := env.needArgs(1, "PATH (a directory or a zip)"); err != nil {
		return err
	}
	o.Path = env.args[0]
	if err := o.Check(); err != nil {
		return usageOf(err)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	o.Server = c.Server()
	// With --json stdout holds only the JSON answer.
	note := env.stdout
	if o.json {
		note = env.stderr
	}
	if isTerminal(env.stderr) {
		o.Progress = &uploadProgress{w: env.stderr}
	}
	res, err := publish.Publish(ctx, c, o.Options, note)
	if err != nil {
		return usageOf(err)
	}
	rel := res.Release
	if o.json {
		return printJSON(env.stdout, rel)
	}
	kind := "plain"
	if rel.Encrypted() {
		kind = "encrypted, key_id " + rel.KeyID
	}
	manifest := fmt.Sprintf("%d manifest files", len(rel.Manifest))
	if res.NoManifest != "" {
		manifest = fmt.Sprintf("no manifest: %d empty files, see above", len(res.EmptyFiles))
	}
	fmt.Fprintf(env.stdout, "published %s %s (%s; zip %s, %s, %s uploaded)\n", o.App, o.Version, kind,
		humanBytes(rel.ZipSize), manifest, humanBytes(res.Uploaded))
	if o.Channel != "" {
		fmt.Fprintf(env.stdout, "channel %s now serves %s\n", o.Channel, o.Version)
	}
	return nil
}
