package content

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestBuildBundleEmptyFiles: which bundles get a delta manifest. An
// encrypted bundle holding an empty file gets none (Capgo's Android
// plugin refuses an empty decrypted manifest file and fails the whole
// download); plain bundles and bundles without empty files keep theirs.
func TestBuildBundleEmptyFiles(t *testing.T) {
	priv, pub := vectorKeys(t)
	index := []byte("<html>hi</html>")
	sk, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		files     map[string][]byte
		encrypted bool
		reuseKey  bool   // BuildBundleWithKey instead of BuildBundle
		manifest  int    // manifest files wanted
		empty     string // EmptyFiles wanted, joined by ","
	}{
		{name: "plain, no empty file", files: map[string][]byte{"index.html": index, "a.js": []byte("x")}, manifest: 2},
		{name: "plain, empty file", files: map[string][]byte{"index.html": index, "empty.txt": nil}, manifest: 2},
		{name: "encrypted, no empty file", files: map[string][]byte{"index.html": index, "a.js": []byte("x")}, encrypted: true, manifest: 2},
		{name: "encrypted, one-byte file", files: map[string][]byte{"index.html": index, "a.txt": []byte("\n")}, encrypted: true, manifest: 2},
		{name: "encrypted, empty file", files: map[string][]byte{"index.html": index, "empty.txt": nil}, encrypted: true, empty: "empty.txt"},
		{name: "encrypted, empty files in dirs", files: map[string][]byte{"index.html": index, "z/.keep": nil, "assets/b.css": {}, "a.js": []byte("x")},
			encrypted: true, empty: "assets/b.css,z/.keep"},
		{name: "encrypted with a reused key, empty file", files: map[string][]byte{"index.html": index, "empty.txt": nil},
			encrypted: true, reuseKey: true, empty: "empty.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zip := deltaZip(t, tc.files)
			var b *Bundle
			var err error
			switch {
			case tc.reuseKey:
				b, err = BuildBundleWithKey(zip, priv, sk, ZipLimits{})
			case tc.encrypted:
				b, err = BuildBundle(zip, priv, ZipLimits{})
			default:
				b, err = BuildBundle(zip, nil, ZipLimits{})
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b.Files) != tc.manifest || strings.Join(b.EmptyFiles, ",") != tc.empty {
				t.Fatalf("%d manifest files, empty files %q; want %d, %q", len(b.Files), b.EmptyFiles, tc.manifest, tc.empty)
			}
			note := EmptyFilesNote(b)
			if (note == "") != (tc.empty == "") {
				t.Errorf("note %q for empty files %q", note, tc.empty)
			}
			for _, name := range b.EmptyFiles {
				if !strings.Contains(note, name) || !strings.Contains(note, "Empty decrypted data") || !strings.Contains(note, "zip only") {
					t.Errorf("note %q does not name %s and why", note, name)
				}
			}
			if tc.encrypted {
				// The zip is served whole either way and installs.
				k, err := OpenSessionKey(b.SessionKey, pub)
				if err != nil {
					t.Fatal(err)
				}
				if plain, err := k.Decrypt(b.Zip); err != nil || !bytes.Equal(plain, zip) {
					t.Errorf("zip does not decrypt to the plain zip: %v", err)
				}
			}
		})
	}
}

