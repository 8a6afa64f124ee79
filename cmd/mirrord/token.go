package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "token create", args: "NAME", help: "Make a named operator token valid on every node, shown only now (the cluster keeps its SHA-256\n" +
		"digest). --scope admin: everything; read: view but not change anything (also --read-only);\n" +
		"publish --apps A,B: upload, create releases and set or roll back channels of those apps only.\n" +
		"`token create --read-only` without a NAME makes an unnamed read-only token, as older versions did.", setup: withOptions(cmdTokenCreate)})
	register(command{name: "token list", help: "List operator tokens: name, scope, apps, created, by whom, last use (secrets are not stored).", setup: withOptions(cmdTokenList)})
	register(command{name: "token revoke", args: "NAME|ID", help: "Revoke a token on every node by its name (or its id, or a unique prefix of at least 8 characters).", setup: withOptions(cmdTokenRevoke)})
	register(command{name: "token rotate", args: "NAME", help: "Give a token a new secret, shown only now; the old one stops working on every node.\n" +
		"`mirrord token rotate admin` rotates the first admin token: every node that is up rewrites its\n" +
		"DATA/admin.token with the new one.", setup: withOptions(cmdTokenRotate)})
}

type tokenCreateOptions struct {
	clientOptions
	readOnly bool
	scope    string
	apps     string
}

func (o *tokenCreateOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.BoolVar(&o.readOnly, "read-only", false, "a token that can view but not change anything (--scope read)")
	fs.StringVar(&o.scope, "scope", "", "`scope`: admin, read or publish")
	fs.StringVar(&o.apps, "apps", "", "comma-separated `apps` a publish token may publish to")
}

func cmdTokenCreate(ctx context.Context, env *cmdEnv, o *tokenCreateOptions) error {
	if len(env.args) == 0 && o.readOnly && o.scope == "" {
		return createLegacyReadToken(ctx, env, o)
	}
	if err := env.needArgs(1, "NAME"); err != nil || (o.scope == "" && !o.readOnly) {
		return usagef("mirrord token create NAME --scope admin|read|publish [--apps A,B], or --read-only " +
			"(the first admin token is DATA/admin.token on a node; join tokens come from `mirrord cluster token`)")
	}
	scope := o.scope
	if o.readOnly {
		if scope != "" && scope != "read" {
			return usagef("--read-only and --scope %s disagree", scope)
		}
		scope = "read"
	}
	var apps []string
	for a := range strings.SplitSeq(o.apps, ",") {
		if a = strings.TrimSpace(a); a != "" {
			apps = append(apps, a)
		}
	}
	if (scope == "publish") != (len(apps) > 0) {
		return usagef("--apps goes with --scope publish, and a publish token needs --apps")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.CreateToken(ctx, adminapi.TokenRequest{Name: env.args[0], Scope: scope, Apps: apps})
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintln(env.stdout, out.Secret)
	fmt.Fprintf(env.stderr, "%s token %q made; it is shown only now. Revoke it with `mirrord token revoke %s`.\n",
		out.Scope, out.Name, out.Name)
	return nil
}

// createLegacyReadToken is `token create --read-only` without a name.
func createLegacyReadToken(ctx context.Context, env *cmdEnv, o *tokenCreateOptions) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.CreateReadToken(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintln(env.stdout, out.Token)
	fmt.Fprintf(env.stderr, "read-only token read-%s made: it can view (dashboard at %s/ui/, status, stats) but not change anything;\n"+
		"it is shown only now. Revoke it with `mirrord token revoke read-%s`.\n", out.ID[:12], c.Server(), out.ID[:12])
	return nil
}

func cmdTokenList(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.Tokens(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tAPPS\tCREATED\tBY\tLAST USE\tID")
	for _, t := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Scope, orDash(strings.Join(t.Apps, ",")),
			msTime(t.CreatedAt), orDash(t.CreatedBy), msTime(t.LastUsed), t.ID[:12])
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func msTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339)
}

var hexPrefixRE = regexp.MustCompile(`^[0-9a-f]{8,64}$`)

func cmdTokenRevoke(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "NAME|ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	t, err := findToken(ctx, c, env.args[0])
	if err != nil {
		return err
	}
	if err := c.RevokeToken(ctx, t.Name); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked %s token %s (id %s)\n", t.Scope, t.Name, t.ID)
	return nil
}

// findToken finds a token by name, else by id or a unique id prefix of
// at least 8 characters (the ids older versions showed).
func findToken(ctx context.Context, c *adminapi.Client, arg string) (adminapi.TokenInfo, error) {
	list, err := c.Tokens(ctx)
	if err != nil {
		return adminapi.TokenInfo{}, err
	}
	var match []adminapi.TokenInfo
	for _, t := range list {
		if t.Name == arg {
			return t, nil
		}
		if id := strings.ToLower(arg); hexPrefixRE.MatchString(id) && strings.HasPrefix(t.ID, id) {
			match = append(match, t)
		}
	}
	switch len(match) {
	case 0:
		return adminapi.TokenInfo{}, usagef("no token named %q, nor an id of at least 8 characters starting so (see `mirrord token list`)", arg)
	case 1:
		return match[0], nil
	}
	return adminapi.TokenInfo{}, fmt.Errorf("%d token ids start with %s: give more characters", len(match), arg)
}

func cmdTokenRotate(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "NAME"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.RotateToken(ctx, env.args[0])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintln(env.stdout, out.Secret)
	msg := "the old secret no longer works on any node; the new one is shown only now."
	if out.Name == "admin" {
		msg += " Nodes that are up now hold it in DATA/admin.token; copy it to nodes that were down."
	}
	fmt.Fprintf(env.stderr, "token %q rotated: %s\n", out.Name, msg)
	return nil
}
