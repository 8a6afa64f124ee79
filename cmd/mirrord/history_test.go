package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// historyNodeConfig is the config of the history test's nodes: fixed
// libp2p ports (restarted nodes find each other at the addresses the
// cluster state holds), fast stats reports and frequent raft snapshots
// (a restart restores one and replays the short log after it).
func historyNodeConfig(p2p, join, joinToken string) func(*configs.Config) {
	return func(c *configs.Config) {
		fastStats(c)
		c.Node.P2P = []string{p2p}
		c.Cluster.Join, c.Cluster.JoinToken = join, joinToken
		c.Raft.SnapshotThreshold = 4
		c.Raft.SnapshotInterval = configs.Duration(50 * time.Millisecond)
		c.Raft.TrailingLogs = 1
	}
}

// statsSince is `mirrord stats APP --since 24h --json` on node n.
func statsSince(t *testing.T, n *testNode, app string) adminapi.StatsAnswer {
	t.Helper()
	var ans adminapi.StatsAnswer
	out := n.cli(t, "stats", app, "--since", "24h", "--json")
	if err := json.Unmarshal([]byte(out), &ans); err != nil || ans.History == nil {
		t.Fatalf("stats --since 24h --json: %v\n%s", err, out)
	}
	return ans
}

// historyTotals sums each release's buckets of the last day.
func historyTotals(ans adminapi.StatsAnswer) map[string]state.Bucket {
	out := map[string]state.Bucket{}
	for _, r := range ans.History.Releases {
		var sum state.Bucket
		for _, b := range r.Buckets {
			sum.Add(b)
		}
		out[r.Version] = sum
	}
	return out
}

// sameHistory waits until every node answers the same buckets, with the
// totals want, and returns them.
func sameHistory(t *testing.T, nodes []*testNode, app string, want map[string]state.Bucket) []adminapi.ReleaseHistory {
	t.Helper()
	var got []adminapi.ReleaseHistory
	consensustest.WaitFor(t, "the same hourly history on every node", func() bool {
		got = nil
		for i, n := range nodes {
			ans := statsSince(t, n, app)
			if !reflect.DeepEqual(historyTotals(ans), want) {
				return false
			}
			if i == 0 {
				got = ans.History.Releases
			} else if !reflect.DeepEqual(ans.History.Releases, got) {
				return false
			}
		}
		return true
	}, 30*time.Second)
	return got
}

// waitRecording waits until every node says that the whole cluster
// records the history (every node announced it; an app must exist).
func waitRecording(t *testing.T, nodes []*testNode, app string) {
	t.Helper()
	consensustest.WaitFor(t, "every node announced the history", func() bool {
		for _, n := range nodes {
			if h := statsSince(t, n, app).History; len(h.WaitingFor) > 0 {
				return false
			}
		}
		return true
	}, 30*time.Second)
}

// snapshotIndex returns the highest index of the node's completed raft
// snapshots (0 if none).
func snapshotIndex(t *testing.T, data string) uint64 {
	var best uint64
	for _, m := range doneSnapshots(data) {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		var meta struct{ Index uint64 }
		if json.Unmarshal(b, &meta) == nil {
			best = max(best, meta.Index)
		}
	}
	return best
}

