//go:build linux

// Command wan runs mirrord over a WAN it builds on this machine: a hub
// and PoPs, each a real `mirrord serve` process in its own network
// namespace, joined by links in user space (TUN devices and this
// process as the forwarder) with latency, jitter, loss and a rate
// limit. It publishes a release on the hub, measures when each PoP
// holds it against one plain TCP copy of the same bytes over such a
// link, counts the hub's egress, cuts a PoP off and heals it, kills the
// leader, and prints a table. It needs root. docs/wan.md says more.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "wan:", err)
		os.Exit(2)
	}
	if err := canRun(); err != nil {
		fmt.Fprintln(os.Stderr, "wan:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Bin == "" {
		if o.Bin, err = buildMirrordIn(o.Dir); err != nil {
			fmt.Fprintln(os.Stderr, "wan:", err)
			os.Exit(1)
		}
	}
	r, err := run(ctx, o)
	if r != nil {
		printTable(os.Stdout, o, r)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wan:", err)
		fmt.Fprintln(os.Stderr, "wan: logs are in", o.Dir)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("wan", flag.ContinueOnError)
	var o options
	rtts := fs.String("rtt", "50ms", "hub-PoP round trip times, comma-separated, cycled over the PoPs (e.g. 20ms,80ms,150ms)")
	rate := fs.Float64("rate", 100, "link rate per direction in Mbit/s (0: unlimited)")
	size := fs.Int64("size", 20, "release size in MB (10^6 bytes)")
	fs.StringVar(&o.Bin, "bin", "", "mirrord binary (default: go build ./cmd/mirrord)")
	fs.StringVar(&o.Dir, "dir", "", "directory for data and logs (default: a new temporary one)")
	fs.IntVar(&o.PoPs, "pops", 3, "number of PoPs (1-8)")
	fs.DurationVar(&o.Jitter, "jitter", 2*time.Millisecond, "jitter per direction (never reorders)")
	fs.Float64Var(&o.Loss, "loss", 0.005, "packet loss per direction (0.005 = 0.5%)")
	fs.DurationVar(&o.Partition, "partition", 15*time.Second, "how long the last PoP is cut off")
	fs.DurationVar(&o.Wait, "wait", 120*time.Second, "bound of each wait (copy, replication, catch-up, failover)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.PoPs < 1 || o.PoPs > 8 {
		return o, fmt.Errorf("-pops %d: want 1 to 8", o.PoPs)
	}
	for _, f := range strings.Split(*rtts, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d < 0 {
			return o, fmt.Errorf("-rtt %q: %v", f, err)
		}
		o.RTTs = append(o.RTTs, d)
	}
	o.Rate, o.Size = *rate*1e6, *size*1e6
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "mirrord-wan-")
		if err != nil {
			return o, err
		}
		o.Dir = d
	}
	return o, nil
}

// buildMirrordIn builds cmd/mirrord into dir (run from the repository).
func buildMirrordIn(dir string) (string, error) {
	bin := filepath.Join(dir, "mirrord")
	cmd := exec.Command("go", "build", "-o", bin, "mirrord/cmd/mirrord")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build mirrord: %w\n%s", err, out)
	}
	return bin, nil
}

// printTable writes the result as a Markdown table.
func printTable(w io.Writer, o options, r *result) {
	mb := float64(o.Size) / 1e6
	fmt.Fprintf(w, "hub + %d PoPs, RTT %v, jitter %v, loss %.2f%%, %.0f Mbit/s, release %.1f MB\n\n",
		o.PoPs, o.RTTs, o.Jitter, o.Loss*100, o.Rate/1e6, mb)
	fmt.Fprintln(w, "| measure | value |")
	fmt.Fprintln(w, "|---|---|")
	row := func(k, f string, a ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(f, a...)) }
	row(fmt.Sprintf("plain TCP copy, hub -> PoP at %v RTT", r.BaselineRTT), "%s (%.1f Mbit/s)", sec(r.Baseline), rateMbit(o.Size, r.Baseline))
	row("publish (CLI, controller -> hub, unshaped)", "%s", sec(r.Publish))
	for _, p := range r.PoPs {
		v := "not within the wait"
		if p.Ready > 0 {
			v = fmt.Sprintf("%s (%.2fx the TCP copy)", sec(p.Ready), p.Ready.Seconds()/r.Baseline.Seconds())
		}
		row(fmt.Sprintf("%s (RTT %v) holds the release after", p.Name, p.RTT), "%s", v)
	}
	if len(r.PoPs) > 0 {
		row("release objects (zip + manifest files)", "%.1f MB", float64(r.ReleaseBytes)/1e6)
		x := 0.0
		if r.ReleaseBytes > 0 {
			x = float64(r.HubEgress) / float64(r.ReleaseBytes)
		}
		row("hub egress to PoPs during replication (IP bytes)", "%.1f MB = %.2fx the release objects (%.2fx per PoP; %d packets dropped by the links)",
			float64(r.HubEgress)/1e6, x, x/float64(len(r.PoPs)), r.LinkLoss)
		row("duplicate blocks received (all PoPs)", "%d", r.DupBlocks)
	}
	if r.PartitionPoP != "" {
		row(fmt.Sprintf("%s cut off %v: its device checks", r.PartitionPoP, o.Partition), "%s", r.PartitionCheck)
		what := "state caught up"
		if r.PartitionPublish {
			what = "state caught up, release published meanwhile held"
		}
		row("catch-up after the heal ("+what+")", "%s", sec(r.CatchUp))
	}
	if r.KilledLeader != "" {
		row(fmt.Sprintf("leader (%s) killed: device checks on the others", r.KilledLeader), "%s", r.KillChecks)
		row("a new leader named after", "%s", sec(r.NewLeader))
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "\nnote:", n)
	}
}

func sec(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func rateMbit(n int64, d time.Duration) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1e6
}
