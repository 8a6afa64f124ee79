package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "token create", help: "Make an operator token valid on every node. With --read-only (required for now) it can read\nthe admin API and the dashboard (status, apps, channels, releases, rollouts, stats, device\nlookup) but not change anything. Only its SHA-256 digest is stored in the cluster.", setup: withOptions(cmdTokenCreate)})
	register(command{name: "token list", help: "List read-only tokens (by id, the digest of the token; tokens themselves are not stored).", setup: withOptions(cmdTokenList)})
	register(command{name: "token revoke", args: "ID", help: "Revoke a read-only token by its id (or a unique prefix of at least 8 characters).", setup: withOptions(cmdTokenRevoke)})
}

type tokenCreateOptions struct {
	clientOptions
	readOnly bool
}

func (o *tokenCreateOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.BoolVar(&o.readOnly, "read-only", false, "a token that can view but not change anything")
}

func cmdTokenCreate(ctx context.Context, env *cmdEnv, o *tokenCreateOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	if !o.readOnly {
		return usagef("mirrord token create: pass --read-only (the admin token is DATA/admin.token on a node; join tokens come from `mirrord cluster token`)")
	}
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
	fmt.Fprintf(env.stderr, "read-only token %s made: it can view (dashboard at %s/ui/, status, stats) but not change anything;\n"+
		"it is shown only now. Revoke it with `mirrord token revoke %s`.\n", out.ID[:12], c.Server(), out.ID[:12])
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
	out, err := c.ReadTokens(ctx)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(env.stdout, "no read-only tokens (make one with `mirrord token create --read-only`)")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tCREATED")
	for _, t := range out {
		fmt.Fprintf(tw, "%s\tread-only\t%s\n", t.ID, time.UnixMilli(t.CreatedAt).UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdTokenRevoke(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	id := strings.ToLower(env.args[0])
	if len(id) < 64 {
		if len(id) < 8 {
			return usagef("mirrord token revoke: give the token id (from `mirrord token list`) or at least 8 of its first characters")
		}
		list, err := c.ReadTokens(ctx)
		if err != nil {
			return err
		}
		var match []string
		for _, t := range list {
			if strings.HasPrefix(t.ID, id) {
				match = append(match, t.ID)
			}
		}
		switch len(match) {
		case 0:
			return fmt.Errorf("no read-only token id starts with %s (see `mirrord token list`)", id)
		case 1:
			id = match[0]
		default:
			return fmt.Errorf("%d read-only tokens start with %s: give more characters", len(match), id)
		}
	}
	if err := c.DeleteReadToken(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked read-only token %s\n", id)
	return nil
}
