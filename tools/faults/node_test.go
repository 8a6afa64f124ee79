package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mirrord/tools/toolstest"
)

// readyTimeout bounds a node's start: a restart replays its log, a
// first start may wait to join.
const readyTimeout = 90 * time.Second

// buildMirrord builds cmd/mirrord once, as CI builds it (CGO_ENABLED=0).
func buildMirrord(t *testing.T) string {
	t.Helper()
	toolstest.StatModule(t)
	bin := t.TempDir() + "/mirrord"
	cmd := exec.Command("go", "build", "-o", bin, "mirrord/cmd/mirrord")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build mirrord: %v\n%s", err, out)
	}
	return bin
}

// childEnv is the environment of every mirrord process: the test's,
// without MIRRORD_* variables, which would change the nodes' settings.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MIRRORD_") {
			env = append(env, kv)
		}
	}
	return env
}

// node is one mirrord process, started and stopped many times with the
// same data directory, ports and config file.
type node struct {
	name    string
	bin     string
	data    string
	http    string // 127.0.0.1:PORT
	url     string // http://127.0.0.1:PORT
	p2p     string // /ip4/127.0.0.1/tcp/PORT
	config  string
	logPath string // every run's output, appended

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped on purpose
	exited chan struct{} // closed when cmd ended
	frozen bool
	// up says the node is supposed to answer devices: it was ready
	// and has not been stopped, killed or frozen since. gen counts the
	// times it went down, so a request can tell whether the node was
	// up for the whole of it.
	up     bool
	gen    uint64
	peerID string
}

// start runs `mirrord serve` and waits until /readyz answers 200.
func (n *node) start(extra ...string) error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("%s is already running", n.name)
	}
	logf, err := os.OpenFile(n.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	fmt.Fprintf(logf, "=== harness: start %s at %s\n", n.name, time.Now().Format(time.RFC3339Nano))
	args := append([]string{"serve", "--config", n.config, "--data", n.data, "--http", n.http, "--p2p", n.p2p}, extra...)
	cmd := exec.Command(n.bin, args...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	// If the test binary dies (a timeout panic skips t.Cleanup), the
	// kernel kills the node with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		n.mu.Unlock()
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	n.cmd, n.exited, n.frozen = cmd, exited, false
	n.mu.Unlock()

	if err := n.waitReady(exited); err != nil {
		return err
	}
	if n.peerID == "" {
		id, err := n.fetchPeerID()
		if err != nil {
			return err
		}
		n.peerID = id
	}
	n.setUp(true)
	return nil
}

// waitReady polls /readyz until it answers 200, the process exits or
// readyTimeout passes.
func (n *node) waitReady(exited <-chan struct{}) error {
	hc := &http.Client{Timeout: time.Second}
	err := waitFor(readyTimeout, 50*time.Millisecond, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		resp, err := hc.Get(n.url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited before it was ready:\n%s", n.name, n.logTail(15))
	default:
	}
	if err != nil {
		return fmt.Errorf("%s not ready within %v:\n%s", n.name, readyTimeout, n.logTail(15))
	}
	return nil
}

func (n *node) fetchPeerID() (string, error) {
	var peer struct {
		ID string `json:"id"`
	}
	if err := getJSON(n.url+"/cluster/v1/peer", &peer); err != nil || peer.ID == "" {
		return "", fmt.Errorf("%s: peer id: %v", n.name, err)
	}
	return peer.ID, nil
}

// kill sends SIGKILL and waits for the process to end.
func (n *node) kill() error { return n.end(syscall.SIGKILL, 10*time.Second) }

// stop sends SIGTERM and waits for a clean exit (SIGKILL after 30s).
func (n *node) stop() error { return n.end(syscall.SIGTERM, 30*time.Second) }

func (n *node) end(sig syscall.Signal, within time.Duration) error {
	n.setUp(false)
	n.mu.Lock()
	cmd, exited, frozen := n.cmd, n.exited, n.frozen
	n.cmd, n.frozen = nil, false
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	if frozen && sig != syscall.SIGKILL {
		_ = cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot exit cleanly
	}
	select {
	case <-exited:
		return nil
	case <-time.After(within):
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("%s did not exit within %v of %v; killed", n.name, within, sig)
}

// freeze stops the process with SIGSTOP: it holds its sockets and
// answers nothing until thaw.
func (n *node) freeze() error {
	n.setUp(false)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return fmt.Errorf("%s is not running", n.name)
	}
	n.frozen = true
	return n.cmd.Process.Signal(syscall.SIGSTOP)
}

// thaw resumes a frozen process; it is supposed to answer at once.
func (n *node) thaw() error {
	n.mu.Lock()
	if n.cmd == nil || !n.frozen {
		n.mu.Unlock()
		return nil
	}
	n.frozen = false
	err := n.cmd.Process.Signal(syscall.SIGCONT)
	n.mu.Unlock()
	if err == nil {
		n.setUp(true)
	}
	return err
}

// crashed reports whether the process ended without being told to.
func (n *node) crashed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// running reports whether the node was started and not stopped since
// (it may have crashed or be frozen).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// forget drops a crashed process so that the node can start again.
func (n *node) forget() {
	n.setUp(false)
	n.mu.Lock()
	n.cmd = nil
	n.mu.Unlock()
}

func (n *node) setUp(up bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.up && !up {
		n.gen++
	}
	n.up = up
}

// ticket says whether the node is up now and, if so, the generation a
// request's outcome is compared with (upSince).
func (n *node) ticket() (uint64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen, n.up
}

// upSince reports whether the node has been up without a break since
// ticket returned gen.
func (n *node) upSince(gen uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.up && n.gen == gen
}

func (n *node) isUp() bool {
	_, up := n.ticket()
	return up
}

// ready is the body of GET /readyz.
type ready struct {
	Ready        bool     `json:"ready"`
	Leader       string   `json:"leader"`
	StateIndex   uint64   `json:"state_index"`
	StaleSeconds *float64 `json:"stale_seconds"`
	Warnings     []string `json:"warnings"`
}

func (n *node) readyz() (ready, error) {
	var r ready
	err := getJSON(n.url+"/readyz", &r)
	return r, err
}

// logTail returns the last lines of the node's output.
func (n *node) logTail(lines int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "    " + strings.Join(all[max(0, len(all)-lines):], "\n    ")
}

// quickClient is for probes: /readyz, /cluster/v1/peer.
var quickClient = &http.Client{Timeout: 2 * time.Second}

func getJSON(url string, v any) error {
	resp, err := quickClient.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return err
	}
	if err := json.Unmarshal(buf.Bytes(), v); err != nil {
		return fmt.Errorf("GET %s: HTTP %d: %w", url, resp.StatusCode, err)
	}
	return nil
}

// errTimeout is what waitFor returns when the condition never held.
var errTimeout = errors.New("condition not met before the deadline")

// waitFor polls cond every interval until it holds or timeout passes.
func waitFor(timeout, interval time.Duration, cond func() bool) error {
	if cond() {
		return nil
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return nil
			}
		case <-deadline.C:
			if cond() {
				return nil
			}
			return errTimeout
		}
	}
}
