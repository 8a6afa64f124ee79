package content

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func FuzzReadZip(f *testing.F) {
	addZipSeeds(f)
	// Small limits keep each run fast; the checks are the same.
	lim := ZipLimits{MaxFiles: 200, MaxTotalBytes: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ReadZip(data, lim)
		if err != nil {
			return
		}
		hasIndex := false
		var total int64
		for i, zf := range files {
			clean, err := CleanPath(zf.Name)
			if err != nil || clean != zf.Name {
				t.Fatalf("unsafe name %q returned (clean %q, %v)", zf.Name, clean, err)
			}
			if i > 0 && files[i-1].Name >= zf.Name {
				t.Fatalf("names not sorted and unique: %q then %q", files[i-1].Name, zf.Name)
			}
			hasIndex = hasIndex || zf.Name == "index.html"
			total += int64(len(zf.Data))
		}
		if !hasIndex {
			t.Fatalf("no index.html in %d files", len(files))
		}
		if total > lim.MaxTotalBytes || len(files) > lim.MaxFiles {
			t.Fatalf("limits exceeded: %d files, %d bytes", len(files), total)
		}
	})
}

// FuzzCheckZip: the streaming check accepts exactly what ReadZip
// accepts, and refuses the rest with the same error.
func FuzzCheckZip(f *testing.F) {
	addZipSeeds(f)
	lim := ZipLimits{MaxFiles: 200, MaxTotalBytes: 4 << 20}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, rerr := ReadZip(data, lim)
		cerr := CheckZip(bytes.NewReader(data), int64(len(data)), lim)
		if (rerr == nil) != (cerr == nil) || (rerr != nil && rerr.Error() != cerr.Error()) {
			t.Fatalf("ReadZip: %v; CheckZip: %v", rerr, cerr)
		}
	})
}

func addZipSeeds(f *testing.F) {
	for _, name := range []string{"bundle-1.0.1.zip", "bundle-1.0.2.zip"} {
		f.Add(readVector(f, name))
	}
	for _, tc := range badZips(f) {
		if len(tc.zip) < 64<<10 {
			f.Add(tc.zip)
		}
	}
	f.Add(makeZip(f, []zipEntry{{name: "dist/index.html", data: []byte("x")}, {name: "dist/a/b.js", data: []byte("y")}}))
}

func FuzzOpenSessionKey(f *testing.F) {
	priv, pub := vectorKeys(f)
	for _, v := range vectorVersions() {
		var enc cliEncrypt
		readVectorJSON(f, "cli-encrypt-"+v+".json", &enc)
		f.Add(enc.IVSessionKey)
	}
	f.Add("")
	f.Add(":")
	f.Add("AAAAAAAAAAAAAAAAAAAAAA==:AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := OpenSessionKey(s, pub)
		if err != nil {
			return
		}
		if !ValidSessionKeyFormat(s) {
			t.Fatalf("opened a session key of invalid format %q", s)
		}
		sealed, err := k.Seal(priv)
		if err != nil {
			t.Fatal(err)
		}
		back, err := OpenSessionKey(sealed, pub)
		if err != nil || back != k {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzOpenChecksum(f *testing.F) {
	priv, pub := vectorKeys(f)
	for _, v := range vectorVersions() {
		var enc cliEncrypt
		readVectorJSON(f, "cli-encrypt-"+v+".json", &enc)
		f.Add(enc.Checksum)
	}
	f.Add("")
	f.Add(strings.Repeat("ff", 256))
	f.Add(strings.Repeat("00", 256))
	f.Fuzz(func(t *testing.T, s string) {
		d, err := OpenChecksum(pub, s)
		if err != nil {
			return
		}
		if raw, err := hex.DecodeString(d); err != nil || len(raw) != 32 || d != strings.ToLower(d) {
			t.Fatalf("OpenChecksum returned %q", d)
		}
		sealed, err := SealChecksum(priv, d)
		if err != nil {
			t.Fatal(err)
		}
		if sealed != strings.ToLower(s) {
			// Type-1 padding is deterministic and the recovery checked it
			// fully, so the input was the one sealing of d.
			t.Fatalf("SealChecksum(OpenChecksum(s)) != s")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	var enc cliEncrypt
	readVectorJSON(f, "cli-encrypt-1.0.1.json", &enc)
	_, pub := vectorKeys(f)
	sk, err := OpenSessionKey(enc.IVSessionKey, pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sk.Key[:], sk.IV[:], readVector(f, "bundle-1.0.1.zip_encrypted.zip"))
	f.Add(sk.Key[:], sk.IV[:], []byte{})
	f.Add(make([]byte, 16), make([]byte, 16), make([]byte, 32))
	f.Fuzz(func(t *testing.T, key, iv, ct []byte) {
		var k SessionKey
		copy(k.Key[:], key)
		copy(k.IV[:], iv)
		plain, err := k.Decrypt(ct)
		if err != nil {
			return
		}
		// CBC is deterministic: valid padding means re-encrypting gives
		// the input back.
		if !bytes.Equal(k.Encrypt(plain), ct) {
			t.Fatalf("Encrypt(Decrypt(ct)) != ct")
		}
	})
}
