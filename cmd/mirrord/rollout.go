package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "rollout start", args: "APP_ID CHANNEL", help: "Offer --version to --percent of the channel's devices (the rest keep the channel's release).\nA device's cohort is a hash of its id and the rollout: sticky, the same on every node, and raising\nthe percentage only adds devices. With --halt-failure-rate the leader pauses (or aborts) the\nrollout when failures cross the rate.", setup: withOptions(cmdRolloutStart)})
	register(command{name: "rollout set", args: "APP_ID CHANNEL", help: "Change a rollout's percentage or halt policy.", setup: withOptions(cmdRolloutSet)})
	for _, action := range []struct{ name, help string }{
		{"pause", "Stop offering the rollout's release to new devices (devices on it keep it)."},
		{"resume", "Offer the rollout's release again; the halt policy counts afresh from now."},
		{"promote", "Make the rollout's release the channel's release for every device."},
		{"abort", "End the rollout: every device goes back to the channel's release."},
	} {
		register(command{name: "rollout " + action.name, args: "APP_ID CHANNEL", help: action.help, setup: withOptions(cmdRolloutControl(action.name))})
	}
	register(command{name: "rollout show", args: "APP_ID CHANNEL", help: "Show a channel's rollout and its failure rate.", setup: withOptions(cmdRolloutShow)})

	register(command{name: "stats", args: "APP_ID", help: "Show update checks answered, downloads, installs and failures per release,\ncluster-wide and per node (counters reach the cluster every stats.report_interval).\nWith --since DURATION (24h, 7d; at most 8 days): the counts of that last period per release,\nfrom the hourly history every node keeps alike; --hourly lists them hour by hour.", setup: withOptions(cmdStats)})
}

// policyOptions are the halt policy flags of `rollout start` and
// `rollout set`.
type policyOptions struct {
	rate, action string
	minEvents    int64
	confidence   float64
}

func (o *policyOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.rate, "halt-failure-rate", "", "halt when the failure `rate` (failures / (installs + failures)) is above this, e.g. 0.2")
	fs.Int64Var(&o.minEvents, "halt-min-events", 0, "installs + failures to see before the policy acts (default 50)")
	fs.Float64Var(&o.confidence, "halt-confidence", 0, "confidence of the Wilson lower bound compared with the rate (default 0.95)")
	fs.StringVar(&o.action, "halt-action", "", "what a halt does: pause (default) or abort")
}

type rolloutStartOptions struct {
	clientOptions
	policyOptions
	version, percent string
}

func (o *rolloutStartOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.version, "version", "", "release `version` to roll out")
	fs.StringVar(&o.percent, "percent", "", "share of devices, 0 to 100 (two decimals: 12.25)")
	o.policyOptions.bind(fs)
}

type rolloutSetOptions struct {
	clientOptions
	policyOptions
	percent string
	noHalt  bool
}

func (o *rolloutSetOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.percent, "percent", "", "share of devices, 0 to 100")
	o.policyOptions.bind(fs)
	fs.BoolVar(&o.noHalt, "no-halt", false, "remove the halt policy")
}

// parsePercent turns "12.5" into 1250 basis points.
func parsePercent(s string) (int, error) {
	p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
		return 0, usagef("--percent %q: want a number from 0 to 100", s)
	}
	bp := math.Round(p * 100)
	if math.Abs(bp-p*100) > 1e-6 {
		return 0, usagef("--percent %q: at most two decimals (basis points)", s)
	}
	return int(bp), nil
}

// policy returns the halt policy the flags give, or nil.
func (o *policyOptions) policy(env *cmdEnv) (*adminapi.PolicyRequest, error) {
	others := env.given("halt-min-events") || env.given("halt-confidence") || env.given("halt-action")
	if o.rate == "" {
		if others {
			return nil, usagef("--halt-min-events, --halt-confidence and --halt-action need --halt-failure-rate")
		}
		return nil, nil
	}
	r, err := strconv.ParseFloat(o.rate, 64)
	if err != nil || !(r > 0 && r < 1) {
		return nil, usagef("--halt-failure-rate %q: want a rate between 0 and 1, e.g. 0.2", o.rate)
	}
	p := &adminapi.PolicyRequest{FailureRate: r}
	if v := o.minEvents; v != 0 {
		if v < 1 {
			return nil, usagef("--halt-min-events: want at least 1")
		}
		p.MinEvents = v
	}
	if v := o.confidence; v != 0 {
		if !(v > 0 && v < 1) {
			return nil, usagef("--halt-confidence: want a number between 0 and 1, e.g. 0.95")
		}
		p.Confidence = v
	}
	if a := o.action; a != "" {
		if a != state.HaltPause && a != state.HaltAbort {
			return nil, usagef("--halt-action %q: want pause or abort", a)
		}
		p.Action = a
	}
	return p, nil
}

