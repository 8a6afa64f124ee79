package content

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenSSLReadsOurEncryption checks our sealing with an independent
// implementation: OpenSSL recovers the AES key and the digest with the
// public key and decrypts the zip.
func TestOpenSSLReadsOurEncryption(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not on PATH")
	}
	newPriv, newPub, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	zip := readVector(t, "bundle-1.0.2.zip")
	for name, keys := range map[string][2][]byte{
		"vector key":    {readVector(t, "test_private_key.pem"), readVector(t, "test_public_key.pem")},
		"generated key": {newPriv, newPub},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			priv, err := ParsePrivateKey(keys[0])
			if err != nil {
				t.Fatal(err)
			}
			b, err := BuildBundle(zip, priv, ZipLimits{})
			if err != nil {
				t.Fatal(err)
			}
			write := func(name string, data []byte) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
				return p
			}
			pubFile := write("pub.pem", keys[1])
			privFile := write("priv.pem", keys[0])
			ivB64, keyB64, _ := strings.Cut(b.SessionKey, ":")
			ek, _ := base64.StdEncoding.DecodeString(keyB64)
			iv, _ := base64.StdEncoding.DecodeString(ivB64)
			ck, _ := hex.DecodeString(b.Checksum)

			recover := func(in string) []byte {
				return runOpenSSL(t, "pkeyutl", "-verifyrecover", "-pubin", "-inkey", pubFile,
					"-pkeyopt", "rsa_padding_mode:pkcs1", "-in", in)
			}
			aesKey := recover(write("ek.bin", ek))
			if len(aesKey) != 16 {
				t.Fatalf("openssl recovered a %d-byte AES key", len(aesKey))
			}
			if got := hex.EncodeToString(recover(write("ck.bin", ck))); got != SHA256Hex(zip) {
				t.Errorf("openssl recovered digest %s, want %s", got, SHA256Hex(zip))
			}
			plain := runOpenSSL(t, "enc", "-d", "-aes-128-cbc", "-K", hex.EncodeToString(aesKey),
				"-iv", hex.EncodeToString(iv), "-in", write("enc.zip", b.Zip))
			if !bytes.Equal(plain, zip) {
				t.Errorf("openssl decrypted %d bytes that differ from the plain zip", len(plain))
			}
			// And each manifest file hash.
			for _, f := range b.Files {
				fh, _ := hex.DecodeString(f.Hash)
				if len(recover(write("fh.bin", fh))) != 32 {
					t.Errorf("%s: openssl did not recover a 32-byte digest", f.Name)
				}
			}
			// OpenSSL's own signing of the digest equals ours
			// (deterministic type-1 padding), and reads our private PEM.
			digest, _ := hex.DecodeString(SHA256Hex(zip))
			sig := runOpenSSL(t, "pkeyutl", "-sign", "-inkey", privFile,
				"-pkeyopt", "rsa_padding_mode:pkcs1", "-in", write("digest.bin", digest))
			if hex.EncodeToString(sig) != b.Checksum {
				t.Errorf("openssl pkeyutl -sign differs from SealChecksum")
			}
		})
	}
}

func runOpenSSL(t *testing.T, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
