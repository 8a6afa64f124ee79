package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
)

// randomDeviceID is a made-up device id, as a forger would send.
func randomDeviceID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// checkedInDevices returns n devices that nodeURL answered with version
// (an update check each, as the plugin makes before it installs),
// scanning the fixed device ids from first on.
func checkedInDevices(t *testing.T, fc *fleetClient, nodeURL, version string, first, n int) []string {
	t.Helper()
	var out []string
	for i := first; len(out) < n; i++ {
		if i > first+100*n+1000 {
			t.Fatalf("only %d of %d devices got %s", len(out), n, version)
		}
		if fc.check(nodeURL, deviceID(i), "builtin") == version {
			out = append(out, deviceID(i))
		}
	}
	return out
}

// forgedFailures posts n update_fail events about version from made-up
// devices, in batches of 20 as one request each.
func forgedFailures(t *testing.T, fc *fleetClient, nodeURL, version string, n int) {
	t.Helper()
	for sent := 0; sent < n; sent += 20 {
		var batch []map[string]any
		for range min(20, n-sent) {
			ev := statEvent(fc.app, "forged", "update_fail", version, "8.51.23", map[string]any{"device_id": randomDeviceID()})
			batch = append(batch, ev)
		}
		if ans := fc.post(nodeURL+"/stats", batch); ans["status"] != "ok" {
			t.Fatalf("forged batch: %v", ans)
		}
	}
}

// TestForgedFailuresDoNotHalt is issue 13's forgery must-show on three
// nodes: 120 update_fail events from made-up device ids (none checked
// in), answered ok as any event, reach no counter and leave a 10%
// rollout with a halt policy active; they are in every node's event log
// marked unverified_device. Then 60 failures from 8.51 devices that
// checked in halt it.
func TestForgedFailuresDoNotHalt(t *testing.T) {
	const app = "com.example.forged"
	nodes := startRolloutCluster(t, app, 10)
	fc := newFleetClient(t, app)

	for _, n := range nodes {
		forgedFailures(t, fc, n.url, "1.0.2", 40)
	}
	// One real install per node, after its forged events: once the three
	// are in the tally, every node has reported what it counted.
	installsLeaveRolloutActive(t, fc, nodes, app, 0, 1000, "120 forged update_fail")
	consensustest.WaitFor(t, "the forged events in the event logs, marked", func() bool {
		marked := 0
		for _, n := range nodes {
			for _, m := range statsLog(t, n.data)["forged"] {
				if m != state.IgnoredUnverified {
					t.Fatalf("a forged event is logged as %q", m)
				}
				marked++
			}
		}
		return marked == 120
	}, 10*time.Second)

	// 60 real failures from 8.51 devices that checked in, 20 per node,
	// each sent to the node that answered it: they halt the rollout.
	realFailuresHalt(t, fc, nodes, app, 5000, 3000)
	consensustest.WaitFor(t, "the 60 real failures counted, the forged ones not", func() bool {
		return rolloutAt(t, nodes[0], app, "production").Since == (state.Tally{Installs: 3, Failures: 60})
	}, 10*time.Second)
}

// sourceClient sends from a given loopback address, so that a test can
// play several client addresses against one node.
func sourceClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// TestStatsFloodKeepsRealEvents is issue 13's flood must-show: 200,000
// forged events from 8 client addresses, as fast as they go and
// ignoring Retry-After, get 429 with Retry-After once past their budget,
// and what passes lands in the bounded area of ignored events; the real
// events sent before and after it (devices that checked in) are all
// still in the event log, counted.
func TestStatsFloodKeepsRealEvents(t *testing.T) {
	vec := vectors(t)
	n := startNodeWith(t, "", func(c *configs.Config) {
		fastStats(c)
		c.Stats.MaxBytes = 2 << 20 // ignored events: 512 KiB
		c.Stats.SegmentBytes = 64 << 10
		c.Limits.StatsEventsPerSecond = 100 // bursts of 1,000
	})
	defer n.stop()
	const app = "com.example.flood"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	fc := newFleetClient(t, app)
	real := checkedInDevices(t, fc, n.url, "1.0.1", 0, 40)
	realStat := func(dev, action string) {
		ev := statEvent(app, "real", action, "1.0.1", "8.51.23", map[string]any{"device_id": dev})
		if ans := fc.post(n.url+"/stats", ev); ans["status"] != "ok" {
			t.Fatalf("real event: %v", ans)
		}
	}
	for _, dev := range real[:20] {
		realStat(dev, "set")
	}

	const sources, perSource, batch = 8, 25000, 200
	var accepted, limited, retryAfter atomic.Int64
	parallel(sources, sources, func(s int) {
		hc := sourceClient(fmt.Sprintf("127.0.0.%d", 10+s))
		evs := make([]map[string]any, batch)
		for sent := 0; sent < perSource; sent += batch {
			for i := range evs {
				evs[i] = statEvent(app, "flood", "update_fail", "1.0.1", "8.51.23", map[string]any{"device_id": randomDeviceID()})
			}
			b, _ := json.Marshal(evs)
			resp, err := hc.Post(n.url+"/stats", "application/json", bytes.NewReader(b))
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK:
				accepted.Add(batch)
			case http.StatusTooManyRequests:
				limited.Add(batch)
				if resp.Header.Get("Retry-After") != "" {
					retryAfter.Add(1)
				}
			default:
				t.Errorf("flood batch: HTTP %d", resp.StatusCode)
				return
			}
		}
	})
	t.Logf("flood: %d events sent from %d addresses, %d accepted, %d refused with 429", sources*perSource, sources,
		accepted.Load(), limited.Load())
	if limited.Load() == 0 || retryAfter.Load()*batch != limited.Load() {
		t.Fatalf("%d events refused, %d answers with Retry-After", limited.Load(), retryAfter.Load())
	}
	for _, dev := range real[20:] {
		realStat(dev, "update_fail")
	}

	var logged map[string][]string
	consensustest.WaitFor(t, "the real events in the event log", func() bool {
		logged = statsLog(t, n.data)
		return len(logged["real"]) == 40
	}, 10*time.Second)
	for _, m := range logged["real"] {
		if m != "" {
			t.Fatalf("a real event is logged as %q", m)
		}
	}
	if len(logged["flood"]) == 0 || int64(len(logged["flood"])) >= accepted.Load() {
		t.Fatalf("%d flood events in the log of %d accepted: the ignored area is not bounded", len(logged["flood"]), accepted.Load())
	}
	var ignoredBytes int64
	files, _ := filepath.Glob(filepath.Join(n.data, "stats", "ignored", "*.jsonl"))
	for _, f := range files {
		if info, err := os.Stat(f); err == nil {
			ignoredBytes += info.Size()
		}
	}
	if ignoredBytes > 512<<10 {
		t.Fatalf("ignored area holds %d bytes, bound 512 KiB", ignoredBytes)
	}
	consensustest.WaitFor(t, "only the real events counted", func() bool {
		var ri struct {
			Releases []struct {
				Version string
				Total   struct{ Installs, Failures int64 }
			}
		}
		if err := json.Unmarshal([]byte(n.cli(t, "stats", app, "--json")), &ri); err != nil {
			t.Fatal(err)
		}
		for _, r := range ri.Releases {
			if r.Version == "1.0.1" {
				if r.Total.Failures > 20 {
					t.Fatalf("%d failures counted, 20 real", r.Total.Failures)
				}
				return r.Total.Installs == 20 && r.Total.Failures == 20
			}
		}
		return false
	}, 10*time.Second)
}
