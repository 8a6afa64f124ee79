//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// appID and channel of the releases the scenario publishes.
const (
	appID   = "com.example.wan"
	channel = "production"
)

// tally counts device update checks.
type tally struct {
	OK, Failed int
	First      string // the first failure
}

func (t tally) String() string {
	s := fmt.Sprintf("%d/%d ok", t.OK, t.OK+t.Failed)
	if t.First != "" {
		s += " (first failure: " + clip(t.First, 60) + ")"
	}
	return s
}

var deviceClient = &http.Client{Timeout: 3 * time.Second}

// check sends n a device's update check; it passes when n answers 200
// with a release to download.
func check(n *mnode, device string) error {
	body, _ := json.Marshal(map[string]any{
		"platform": "android", "device_id": device, "app_id": appID, "custom_id": "",
		"version_build": "1.0.0", "version_code": "10", "version_os": "14", "version_name": "builtin",
		"plugin_version": "8.51.23", "is_emulator": false, "is_prod": true, "defaultChannel": "",
	})
	resp, err := deviceClient.Post(n.url+"/updates", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ans struct {
		Version string `json:"version"`
		URL     string `json:"url"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &ans) != nil || ans.Version == "" || ans.URL == "" {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, clip(string(b), 100))
	}
	return nil
}

// checkWhile sends update checks to every node of nodes() every 100 ms
// for at least least and until done() holds or most has passed.
func checkWhile(ctx context.Context, nodes func() []*mnode, least, most time.Duration, done func() bool) tally {
	var t tally
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		for _, n := range nodes() {
			if err := check(n, fmt.Sprintf("%08d-0000-4000-8000-%012d", i%1000, i)); err != nil {
				t.Failed++
				if t.First == "" {
					t.First = n.ep.name + ": " + err.Error()
				}
			} else {
				t.OK++
			}
		}
		finished := done() // every round, so that it sees the moment it holds
		el := time.Since(start)
		if el >= most || (el >= least && finished) {
			return t
		}
		select {
		case <-ctx.Done():
			return t
		case <-tick.C:
		}
	}
}

// bundleDir writes a bundle of size random (incompressible) bytes plus
// an index.html naming version into a new directory under base.
func bundleDir(base, version string, size int64) (string, error) {
	dir := filepath.Join(base, "bundle-"+version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!-- "+version+" -->\n"), 0o644); err != nil {
		return "", err
	}
	f, err := os.Create(filepath.Join(dir, "blob.bin"))
	if err != nil {
		return "", err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return "", err
	}
	return dir, f.Close()
}

// clip shortens s to n bytes for a table cell.
func clip(s string, n int) string {
	s = string(bytes.Join(bytes.Fields([]byte(s)), []byte(" ")))
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
