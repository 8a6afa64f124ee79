package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"mirrord/consensus"
	"mirrord/node/adminapi"
	"mirrord/node/cluster"
	"mirrord/node/replication"
)

func init() {
	register(command{name: "cluster token", help: "Make a join token: a new node starts with\n`mirrord serve --join URL_OR_MULTIADDR --join-token TOKEN`.", setup: withOptions(cmdClusterToken)})
	register(command{name: "gc", help: "Remove blocks no release references from the node's store now (nodes also do it every replication.gc_interval).\n" +
		"Uploads younger than replication.gc_grace are kept (they may await their release); --grace 0 removes\n" +
		"them too, so run it when no publish is in progress (one would fail at its release step).", setup: withOptions(cmdGC)})
	register(command{name: "cluster remove", args: "NODE_ID", help: "Remove a node from the cluster (its id is in `mirrord status`).", setup: withOptions(cmdClusterRemove)})
}

type clusterTokenOptions struct {
	clientOptions
	ttl time.Duration
}

func (o *clusterTokenOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.DurationVar(&o.ttl, "ttl", 24*time.Hour, "how long the token can be used")
}

type gcOptions struct {
	clientOptions
	grace string
}

func (o *gcOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.StringVar(&o.grace, "grace", "", "keep unreferenced blocks younger than this, instead of the node's replication.gc_grace (0 = none)")
}

func cmdClusterToken(ctx context.Context, env *cmdEnv, o *clusterTokenOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	out, err := c.NewJoinToken(ctx, adminapi.JoinTokenRequest{TTL: o.ttl.String()})
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintln(env.stdout, out.Token)
	fmt.Fprintf(env.stderr, "join token valid until %s; start a node with --join %s --join-token TOKEN\n",
		out.ExpiresAt.Format(time.RFC3339), c.Server())
	return nil
}

