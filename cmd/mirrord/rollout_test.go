package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/node/adminapi"
	"mirrord/resolver"
)

// fastStats makes counters reach the cluster state and the halt guard
// look quickly. MIRRORD_REPORT_INTERVAL (e.g. 2s, the default) measures
// the halt delay with another report interval (docs/BENCHMARKS.md).
func fastStats(c *configs.Config) {
	c.Stats.ReportInterval = configs.Duration(testReportInterval())
	c.Stats.HaltCheckInterval = configs.Duration(100 * time.Millisecond)
}

func testReportInterval() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MIRRORD_REPORT_INTERVAL")); err == nil {
		return d
	}
	return 100 * time.Millisecond
}

// deviceID returns the i-th simulated device id (fixed, so the cohort
// counts below are the same on every run).
func deviceID(i int) string { return fmt.Sprintf("%08x-7a1e-4c0d-9e6f-%012x", i, i*7919) }

// fleetClient sends raw device requests.
type fleetClient struct {
	t   *testing.T
	hc  *http.Client
	app string
}

func newFleetClient(t *testing.T, app string) *fleetClient {
	return &fleetClient{t: t, app: app, hc: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 16},
	}}
}

func (f *fleetClient) body(dev, running, defaultChannel, plugin string) map[string]any {
	return map[string]any{
		"app_id": f.app, "device_id": dev, "version_name": running, "version_build": "1.0.0",
		"version_code": "1", "version_os": "14", "platform": "android", "plugin_version": plugin,
		"is_emulator": false, "is_prod": true, "defaultChannel": defaultChannel,
	}
}

func (f *fleetClient) post(url string, body any) map[string]any {
	f.t.Helper()
	b, _ := json.Marshal(body)
	resp, err := f.hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ans map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
		f.t.Fatalf("POST %s: %d %v", url, resp.StatusCode, err)
	}
	return ans
}

// check returns the version offered to the device, or the error code.
func (f *fleetClient) check(nodeURL, dev, running string) string {
	f.t.Helper()
	ans := f.post(nodeURL+"/updates", f.body(dev, running, "", "8.51.23"))
	if e, ok := ans["error"].(string); ok {
		return e
	}
	v, _ := ans["version"].(string)
	return v
}

func (f *fleetClient) stat(nodeURL, dev, action, version string) {
	f.t.Helper()
	ev := f.body(dev, version, "", "8.51.23")
	ev["action"], ev["old_version_name"], ev["timestamp"] = action, "", time.Now().UnixMilli()
	f.post(nodeURL+"/stats", ev)
}

func rolloutAt(t *testing.T, n *testNode, app, channel string) adminapi.RolloutInfo {
	t.Helper()
	var ri adminapi.RolloutInfo
	if err := json.Unmarshal([]byte(n.cli(t, "rollout", "show", app, channel, "--json")), &ri); err != nil {
		t.Fatal(err)
	}
	return ri
}

