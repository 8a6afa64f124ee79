package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

func init() {
	client := clientFlags
	policyFlags := func(fs *flag.FlagSet) {
		fs.String("halt-failure-rate", "", "halt when the failure `rate` (failures / (installs + failures)) is above this, e.g. 0.2")
		fs.Int64("halt-min-events", 0, "installs + failures to see before the policy acts (default 50)")
		fs.Float64("halt-confidence", 0, "confidence of the Wilson lower bound compared with the rate (default 0.95)")
		fs.String("halt-action", "", "what a halt does: pause (default) or abort")
	}
	register(command{name: "rollout start", args: "APP_ID CHANNEL", help: "Offer --version to --percent of the channel's devices (the rest keep the channel's release).\nA device's cohort is a hash of its id and the rollout: sticky, the same on every node, and raising\nthe percentage only adds devices. With --halt-failure-rate the leader pauses (or aborts) the\nrollout when failures cross the rate.", run: cmdRolloutStart})
	flagSetups["rollout start"] = client(func(fs *flag.FlagSet) {
		fs.String("version", "", "release `version` to roll out")
		fs.String("percent", "", "share of devices, 0 to 100 (two decimals: 12.25)")
		policyFlags(fs)
	})
	register(command{name: "rollout set", args: "APP_ID CHANNEL", help: "Change a rollout's percentage or halt policy.", run: cmdRolloutSet})
	flagSetups["rollout set"] = client(func(fs *flag.FlagSet) {
		fs.String("percent", "", "share of devices, 0 to 100")
		policyFlags(fs)
		fs.Bool("no-halt", false, "remove the halt policy")
	})
	for _, action := range []struct{ name, help string }{
		{"pause", "Stop offering the rollout's release to new devices (devices on it keep it)."},
		{"resume", "Offer the rollout's release again; the halt policy counts afresh from now."},
		{"promote", "Make the rollout's release the channel's release for every device."},
		{"abort", "End the rollout: every device goes back to the channel's release."},
	} {
		register(command{name: "rollout " + action.name, args: "APP_ID CHANNEL", help: action.help, run: cmdRolloutControl(action.name)})
		flagSetups["rollout "+action.name] = client(nil)
	}
	register(command{name: "rollout show", args: "APP_ID CHANNEL", help: "Show a channel's rollout and its failure rate.", run: cmdRolloutShow})
	flagSetups["rollout show"] = client(nil)

	register(command{name: "stats", args: "APP_ID", help: "Show update checks answered, downloads, installs and failures per release,\ncluster-wide and per node (counters reach the cluster every stats.report_interval).", run: cmdStats})
	flagSetups["stats"] = client(func(fs *flag.FlagSet) {
		fs.String("channel", "", "only releases this `channel` serves, rolls out or served")
		fs.String("version", "", "only this release `version`")
	})

	register(command{name: "device import", args: "APP_ID FILE.csv", help: "Set many device overrides from a CSV file: device_id,channel[,version] per line\n(a header line naming those columns is allowed; '#' starts a comment). With --remove, the\nfile lists device ids whose overrides are removed. Every row is checked before anything is\nwritten; then the file is applied in parts of 10,000 rows, one raft entry each. If a part\nfails, the rows applied so far are named, and running the same file again is safe.", run: cmdDeviceImport})
	flagSetups["device import"] = client(func(fs *flag.FlagSet) {
		fs.Bool("remove", false, "remove the listed devices' overrides instead")
	})
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

// policyFromFlags returns the halt policy the flags give, or nil.
func policyFromFlags(fs *flag.FlagSet) (*adminapi.PolicyRequest, error) {
	rate := flagString(fs, "halt-failure-rate")
	others := flagSet(fs, "halt-min-events") || flagSet(fs, "halt-confidence") || flagSet(fs, "halt-action")
	if rate == "" {
		if others {
			return nil, usagef("--halt-min-events, --halt-confidence and --halt-action need --halt-failure-rate")
		}
		return nil, nil
	}
	r, err := strconv.ParseFloat(rate, 64)
	if err != nil || !(r > 0 && r < 1) {
		return nil, usagef("--halt-failure-rate %q: want a rate between 0 and 1, e.g. 0.2", rate)
	}
	p := &adminapi.PolicyRequest{FailureRate: r}
	if v := fs.Lookup("halt-min-events").Value.(flag.Getter).Get().(int64); v != 0 {
		if v < 1 {
			return nil, usagef("--halt-min-events: want at least 1")
		}
		p.MinEvents = v
	}
	if v := fs.Lookup("halt-confidence").Value.(flag.Getter).Get().(float64); v != 0 {
		if !(v > 0 && v < 1) {
			return nil, usagef("--halt-confidence: want a number between 0 and 1, e.g. 0.95")
		}
		p.Confidence = v
	}
	if a := flagString(fs, "halt-action"); a != "" {
		if a != state.HaltPause && a != state.HaltAbort {
			return nil, usagef("--halt-action %q: want pause or abort", a)
		}
		p.Action = a
	}
	return p, nil
}

func rolloutPath(app, channel string) string {
	return "/admin/v1/apps/" + pathEsc(app) + "/channels/" + pathEsc(channel) + "/rollout"
}

func cmdRolloutStart(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	version := flagString(env.fs, "version")
	if version == "" {
		return usagef("--version is required")
	}
	if flagString(env.fs, "percent") == "" {
		return usagef("--percent is required")
	}
	bp, err := parsePercent(flagString(env.fs, "percent"))
	if err != nil {
		return err
	}
	pol, err := policyFromFlags(env.fs)
	if err != nil {
		return err
	}
	req := adminapi.StartRolloutRequest{Version: version, BasisPoints: bp, Policy: pol}
	return rolloutRequest(ctx, env, "POST", "", req)
}

func cmdRolloutSet(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	var req adminapi.UpdateRolloutRequest
	if p := flagString(env.fs, "percent"); p != "" {
		bp, err := parsePercent(p)
		if err != nil {
			return err
		}
		req.BasisPoints = &bp
	}
	pol, err := policyFromFlags(env.fs)
	if err != nil {
		return err
	}
	req.Policy, req.ClearPolicy = pol, flagBool(env.fs, "no-halt")
	if req.ClearPolicy && pol != nil {
		return usagef("--no-halt and --halt-failure-rate contradict each other")
	}
	if req.BasisPoints == nil && pol == nil && !req.ClearPolicy {
		return usagef("nothing to change: give --percent, --halt-failure-rate or --no-halt")
	}
	return rolloutRequest(ctx, env, "PATCH", "", req)
}

func cmdRolloutControl(action string) func(ctx context.Context, env *cmdEnv) error {
	return func(ctx context.Context, env *cmdEnv) error {
		if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
			return err
		}
		return rolloutRequest(ctx, env, "POST", "/"+action, nil)
	}
}