func cmdRolloutStart(ctx context.Context, env *cmdEnv, o *rolloutStartOptions) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	if o.version == "" {
		return usagef("--version is required")
	}
	if o.percent == "" {
		return usagef("--percent is required")
	}
	bp, err := parsePercent(o.percent)
	if err != nil {
		return err
	}
	pol, err := o.policy(env)
	if err != nil {
		return err
	}
	req := adminapi.StartRolloutRequest{Version: o.version, BasisPoints: bp, Policy: pol}
	return rolloutRequest(ctx, env, &o.clientOptions, func(c *adminapi.Client, app, ch string) (adminapi.RolloutInfo, error) {
		return c.StartRollout(ctx, app, ch, req)
	})
}

func cmdRolloutSet(ctx context.Context, env *cmdEnv, o *rolloutSetOptions) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	var req adminapi.UpdateRolloutRequest
	if p := o.percent; p != "" {
		bp, err := parsePercent(p)
		if err != nil {
			return err
		}
		req.BasisPoints = &bp
	}
	pol, err := o.policy(env)
	if err != nil {
		return err
	}
	req.Policy, req.ClearPolicy = pol, o.noHalt
	if req.ClearPolicy && pol != nil {
		return usagef("--no-halt and --halt-failure-rate contradict each other")
	}
	if req.BasisPoints == nil && pol == nil && !req.ClearPolicy {
		return usagef("nothing to change: give --percent, --halt-failure-rate or --no-halt")
	}
	return rolloutRequest(ctx, env, &o.clientOptions, func(c *adminapi.Client, app, ch string) (adminapi.RolloutInfo, error) {
		return c.UpdateRollout(ctx, app, ch, req)
	})
}

func cmdRolloutControl(action string) func(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	return func(ctx context.Context, env *cmdEnv, o *clientOptions) error {
		if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
			return err
		}
		return rolloutRequest(ctx, env, o, func(c *adminapi.Client, app, ch string) (adminapi.RolloutInfo, error) {
			return c.ControlRollout(ctx, app, ch, action)
		})
	}
}

func cmdRolloutShow(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	return rolloutRequest(ctx, env, o, func(c *adminapi.Client, app, ch string) (adminapi.RolloutInfo, error) {
		return c.Rollout(ctx, app, ch)
	})
}

// rolloutRequest calls the rollout of APP_ID CHANNEL with call and
// prints the rollout it answers with.
func rolloutRequest(ctx context.Context, env *cmdEnv, o *clientOptions, call func(c *adminapi.Client, app, channel string) (adminapi.RolloutInfo, error)) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := call(c, env.args[0], env.args[1])
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintln(env.stdout, rolloutLine(out))
	return nil
}

// rolloutLine describes a rollout in one or two lines.
func rolloutLine(ri adminapi.RolloutInfo) string {
	r := ri.Rollout
	if r == nil {
		return fmt.Sprintf("%s/%s: no rollout; every device gets %s", ri.App, ri.Channel, dash(ri.Stable))
	}
	var b strings.Builder
	switch r.State {
	case state.RolloutPromoted:
		fmt.Fprintf(&b, "%s/%s: rollout of %s promoted; every device gets %s", ri.App, ri.Channel, r.Version, dash(ri.Stable))
	case state.RolloutAborted:
		fmt.Fprintf(&b, "%s/%s: rollout of %s aborted; every device gets %s", ri.App, ri.Channel, r.Version, dash(ri.Stable))
	default:
		fmt.Fprintf(&b, "%s/%s: %s to %.2f%% of devices (%s), the rest get %s", ri.App, ri.Channel, r.Version,
			ri.Percent, r.State, dash(ri.Stable))
	}
	fmt.Fprintf(&b, "\n  since start: %d installs, %d failures (rate %.3f)", ri.Since.Installs, ri.Since.Failures, ri.FailureRate)
	if p := r.Policy; p != nil {
		fmt.Fprintf(&b, "; halt policy: %s when the failure rate's %.0f%% lower bound exceeds %.3f after %d events",
			p.Action, p.Confidence*100, p.FailureRate, p.MinEvents)
	}
	if h := r.Halt; h != nil {
		fmt.Fprintf(&b, "\n  HALTED (%s) at %s: %s", h.Action, time.UnixMilli(h.At).UTC().Format(time.RFC3339), h.Reason)
	}
	return b.String()
}

type statsOptions struct {
	clientOptions
	channel, version string
	since            sinceFlag
	hourly           bool
}

func (o *statsOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.channel, "channel", "", "only releases this `channel` serves, rolls out or served")
	fs.StringVar(&o.version, "version", "", "only this release `version`")
	fs.Var(&o.since, "since", "show the counts of the last `DURATION` (e.g. 24h, 7d; at most 8 days) from the hourly history")
	fs.BoolVar(&o.hourly, "hourly", false, "with --since: one row per hour and release")
}

