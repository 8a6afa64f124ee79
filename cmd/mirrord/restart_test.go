package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
)

// TestRestartAloneServes is issue 10's first fault, with real processes:
// three voters are killed with SIGKILL and one comes back alone. It
// must answer devices from its last state at once (here: the release
// and device pin acknowledged just before the kill), say in /readyz
// that it has no leader and since when, and refuse admin writes with
// 503, without ever exiting. When a second voter returns, the two elect
// a leader and take writes again.
func TestRestartAloneServes(t *testing.T) {
	vec := vectors(t)
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	// Fixed ports: restarted nodes find each other at the addresses the
	// cluster state recorded.
	var p2p []string
	for range dirs {
		p2p = append(p2p, fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", freePort(t)))
	}
	a := startProcArgs(t, dirs[0], "--p2p", p2p[0])
	tokA, _ := os.ReadFile(filepath.Join(dirs[0], "admin.token"))
	token := strings.TrimSpace(string(tokA))
	join := strings.Fields(mustCLI(t, a.url, token, "cluster", "token"))[0]
	b := startProcArgs(t, dirs[1], "--p2p", p2p[1], "--join", a.url, "--join-token", join)
	c := startProcArgs(t, dirs[2], "--p2p", p2p[2], "--join", a.url, "--join-token", join)

	const app = "com.example.alone"
	mustCLI(t, a.url, token, "app", "create", app)
	mustCLI(t, b.url, token, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	mustCLI(t, c.url, token, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", filepath.Join(vec, "src-1.0.2"))
	// The last writes before the crash, acknowledged through node c.
	mustCLI(t, c.url, token, "device", "set", app, "5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a02", "--version", "1.0.1")
	for _, p := range []*proc{a, b, c} {
		p.kill(t)
	}

	start := time.Now()
	c = startProcArgs(t, dirs[2], "--p2p", p2p[2])
	t.Logf("node back alone and serving after %v", time.Since(start).Round(time.Millisecond))

	check := func(device string) map[string]any {
		t.Helper()
		body := strings.NewReplacer("DEV", device, "APP", app).Replace(`{"platform":"android","device_id":"DEV","app_id":"APP",
			"version_build":"1.0.0","version_code":"1","version_os":"14","version_name":"builtin","plugin_version":"8.51.23",
			"is_emulator":false,"is_prod":true,"defaultChannel":""}`)
		resp, err := http.Post(c.url+"/updates", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil || resp.StatusCode != 200 {
			t.Fatalf("update check: HTTP %d %v", resp.StatusCode, err)
		}
		return ans
	}
	if ans := check("5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a01"); ans["version"] != "1.0.2" {
		t.Fatalf("update check on a node without quorum: %v", ans)
	}
	if ans := check("5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a02"); ans["version"] != "1.0.1" {
		t.Fatalf("the pin acknowledged before the crash is not served: %v", ans)
	}

	resp, err := http.Get(c.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]any
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != 200 || ready["leader"] != "" || ready["leader_last_known"] == nil || ready["stale_seconds"] == nil {
		t.Fatalf("/readyz without quorum: HTTP %d %v", resp.StatusCode, ready)
	}
	resp, err = http.Get(c.url + "/readyz?leader=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz?leader=1 without a leader: HTTP %d", resp.StatusCode)
	}
	out, err := cliAt(c.url, token, "app", "create", "com.example.during")
	if err == nil || !strings.Contains(out+err.Error(), "503") && !strings.Contains(out+err.Error(), "quorum") {
		t.Fatalf("admin write without quorum: %v\n%s", err, out)
	}
	st, err := statusAt(t, c.url, token)
	if err != nil || st.Node.LeaderID != "" || st.Node.LeaderContact.IsZero() {
		t.Fatalf("status without quorum: %+v %v", st.Node, err)
	}

	// A second voter returns: quorum again, writes work.
	b = startProcArgs(t, dirs[1], "--p2p", p2p[1])
	consensustest.WaitFor(t, "a leader among the two voters", func() bool {
		st, err := statusAt(t, c.url, token)
		return err == nil && st.Node.LeaderID != ""
	}, 30*time.Second)
	consensustest.WaitFor(t, "an admin write with quorum back", func() bool {
		out, err := cliAt(b.url, token, "app", "create", "com.example.after")
		// A try that committed but lost its answer makes the next one
		// find the app.
		return err == nil || strings.Contains(out+err.Error(), "exists")
	}, 30*time.Second)
	if ans := check("5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a01"); ans["version"] != "1.0.2" {
		t.Fatalf("after quorum returned: %v", ans)
	}
}

// TestReadyMeansApplied restarts a node holding thousands of device
// overrides: the moment it answers, /readyz's state_index is at least
// the index it had before, and a device pinned by the last write gets
// its pinned release, not the channel's (issue 10, item 8).
func TestReadyMeansApplied(t *testing.T) {
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.ready"
	n.cli(t, "app", "create", app)
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", filepath.Join(vec, "src-1.0.2"))
	var csv strings.Builder
	for i := range 9000 {
		fmt.Fprintf(&csv, "%08x-0000-4000-8000-000000000000,production\n", i)
	}
	file := filepath.Join(t.TempDir(), "devices.csv")
	os.WriteFile(file, []byte(csv.String()), 0o600)
	n.cli(t, "device", "import", app, file)
	const pinned = "5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a03"
	n.cli(t, "device", "set", app, pinned, "--version", "1.0.1")
	before := n.status(t).Node.StateIndex
	n.stop()

	n = startNode(t, n.data)
	resp, err := http.Get(n.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready struct {
		Ready      bool   `json:"ready"`
		StateIndex uint64 `json:"state_index"`
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if !ready.Ready || ready.StateIndex < before {
		t.Fatalf("/readyz right after start: %+v, state index before the restart %d", ready, before)
	}
	body := `{"platform":"android","device_id":"` + pinned + `","app_id":"` + app + `","version_build":"1.0.0",
		"version_code":"1","version_os":"14","version_name":"builtin","plugin_version":"8.51.23","is_emulator":false,"is_prod":true}`
	resp, err = http.Post(n.url+"/updates", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ans map[string]any
	json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if ans["version"] != "1.0.1" {
		t.Fatalf("pinned device answered from an older state: %v", ans)
	}
}
