package content

import (
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"mirrord/content/contenttest"
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contenttest.Vectors(t), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readVectorJSON(t testing.TB, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readVector(t, name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type cliZip struct {
	Bundle   string `json:"bundle"`
	Filename string `json:"filename"`
	Checksum string `json:"checksum"`
}

type cliEncrypt struct {
	Checksum     string `json:"checksum"`
	Filename     string `json:"filename"`
	IVSessionKey string `json:"ivSessionKey"`
}

type derivedVersion struct {
	ZipSHA256            string `json:"zip_sha256_hex"`
	IVHex                string `json:"iv_hex"`
	KeyHex               string `json:"aes128_key_hex"`
	SessionKey           string `json:"session_key"`
	EncryptedChecksumHex string `json:"encrypted_checksum_hex"`
}

type manifestEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

// vectorVersions returns the two releases the CLI made.
func vectorVersions() []string { return []string{"1.0.1", "1.0.2"} }

func vectorKeys(t testing.TB) (*rsa.PrivateKey, *rsa.PublicKey) {
	t.Helper()
	priv, err := ParsePrivateKey(readVector(t, "test_private_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(readVector(t, "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func derived(t testing.TB, version string) derivedVersion {
	t.Helper()
	var all map[string]json.RawMessage
	readVectorJSON(t, "derived-values.json", &all)
	var d derivedVersion
	if err := json.Unmarshal(all[version], &d); err != nil {
		t.Fatal(err)
	}
	return d
}
