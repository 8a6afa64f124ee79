package content

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// ErrUnsafePath is wrapped (with the entry name) by every refusal of a
// zip entry or manifest path that could escape the bundle directory or
// that the plugin would reject: "..", absolute and drive paths,
// backslashes, NUL, duplicates, file/directory clashes.
var ErrUnsafePath = errors.New("content: unsafe path")

// ErrNoIndex is returned when a bundle has no index.html at its app root
// (after flattening a single top-level directory).
var ErrNoIndex = errors.New("content: no index.html at the bundle root")

// Default zip limits, used for zero fields of ZipLimits.
const (
	defaultMaxFiles      = 100000
	defaultMaxTotalBytes = 2 << 30 // 2 GiB
)

// ZipFile is one file of a bundle: its relative POSIX path and bytes.
type ZipFile struct {
	Name string
	Data []byte
}

// ZipLimits bounds what ReadZip and Unzip accept, against zip bombs.
// A zero field means its default (100000 files, 2 GiB in total).
type ZipLimits struct {
	MaxFiles      int
	MaxTotalBytes int64
}

func (l ZipLimits) withDefaults() ZipLimits {
	if l.MaxFiles <= 0 {
		l.MaxFiles = defaultMaxFiles
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = defaultMaxTotalBytes
	}
	return l
}