func cmdRolloutShow(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID CHANNEL"); err != nil {
		return err
	}
	return rolloutRequest(ctx, env, "GET", "", nil)
}

// rolloutRequest sends method to the rollout of APP_ID CHANNEL (plus
// suffix) and prints the rollout it answers with.
func rolloutRequest(ctx context.Context, env *cmdEnv, method, suffix string, body any) error {
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	var out adminapi.RolloutInfo
	if err := c.do(ctx, method, rolloutPath(env.args[0], env.args[1])+suffix, body, &out); err != nil {
		return err
	}
	return printRollout(env, out)
}

func printRollout(env *cmdEnv, out adminapi.RolloutInfo) error {
	if flagBool(env.fs, "json") {
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

func cmdStats(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(1, "APP_ID"); err != nil {
		return err
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	q := ""
	var params []string
	if ch := flagString(env.fs, "channel"); ch != "" {
		params = append(params, "channel="+url.QueryEscape(ch))
	}
	if v := flagString(env.fs, "version"); v != "" {
		params = append(params, "version="+url.QueryEscape(v))
	}
	if len(params) > 0 {
		q = "?" + strings.Join(params, "&")
	}
	var out adminapi.StatsAnswer
	if err := c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(env.args[0])+"/stats"+q, nil, &out); err != nil {
		return err
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	printStats(env.stdout, out)
	return nil
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

// Device imports go to the node in parts of at most importPartRows rows
// (one raft entry each) and importPartBytes of JSON, which fits the
// smallest limits.max_admin_body_bytes a node accepts.
const (
	importPartRows  = state.MaxDeviceBatch
	importPartBytes = 1<<20 - 16<<10
)

// importParts splits rows into [start, end) ranges of at most maxRows
// rows and about maxBytes of JSON each.
func importParts(rows []state.DeviceEntry, maxRows, maxBytes int) [][2]int {
	var parts [][2]int
	start, size := 0, 0
	for i, r := range rows {
		b, _ := json.Marshal(r)
		n := len(b) + 1
		if i > start && (i-start == maxRows || size+n > maxBytes) {
			parts = append(parts, [2]int{start, i})
			start, size = i, 0
		}
		size += n
	}
	if start < len(rows) {
		parts = append(parts, [2]int{start, len(rows)})
	}
	return parts
}

// testHookImportPart, when set (by tests), runs after each part of a
// device import is applied, with the part's index.
var testHookImportPart func(part int)

// cmdDeviceImport sends a CSV file of any size in parts: first every
// part as a dry run, so a bad row anywhere stops the import before
// anything is written, then every part for real, each one raft entry
// (all or nothing). A failure after some parts leaves those applied and
// says which rows they were; running the same file again is safe.
func cmdDeviceImport(ctx context.Context, env *cmdEnv) error {
	if err := env.needArgs(2, "APP_ID FILE.csv"); err != nil {
		return err
	}
	file := env.args[1]
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, lines, err := readDeviceCSV(f, flagBool(env.fs, "remove"))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	c, err := newClient(env.fs)
	if err != nil {
		return err
	}
	path := "/admin/v1/apps/" + pathEsc(env.args[0]) + "/devices"
	parts := importParts(rows, importPartRows, importPartBytes)
	send := func(p [2]int, query string) (adminapi.BulkDevicesAnswer, error) {
		var ans adminapi.BulkDevicesAnswer
		// first_row is always set: a node too old to know it refuses
		// the body instead of taking the dry run for a real import.
		req := adminapi.BulkDevicesRequest{Devices: rows[p[0]:p[1]], FirstRow: p[0] + 1}
		err := c.do(ctx, "POST", path+query, req, &ans)
		var ae *apiErr
		if errors.As(err, &ae) && ae.Row > 0 && ae.Row <= len(lines) {
			err = fmt.Errorf("line %d: %w", lines[ae.Row-1], err)
		}
		return ans, err
	}
	rowsLines := func(from, to int) string { // 0-based, inclusive
		return fmt.Sprintf("rows %d-%d (lines %d-%d)", from+1, to+1, lines[from], lines[to])
	}
	fmt.Fprintf(env.stderr, "checking %d rows of %s...\n", len(rows), file)
	for _, p := range parts {
		if _, err := send(p, "?dry_run=true"); err != nil {
			return fmt.Errorf("%s: %w (nothing was written)", file, err)
		}
	}
	out := adminapi.BulkDevicesAnswer{Checked: len(rows)}
	for i, p := range parts {
		ans, err := send(p, "")
		if err != nil {
			if out.Applied == 0 {
				return fmt.Errorf("%s: %w (nothing was written)", file, err)
			}
			return fmt.Errorf("%s: %s were applied in %d raft entries, %s were not: %w\n"+
				"running the same file again is safe: applied rows set the same overrides again",
				file, rowsLines(0, p[0]-1), out.Batches, rowsLines(p[0], len(rows)-1), err)
		}
		out.Applied += ans.Applied
		out.Batches += ans.Batches
		fmt.Fprintf(env.stderr, "applied %s: part %d of %d\n", rowsLines(p[0], p[1]-1), i+1, len(parts))
		if testHookImportPart != nil {
			testHookImportPart(i)
		}
	}
	if flagBool(env.fs, "json") {
		return printJSON(env.stdout, out)
	}
	verb := "set"
	if flagBool(env.fs, "remove") {
		verb = "removed"
	}
	fmt.Fprintf(env.stdout, "%s %d device override(s) of %s in %d raft entr(ies)\n", verb, out.Applied, env.args[0], out.Batches)
	return nil
}

// readDeviceCSV parses device_id,channel[,version] rows (or bare ids
// with remove) and returns them with the line each starts on. Line
// numbers count from 1.
func readDeviceCSV(r io.Reader, remove bool) ([]state.DeviceEntry, []int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	var out []state.DeviceEntry
	var lines []int
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first && strings.EqualFold(rec[0], "device_id") {
			continue // header
		}
		if len(rec) > 3 {
			return nil, nil, fmt.Errorf("line %d: %d columns; want device_id,channel[,version]", line, len(rec))
		}
		e := state.DeviceEntry{DeviceID: rec[0], Remove: remove}
		if rec[0] == "" {
			return nil, nil, fmt.Errorf("line %d: empty device id", line)
		}
		if !remove {
			if len(rec) > 1 {
				e.Channel = rec[1]
			}
			if len(rec) > 2 {
				e.Version = rec[2]
			}
			if e.Channel == "" && e.Version == "" {
				return nil, nil, fmt.Errorf("line %d: device %s has neither a channel nor a version", line, rec[0])
			}
		}
		out = append(out, e)
		lines = append(lines, line)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no device rows")
	}
	return out, lines, nil
}
