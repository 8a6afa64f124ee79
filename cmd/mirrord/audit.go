package main

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

func init() {
	register(command{name: "audit", help: "Show the cluster's audit log: every admin action that changed something and refused\n" +
		"requests (who: token name, what: method, route and target, when, from where, HTTP status).\n" +
		"The cluster keeps the last 5000 entries.", setup: withOptions(cmdAudit)})
}

type auditOptions struct {
	clientOptions
	since time.Duration
}

func (o *auditOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.DurationVar(&o.since, "since", 0, "only entries of the last `duration` (e.g. 24h; 0: all)")
}

func cmdAudit(ctx context.Context, env *cmdEnv, o *auditOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	var since int64
	if o.since > 0 {
		since = time.Now().Add(-o.since).UnixMilli()
	}
	out, err := c.Audit(ctx, since)
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	if len(out) == 0 {
		fmt.Fprintln(env.stdout, "no audit entries")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTOKEN\tSTATUS\tACTION\tTARGET\tFROM")
	for _, e := range out {
		keys := make([]string, 0, len(e.Target))
		for k := range e.Target {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var target []string
		for _, k := range keys {
			target = append(target, k+"="+e.Target[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s %s\t%s\t%s\n", msTime(e.At), orDash(e.Token), e.Status, e.Method, e.Route,
			orDash(strings.Join(target, " ")), orDash(e.Remote))
	}
	return tw.Flush()
}