// TestRolloutAcrossCluster is the cluster must-show: on three
// nodes, 10,000 devices spread over the nodes get the rollout release at
// 10% within a percentage point and every node answers each device the
// same; raising the percentage only adds devices; update_fail reports
// above the policy's threshold pause the rollout on every node, after
// which new devices get the stable release while devices on the rollout
// release stay on it.
func TestRolloutAcrossCluster(t *testing.T) {
	const app = "com.example.rollout"
	nodes := startRolloutCluster(t, app, 10)
	a, b, c := nodes[0], nodes[1], nodes[2]

	fc := newFleetClient(t, app)
	const devices = 10000
	got := make([]string, devices)
	var mu sync.Mutex
	var disagree []string
	start := time.Now()
	parallel(8, devices, func(i int) {
		home := nodes[i%3]
		v := fc.check(home.url, deviceID(i), "builtin")
		got[i] = v
		for _, n := range nodes {
			if n != home {
				if w := fc.check(n.url, deviceID(i), "builtin"); w != v {
					mu.Lock()
					disagree = append(disagree, fmt.Sprintf("device %d: %s says %s, %s says %s", i, home.url, v, n.url, w))
					mu.Unlock()
				}
			}
		}
	})
	t.Logf("%d update checks on 3 nodes in %s", 3*devices, time.Since(start).Round(time.Millisecond))
	if len(disagree) > 0 {
		t.Fatalf("%d devices got different answers from different nodes, e.g. %s", len(disagree), disagree[0])
	}
	inRollout := 0
	for i, v := range got {
		switch v {
		case "1.0.2":
			inRollout++
		case "1.0.1":
		default:
			t.Fatalf("device %d got %q", i, v)
		}
	}
	share := float64(inRollout) / devices
	t.Logf("at 10%%: %d of %d devices (%.2f%%) got the rollout release", inRollout, devices, 100*share)
	if share < 0.09 || share > 0.11 {
		t.Fatalf("%.4f of devices got the rollout release, want 0.09..0.11", share)
	}

	// Widen to 50%: only adds devices.
	a.cli(t, "rollout", "set", app, "production", "--percent", "50")
	consensustest.WaitFor(t, "50% on every node", func() bool {
		for _, n := range nodes {
			if rolloutAt(t, n, app, "production").Rollout.BasisPoints != 5000 {
				return false
			}
		}
		return true
	}, 10*time.Second)
	widened := 0
	parallel(8, devices, func(i int) {
		v := fc.check(nodes[(i+1)%3].url, deviceID(i), "builtin")
		if got[i] == "1.0.2" && v != "1.0.2" {
			t.Errorf("device %d left the rollout when it widened", i)
		}
		if v == "1.0.2" {
			mu.Lock()
			widened++
			mu.Unlock()
		}
	})
	t.Logf("at 50%%: %d of %d devices", widened, devices)
	if share := float64(widened) / devices; share < 0.48 || share > 0.52 {
		t.Fatalf("at 50%%: %.4f of devices", share)
	}

	// Devices that installed the rollout release report: 20 installs and
	// 40 update_fail, spread over the nodes. The policy (rate 0.2, 50
	// events, 95%) must pause the rollout everywhere.
	var onRollout []string
	for i := 0; len(onRollout) < 60; i++ {
		if got[i] == "1.0.2" {
			onRollout = append(onRollout, deviceID(i))
		}
	}
	for i, dev := range onRollout {
		action := "update_fail"
		if i%3 == 0 {
			action = "set"
		}
		fc.stat(nodes[i%3].url, dev, action, "1.0.2")
	}
	sent := time.Now()
	consensustest.WaitFor(t, "the rollout paused on every node", func() bool {
		for _, n := range nodes {
			if r := rolloutAt(t, n, app, "production").Rollout; r.State != state.RolloutPaused || r.Halt == nil {
				return false
			}
		}
		return true
	}, 30*time.Second)
	t.Logf("auto-halt: paused on all 3 nodes %s after the last failure report (report interval %s)",
		time.Since(sent).Round(time.Millisecond), testReportInterval())

	// The halt may come before the last node's last report (50 events
	// suffice); every report lands soon after.
	consensustest.WaitFor(t, "all 60 events counted", func() bool {
		return rolloutAt(t, a, app, "production").Since == state.Tally{Installs: 20, Failures: 40}
	}, 10*time.Second)
	ri := rolloutAt(t, a, app, "production")
	if h := ri.Rollout.Halt; h.Tally.Events() < 50 || !strings.Contains(h.Reason, "exceeds the 0.200 threshold") {
		t.Fatalf("halt %+v", h)
	}
	for _, n := range nodes {
		for i := range 50 {
			if got[i] == "1.0.2" {
				// On the release: stays on it.
				if v := fc.check(n.url, deviceID(i), "1.0.2"); v != resolver.CodeNoNewVersion {
					t.Fatalf("device on the rollout release got %q from %s", v, n.url)
				}
				// Not yet installed: no longer offered.
				if v := fc.check(n.url, deviceID(i), "builtin"); v != "1.0.1" {
					t.Fatalf("new device got %q from %s after the halt", v, n.url)
				}
			}
		}
	}
	if st := b.cli(t, "status"); !strings.Contains(st, "HALTED (pause)") {
		t.Fatalf("status does not say why:\n%s", st)
	}

	// Stats: per release and per node, on any node.
	var sa adminapi.StatsAnswer
	if err := json.Unmarshal([]byte(c.cli(t, "stats", app, "--channel", "production", "--json")), &sa); err != nil {
		t.Fatal(err)
	}
	var rs *adminapi.ReleaseStats
	for i := range sa.Releases {
		if sa.Releases[i].Version == "1.0.2" {
			rs = &sa.Releases[i]
		}
	}
	if rs == nil || rs.Total.Installs != 20 || rs.Total.Failures != 40 || rs.Total.ByAction["update_fail"] != 40 ||
		len(rs.Nodes) != 3 || rs.Total.Offered < int64(inRollout) {
		t.Fatalf("stats for 1.0.2: %+v", rs)
	}
	if human := c.cli(t, "stats", app, "--version", "1.0.2"); !strings.Contains(human, "update_fail=40") {
		t.Fatalf("stats output:\n%s", human)
	}

	// Abort: devices on the rollout release go back to stable.
	a.cli(t, "rollout", "abort", app, "production")
	consensustest.WaitFor(t, "abort on every node", func() bool {
		for _, n := range nodes {
			if fc.check(n.url, onRollout[0], "1.0.2") != "1.0.1" {
				return false
			}
		}
		return true
	}, 10*time.Second)
}