// TestStatsHistoryRestart is the stats-history must-show: three
// nodes count update checks, installs and failures of two releases
// reported on all of them; the hourly history of the last day is the
// same on every node, adds up to the counters, and after every node is
// stopped and started again (from a raft snapshot that holds it) it is
// still there, unchanged and the same everywhere; counts go on adding up
// after the restart. `mirrord stats --since` prints it.
func TestStatsHistoryRestart(t *testing.T) {
	vec := vectors(t)
	var p2p []string
	for range 3 {
		p2p = append(p2p, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	}
	a := startNodeWith(t, "", historyNodeConfig(p2p[0], "", ""))
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := startNodeWith(t, "", historyNodeConfig(p2p[1], a.url, tok))
	c := startNodeWith(t, "", historyNodeConfig(p2p[2], a.url, tok))
	nodes := []*testNode{a, b, c}

	const app = "com.example.history"
	a.cli(t, "app", "create", app)
	// Every node announces that it keeps the history before its fleet
	// writes it (rolling upgrades); counts before that reach only the
	// counters.
	waitRecording(t, nodes, app)
	a.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	fc := newFleetClient(t, app)
	traffic := func(version string, checks, sets, fails, downloads int) {
		t.Helper()
		consensustest.WaitFor(t, version+" on every node", func() bool { return readyEverywhere(a.status(t), app, version, 3) }, 30*time.Second)
		for i := range checks {
			if v := fc.check(nodes[i%3].url, deviceID(i), "builtin"); v != version {
				t.Fatalf("device %d got %q, want %s", i, v, version)
			}
		}
		for _, ev := range []struct {
			action string
			n      int
		}{{"set", sets}, {"update_fail", fails}, {"download_complete", downloads}} {
			for j := range ev.n {
				// To the node that answered the device (a node counts
				// only those): device j checked in on node j%3.
				fc.stat(nodes[j%3].url, deviceID(j), ev.action, version)
			}
		}
	}
	traffic("1.0.1", 30, 12, 3, 0)
	a.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", filepath.Join(vec, "src-1.0.2"))
	traffic("1.0.2", 20, 8, 2, 5)
	want := map[string]state.Bucket{
		"1.0.1": {Offered: 30, Installs: 12, Failures: 3},
		"1.0.2": {Offered: 20, Installs: 8, Failures: 2, Downloads: 5},
	}
	before := sameHistory(t, nodes, app, want)

	// The buckets add up to the cumulative counters.
	for _, rs := range statsSince(t, b, app).Releases {
		w, tot := want[rs.Version], rs.Total
		if tot.Offered != w.Offered || tot.Installs != w.Installs || tot.Failures != w.Failures || tot.Downloads != w.Downloads {
			t.Errorf("counters of %s: %+v, history %+v", rs.Version, tot, w)
		}
	}
	// The CLI: a summary per release, a row per hour, a refused window.
	out := c.cli(t, "stats", app, "--since", "1d")
	if !strings.Contains(out, "hourly counts, cluster-wide") || !regexpLine(out, `^1\.0\.2\s+20\s+5\s+8\s+2\s+0\.200\s+[12]\s`) ||
		!regexpLine(out, `^1\.0\.1\s+30\s+0\s+12\s+3\s+0\.200\s+[12]\s`) {
		t.Errorf("stats --since 1d:\n%s", out)
	}
	t.Logf("mirrord stats %s --since 1d:\n%s", app, out)
	hourly := c.cli(t, "stats", app, "--since", "24h", "--hourly", "--version", "1.0.2")
	t.Logf("mirrord stats %s --since 24h --hourly --version 1.0.2:\n%s", app, hourly)
	if !strings.Contains(hourly, "HOUR (UTC)") || !regexpLine(hourly, `^\d{4}-\d\d-\d\d \d\d:00\s+1\.0\.2\s+\d+\s+\d+\s+\d+\s+\d+$`) ||
		strings.Contains(hourly, "1.0.1") {
		t.Errorf("stats --hourly:\n%s", hourly)
	}
	if out, err := c.cliErr("stats", app, "--since", "30d"); err == nil || !strings.Contains(out+err.Error(), "8 days") {
		t.Errorf("stats --since 30d: %v\n%s", err, out)
	}

	// A few more writes, so that every node's next raft snapshot holds
	// the whole history; then every node stops.
	landed := a.status(t).Node.AppliedIndex
	for i := range 6 {
		a.cli(t, "channel", "set", app, fmt.Sprintf("beta%d", i), "--version", "1.0.1")
	}
	for _, n := range nodes {
		consensustest.WaitFor(t, "a snapshot holding the history on "+filepath.Base(n.data), func() bool {
			return snapshotIndex(t, n.data) > landed
		}, 30*time.Second)
	}
	for _, n := range nodes {
		n.stop()
	}
	for i, n := range nodes {
		nodes[i] = startNodeWith(t, n.data, historyNodeConfig(p2p[i], "", ""))
	}
	a, b, c = nodes[0], nodes[1], nodes[2]
	after := sameHistory(t, nodes, app, want)
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("the history changed across the restart:\nbefore %+v\nafter  %+v", before, after)
	}

	// Counting goes on after the restart.
	consensustest.WaitFor(t, "a leader after the restart", func() bool { return a.status(t).Node.LeaderID != "" }, 30*time.Second)
	traffic("1.0.2", 6, 3, 1, 0)
	want["1.0.2"] = state.Bucket{Offered: 26, Installs: 11, Failures: 3, Downloads: 5}
	sameHistory(t, nodes, app, want)
}

// regexpLine reports whether a line of s matches the pattern.
func regexpLine(s, pattern string) bool {
	return regexp.MustCompile(`(?m)` + pattern).MatchString(s)
}
