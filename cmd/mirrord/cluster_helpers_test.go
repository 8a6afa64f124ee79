package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// objectURLs lists the download URLs of a release's objects on node n.
func objectURLs(t *testing.T, n *testNode, app, version string) []string {
	t.Helper()
	var rels []adminapi.ReleaseInfo
	out := n.cli(t, "release", "list", app, "--json")
	if err := json.Unmarshal([]byte(out), &rels); err != nil {
		t.Fatalf("release list: %v\n%s", err, out)
	}
	var urls []string
	for _, r := range rels {
		if r.Version != version {
			continue
		}
		urls = append(urls, n.url+"/dl/"+r.ZipCID+"/bundle.zip")
		for _, f := range r.Manifest {
			urls = append(urls, n.url+"/dl/"+f.CID+"/"+f.FileName)
		}
	}
	if len(urls) == 0 {
		t.Fatalf("release %s not listed", version)
	}
	return urls
}

// largestBlock returns the path and bytes of the biggest block file.
func largestBlock(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	var best string
	var size int64
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || !strings.HasSuffix(p, ".data") {
			return err
		}
		if info, err := de.Info(); err == nil && info.Size() > size {
			best, size = p, info.Size()
		}
		return nil
	})
	if err != nil || best == "" {
		t.Fatalf("no block files in %s: %v", dir, err)
	}
	b, err := os.ReadFile(best)
	if err != nil {
		t.Fatal(err)
	}
	return best, b
}

// freePort returns a TCP port that was free a moment ago on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// checker sends update checks to nodes in a loop and counts failures.
type checker struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	lastErr    string
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startChecker(t *testing.T, urls []string, app string) *checker {
	c := &checker{stop: make(chan struct{})}
	body := fmt.Sprintf(`{"app_id":%q,"device_id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","version_name":"builtin","version_build":"1.0.0","version_code":"1","version_os":"14","platform":"android","plugin_version":"8.51.23","is_emulator":false,"is_prod":true,"defaultChannel":""}`, app)
	hc := &http.Client{Timeout: 2 * time.Second}
	for _, u := range urls {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for i := 0; i < 100000; i++ {
				select {
				case <-c.stop:
					return
				default:
				}
				resp, err := hc.Post(u+"/updates", "application/json", strings.NewReader(body))
				if err == nil {
					var ans map[string]any
					err = json.NewDecoder(resp.Body).Decode(&ans)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || ans["version"] == nil) {
						err = fmt.Errorf("HTTP %d %v", resp.StatusCode, ans)
					}
				}
				if err != nil {
					c.failed.Add(1)
					c.mu.Lock()
					c.lastErr = err.Error()
					c.mu.Unlock()
				} else {
					c.ok.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return c
}

func (c *checker) finish() { close(c.stop); c.wg.Wait() }

// cliAt runs a mirrord command in process against url with token.
func cliAt(url, token string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	full := append(append([]string{}, args...), "--server", url, "--token", token)
	err := run(context.Background(), full, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func mustCLI(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	out, err := cliAt(url, token, args...)
	if err != nil {
		t.Fatalf("mirrord %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func statusAt(t *testing.T, url, token string) (adminapi.Status, error) {
	t.Helper()
	var st adminapi.Status
	out, err := cliAt(url, token, "status", "--json")
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, out)
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// startRolloutCluster starts three nodes with fast stats reports,
// publishes app's 1.0.1 on production and 1.0.2 stored only (as in the
// acceptance run of issue 5) through the second node, and starts a
// rollout of 1.0.2 to percent of devices with a halt policy (failure
// rate 0.2 over at least 50 events) through the third, waiting until
// every node has it.
func startRolloutCluster(t *testing.T, app string, percent int) []*testNode {
	t.Helper()
	vec := vectors(t)
	a := startNodeWith(t, "", fastStats)
	tok := strings.Fields(a.cli(t, "cluster", "token"))[0]
	b := joinNode(t, a.url, tok, fastStats)
	c := joinNode(t, b.url, tok, fastStats)
	nodes := []*testNode{a, b, c}
	b.cli(t, "app", "create", app)
	b.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "src-1.0.1"))
	b.cli(t, "publish", "--app", app, "--version", "1.0.2", filepath.Join(vec, "src-1.0.2"))
	out := c.cli(t, "rollout", "start", app, "production", "--version", "1.0.2", "--percent", strconv.Itoa(percent),
		"--halt-failure-rate", "0.2", "--halt-min-events", "50")
	if want := fmt.Sprintf("1.0.2 to %d.00%% of devices (active)", percent); !strings.Contains(out, want) {
		t.Fatalf("rollout start said:\n%s", out)
	}
	consensustest.WaitFor(t, "the rollout on every node", func() bool {
		for _, n := range nodes {
			if r := rolloutAt(t, n, app, "production").Rollout; r == nil || r.BasisPoints != percent*100 {
				return false
			}
		}
		return true
	}, 10*time.Second)
	return nodes
}

// installsLeaveRolloutActive sends one install of 1.0.2 to each node,
// from a device that checked in there (ids first, first+step, ...), and
// waits until the three are in the rollout's tally: every node has then
// reported what it counted of the events sent before (what they were,
// for the failure message). The rollout must still be active, with
// those three installs and no failure.
func installsLeaveRolloutActive(t *testing.T, fc *fleetClient, nodes []*testNode, app string, first, step int, after string) {
	t.Helper()
	for i, n := range nodes {
		fc.stat(n.url, checkedInDevices(t, fc, n.url, "1.0.2", first+step*i, 1)[0], "set", "1.0.2")
	}
	consensustest.WaitFor(t, "the three installs reported by every node", func() bool {
		return rolloutAt(t, nodes[2], app, "production").Since.Installs == 3
	}, 20*time.Second)
	for _, n := range nodes {
		ri := rolloutAt(t, n, app, "production")
		if r := ri.Rollout; r.State != state.RolloutActive || r.Halt != nil || ri.Since != (state.Tally{Installs: 3}) {
			t.Fatalf("after %s, %s has rollout %+v tally %+v", after, n.url, r, ri.Since)
		}
	}
}

// realFailuresHalt sends 60 failures of 1.0.2 (update_fail and
// download_fail) from 8.51 devices that checked in, 20 per node (ids
// first, first+step, ... per node), each to the node that answered it,
// and waits until the rollout is paused on every node.
func realFailuresHalt(t *testing.T, fc *fleetClient, nodes []*testNode, app string, first, step int) {
	t.Helper()
	var failing [3][]string
	for i, n := range nodes {
		failing[i] = checkedInDevices(t, fc, n.url, "1.0.2", first+step*i, 20)
	}
	parallel(8, 60, func(i int) {
		action := []string{"update_fail", "download_fail"}[i%2]
		fc.stat(nodes[i%3].url, failing[i%3][i/3], action, "1.0.2")
	})
	consensustest.WaitFor(t, "the rollout paused on every node", func() bool {
		for _, n := range nodes {
			if r := rolloutAt(t, n, app, "production").Rollout; r.State != state.RolloutPaused || r.Halt == nil {
				return false
			}
		}
		return true
	}, 30*time.Second)
}
