package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mirrord/content/contenttest"
)

// TestMain lets the test binary act as the mirrord binary, so tests can
// run real server processes (and kill them) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("MIRRORD_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// vectors returns the Capgo CLI test vectors folder (testdata/capgo).
func vectors(t testing.TB) string { return contenttest.Vectors(t) }

// testNode is a node running in this process.
type testNode struct {
	url, data, token string
	cancel           context.CancelFunc
	done             chan error
}

func startNode(t testing.TB, data string) *testNode {
	t.Helper()
	return startNodeWith(t, data, nil)
}

func (n *testNode) stop() {
	if n.cancel == nil {
		return
	}
	n.cancel()
	<-n.done
	n.cancel = nil
}

// cli runs a mirrord command in process against the node and returns
// its stdout; it fails the test on error unless wantErr is set.
func (n *testNode) cli(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.cliErr(args...)
	if err != nil {
		t.Fatalf("mirrord %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (n *testNode) cliErr(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	full := append(append([]string{}, args...), "--server", n.url, "--token", n.token)
	err := run(context.Background(), full, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

// sameTree fails unless dirs a and b hold the same files with the same
// bytes.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	read := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			b, err := os.ReadFile(p)
			m[filepath.ToSlash(rel)] = b
			return err
		})
		if err != nil {
			t.Fatalf("walk %s: %v", root, err)
		}
		return m
	}
	w, g := read(want), read(got)
	for name, wb := range w {
		gb, ok := g[name]
		if !ok {
			t.Errorf("installed bundle lacks %s", name)
		} else if !bytes.Equal(wb, gb) {
			t.Errorf("installed %s differs from the source", name)
		}
	}
	for name := range g {
		if _, ok := w[name]; !ok {
			t.Errorf("installed bundle has extra file %s", name)
		}
	}
}

// proc is a mirrord server running as a separate process.
type proc struct {
	cmd *exec.Cmd
	url string
}

var readyRe = regexp.MustCompile(`http=(http://127\.0\.0\.1:\d+)`)

// startProc runs `mirrord serve --data DATA --http 127.0.0.1:0` as a
// child process (the test binary acting as mirrord).
func startProc(t *testing.T, data string) *proc {
	t.Helper()
	return startProcArgs(t, data, "--p2p", "/ip4/127.0.0.1/tcp/0")
}

// startProcArgs runs `mirrord serve --data DATA --http 127.0.0.1:0 ARGS...`.
func startProcArgs(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--data", data, "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "MIRRORD_TEST_AS_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			if m := readyRe.FindStringSubmatch(sc.Text()); m != nil && !sent && strings.Contains(sc.Text(), "ready") {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case u, ok := <-found:
		if !ok {
			t.Fatal("mirrord process exited before it was ready")
		}
		p.url = u
	case <-time.After(150 * time.Second):
		t.Fatal("mirrord process not ready within 150s")
	}
	return p
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func httpGet(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// copyTree copies a directory into a new temp dir (writable copies of the
// read-only vectors).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
