package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// upload posts the file at path to url's object upload.
func (c *cluster) upload(ctx context.Context, url, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", url+"/admin/v1/objects", f)
	if err != nil {
		return err
	}
	req.ContentLength = info.Size()
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upload: HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	id   string
	logf *os.File
	mu   sync.Mutex
	subs []func(line string) // log line watchers
	done chan struct{}
}

type cluster struct {
	bin, token string
	procs      []*proc
}

var readyRe = regexp.MustCompile(`msg="mirrord node ready" http=(http://127\.0\.0\.1:\d+) node=(\S+)`)

func startProc(ctx context.Context, bin, data string, args ...string) (*proc, error) {
	logf, err := os.Create(data + ".log")
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--data", data, "--http", "127.0.0.1:0",
		"--p2p", "/ip4/127.0.0.1/tcp/0"}, args...)...)
	// The node dies with this tool, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, logf: logf, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := readyRe.FindStringSubmatch(line); m != nil && p.url == "" {
				p.url, p.id = m[1], m[2]
				close(ready)
			}
			p.mu.Lock()
			for _, fn := range p.subs {
				fn(line)
			}
			p.mu.Unlock()
		}
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		return p, fmt.Errorf("mirrord exited before it was ready (log: %s)", logf.Name())
	case <-time.After(2 * time.Minute):
		return p, fmt.Errorf("mirrord not ready within 2 minutes (log: %s)", logf.Name())
	}
}

func (p *proc) watch(fn func(line string)) {
	p.mu.Lock()
	p.subs = append(p.subs, fn)
	p.mu.Unlock()
}

func startCluster(ctx context.Context, bin, dir string, n int) (*cluster, error) {
	cl := &cluster{bin: bin}
	first, err := startProc(ctx, bin, filepath.Join(dir, "n0"))
	if first != nil {
		cl.procs = append(cl.procs, first)
	}
	if err != nil {
		return cl, err
	}
	tok, err := os.ReadFile(filepath.Join(dir, "n0", "admin.token"))
	if err != nil {
		return cl, err
	}
	cl.token = strings.TrimSpace(string(tok))
	out, err := cl.cli(ctx, "cluster", "token")
	if err != nil {
		return cl, err
	}
	join := strings.Fields(out)[0]
	for i := 1; i < n; i++ {
		p, err := startProc(ctx, bin, filepath.Join(dir, fmt.Sprintf("n%d", i)), "--join", first.url, "--join-token", join)
		if p != nil {
			cl.procs = append(cl.procs, p)
		}
		if err != nil {
			return cl, err
		}
	}
	return cl, nil
}

// stop ends the cluster's processes (each by its own handle) and waits.
func (c *cluster) stop() {
	for _, p := range c.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
		}
		_ = p.cmd.Wait()
		p.logf.Close()
	}
}

func (c *cluster) cli(ctx context.Context, args ...string) (string, error) {
	return c.cliAt(ctx, c.procs[0].url, args...)
}

func (c *cluster) cliAt(ctx context.Context, url string, args ...string) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, c.bin, append(args, "--server", url, "--token", c.token)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("mirrord %s: %w: %s", strings.Join(args[:min(2, len(args))], " "), err, firstLine(string(out)))
	}
	return string(out), nil
}

// leaderURL returns the HTTP URL of the node that is leader now (the
// first node if none is known).
func (c *cluster) leaderURL(ctx context.Context) string {
	for _, p := range c.procs {
		m, err := scrape(ctx, p.url)
		if err == nil && m["leader"] == 1 {
			return p.url
		}
	}
	return c.procs[0].url
}

// waitReplicated waits until every node reports the release complete
// ("" waits until every node reports in).
func (c *cluster) waitReplicated(ctx context.Context, version string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		out, err := c.cli(ctx, "status", "--json")
		if err == nil && statusReady(out, version, len(c.procs)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("release %q not on every node within %s", version, limit)
}

// statusReady reads `mirrord status --json`: every one of n nodes
// reports, and (for a version) says the release is ready.
func statusReady(out, version string, n int) bool {
	var st struct {
		Nodes []struct {
			Error    string `json:"error"`
			Releases []struct {
				Version string `json:"version"`
				Ready   bool   `json:"ready"`
			} `json:"releases"`
		} `json:"nodes"`
	}
	if json.Unmarshal([]byte(out), &st) != nil || len(st.Nodes) < n {
		return false
	}
	for _, nd := range st.Nodes {
		if nd.Error != "" {
			return false
		}
		ok := version == ""
		for _, r := range nd.Releases {
			ok = ok || (r.Version == version && r.Ready)
		}
		if !ok {
			return false
		}
	}
	return true
}
