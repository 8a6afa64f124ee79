package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/content"
	"mirrord/content/contenttest"
)

// adminUpload posts an object; size < 0 sends it chunked (no length).
func adminUpload(t *testing.T, n *testNode, body io.Reader, size int64) (int, map[string]string) {
	t.Helper()
	req, err := http.NewRequest("POST", n.url+"/admin/v1/objects", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var out map[string]string
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// bundleDir writes a bundle of an index.html and size random bytes.
func bundleDir(t *testing.T, seed uint64, size int) string {
	t.Helper()
	dir := t.TempDir()
	blob := make([]byte, size)
	r := mrand.NewChaCha8([32]byte{byte(seed)})
	r.Read(blob)
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestFullDiskRecovers fills a real file system (a tmpfs holding the
// whole data directory) with an upload: the node answers 507 saying what
// to do, gives the space back on its own and with a plain `mirrord gc`
// although the grace period is an hour, and a 1 MiB publish works, all
// without a restart.
// Uploads that were stored but never released fill it next: they stay
// through `mirrord gc` and go with `mirrord gc --grace 0`.
func TestFullDiskRecovers(t *testing.T) {
	mnt := contenttest.MountTmpfs(t, "48m")
	n := startNodeWith(t, mnt, func(c *configs.Config) {
		c.Raft.WALSegmentSize = 1 << 20
		c.Stats.MaxBytes, c.Stats.SegmentBytes = 1<<20, 256<<10
		// The margin would refuse these uploads before the disk fills:
		// make it tiny to reach a real ENOSPC.
		c.Replication.MinFree = 1
	})
	const app = "com.example.full"
	n.cli(t, "app", "create", app)
	before := contenttest.Free(t, mnt)

	// An upload of unknown length larger than the disk.
	rng := mrand.NewChaCha8([32]byte{1})
	status, out := adminUpload(t, n, io.LimitReader(rng, 64<<20), -1)
	if status != http.StatusInsufficientStorage || out["error"] != "no_space" ||
		!strings.Contains(out["message"], "mirrord gc") || !strings.Contains(out["message"], "replication.disk_budget") {
		t.Fatalf("upload onto a full disk: HTTP %d %v, want 507 no_space saying what to do", status, out)
	}
	// The node collects the failed upload's blocks on its own...
	consensustest.WaitFor(t, "the failed upload's space given back", func() bool {
		return contenttest.Free(t, mnt) >= before-(1<<20)
	}, 30*time.Second)
	// ...and `mirrord gc`, what the answer says to run, works too.
	n.cli(t, "gc")
	if free := contenttest.Free(t, mnt); free < before-(1<<20) {
		t.Fatalf("after gc %d bytes free, %d before the failed upload: its blocks stayed", free, before)
	}
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", bundleDir(t, 2, 1<<20))
	dev := newDevice(t, n, app, nil)
	if r, err := dev.Update(context.Background()); err != nil || r.Installed != "1.0.1" {
		t.Fatalf("install after the disk was full: %v %+v", err, r)
	}

	// Objects uploaded for releases never created, until the disk is
	// full: the known length is refused before anything is written.
	obj := make([]byte, 4<<20)
	abandoned := 0
	for i := 0; ; i++ {
		if i == 20 {
			t.Fatal("20 uploads of 4 MiB fitted on a 48 MiB disk")
		}
		rng.Read(obj)
		status, out := adminUpload(t, n, bytes.NewReader(obj), int64(len(obj)))
		if status == http.StatusCreated {
			abandoned++
			continue
		}
		if status != http.StatusInsufficientStorage || !strings.Contains(out["message"], "mirrord gc") {
			t.Fatalf("upload %d onto a full disk: HTTP %d %v, want 507 saying what to do", i, status, out)
		}
		break
	}
	if abandoned < 4 {
		t.Fatalf("only %d uploads fitted", abandoned)
	}
	var res content.GCResult
	if err := json.Unmarshal([]byte(n.cli(t, "gc", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.BytesFreed > 1<<20 {
		t.Fatalf("gc within the grace period removed recent uploads: %+v", res)
	}
	if err := json.Unmarshal([]byte(n.cli(t, "gc", "--grace", "0", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.BytesFreed < int64(abandoned)*(4<<20) {
		t.Fatalf("gc --grace 0 freed %d bytes, want the %d uploads of 4 MiB no release uses", res.BytesFreed, abandoned)
	}
	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", bundleDir(t, 3, 1<<20))
	if r, err := dev.Update(context.Background()); err != nil || r.Installed != "1.0.2" {
		t.Fatalf("install after gc --grace 0: %v %+v", err, r)
	}
	if out := n.cli(t, "status"); !strings.Contains(out, "disk: blocks use") {
		t.Errorf("status does not report the disk:\n%s", out)
	}
}

// TestUploadStopsAtBudget: an upload of unknown length is stopped with
// 507 once it passes the disk budget (it could not be refused before it
// started), and its blocks are collected at once.
func TestUploadStopsAtBudget(t *testing.T) {
	n := startNodeWith(t, "", func(c *configs.Config) {
		c.Replication.DiskBudget = 8 << 20
	})
	before, err := storeUsage(n)
	if err != nil {
		t.Fatal(err)
	}
	status, out := adminUpload(t, n, io.LimitReader(mrand.NewChaCha8([32]byte{4}), 32<<20), -1)
	if status != http.StatusInsufficientStorage || out["error"] != "over_budget" || !strings.Contains(out["message"], "replication.disk_budget") {
		t.Fatalf("upload of unknown length past the budget: HTTP %d %v, want 507 over_budget", status, out)
	}
	consensustest.WaitFor(t, "the stopped upload's blocks collected", func() bool {
		used, err := storeUsage(n)
		return err == nil && used <= before+(1<<20)
	}, 30*time.Second)
}

// storeUsage is the size of the node's block files.
func storeUsage(n *testNode) (int64, error) {
	var total int64
	err := filepath.WalkDir(filepath.Join(n.data, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".data" {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}