// CleanPath checks a bundle-relative path (a zip entry or a manifest
// file_name) the way the plugin does before writing it, and returns it
// cleaned ("a//b" and "./a/b" become "a/b"). The error wraps
// ErrUnsafePath for empty names, NUL bytes, backslashes, absolute or
// drive-letter paths and any ".." segment.
func CleanPath(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", ErrUnsafePath)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("%w: %q contains NUL", ErrUnsafePath, name)
	case strings.Contains(name, `\`):
		return "", fmt.Errorf("%w: %q contains a backslash (Windows path)", ErrUnsafePath, name)
	case strings.HasPrefix(name, "/"):
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafePath, name)
	case len(name) >= 2 && name[1] == ':' && isASCIILetter(name[0]):
		return "", fmt.Errorf("%w: %q starts with a drive letter", ErrUnsafePath, name)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", fmt.Errorf("%w: %q contains \"..\"", ErrUnsafePath, name)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", fmt.Errorf("%w: %q names the bundle root", ErrUnsafePath, name)
	}
	return clean, nil
}

func isASCIILetter(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// ZipDir builds a deterministic zip of dir: regular files only (a
// symlink or special file is an error), entries named by forward-slash
// paths relative to dir and sorted, no directory entries, Deflate, mode
// 0644 and a fixed modification time. index.html must exist at the root
// of dir. The same tree always gives the same bytes (with the same Go
// version), so its SHA-256 is a stable checksum.
func ZipDir(dir string) ([]byte, error) { return ZipDirSkipping(dir) }

// ZipDirSkipping is ZipDir leaving out the files named by skip (paths
// relative to dir, with forward slashes), such as a watch folder's
// release.yaml sidecar.
func ZipDirSkipping(dir string, skip ...string) ([]byte, error) {
	// Follow a symlinked root (a "dist" link is common); symlinks inside
	// the tree are refused below.
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("content: zip dir: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("content: zip dir: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("content: zip dir: %s is not a directory", dir)
	}
	var names []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch t := d.Type(); {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symlink; bundles may hold regular files only", rel)
		case !t.IsRegular():
			return fmt.Errorf("%s is not a regular file (%v)", rel, t)
		}
		if slices.Contains(skip, rel) {
			return nil
		}
		if _, err := CleanPath(rel); err != nil {
			return err
		}
		names = append(names, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("content: zip dir %s: %w", dir, err)
	}
	sort.Strings(names)
	if i := sort.SearchStrings(names, "index.html"); i == len(names) || names[i] != "index.html" {
		return nil, fmt.Errorf("content: zip dir %s: %w", dir, ErrNoIndex)
	}

	// A fixed time (the DOS epoch) keeps the bytes independent of when
	// and where the files were written.
	modTime := time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			return nil, fmt.Errorf("content: zip dir: %w", err)
		}
		hdr := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: modTime}
		hdr.SetMode(0o644)
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			return nil, fmt.Errorf("content: zip dir: %s: %w", name, err)
		}
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("content: zip dir: %s: %w", name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("content: zip dir: %w", err)
	}
	return buf.Bytes(), nil
}

// ReadZip validates a bundle zip and returns its app files sorted by
// name. It flattens like the plugin (CapgoUpdater.flattenAssets): when,
// ignoring names that start with "." or "__MACOSX", the root holds
// exactly one entry and it is a directory, that directory is the app and
// its prefix is stripped (the ignored entries are dropped, as the plugin
// drops them); otherwise the root is the app. The app root must hold
// index.html (ErrNoIndex).
//
// It refuses, naming the entry: unsafe paths (ErrUnsafePath, see
// CleanPath), duplicates after cleaning, a file that is also a
// directory, symlinks and other special files, encrypted entries,
// unsupported compression, and more than lim allows (counting both the
// declared and the actually decompressed sizes). Directory entries are
// skipped.
func ReadZip(data []byte, lim ZipLimits) ([]ZipFile, error) {
	var out []ZipFile
	err := walkZip(bytes.NewReader(data), int64(len(data)), lim, func(name string, f *zip.File, limit int64) (int64, error) {
		b, err := readEntry(f, limit)
		if err != nil {
			return 0, err
		}
		out = append(out, ZipFile{Name: name, Data: b})
		return int64(len(b)), nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckZip validates a bundle zip of size bytes read through r exactly
// as ReadZip does (every entry is decompressed and its CRC checked), but
// streams the entries instead of keeping them: a node validating an
// uploaded release of hundreds of MB then holds a few KiB, not the zip
// and its files, in memory.
func CheckZip(r io.ReaderAt, size int64, lim ZipLimits) error {
	return walkZip(r, size, lim, func(_ string, f *zip.File, limit int64) (int64, error) {
		return checkEntry(f, limit)
	})
}

// walkZip validates the zip's directory (see ReadZip) and calls visit
// for every app file, in zip order, with its name relative to the app
// root and how many decompressed bytes it may have; visit returns how
// many it had.
func walkZip(r io.ReaderAt, size int64, lim ZipLimits, visit func(name string, f *zip.File, limit int64) (int64, error)) error {
	lim = lim.withDefaults()
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// ErrInsecurePath still returns a usable reader; the names are
		// checked below with a clearer message.
		return fmt.Errorf("content: read zip: %w", err)
	}
	if len(zr.File) > lim.MaxFiles {
		return fmt.Errorf("content: read zip: %d entries, more than the limit of %d", len(zr.File), lim.MaxFiles)
	}

	type entry struct {
		f     *zip.File
		clean string
	}
	var files []entry
	seen := make(map[string]bool, len(zr.File)) // clean name -> is a dir
	var declared uint64
	for _, f := range zr.File {
		clean, err := CleanPath(strings.TrimSuffix(f.Name, "/"))
		if err != nil {
			return fmt.Errorf("content: read zip: entry %q: %w", f.Name, err)
		}
		mode := f.Mode()
		isDir := strings.HasSuffix(f.Name, "/") || mode.IsDir()
		switch {
		case mode&fs.ModeSymlink != 0:
			return fmt.Errorf("content: read zip: entry %q is a symlink", f.Name)
		case !isDir && !mode.IsRegular():
			return fmt.Errorf("content: read zip: entry %q is a special file (%v)", f.Name, mode.Type())
		case f.Flags&0x1 != 0:
			return fmt.Errorf("content: read zip: entry %q is encrypted", f.Name)
		}
		if prevDir, dup := seen[clean]; dup {
			if isDir && prevDir {
				continue // the same directory twice is harmless
			}
			return fmt.Errorf("content: read zip: entry %q: %w: duplicate of another entry", f.Name, ErrUnsafePath)
		}
		seen[clean] = isDir
		if isDir {
			continue
		}
		if f.UncompressedSize64 > uint64(lim.MaxTotalBytes)-declared {
			return fmt.Errorf("content: read zip: declared sizes exceed the limit of %d bytes (at entry %q)", lim.MaxTotalBytes, f.Name)
		}
		declared += f.UncompressedSize64
		files = append(files, entry{f: f, clean: clean})
	}
	// A file must not also be a parent directory of another entry, or
	// writing the bundle out would fail or replace one with the other.
	for name := range seen {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if isDir, ok := seen[dir]; ok && !isDir {
				return fmt.Errorf("content: read zip: entry %q: %w: %q is a file", name, ErrUnsafePath, dir)
			}
		}
	}

	prefix, err := appPrefix(seen)
	if err != nil {
		return fmt.Errorf("content: read zip: %w", err)
	}

	var total int64
	for _, e := range files {
		if prefix != "" && !strings.HasPrefix(e.clean, prefix) {
			continue
		}
		n, err := visit(strings.TrimPrefix(e.clean, prefix), e.f, lim.MaxTotalBytes-total)
		if err != nil {
			return fmt.Errorf("content: read zip: entry %q: %w", e.f.Name, err)
		}
		total += n
	}
	return nil
}

// appPrefix decides where the app root is, given every cleaned entry
// name (true for directories), and checks it has index.html. It returns
// "" for the zip root or "dir/" for a single top-level directory.
func appPrefix(entries map[string]bool) (string, error) {
	top := make(map[string]bool) // top-level name -> is a dir
	for name, isDir := range entries {
		first, _, nested := strings.Cut(name, "/")
		if strings.HasPrefix(first, ".") || strings.HasPrefix(first, "__MACOSX") {
			continue
		}
		top[first] = top[first] || isDir || nested
	}
	prefix := ""
	if len(top) == 1 {
		for name, isDir := range top {
			if name != "index.html" && isDir {
				prefix = name + "/"
			}
		}
	}
	if isDir, ok := entries[prefix+"index.html"]; !ok || isDir {
		if prefix != "" {
			return "", fmt.Errorf("%w (looked in the single top-level directory %q)", ErrNoIndex, strings.TrimSuffix(prefix, "/"))
		}
		return "", ErrNoIndex
	}
	return prefix, nil
}

// readEntry decompresses one entry, reading at most limit bytes so that a
// lying size header cannot make it allocate more.
func readEntry(f *zip.File, limit int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if f.UncompressedSize64 > uint64(limit) {
		return nil, errors.New("decompressed size exceeds the limit")
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("decompressed size exceeds the limit")
	}
	if uint64(len(b)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("decompressed to %d bytes, header says %d", len(b), f.UncompressedSize64)
	}
	return b, nil
}

// checkEntry is readEntry without keeping the bytes: it returns how
// many the entry decompressed to.
func checkEntry(f *zip.File, limit int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if f.UncompressedSize64 > uint64(limit) {
		return 0, errors.New("decompressed size exceeds the limit")
	}
	// Reading to the end makes archive/zip check the CRC.
	n, err := io.Copy(io.Discard, io.LimitReader(rc, limit+1))
	if err != nil {
		return 0, err
	}
	if n > limit {
		return 0, errors.New("decompressed size exceeds the limit")
	}
	if uint64(n) != f.UncompressedSize64 {
		return 0, fmt.Errorf("decompressed to %d bytes, header says %d", n, f.UncompressedSize64)
	}
	return n, nil
}

// Unzip validates data with ReadZip and writes the app files under dest
// through a BundleDir (directories 0755, files 0644), creating dest if
// needed: nothing can land outside dest, and existing files are never
// overwritten.
func Unzip(data []byte, dest string, lim ZipLimits) error {
	files, err := ReadZip(data, lim)
	if err != nil {
		return err
	}
	dir, err := OpenBundleDir(dest)
	if err != nil {
		return fmt.Errorf("content: unzip: %w", err)
	}
	defer dir.Close()
	for _, f := range files {
		if err := dir.WriteFile(f.Name, f.Data); err != nil {
			return fmt.Errorf("content: unzip: %s: %w", f.Name, err)
		}
	}
	return nil
}

// BundleDir writes the files of a bundle below one directory, the one
// safe way to lay out an unzipped bundle or a delta manifest's files:
// every write goes through an os.Root, so nothing can land outside the
// directory, not even through a symlink already inside it; parent
// directories are made (0755) and files (0644) are never overwritten.
type BundleDir struct{ root *os.Root }

// OpenBundleDir opens dest as a BundleDir, creating it if needed.
func OpenBundleDir(dest string) (*BundleDir, error) {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return nil, err
	}
	return &BundleDir{root: root}, nil
}

// WriteFile creates name, a clean relative slash path, with data; it
// fails if name exists.
func (d *BundleDir) WriteFile(name string, data []byte) error {
	p := filepath.FromSlash(name)
	if dir := filepath.Dir(p); dir != "." {
		if err := d.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	w, err := d.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Close releases the directory.
func (d *BundleDir) Close() error { return d.root.Close() }
