package content

import (
	"bytes"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/content/contenttest"
)

// deltaFiles returns 60 deterministic files: index.html, 49 small
// scripts and 10 files big enough to be kept as Brotli (".br").
func deltaFiles() map[string][]byte {
	files := map[string][]byte{"index.html": []byte("<!doctype html><title>delta</title><script src=js/f00.js></script>\n")}
	for i := range 49 {
		files[fmt.Sprintf("js/f%02d.js", i)] = []byte(fmt.Sprintf("export const f%02d = %q;\n", i, strings.Repeat(fmt.Sprint(i), i+1)))
	}
	for i := range 10 {
		var b strings.Builder
		for j := 0; b.Len() < 20000; j++ {
			fmt.Fprintf(&b, "function big%d_%d(x) { return x * %d + %d; }\n", i, j, j, i)
		}
		files[fmt.Sprintf("assets/big%d.js", i)] = []byte(b.String())
	}
	return files
}

func deltaZip(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	entries := make([]zipEntry, 0, len(files))
	for name, data := range files {
		entries = append(entries, zipEntry{name: name, data: data})
	}
	return makeZip(t, entries)
}

// openBundle checks the device's view of b with the public key only: the
// session key opens, the zip decrypts to plainZip and its checksum
// matches, and every manifest file decrypts (and un-Brotlis) to the
// source bytes in files with a matching hash.
func openBundle(t *testing.T, b *Bundle, pub *rsa.PublicKey, plainZip []byte, files map[string][]byte) {
	t.Helper()
	sk, err := OpenSessionKey(b.SessionKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	if z, err := sk.Decrypt(b.Zip); err != nil || !bytes.Equal(z, plainZip) {
		t.Fatalf("zip does not decrypt to the plain zip: %v", err)
	}
	if got, err := OpenChecksum(pub, b.Checksum); err != nil || got != SHA256Hex(plainZip) {
		t.Errorf("checksum opens to %q, %v", got, err)
	}
	if len(b.Files) != len(files) {
		t.Fatalf("manifest has %d files, want %d", len(b.Files), len(files))
	}
	for _, f := range b.Files {
		data, err := sk.Decrypt(f.Data)
		if err != nil {
			t.Errorf("%s: %v", f.Name, err)
			continue
		}
		name := f.Name
		if strings.HasSuffix(name, ".br") {
			name = strings.TrimSuffix(name, ".br")
			if data, err = BrotliDecode(data, 0); err != nil {
				t.Errorf("%s: %v", f.Name, err)
				continue
			}
		}
		if !bytes.Equal(data, files[name]) {
			t.Errorf("%s does not decode to the source file", f.Name)
		}
		if got, err := OpenChecksum(pub, f.Hash); err != nil || got != SHA256Hex(files[name]) {
			t.Errorf("%s: hash opens to %q, %v", f.Name, got, err)
		}
	}
}

func filesByName(b *Bundle) map[string]BundleFile {
	m := make(map[string]BundleFile, len(b.Files))
	for _, f := range b.Files {
		m[f.Name] = f
	}
	return m
}

// TestBuildBundleWithKeyDelta: release B, built with release A's session
// key as the CLI opens it (public key only), changes 2 of 60 files; the
// other 58 encrypted manifest files are byte-identical to A's, and
// everything decrypts on the device side.
func TestBuildBundleWithKeyDelta(t *testing.T) {
	priv, pub := vectorKeys(t)
	filesA := deltaFiles()
	zipA := deltaZip(t, filesA)
	a, err := BuildBundle(zipA, priv, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Files) != 60 {
		t.Fatalf("release A has %d manifest files, want 60", len(a.Files))
	}
	brotli := 0
	for _, f := range a.Files {
		if strings.HasSuffix(f.Name, ".br") {
			brotli++
		}
	}
	if brotli != 10 {
		t.Fatalf("release A has %d Brotli files, want 10", brotli)
	}
	openBundle(t, a, pub, zipA, filesA)

	filesB := deltaFiles()
	filesB["js/f17.js"] = []byte("export const f17 = 'changed';\n")
	filesB["assets/big3.js"] = append(bytes.Clone(filesB["assets/big3.js"]), "function added() {}\n"...)
	changed := map[string]bool{"js/f17.js": true, "assets/big3.js.br": true}
	zipB := deltaZip(t, filesB)

	sk, err := OpenSessionKey(a.SessionKey, &priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildBundleWithKey(zipB, priv, sk, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.SessionKey != a.SessionKey || b.KeyID != a.KeyID {
		t.Errorf("release B's session_key or key_id differs from A's")
	}
	openBundle(t, b, pub, zipB, filesB)

	fa, fb := filesByName(a), filesByName(b)
	same, diff := 0, 0
	for name, f := range fb {
		old, ok := fa[name]
		if !ok {
			t.Errorf("%s is not in release A", name)
			continue
		}
		switch {
		case changed[name]:
			diff++
			if bytes.Equal(f.Data, old.Data) || f.Hash == old.Hash {
				t.Errorf("changed file %s has A's bytes or hash", name)
			}
		default:
			same++
			if !bytes.Equal(f.Data, old.Data) || f.Hash != old.Hash {
				t.Errorf("unchanged file %s: encrypted bytes or hash differ from A's", name)
			}
		}
	}
	if same != 58 || diff != 2 {
		t.Errorf("%d unchanged and %d changed files, want 58 and 2", same, diff)
	}

	// The premise: with a fresh key nothing would be shared.
	fresh, err := BuildBundle(zipB, priv, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fresh.Files {
		if bytes.Equal(f.Data, fa[f.Name].Data) {
			t.Errorf("%s: a fresh session key gave A's bytes", f.Name)
		}
	}

	if _, err := BuildBundleWithKey(zipB, nil, sk, ZipLimits{}); err == nil {
		t.Error("BuildBundleWithKey without a private key: no error")
	}
}

// TestBuildBundleWithKeyCLIVectors continues the Capgo CLI's 1.0.2 with
// its session key, opened with the public key: a release changing only
// index.html keeps the CLI's encrypted app.js and assets/big.js.br byte
// for byte.
func TestBuildBundleWithKeyCLIVectors(t *testing.T) {
	priv, pub := vectorKeys(t)
	var enc cliEncrypt
	readVectorJSON(t, "cli-encrypt-1.0.2.json", &enc)
	sk, err := OpenSessionKey(enc.IVSessionKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	copyTree(t, filepath.Join(contenttest.Vectors(t), "src-1.0.2"), src)
	if err := os.WriteFile(filepath.Join(src, "index.html"), []byte("<!doctype html><title>1.0.3</title><script src=app.js></script>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zip, err := ZipDir(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := BuildBundleWithKey(zip, priv, sk, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.SessionKey != enc.IVSessionKey {
		t.Errorf("session_key = %q, want the CLI's %q", b.SessionKey, enc.IVSessionKey)
	}
	got := filesByName(b)
	for _, name := range []string{"app.js", "assets/big.js.br"} {
		if !bytes.Equal(got[name].Data, readVector(t, "manifest-1.0.2/encrypted/"+name)) {
			t.Errorf("unchanged %s differs from the CLI's encrypted file", name)
		}
	}
	idx := got["index.html"].Data
	if bytes.Equal(idx, readVector(t, "manifest-1.0.2/encrypted/index.html")) {
		t.Error("changed index.html has the CLI's bytes")
	}
	plain, err := sk.Decrypt(idx)
	if err != nil || !strings.Contains(string(plain), "1.0.3") {
		t.Errorf("index.html decrypts to %q, %v", plain, err)
	}
}
