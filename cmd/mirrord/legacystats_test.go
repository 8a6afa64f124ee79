package main

import (
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
)

// TestLegacyDownloadFailCluster is issue 12's cluster must-show: on three
// nodes, a 20% rollout with a halt policy stays active through 200
// legacy download_fail events (plugins 7.16.9 and 6.14.24 send it when
// there was no new version), which reach every node's event log only
// marked as ignored; then 60 real failures from 8.51 devices halt it.
func TestLegacyDownloadFailCluster(t *testing.T) {
	const app = "com.example.legacy"
	nodes := startRolloutCluster(t, app, 20)

	// 200 legacy download_fail about the rollout release, one event per
	// request as these plugins send them, spread over the nodes. Counted,
	// they alone would exceed the policy (rate 1.0 over 200 events).
	fc := newFleetClient(t, app)
	parallel(8, 200, func(i int) {
		plugin := []string{"7.16.9", "6.14.24"}[i%2]
		ev := statEvent(app, "legacy", "download_fail", "1.0.2", plugin, map[string]any{"device_id": deviceID(i)})
		if ans := fc.post(nodes[i%3].url+"/stats", ev); ans["status"] != "ok" {
			t.Errorf("legacy event %d: %v", i, ans)
		}
	})
	// Then one install per node, after that node's legacy events: once
	// the three are in the rollout's tally, every node has reported what
	// it counted of the legacy events too.
	// (Each from a device that node answered with the release: a node
	// counts only those, see TestForgedFailuresDoNotHalt.)
	installsLeaveRolloutActive(t, fc, nodes, app, 1000, 100, "200 legacy download_fail")
	consensustest.WaitFor(t, "the legacy events in the event logs, marked", func() bool {
		marked := 0
		for _, n := range nodes {
			for _, m := range statsLog(t, n.data)["legacy"] {
				if m != "legacy_download_fail" {
					t.Fatalf("a legacy event is logged as %q", m)
				}
				marked++
			}
		}
		return marked == 200
	}, 10*time.Second)

	// 60 real failures from 8.51 devices halt it on every node (devices
	// that checked in on the node they report to).
	realFailuresHalt(t, fc, nodes, app, 2000, 1000)
	ri := rolloutAt(t, nodes[0], app, "production")
	if h := ri.Rollout.Halt; !strings.Contains(h.Reason, "exceeds the 0.200 threshold") || h.Tally.Failures > 60 {
		t.Fatalf("halt %+v", h)
	}
	consensustest.WaitFor(t, "all 60 failures counted on every node", func() bool {
		for _, n := range nodes {
			if rolloutAt(t, n, app, "production").Since != (state.Tally{Installs: 3, Failures: 60}) {
				return false
			}
		}
		return true
	}, 10*time.Second)
}