// TestDeviceTargetingCluster: operator overrides (channel, pinned
// release, CSV bulk) reach every node, and channel_self is
// read-your-writes on the node that took it.
func TestDeviceTargetingCluster(t *testing.T) {
	vec := vectors(t)
	a := startNode(t, "")
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := joinNode(t, a.url, tok, nil)
	nodes := []*testNode{a, b}
	const app = "com.example.targets"
	a.cli(t, "app", "create", app)
	a.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	a.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "beta", filepath.Join(vec, "src-1.0.2"))
	a.cli(t, "channel", "set", app, "beta", "--allow-device-self-set", "true")
	fc := newFleetClient(t, app)

	out := b.cli(t, "device", "set", app, "AAAAAAAA-0000-4000-8000-000000000001", "--channel", "beta")
	if !strings.Contains(out, "now uses channel beta") {
		t.Fatalf("device set said %q", out)
	}
	csvFile := filepath.Join(t.TempDir(), "devices.csv")
	rows := "device_id,channel,version\n# testers\naaaaaaaa-0000-4000-8000-000000000002,beta,1.0.1\naaaaaaaa-0000-4000-8000-000000000003,,1.0.2\n"
	for i := 10; i < 2010; i++ {
		rows += fmt.Sprintf("%s,beta\n", deviceID(i))
	}
	if err := os.WriteFile(csvFile, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := b.cli(t, "device", "import", app, csvFile); !strings.Contains(out, "set 2002 device override(s)") {
		t.Fatalf("import said %q", out)
	}
	want := map[string]string{
		"aaaaaaaa-0000-4000-8000-000000000001": "1.0.2", // beta's release
		"aaaaaaaa-0000-4000-8000-000000000002": "1.0.1", // beta, pinned to 1.0.1
		"aaaaaaaa-0000-4000-8000-000000000003": "1.0.2", // pinned, public channel
		deviceID(2009):                         "1.0.2",
		"aaaaaaaa-0000-4000-8000-000000000004": "1.0.1", // no override
	}
	consensustest.WaitFor(t, "overrides on every node", func() bool {
		for _, n := range nodes {
			for dev, v := range want {
				if fc.check(n.url, dev, "builtin") != v {
					return false
				}
			}
		}
		return true
	}, 10*time.Second)
	if _, err := b.cliErr("device", "import", app, writeTemp(t, "d,nochannel\n")); err == nil ||
		!strings.Contains(err.Error(), "row 1") {
		t.Fatalf("a bad row was not named: %v", err)
	}

	// Old plugin (keeps no channel): its channel_self POST on the
	// follower is answered after the override is in that node's state,
	// so its next check on the same node already gets beta.
	for i := range 20 {
		dev := fmt.Sprintf("bbbbbbbb-0000-4000-8000-%012d", i)
		body := fc.body(dev, "builtin", "", "5.2.0")
		body["channel"] = "beta"
		if ans := fc.post(b.url+"/channel_self", body); ans["status"] != "ok" {
			t.Fatalf("channel_self: %v", ans)
		}
		if v := fc.check(b.url, dev, "builtin"); v != "1.0.2" {
			t.Fatalf("old plugin device %d got %q right after setting its channel", i, v)
		}
	}
	// New plugin: keeps the channel itself and sends it as defaultChannel.
	dev := "cccccccc-0000-4000-8000-000000000001"
	body := fc.body(dev, "builtin", "", "8.51.23")
	body["channel"] = "beta"
	if ans := fc.post(b.url+"/channel_self", body); ans["status"] != "ok" || ans["allowSet"] != true {
		t.Fatalf("channel_self new plugin: %v", ans)
	}
	ans := fc.post(b.url+"/updates", fc.body(dev, "builtin", "beta", "8.51.23"))
	if ans["version"] != "1.0.2" {
		t.Fatalf("new plugin with defaultChannel beta: %v", ans)
	}
	resp, err := fc.hc.Get(b.url + "/channel_self?app_id=" + app + "&platform=android&is_emulator=false&is_prod=true&device_id=" + dev)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list) != 2 {
		t.Fatalf("channel list %v", list)
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(workers, n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestRolloutCommands walks the rollout life cycle through the CLI on
// one node, with the errors an operator is likely to hit.
func TestRolloutCommands(t *testing.T) {
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.cli"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", filepath.Join(vec, "src-1.0.2"))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rollout", "start", app, "production", "--version", "1.0.2", "--percent", "101"}, "from 0 to 100"},
		{[]string{"rollout", "start", app, "production", "--version", "1.0.2", "--percent", "1.234"}, "two decimals"},
		{[]string{"rollout", "start", app, "production", "--percent", "5"}, "--version is required"},
		{[]string{"rollout", "start", app, "nope", "--version", "1.0.2", "--percent", "5"}, "mirrord channel set"},
		{[]string{"rollout", "start", app, "production", "--version", "9.9.9", "--percent", "5"}, "publish it first"},
		{[]string{"rollout", "start", app, "production", "--version", "1.0.2", "--percent", "5", "--halt-failure-rate", "2"}, "between 0 and 1"},
		{[]string{"rollout", "start", app, "production", "--version", "1.0.2", "--percent", "5", "--halt-min-events", "9"}, "need --halt-failure-rate"},
		{[]string{"rollout", "pause", app, "production"}, "no rollout in progress"},
		{[]string{"device", "set", app, "d1", "--channel", "beta"}, "mirrord channel set"},
	} {
		out, err := n.cliErr(tc.args...)
		if err == nil || !strings.Contains(out+err.Error(), tc.want) {
			t.Errorf("mirrord %s: %v %s; want an error with %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}

	out := n.cli(t, "rollout", "start", app, "production", "--version", "1.0.2", "--percent", "12.5",
		"--halt-failure-rate", "0.3", "--halt-action", "abort")
	if !strings.Contains(out, "12.50% of devices (active)") || !strings.Contains(out, "abort when") {
		t.Fatalf("start: %s", out)
	}
	if _, err := n.cliErr("rollout", "start", app, "production", "--version", "1.0.2", "--percent", "1"); err == nil {
		t.Fatal("a second rollout on the channel was accepted")
	}
	if _, err := n.cliErr("release", "delete", app, "1.0.2"); err == nil {
		t.Fatal("the rolled-out release was deleted")
	}
	if out := n.cli(t, "rollout", "pause", app, "production"); !strings.Contains(out, "(paused)") {
		t.Fatalf("pause: %s", out)
	}
	if out := n.cli(t, "rollout", "resume", app, "production"); !strings.Contains(out, "(active)") {
		t.Fatalf("resume: %s", out)
	}
	if out := n.cli(t, "rollout", "set", app, "production", "--no-halt", "--percent", "100"); strings.Contains(out, "halt policy") ||
		!strings.Contains(out, "100.00%") {
		t.Fatalf("set: %s", out)
	}
	fc := newFleetClient(t, app)
	if v := fc.check(n.url, deviceID(1), "builtin"); v != "1.0.2" {
		t.Fatalf("at 100%%: %s", v)
	}
	if out := n.cli(t, "rollout", "promote", app, "production"); !strings.Contains(out, "promoted; every device gets 1.0.2") {
		t.Fatalf("promote: %s", out)
	}
	if out := n.cli(t, "rollback", app, "production"); !strings.Contains(out, "1.0.1") {
		t.Fatalf("rollback after promote: %s", out)
	}
	// A pinned device, listed and then removed through a CSV.
	n.cli(t, "device", "set", app, deviceID(2), "--version", "1.0.2")
	if out := n.cli(t, "device", "list", app); !strings.Contains(out, deviceID(2)) || !strings.Contains(out, "1.0.2") {
		t.Fatalf("device list: %s", out)
	}
	if v := fc.check(n.url, deviceID(2), "builtin"); v != "1.0.2" {
		t.Fatalf("pinned device got %s", v)
	}
	if out := n.cli(t, "device", "import", app, writeTemp(t, deviceID(2)+"\n"), "--remove"); !strings.Contains(out, "removed 1") {
		t.Fatalf("import --remove: %s", out)
	}
	if v := fc.check(n.url, deviceID(2), "builtin"); v != "1.0.1" {
		t.Fatalf("unpinned device got %s", v)
	}
}