// sinceFlag is a history window: a duration or a number of days.
type sinceFlag time.Duration

func (s *sinceFlag) String() string {
	if *s == 0 {
		return ""
	}
	return time.Duration(*s).String()
}

func (s *sinceFlag) Set(v string) error {
	d, err := adminapi.ParseSince(v)
	if err != nil {
		return err
	}
	*s = sinceFlag(d)
	return nil
}

func cmdStats(ctx context.Context, env *cmdEnv, o *statsOptions) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if o.hourly && o.since == 0 {
		return usagef("--hourly needs --since")
	}
	out, err := c.StatsFor(ctx, env.args[0], adminapi.StatsQuery{Channel: o.channel, Version: o.version, Since: time.Duration(o.since)})
	if err != nil {
		return err
	}
	switch {
	case o.json:
		return printJSON(env.stdout, out)
	case out.History != nil && o.hourly:
		printHourly(env.stdout, out.History)
	case out.History != nil:
		printWindow(env.stdout, out.History)
	default:
		printStats(env.stdout, out)
	}
	return nil
}

// windowLine says which hours a history answer covers, and why it may
// miss counts.
func windowLine(h *adminapi.StatsHistory) string {
	const layout = "2006-01-02 15:04"
	s := fmt.Sprintf("hourly counts, cluster-wide, from %s to %s UTC", time.UnixMilli(h.From).UTC().Format(layout),
		time.UnixMilli(h.To).UTC().Format(layout))
	if len(h.WaitingFor) > 0 {
		s += fmt.Sprintf("\nnot recording: waiting for %s to run a build that keeps the history (counters go on)",
			strings.Join(h.WaitingFor, ", "))
	}
	return s
}

// printWindow prints one row per release: its counts over the window,
// the hours with counts and the busiest one.
func printWindow(w io.Writer, h *adminapi.StatsHistory) {
	fmt.Fprintln(w, windowLine(h))
	if len(h.Releases) == 0 {
		fmt.Fprintln(w, "no releases match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tCHECKS\tDOWNLOADS\tINSTALLS\tFAILURES\tFAIL RATE\tHOURS\tBUSIEST HOUR")
	for _, r := range h.Releases {
		busiest := "-"
		var top int64
		for _, b := range r.Buckets {
			if n := b.Offered + b.Installs + b.Failures + b.Downloads; n > top {
				top, busiest = n, time.UnixMilli(b.Hour).UTC().Format("01-02 15:00")
			}
		}
		t := r.Total
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.3f\t%d\t%s\n", r.Version, t.Offered, t.Downloads, t.Installs, t.Failures,
			t.FailureRate, len(r.Buckets), busiest)
	}
	tw.Flush()
}

// printHourly prints one row per hour and release with counts, oldest
// first.
func printHourly(w io.Writer, h *adminapi.StatsHistory) {
	fmt.Fprintln(w, windowLine(h))
	type row struct {
		hour    int64
		version string
		b       state.Bucket
	}
	var rows []row
	for _, r := range h.Releases {
		for _, b := range r.Buckets {
			rows = append(rows, row{b.Hour, r.Version, b})
		}
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no counts in this period")
		return
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].hour < rows[j].hour })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOUR (UTC)\tVERSION\tCHECKS\tDOWNLOADS\tINSTALLS\tFAILURES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", time.UnixMilli(r.hour).UTC().Format("2006-01-02 15:00"), r.version,
			r.b.Offered, r.b.Downloads, r.b.Installs, r.b.Failures)
	}
	tw.Flush()
}

func printStats(w io.Writer, out adminapi.StatsAnswer) {
	for _, ri := range out.Rollouts {
		fmt.Fprintln(w, rolloutLine(ri))
	}
	if len(out.Releases) == 0 {
		fmt.Fprintln(w, "no releases match")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tNODE\tCHECKS\tDOWNLOADS\tINSTALLS\tFAILURES\tFAIL RATE\tTOP FAILURES\tCHANNELS")
	row := func(version, nodeID string, v adminapi.CounterView, chs string) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%.3f\t%s\t%s\n", version, nodeID, v.Offered, v.Downloads,
			v.Installs, v.Failures, v.FailureRate, topFailures(v.ByAction), chs)
	}
	for _, rs := range out.Releases {
		row(rs.Version, "(all)", rs.Total, dash(strings.Join(rs.Channels, ",")))
		for _, n := range rs.Nodes {
			row("", shortID(n.Node), n.CounterView, "")
		}
	}
	tw.Flush()
}

// topFailures lists the three most frequent failure actions.
func topFailures(m map[string]int64) string {
	type kv struct {
		k string
		v int64
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool {
		if l[i].v != l[j].v {
			return l[i].v > l[j].v
		}
		return l[i].k < l[j].k
	})
	var parts []string
	for i, e := range l {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s=%d", e.k, e.v))
	}
	return dash(strings.Join(parts, " "))
}
