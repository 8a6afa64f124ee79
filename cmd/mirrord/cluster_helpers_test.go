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
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
