//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// nodeConfig: zips are copied eagerly (as configs/cluster-voter.yaml
// does), so that "ready" means a PoP holds every byte it serves.
const nodeConfig = `version: 1
replication:
  zips: eager
`

// mnode is one mirrord process in its namespace.
type mnode struct {
	ep      *endpoint
	bin     string
	dir     string
	url     string
	cmd     *exec.Cmd
	exited  chan struct{}
	peerID  string
	logPath string
}

func newNode(ep *endpoint, bin, base string) (*mnode, error) {
	dir := filepath.Join(base, ep.name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "mirrord.yaml"), []byte(nodeConfig), 0o644); err != nil {
		return nil, err
	}
	return &mnode{ep: ep, bin: bin, dir: dir, url: "http://" + ep.ip.String() + ":8080", logPath: filepath.Join(dir, "mirrord.log")}, nil
}

// start runs `mirrord serve` in the node's namespace (TCP only, on its
// WAN address) and waits until /readyz answers 200.
func (n *mnode) start(ctx context.Context, extra ...string) error {
	logf, err := os.OpenFile(n.logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"netns", "exec", n.ep.ns, n.bin, "serve",
		"--config", filepath.Join(n.dir, "mirrord.yaml"), "--data", filepath.Join(n.dir, "data"),
		"--http", n.ep.ip.String() + ":8080", "--p2p", "/ip4/" + n.ep.ip.String() + "/tcp/4001"}, extra...)
	cmd := exec.Command("ip", args...) // ip execs mirrord: the pid is mirrord's
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); logf.Close(); close(done) }(n.exited)
	err = waitFor(ctx, 120*time.Second, 100*time.Millisecond, func() bool {
		select {
		case <-n.exited:
			return true
		default:
		}
		return httpStatus(n.url+"/readyz") == http.StatusOK
	})
	select {
	case <-n.exited:
		return fmt.Errorf("%s exited before it was ready:\n%s", n.ep.name, n.logTail(15))
	default:
	}
	if err != nil {
		return fmt.Errorf("%s not ready: %w\n%s", n.ep.name, err, n.logTail(15))
	}
	var peer struct {
		ID string `json:"id"`
	}
	if err := getJSON(n.url+"/cluster/v1/peer", "", &peer); err != nil {
		return err
	}
	n.peerID = peer.ID
	return nil
}

// kill sends SIGKILL and waits for the process to end.
func (n *mnode) kill() {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
}

func (n *mnode) alive() bool { return n.cmd != nil }

func (n *mnode) logTail(lines int) string {
	b, _ := os.ReadFile(n.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return "    " + strings.Join(all[max(0, len(all)-lines):], "\n    ")
}

// readyState is the part of GET /readyz the scenario reads.
type readyState struct {
	Leader     string `json:"leader"`
	StateIndex uint64 `json:"state_index"`
}

// state is the node's /readyz answer (zero if it does not answer).
func (n *mnode) state() readyState {
	var r readyState
	_ = getJSON(n.url+"/readyz", "", &r)
	return r
}

// leader is the peer id the node names as leader ("" for none).
func (n *mnode) leader() string { return n.state().Leader }

// metric returns the value of the first sample of /metrics whose line
// starts with name and contains every label given ("" if none).
func (n *mnode) metric(token, name string, labels ...string) string {
	req, _ := http.NewRequest(http.MethodGet, n.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := probe.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		return line[strings.LastIndexByte(line, ' ')+1:]
	}
	return ""
}

// ready says whether the node holds every byte of app's release version.
func (n *mnode) ready(token, app, version string) bool {
	return n.metric(token, "mirrord_replication_release_ready", `app="`+app+`"`, `version="`+version+`"`) == "1"
}

// childEnv is the environment without MIRRORD_* variables.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MIRRORD_") {
			env = append(env, kv)
		}
	}
	return env
}

// probe is the client of every status request: short, so that a cut
// link shows as a failure rather than a hang.
var probe = &http.Client{Timeout: 2 * time.Second}

func httpStatus(url string) int {
	resp, err := probe.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func getJSON(url, token string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := probe.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: HTTP %d: %w: %s", url, resp.StatusCode, err, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return nil
}

// waitFor polls cond every interval until it holds, timeout passes or
// ctx ends.
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			if cond() {
				return nil
			}
			return fmt.Errorf("condition not met within %v: %w", timeout, ctx.Err())
		case <-tick.C:
		}
	}
}