// TestImportEncryptedEmptyFile: a zip the Capgo CLI encrypted is served
// without a manifest anyway, so an empty file in it is fine.
func TestImportEncryptedEmptyFile(t *testing.T) {
	priv, pub := vectorKeys(t)
	zip := deltaZip(t, map[string][]byte{"index.html": []byte("<html></html>"), "empty.txt": nil})
	sk, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	sealedKey, err := sk.Seal(priv)
	if err != nil {
		t.Fatal(err)
	}
	checksum, err := SealChecksum(priv, SHA256Hex(zip))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ImportEncrypted(sk.Encrypt(zip), sealedKey, checksum, pub, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 0 || b.EmptyFiles != nil || EmptyFilesNote(b) != "" {
		t.Errorf("imported bundle: %d manifest files, empty files %v", len(b.Files), b.EmptyFiles)
	}
}

// TestCheckReleaseEmptyFiles: a client that builds its own manifest
// cannot get an encrypted release whose manifest holds a file that
// decrypts to nothing; the refusal names the files. Plain manifests and
// encrypted one-block files with content pass.
func TestCheckReleaseEmptyFiles(t *testing.T) {
	ctx := context.Background()
	priv, pub := vectorKeys(t)
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	add := func(data []byte) string {
		t.Helper()
		obj, err := store.Add(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return obj.CID.String()
	}
	files := map[string][]byte{"index.html": []byte("<html>hi</html>"), "a.txt": []byte("x")}
	zip := deltaZip(t, files)
	enc, err := BuildBundle(zip, priv, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := OpenSessionKey(enc.SessionKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	sealed := func(plain []byte) ReleaseFile {
		h, err := SealChecksum(priv, SHA256Hex(plain))
		if err != nil {
			t.Fatal(err)
		}
		return ReleaseFile{Hash: h, CID: add(sk.Encrypt(plain))}
	}
	named := func(f ReleaseFile, name string) ReleaseFile { f.Name = name; return f }
	encFiles := make([]ReleaseFile, 0, len(enc.Files))
	for _, f := range enc.Files {
		encFiles = append(encFiles, ReleaseFile{Name: f.Name, Hash: f.Hash, CID: add(f.Data)})
	}
	encSpec := ReleaseSpec{App: "com.example.app", PublicKey: string(PublicKeyPEM(pub)), KeyID: enc.KeyID,
		ZipCID: add(enc.Zip), Checksum: enc.Checksum, SessionKey: enc.SessionKey, ReleaseKeyID: enc.KeyID}
	empty := sealed(nil)
	badBlock := ReleaseFile{Hash: empty.Hash, CID: add(undecryptableBlock(t, sk))}
	plainZip := deltaZip(t, map[string][]byte{"index.html": files["index.html"], "empty.txt": nil})
	plainSpec := ReleaseSpec{App: "com.example.app", MaxFileBytes: 1 << 20, ZipCID: add(plainZip), Checksum: SHA256Hex(plainZip),
		Files: []ReleaseFile{{Name: "empty.txt", Hash: SHA256Hex(nil), CID: add(nil)}, {Name: "index.html", Hash: SHA256Hex(files["index.html"]), CID: add(files["index.html"])}}}

	for _, tc := range []struct {
		name  string
		spec  ReleaseSpec
		files []ReleaseFile // replaces the spec's
		msg   string        // "" = accepted
	}{
		{name: "encrypted, built by mirrord", spec: encSpec, files: encFiles},
		{name: "encrypted, no manifest", spec: encSpec},
		{name: "encrypted, one-block file with content", spec: encSpec, files: append(slices.Clone(encFiles), named(sealed([]byte("hi")), "b.txt"))},
		{name: "encrypted, empty file", spec: encSpec, files: append(slices.Clone(encFiles), named(empty, "empty.txt")),
			msg: "holds 1 file decrypting to nothing: empty.txt;"},
		{name: "encrypted, empty files", spec: encSpec, files: append(slices.Clone(encFiles), named(empty, "css/x.css"), named(empty, "y.js.br")),
			msg: "holds 2 files decrypting to nothing: css/x.css, y.js.br;"},
		{name: "encrypted, one block that does not decrypt", spec: encSpec, files: append(slices.Clone(encFiles), named(badBlock, "bad.txt")),
			msg: "manifest file bad.txt does not decrypt with the release's session key"},
		{name: "plain, empty file", spec: plainSpec, files: plainSpec.Files},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Files = tc.files
			_, err := CheckRelease(ctx, store, spec)
			switch {
			case tc.msg == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.msg == "":
			case err == nil || !errors.Is(err, ErrReleaseRefused) || !strings.Contains(err.Error(), tc.msg):
				t.Fatalf("err = %v, want a refusal with %q", err, tc.msg)
			case !strings.Contains(err.Error(), "Empty decrypted data") && strings.Contains(tc.msg, "nothing"):
				t.Errorf("refusal %q does not say why", err)
			}
		})
	}
}

// undecryptableBlock is one AES block that does not decrypt with sk (its
// padding is wrong).
func undecryptableBlock(t *testing.T, sk SessionKey) []byte {
	t.Helper()
	for i := range 1000 {
		b := bytes.Repeat([]byte{byte(i)}, 16)
		b[0] = byte(i >> 8)
		if _, err := sk.Decrypt(b); err != nil {
			return b
		}
	}
	t.Fatal("no undecryptable block found")
	return nil
}
