package inbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// load reads a bundle directory: its release.yaml, key and digest.
func (w *Watcher) load(name, dir string) (Bundle, error) {
	b := Bundle{Name: name, Dir: dir, Skip: []string{MetaFile, ReadyMarker}}
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return b, errors.New("no release.yaml in the bundle directory (keys: app, version, channel, min_native, key or session_key + checksum, create_app)")
		}
		return b, err
	}
	if b.Meta, err = ParseMeta(raw); err != nil {
		return b, err
	}
	if k := b.Meta.Key; k != "" {
		b.Key = w.resolveKey(dir, k)
		if b.Key == "" {
			return b, fmt.Errorf("release.yaml: key %s not found (a relative path is looked up in the bundle directory, the inbox, then the node's working directory)", k)
		}
		if rel, err := filepath.Rel(dir, b.Key); err == nil && !strings.HasPrefix(rel, "..") {
			b.Skip = append(b.Skip, filepath.ToSlash(rel))
		}
	}
	if b.Meta.SessionKey != "" && !exists(filepath.Join(dir, ZipName)) {
		return b, fmt.Errorf("release.yaml has session_key and checksum, so the directory must hold %s (the zip the Capgo CLI encrypted)", ZipName)
	}
	if b.Digest, err = digest(dir, b.Skip); err != nil {
		return b, err
	}
	return b, nil
}

// resolveKey finds the key file k: absolute, or relative to the bundle
// directory, the inbox, or the working directory, in that order.
func (w *Watcher) resolveKey(dir, k string) string {
	if filepath.IsAbs(k) {
		if exists(k) {
			return k
		}
		return ""
	}
	for _, base := range []string{dir, w.cfg.Dir, "."} {
		if p := filepath.Join(base, k); exists(p) {
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
			return p
		}
	}
	return ""
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// walkFiles lists the regular files under dir (relative, slash
// separated, sorted), without the skipped ones.
func walkFiles(dir string, skip []string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, s := range skip {
			if rel == s {
				return nil
			}
		}
		names = append(names, rel)
		return nil
	})
	sort.Strings(names)
	return names, err
}

// signature is a cheap summary of a tree (names, sizes, times) to see
// whether it is still changing.
func signature(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// digest hashes the bundle's files: names and bytes, in order.
func digest(dir string, skip []string) (string, error) {
	names, err := walkFiles(dir, skip)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return "", err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, info.Size())
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	// release.yaml decides where and how the files are published: it is
	// part of the content.
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\x00%d\x00", MetaFile, len(meta))
	h.Write(meta)
	return hex.EncodeToString(h.Sum(nil)), nil
}
