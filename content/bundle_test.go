package content

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/content/contenttest"
)

func TestBuildBundleEncryptedManifestVector(t *testing.T) {
	priv, pub := vectorKeys(t)
	src := filepath.Join(contenttest.Vectors(t), "src-1.0.2")
	zip, err := ZipDir(src)
	if err != nil {
		t.Fatal(err)
	}
	var want []manifestEntry
	readVectorJSON(t, "manifest-1.0.2/manifest-plain.json", &want)

	b, err := BuildBundle(zip, priv, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if b.KeyID != "MIIBCgKCAQEAxiHQEJu8" {
		t.Errorf("KeyID = %q", b.KeyID)
	}
	sk, err := OpenSessionKey(b.SessionKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	plainZip, err := sk.Decrypt(b.Zip)
	if err != nil || !bytes.Equal(plainZip, zip) {
		t.Fatalf("bundle zip does not decrypt to the plain zip: %v", err)
	}
	if got, err := OpenChecksum(pub, b.Checksum); err != nil || got != SHA256Hex(zip) {
		t.Errorf("OpenChecksum(bundle checksum) = %q, %v; want %s", got, err, SHA256Hex(zip))
	}

	if len(b.Files) != len(want) {
		t.Fatalf("manifest has %d files, want %d", len(b.Files), len(want))
	}
	for i, f := range b.Files {
		if f.Name != want[i].FileName {
			t.Errorf("file %d = %q, want %q", i, f.Name, want[i].FileName)
			continue
		}
		// Every file uses the release's one session key.
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
		orig, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, orig) {
			t.Errorf("%s does not decode to the source file", f.Name)
		}
		if got, err := OpenChecksum(pub, f.Hash); err != nil || got != want[i].FileHash {
			t.Errorf("%s: OpenChecksum(hash) = %q, %v; want %s", f.Name, got, err, want[i].FileHash)
		}
	}

	// One session key per call.
	b2, err := BuildBundle(zip, priv, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if b2.SessionKey == b.SessionKey || bytes.Equal(b2.Zip, b.Zip) {
		t.Errorf("two builds share a session key")
	}
	if b2.Checksum != b.Checksum {
		t.Errorf("sealed checksum is not deterministic")
	}
}

func TestBuildBundlePlainManifestVector(t *testing.T) {
	var want []manifestEntry
	readVectorJSON(t, "manifest-1.0.2/manifest-plain.json", &want)
	ours, err := ZipDir(filepath.Join(contenttest.Vectors(t), "src-1.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	// Our zip and the CLI's (AdmZip, with an "assets/" directory entry)
	// give the same manifest.
	for name, zip := range map[string][]byte{"ZipDir": ours, "CLI zip": readVector(t, "bundle-1.0.2.zip")} {
		t.Run(name, func(t *testing.T) {
			b, err := BuildBundle(zip, nil, ZipLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Zip, zip) || b.Checksum != SHA256Hex(zip) || b.SessionKey != "" || b.KeyID != "" {
				t.Errorf("plain bundle fields: checksum %q session %q key %q", b.Checksum, b.SessionKey, b.KeyID)
			}
			if len(b.Files) != len(want) {
				t.Fatalf("manifest has %d files, want %d", len(b.Files), len(want))
			}
			for i, f := range b.Files {
				if f.Name != want[i].FileName || f.Hash != want[i].FileHash {
					t.Errorf("file %d = {%s %s}, want {%s %s}", i, f.Name, f.Hash, want[i].FileName, want[i].FileHash)
				}
				// Our Brotli settings are node's: even the .br bytes match.
				if vec := readVector(t, "manifest-1.0.2/plain/"+f.Name); !bytes.Equal(f.Data, vec) {
					t.Errorf("%s differs from the vector's plain file (%d vs %d bytes)", f.Name, len(f.Data), len(vec))
				}
			}
		})
	}
}

// TestBuildBundleReproducesCLIBytes builds 1.0.2 from the CLI's zip with
// the CLI's session key: every served byte and string must equal the
// vectors (zip, checksum, session key, manifest files and hashes).
func TestBuildBundleReproducesCLIBytes(t *testing.T) {
	priv, pub := vectorKeys(t)
	var enc cliEncrypt
	readVectorJSON(t, "cli-encrypt-1.0.2.json", &enc)
	sk, err := OpenSessionKey(enc.IVSessionKey, pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildBundle(readVector(t, "bundle-1.0.2.zip"), priv, sk, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Zip, readVector(t, "bundle-1.0.2.zip_encrypted.zip")) {
		t.Error("zip differs from the CLI's encrypted zip")
	}
	if b.Checksum != enc.Checksum || b.SessionKey != enc.IVSessionKey {
		t.Errorf("checksum or session key differs from the CLI's")
	}
	var want []manifestEntry
	readVectorJSON(t, "manifest-1.0.2/manifest-encrypted.json", &want)
	if len(b.Files) != len(want) {
		t.Fatalf("manifest has %d files, want %d", len(b.Files), len(want))
	}
	for i, f := range b.Files {
		if f.Name != want[i].FileName || f.Hash != want[i].FileHash {
			t.Errorf("file %d = %s, want %s (or its hash differs)", i, f.Name, want[i].FileName)
		}
		if !bytes.Equal(f.Data, readVector(t, "manifest-1.0.2/encrypted/"+f.Name)) {
			t.Errorf("%s differs from the vector's encrypted file", f.Name)
		}
	}
}

func TestBuildBundleBrotliThreshold(t *testing.T) {
	random := make([]byte, 9000)
	if _, err := rand.Read(random); err != nil {
		t.Fatal(err)
	}
	zip := makeZip(t, []zipEntry{
		{name: "index.html", data: []byte("<html></html>")},
		{name: "a.js", data: bytes.Repeat([]byte("a"), 8191)},          // below the size threshold
		{name: "b.js", data: bytes.Repeat([]byte("b"), 8192)},          // compressed
		{name: "b.js-x", data: []byte("x")},                            // sorts between b.js and b.js.br
		{name: "c.bin", data: random},                                  // incompressible
		{name: "d/e.css", data: bytes.Repeat([]byte("body{} "), 2000)}, // nested, compressed
	})
	b, err := BuildBundle(zip, nil, ZipLimits{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range b.Files {
		names = append(names, f.Name)
	}
	want := "a.js b.js-x b.js.br c.bin d/e.css.br index.html"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("names = %s\nwant    %s", got, want)
	}
	if _, err := BuildBundle([]byte("not a zip"), nil, ZipLimits{}); err == nil {
		t.Errorf("BuildBundle(not a zip): no error")
	}
	noIndex := makeZip(t, []zipEntry{{name: "a.js", data: []byte("x")}})
	if _, err := BuildBundle(noIndex, nil, ZipLimits{}); err == nil {
		t.Errorf("BuildBundle(no index.html): no error")
	}
}

func TestBrotliDecodeLimit(t *testing.T) {
	br, err := brotliCompress(bytes.Repeat([]byte("z"), 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BrotliDecode(br, 1000); err == nil {
		t.Errorf("BrotliDecode over the limit: no error")
	}
	if _, err := BrotliDecode([]byte("not brotli at all"), 0); err == nil {
		t.Errorf("BrotliDecode(garbage): no error")
	}
}
