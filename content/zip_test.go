package content

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"mirrord/content/contenttest"
)

// zipEntry describes one hand-built zip entry. Names are written raw, so
// tests can build zips no honest tool would.
type zipEntry struct {
	name  string
	data  []byte
	mode  fs.FileMode // 0 = regular 0644
	flags uint16      // extra general purpose flags (0x1 = encrypted)
	// lieSize, when set, is the uncompressed size written in the headers
	// instead of the real one.
	lieSize uint64
	method  uint16 // used with lieSize or when not Store/Deflate
	raw     bool
}

func makeZip(t testing.TB, entries []zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Flags: e.flags}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr.SetMode(mode)
		if e.raw || e.lieSize != 0 {
			var comp bytes.Buffer
			hdr.Method = e.method
			if e.method == zip.Deflate {
				fw, _ := flate.NewWriter(&comp, flate.BestCompression)
				fw.Write(e.data)
				fw.Close()
			} else {
				comp.Write(e.data)
			}
			hdr.CRC32 = crc32.ChecksumIEEE(e.data)
			hdr.CompressedSize64 = uint64(comp.Len())
			hdr.UncompressedSize64 = uint64(len(e.data))
			if e.lieSize != 0 {
				hdr.UncompressedSize64 = e.lieSize
			}
			w, err := zw.CreateRaw(hdr)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(comp.Bytes())
			continue
		}
		w, err := zw.CreateHeader(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func indexEntry() zipEntry { return zipEntry{name: "index.html", data: []byte("<html></html>")} }

// badZips are the refusals of ReadZip, shared with the fuzz seeds.
func badZips(t testing.TB) map[string]struct {
	zip      []byte
	lim      ZipLimits
	unsafe   bool   // wraps ErrUnsafePath
	noIndex  bool   // wraps ErrNoIndex
	contains string // in the message
} {
	type bad = struct {
		zip      []byte
		lim      ZipLimits
		unsafe   bool
		noIndex  bool
		contains string
	}
	unsafe := func(name string) bad {
		return bad{zip: makeZip(t, []zipEntry{indexEntry(), {name: name, data: []byte("x")}}), unsafe: true, contains: strconv.Quote(name)}
	}
	zeros := bytes.Repeat([]byte{0}, 2<<20)
	return map[string]bad{
		"dotdot":           unsafe("../evil"),
		"dotdot deep":      unsafe("a/../../b"),
		"dotdot middle":    unsafe("a/../b"),
		"dotdot dir":       {zip: makeZip(t, []zipEntry{indexEntry(), {name: "../", mode: fs.ModeDir | 0o755}}), unsafe: true, contains: "../"},
		"absolute":         unsafe("/abs"),
		"root":             {zip: makeZip(t, []zipEntry{indexEntry(), {name: "/", mode: fs.ModeDir | 0o755}}), unsafe: true},
		"dot root":         {zip: makeZip(t, []zipEntry{indexEntry(), {name: "./", mode: fs.ModeDir | 0o755}}), unsafe: true},
		"drive backslash":  unsafe(`C:\x`),
		"drive slash":      unsafe("C:/x"),
		"drive relative":   unsafe("c:x"),
		"backslash":        unsafe(`a\b`),
		"backslash dotdot": unsafe(`..\evil`),
		"nul":              unsafe("a\x00b"),
		"duplicate": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "a.js", data: []byte("1")}, {name: "a.js", data: []byte("2")}}),
			unsafe: true, contains: "duplicate"},
		"duplicate after clean": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "a//b.js", data: []byte("1")}, {name: "./a/b.js", data: []byte("2")}}),
			unsafe: true, contains: "duplicate"},
		"file is a dir": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "a", data: []byte("1")}, {name: "a/b", data: []byte("2")}}),
			unsafe: true, contains: `"a" is a file`},
		"symlink": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "link", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}}),
			contains: "symlink"},
		"device": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "dev", mode: fs.ModeDevice | 0o644}}),
			contains: "special file"},
		"encrypted": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "secret.js", data: []byte("x"), flags: 0x1}}),
			contains: "encrypted"},
		"unknown method": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "m.js", data: []byte("x"), method: 99, raw: true}}),
			contains: "m.js"},
		"no index":        {zip: makeZip(t, []zipEntry{{name: "app.js", data: []byte("x")}}), noIndex: true},
		"index is a dir":  {zip: makeZip(t, []zipEntry{{name: "index.html/", mode: fs.ModeDir | 0o755}, {name: "index.html/x", data: []byte("x")}}), noIndex: true},
		"two top dirs":    {zip: makeZip(t, []zipEntry{{name: "a/index.html", data: []byte("x")}, {name: "b/index.html", data: []byte("x")}}), noIndex: true},
		"single file":     {zip: makeZip(t, []zipEntry{{name: "main.js", data: []byte("x")}}), noIndex: true},
		"nested no index": {zip: makeZip(t, []zipEntry{{name: "app/x/index.html", data: []byte("x")}}), noIndex: true, contains: `"app"`},
		"empty zip":       {zip: makeZip(t, nil), noIndex: true},
		"bomb declared": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "zeros", data: zeros}}),
			lim: ZipLimits{MaxTotalBytes: 1 << 20}, contains: "limit"},
		"bomb lying header": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "zeros", data: zeros, lieSize: 10, method: zip.Deflate}}),
			lim: ZipLimits{MaxTotalBytes: 1 << 20}, contains: "zeros"},
		"too many files": {zip: makeZip(t, []zipEntry{indexEntry(), {name: "a"}, {name: "b"}, {name: "c"}}),
			lim: ZipLimits{MaxFiles: 3}, contains: "4 entries"},
		"not a zip": {zip: []byte("PK\x03\x04 definitely not a zip"), contains: "read zip"},
	}
}