func cmdClusterRemove(ctx context.Context, env *cmdEnv, o *clientOptions) error {
	if err := env.needArgs(1, "NODE_ID"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	id := env.args[0]
	if err := c.RemoveNode(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "removed node %s\n", id)
	return nil
}

func cmdGC(ctx context.Context, env *cmdEnv, o *gcOptions) error {
	if err := env.needArgs(0, "no arguments"); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	if g := o.grace; g != "" {
		if d, err := time.ParseDuration(g); err != nil || d < 0 {
			return fmt.Errorf("--grace %q: want a duration of 0 or more, like 0, 10m or 1h", g)
		}
	}
	out, err := c.GC(ctx, adminapi.GCRequest{Grace: o.grace})
	if err != nil {
		return err
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	fmt.Fprintf(env.stdout, "removed %d blocks (%s) and %d cached copies; kept %d blocks\n",
		out.BlocksRemoved, humanBytes(out.BytesFreed), out.CacheFilesRemoved, out.BlocksKept)
	return nil
}

// printStatus writes the human form of GET /admin/v1/status.
func printStatus(w io.Writer, out adminapi.Status) {
	n := out.Node
	printNodeHeader(w, n)
	nodes := out.Nodes
	if len(nodes) == 0 {
		// A node without cluster support: list the raft servers.
		for _, s := range n.Servers {
			nodes = append(nodes, cluster.NodeReport{ID: s.ID, Voter: s.Voter, Role: "?"})
		}
	}
	printNodes(w, nodes, n.LeaderID)
	if d := out.Disk; d != nil {
		fmt.Fprintln(w, diskLine(*d))
	}
	fmt.Fprintf(w, "%d app(s)\n", out.Apps)
	for _, ri := range out.Rollouts {
		fmt.Fprintln(w, rolloutLine(ri))
	}
	if len(out.Releases) > 0 {
		printReleaseBlocks(w, out.Releases, nodes)
	}
}

// printNodeHeader says which node answered, its raft view, and whether
// it has a leader.
func printNodeHeader(w io.Writer, n consensus.NodeStats) {
	fmt.Fprintf(w, "answered by %s: %s, leader %s, term %d, applied index %d, state index %d\n",
		n.ID, n.State, dash(n.LeaderID), n.Term, n.AppliedIndex, n.StateIndex)
	if n.LeaderID == "" {
		since := "never"
		if !n.LeaderContact.IsZero() {
			since = n.LeaderContact.Local().Format(time.DateTime) + " (" +
				time.Since(n.LeaderContact).Round(time.Second).String() + " ago)"
		}
		fmt.Fprintf(w, "NO LEADER: devices are answered from this node's last state; admin writes fail until quorum returns.\n"+
			"  last leader known: %s; writes made elsewhere since then may be missing here\n", since)
	}
	for _, warn := range n.Warnings {
		fmt.Fprintf(w, "WARNING at start: %s\n", warn)
	}
}

// printNodes prints the table of nodes, then the error of each node
// that could not report.
func printNodes(w io.Writer, nodes []cluster.NodeReport, leader string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tVOTER\tAPPLIED\tLAST CONTACT\tHTTP\tP2P\tRELEASES READY")
	for _, r := range nodes {
		role := r.Role
		if r.ID == leader {
			role = "Leader"
		}
		lc := "-"
		if r.LastContact != nil {
			lc = time.Since(*r.LastContact).Round(time.Millisecond).String() + " ago"
		}
		ready := 0
		for _, p := range r.Releases {
			if p.Ready {
				ready++
			}
		}
		rel := fmt.Sprintf("%d/%d", ready, len(r.Releases))
		if r.Error != "" {
			rel = "?"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%s\t%s\t%s\t%s\n", r.ID, role, r.Voter, r.AppliedIndex, lc,
			dash(r.HTTP), dash(strings.Join(r.Addrs, ",")), rel)
	}
	tw.Flush()
	for _, r := range nodes {
		if r.Error != "" {
			fmt.Fprintf(w, "node %s: %s\n", r.ID, r.Error)
		}
	}
}

// printReleaseBlocks prints, per release, the blocks each node holds.
func printReleaseBlocks(w io.Writer, releases []adminapi.ReleaseStatus, nodes []cluster.NodeReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprint(tw, "APP\tVERSION")
	for _, r := range nodes {
		fmt.Fprintf(tw, "\t%s", shortID(r.ID))
	}
	fmt.Fprintln(tw, "\t(blocks held/known per node)")
	for _, rs := range releases {
		fmt.Fprintf(tw, "%s\t%s", rs.App, rs.Version)
		for _, r := range nodes {
			fmt.Fprintf(tw, "\t%s", blocksCell(r, rs.App, rs.Version))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}

// blocksCell is one node's cell of printReleaseBlocks.
func blocksCell(r cluster.NodeReport, app, version string) string {
	cell := "-"
	for _, p := range r.Releases {
		if p.App == app && p.Version == version {
			cell = fmt.Sprintf("%d/%d", p.BlocksHeld, p.BlocksKnown)
			if p.Ready {
				cell += " ready"
			} else if p.Error != "" {
				cell += " retrying"
			}
		}
	}
	return cell
}

// shortID abbreviates a peer id for table headers.
func shortID(id string) string {
	if len(id) > 12 {
		return "…" + id[len(id)-8:]
	}
	return id
}

// diskLine is the status line about the answering node's disk.
func diskLine(d replication.DiskStatus) string {
	if d.Error != "" {
		return "disk: " + d.Error
	}
	line := fmt.Sprintf("disk: blocks use %s; %s free of %s, %s kept free", humanBytes(d.Used),
		humanBytes(d.Free), humanBytes(d.Size), humanBytes(d.MinFree))
	if d.Budget > 0 {
		line += fmt.Sprintf("; budget %s", humanBytes(d.Budget))
	}
	if d.Free < d.MinFree || (d.Budget > 0 && d.Used > d.Budget) {
		line += " -- FULL: uploads get 507; delete old releases and run `mirrord gc`"
	}
	return line
}
