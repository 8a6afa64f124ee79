package faults

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The damage the scenarios do to a node's files and disk.

// fill uploads random objects (no release references them) to n until
// even a small one is refused: objects of the plan's fill size, then
// smaller ones down to 16 KiB, so that no room is left. It returns the
// bytes stored and the first refusal.
func (x *phase) fill(n *node) (filled int64, code int, body string, err error) {
	rng := rand.NewChaCha8(x.h.seed)
	size := x.p.fillObject
	for range int(x.p.smallDisk/int64(x.p.fillObject)) + 64 {
		chunk := make([]byte, size)
		_, _ = rng.Read(chunk) // every object new: stored bytes are deduplicated
		req, err := http.NewRequest("POST", n.url+"/admin/v1/objects", bytes.NewReader(chunk))
		if err != nil {
			return filled, code, body, err
		}
		req.Header.Set("Authorization", "Bearer "+x.c.token)
		req.Header.Set("Content-Type", "application/octet-stream")
		got, answer, err := doRequest(req, 60*time.Second)
		switch {
		case err != nil:
			return filled, code, body, err
		case got == http.StatusCreated:
			filled += int64(size)
			continue
		case code == 0:
			code, body = got, answer
		}
		if size <= 16<<10 {
			break
		}
		size /= 4
	}
	return filled, code, body, nil
}

// gcUntilFreed runs `mirrord gc` on n until it has removed want bytes
// in all (the uploads must first age past n's gc_grace, 10s) and
// returns the runs and the bytes freed.
func (x *phase) gcUntilFreed(n *node, want int64, timeout time.Duration) (int, int64, error) {
	runs, freed := 0, int64(0)
	var last error
	err := waitFor(timeout, time.Second, func() bool {
		runs++
		var out string
		var res struct {
			BytesFreed int64 `json:"bytes_freed"`
		}
		if out, last = x.c.cli(n, "gc", "--json"); last == nil {
			last = json.Unmarshal([]byte(out), &res)
			freed += res.BytesFreed
		}
		return freed >= want
	})
	if err != nil {
		return runs, freed, fmt.Errorf("%d MiB freed in %d runs, %d MiB free (last error: %v)", freed>>20, runs, freeBytes(n.data)>>20, last)
	}
	return runs, freed, nil
}

// flipByte inverts the byte in the middle of a file, keeping its size:
// the damage a bad disk does.
func flipByte(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.Size() == 0 {
		return fmt.Errorf("flip a byte of %s: %v (size %d)", path, err, info.Size())
	}
	var b [1]byte
	at := info.Size() / 2
	if _, err := f.ReadAt(b[:], at); err != nil {
		return err
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b[:], at); err != nil {
		return err
	}
	return f.Sync()
}

// blockOf returns a flatfs block file under dir whose bytes are part of
// the file at objectPath: a raw leaf of that object.
func blockOf(dir, objectPath string) (string, error) {
	whole, err := os.ReadFile(objectPath)
	if err != nil {
		return "", err
	}
	found := ""
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || found != "" || e.IsDir() || !strings.HasSuffix(p, ".data") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && len(b) >= 256 && bytes.Contains(whole, b) {
			found = p
			return fs.SkipAll
		}
		return err
	})
	if err == nil && found == "" {
		err = errors.New("no block holds its bytes")
	}
	return found, err
}

// snapshots lists the raft snapshot directories in dir, oldest first.
func snapshots(dir string) []string {
	type snap struct {
		id          string
		term, index uint64
	}
	var list []snap
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "meta.json"))
		if err != nil || strings.HasSuffix(e.Name(), ".tmp") {
			continue // not a snapshot, or one being written
		}
		var m struct{ Term, Index uint64 }
		if json.Unmarshal(b, &m) == nil {
			list = append(list, snap{e.Name(), m.Term, m.Index})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].term != list[j].term {
			return list[i].term < list[j].term
		}
		return list[i].index < list[j].index
	})
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.id
	}
	return ids
}

func freeBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * st.Bsize
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