func TestReadZipRefusals(t *testing.T) {
	for name, tc := range badZips(t) {
		t.Run(name, func(t *testing.T) {
			files, err := ReadZip(tc.zip, tc.lim)
			if err == nil {
				t.Fatalf("no error; files %v", fileNames(files))
			}
			if tc.unsafe != errors.Is(err, ErrUnsafePath) {
				t.Errorf("errors.Is(err, ErrUnsafePath) = %v, want %v: %v", !tc.unsafe, tc.unsafe, err)
			}
			if tc.noIndex != errors.Is(err, ErrNoIndex) {
				t.Errorf("errors.Is(err, ErrNoIndex) = %v, want %v: %v", !tc.noIndex, tc.noIndex, err)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not contain %q", err, tc.contains)
			}
			if !strings.HasPrefix(err.Error(), "content: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			// CheckZip refuses it the same way.
			if cerr := CheckZip(bytes.NewReader(tc.zip), int64(len(tc.zip)), tc.lim); cerr == nil || cerr.Error() != err.Error() {
				t.Errorf("CheckZip: %v, want %v", cerr, err)
			}
			// Unzip refuses it too and writes nothing.
			dest := filepath.Join(t.TempDir(), "out")
			if err := Unzip(tc.zip, dest, tc.lim); err == nil {
				t.Errorf("Unzip: no error")
			}
			if _, err := os.Stat(dest); !os.IsNotExist(err) {
				t.Errorf("Unzip created %s for a refused zip", dest)
			}
		})
	}
}

func fileNames(files []ZipFile) []string {
	var names []string
	for _, f := range files {
		names = append(names, f.Name)
	}
	return names
}

func TestReadZipFlatten(t *testing.T) {
	x := []byte("x")
	dir := func(name string) zipEntry { return zipEntry{name: name, mode: fs.ModeDir | 0o755} }
	for name, tc := range map[string]struct {
		entries []zipEntry
		want    string
	}{
		"root": {
			[]zipEntry{indexEntry(), {name: "js/a.js", data: x}, dir("js/")},
			"index.html js/a.js",
		},
		"single top dir": {
			[]zipEntry{dir("dist/"), {name: "dist/index.html", data: x}, dir("dist/js/"), {name: "dist/js/a.js", data: x}},
			"index.html js/a.js",
		},
		"single top dir without dir entries": {
			[]zipEntry{{name: "dist/js/a.js", data: x}, {name: "dist/index.html", data: x}},
			"index.html js/a.js",
		},
		"macOS litter is ignored and dropped": {
			[]zipEntry{{name: "dist/index.html", data: x}, {name: "__MACOSX/dist/._index.html", data: x}, {name: ".DS_Store", data: x}},
			"index.html",
		},
		"hidden files at the root are kept": {
			[]zipEntry{indexEntry(), {name: ".well-known/a", data: x}, {name: "__MACOSX/b", data: x}},
			".well-known/a __MACOSX/b index.html",
		},
		"dot slash and double slashes": {
			[]zipEntry{{name: "./index.html", data: x}, {name: "a//b.js", data: x}},
			"a/b.js index.html",
		},
		"repeated directory entry": {
			[]zipEntry{dir("a/"), dir("a/"), indexEntry(), {name: "a/b", data: x}},
			"a/b index.html",
		},
		"empty file": {
			[]zipEntry{indexEntry(), {name: "empty.txt"}},
			"empty.txt index.html",
		},
	} {
		t.Run(name, func(t *testing.T) {
			files, err := ReadZip(makeZip(t, tc.entries), ZipLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(fileNames(files), " "); got != tc.want {
				t.Errorf("files = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadZipVectors(t *testing.T) {
	for _, v := range vectorVersions() {
		files, err := ReadZip(readVector(t, "bundle-"+v+".zip"), ZipLimits{})
		if err != nil {
			t.Fatal(err)
		}
		src := filepath.Join(contenttest.Vectors(t), "src-"+v)
		assertTree(t, src, files)
	}
}

// assertTree checks that files are exactly the regular files under dir.
func assertTree(t *testing.T, dir string, files []ZipFile) {
	t.Helper()
	want := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		want[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d files, want %d (%v)", len(files), len(want), fileNames(files))
	}
	for _, f := range files {
		if w, ok := want[f.Name]; !ok || !bytes.Equal(w, f.Data) {
			t.Errorf("%s: missing from or different in %s", f.Name, dir)
		}
	}
}

func TestZipDir(t *testing.T) {
	src := filepath.Join(contenttest.Vectors(t), "src-1.0.2")
	a, err := ZipDir(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ZipDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("ZipDir is not deterministic")
	}
	// A copy with other modes and times zips to the same bytes.
	cp := t.TempDir()
	copyTree(t, src, cp)
	if err := os.Chmod(filepath.Join(cp, "app.js"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ZipDir(cp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, c) {
		t.Error("ZipDir depends on file times or modes")
	}

	files, err := ReadZip(a, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, src, files)
	zr, err := zip.NewReader(bytes.NewReader(a), int64(len(a)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Method != zip.Deflate || f.Mode() != 0o644 || f.Modified.Year() != 1980 {
			t.Errorf("%s: method %d mode %v modified %v", f.Name, f.Method, f.Mode(), f.Modified)
		}
	}
	if !sort.StringsAreSorted(names) || strings.Join(names, " ") != "app.js assets/big.js index.html" {
		t.Errorf("entries = %v", names)
	}
}

func TestZipDirRefusals(t *testing.T) {
	mk := func(t *testing.T, files ...string) string {
		dir := t.TempDir()
		for _, f := range files {
			p := filepath.Join(dir, filepath.FromSlash(f))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	t.Run("no index", func(t *testing.T) {
		if _, err := ZipDir(mk(t, "app.js", "sub/index.html")); !errors.Is(err, ErrNoIndex) {
			t.Errorf("err = %v, want ErrNoIndex", err)
		}
	})
	t.Run("symlink", func(t *testing.T) {
		dir := mk(t, "index.html")
		if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
			t.Skip("cannot make symlinks:", err)
		}
		if _, err := ZipDir(dir); err == nil || !strings.Contains(err.Error(), "passwd is a symlink") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("backslash name", func(t *testing.T) {
		dir := mk(t, "index.html")
		if err := os.WriteFile(filepath.Join(dir, `a\b`), nil, 0o644); err != nil {
			t.Skip("cannot make such a name:", err)
		}
		if _, err := ZipDir(dir); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("err = %v, want ErrUnsafePath", err)
		}
	})
	t.Run("not a dir", func(t *testing.T) {
		if _, err := ZipDir(filepath.Join(mk(t, "index.html"), "index.html")); err == nil {
			t.Error("no error")
		}
		if _, err := ZipDir(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("no error")
		}
	})
	t.Run("symlinked root is followed", func(t *testing.T) {
		dir := mk(t, "index.html")
		link := filepath.Join(t.TempDir(), "dist")
		if err := os.Symlink(dir, link); err != nil {
			t.Skip("cannot make symlinks:", err)
		}
		if _, err := ZipDir(link); err != nil {
			t.Error(err)
		}
	})
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUnzip(t *testing.T) {
	for _, v := range vectorVersions() {
		dest := filepath.Join(t.TempDir(), "bundle")
		if err := Unzip(readVector(t, "bundle-"+v+".zip"), dest, ZipLimits{}); err != nil {
			t.Fatal(err)
		}
		assertDirsEqual(t, filepath.Join(contenttest.Vectors(t), "src-"+v), dest)
	}
}

func TestUnzipStaysInside(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	dest := filepath.Join(base, "dest")
	for _, d := range []string{outside, dest} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink already inside dest must not be followed out of it.
	if err := os.Symlink(outside, filepath.Join(dest, "assets")); err != nil {
		t.Skip("cannot make symlinks:", err)
	}
	zip := makeZip(t, []zipEntry{indexEntry(), {name: "assets/evil.js", data: []byte("x")}})
	if err := Unzip(zip, dest, ZipLimits{}); err == nil {
		t.Error("Unzip through a symlink: no error")
	}
	// An existing file is not overwritten.
	if err := os.WriteFile(filepath.Join(dest, "index.html"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unzip(makeZip(t, []zipEntry{indexEntry()}), dest, ZipLimits{}); err == nil {
		t.Error("Unzip over an existing file: no error")
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "index.html")); string(b) != "keep" {
		t.Error("existing file was overwritten")
	}
	// And the escaping names of the refusal table write nothing anywhere.
	for _, tc := range badZips(t) {
		if tc.unsafe {
			if err := Unzip(tc.zip, filepath.Join(dest, "sub"), tc.lim); err == nil {
				t.Error("Unzip of an unsafe zip: no error")
			}
		}
	}
	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("files written outside dest: %v", entries)
	}
	entries, err = os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("base holds %d entries, want outside and dest", len(entries))
	}
}

// assertDirsEqual checks that two trees hold the same regular files.
func assertDirsEqual(t *testing.T, want, got string) {
	t.Helper()
	var files []ZipFile
	err := filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s is not a regular file", p)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o444 != 0o444 {
			t.Errorf("%s mode %v", p, info.Mode())
		}
		rel, _ := filepath.Rel(got, p)
		b, err := os.ReadFile(p)
		files = append(files, ZipFile{Name: filepath.ToSlash(rel), Data: b})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	assertTree(t, want, files)
}
