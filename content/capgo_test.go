package content

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"
)

func TestVectorKeys(t *testing.T) {
	priv, pub := vectorKeys(t)
	pubPEM := readVector(t, "test_public_key.pem")
	var d struct {
		KeyID string `json:"key_id"`
	}
	readVectorJSON(t, "derived-values.json", &d)
	if d.KeyID != "MIIBCgKCAQEAxiHQEJu8" {
		t.Fatalf("derived key_id = %q", d.KeyID)
	}
	if got := KeyID(string(pubPEM)); got != d.KeyID {
		t.Errorf("KeyID(test_public_key.pem) = %q, want %q", got, d.KeyID)
	}
	// The app embeds the key through capacitor.config.json.
	var cfg struct {
		Plugins struct {
			CapacitorUpdater struct {
				PublicKey string `json:"publicKey"`
			} `json:"CapacitorUpdater"`
		} `json:"plugins"`
	}
	readVectorJSON(t, "capacitor.config.json", &cfg)
	if got := KeyID(cfg.Plugins.CapacitorUpdater.PublicKey); got != d.KeyID {
		t.Errorf("KeyID(capacitor.config.json publicKey) = %q, want %q", got, d.KeyID)
	}
	// Our PEM encodings are the CLI's, byte for byte.
	if got := PublicKeyPEM(pub); !bytes.Equal(got, pubPEM) {
		t.Errorf("PublicKeyPEM differs from the CLI's:\n%s\nwant\n%s", got, pubPEM)
	}
	if got := PublicKeyPEM(&priv.PublicKey); !bytes.Equal(got, pubPEM) {
		t.Errorf("public half of the private key differs from test_public_key.pem")
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})
	if !bytes.Equal(privPEM, readVector(t, "test_private_key.pem")) {
		t.Errorf("PKCS#1 re-encoding of the private key differs from the CLI's file")
	}
}

func TestKeyIDForms(t *testing.T) {
	body := "MIIBCgKCAQEAxiHQEJu8JkHOIjIgn6yJQtbSDSiUXU3"
	for _, tc := range []struct{ in, want string }{
		{"-----BEGIN RSA PUBLIC KEY-----\n" + body + "\n-----END RSA PUBLIC KEY-----\n", "MIIBCgKCAQEAxiHQEJu8"},
		{"-----BEGIN PUBLIC KEY-----\r\n" + body + "\r\n-----END PUBLIC KEY-----", "MIIBCgKCAQEAxiHQEJu8"},
		{"  " + body[:10] + " \n\t" + body[10:], "MIIBCgKCAQEAxiHQEJu8"},
		{"-----BEGIN RSA PUBLIC KEY-----\nMIIB\n-----END RSA PUBLIC KEY-----", "MIIB"},
		{"", ""},
		{"-----BEGIN RSA PUBLIC KEY", ""},
	} {
		if got := KeyID(tc.in); got != tc.want {
			t.Errorf("KeyID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVectorSessionKeys(t *testing.T) {
	priv, pub := vectorKeys(t)
	for _, v := range vectorVersions() {
		t.Run(v, func(t *testing.T) {
			var enc cliEncrypt
			readVectorJSON(t, "cli-encrypt-"+v+".json", &enc)
			d := derived(t, v)
			if !ValidSessionKeyFormat(enc.IVSessionKey) {
				t.Fatalf("CLI session key not valid format")
			}
			sk, err := OpenSessionKey(enc.IVSessionKey, pub)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(sk.Key[:]); got != d.KeyHex {
				t.Errorf("key = %s, want %s", got, d.KeyHex)
			}
			if got := hex.EncodeToString(sk.IV[:]); got != d.IVHex {
				t.Errorf("iv = %s, want %s", got, d.IVHex)
			}
			// Type-1 padding is deterministic: sealing the recovered key
			// reproduces the CLI's string exactly.
			sealed, err := sk.Seal(priv)
			if err != nil {
				t.Fatal(err)
			}
			if sealed != enc.IVSessionKey {
				t.Errorf("Seal = %q, want the CLI's %q", sealed, enc.IVSessionKey)
			}

			plainZip := readVector(t, "bundle-"+v+".zip")
			encZip := readVector(t, "bundle-"+v+".zip_encrypted.zip")
			got, err := sk.Decrypt(encZip)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plainZip) {
				t.Errorf("decrypted zip differs from bundle-%s.zip", v)
			}
			if !bytes.Equal(sk.Encrypt(plainZip), encZip) {
				t.Errorf("Encrypt(plain zip) differs from the CLI's encrypted zip")
			}
		})
	}
}

func TestVectorChecksums(t *testing.T) {
	priv, pub := vectorKeys(t)
	for _, v := range vectorVersions() {
		t.Run(v, func(t *testing.T) {
			var z cliZip
			readVectorJSON(t, "cli-zip-"+v+".json", &z)
			var enc cliEncrypt
			readVectorJSON(t, "cli-encrypt-"+v+".json", &enc)
			if got := SHA256Hex(readVector(t, "bundle-"+v+".zip")); got != z.Checksum {
				t.Fatalf("SHA256Hex(zip) = %s, CLI says %s", got, z.Checksum)
			}
			got, err := OpenChecksum(pub, enc.Checksum)
			if err != nil {
				t.Fatal(err)
			}
			if got != z.Checksum {
				t.Errorf("OpenChecksum = %s, want %s", got, z.Checksum)
			}
			upper, err := OpenChecksum(pub, strings.ToUpper(enc.Checksum))
			if err != nil || upper != z.Checksum {
				t.Errorf("OpenChecksum(upper case) = %q, %v", upper, err)
			}
			sealed, err := SealChecksum(priv, z.Checksum)
			if err != nil {
				t.Fatal(err)
			}
			if sealed != enc.Checksum {
				t.Errorf("SealChecksum = %s\nwant the CLI's %s", sealed, enc.Checksum)
			}
			if len(sealed) != 512 || sealed != strings.ToLower(sealed) {
				t.Errorf("sealed checksum is not 512 lowercase hex")
			}
			// The standard library agrees: it is a raw PKCS#1 v1.5 signature.
			digest, _ := hex.DecodeString(z.Checksum)
			sig, _ := hex.DecodeString(enc.Checksum)
			if err := rsa.VerifyPKCS1v15(pub, crypto.Hash(0), digest, sig); err != nil {
				t.Errorf("VerifyPKCS1v15: %v", err)
			}
		})
	}
}

func TestImportEncryptedVectors(t *testing.T) {
	_, pub := vectorKeys(t)
	encs := map[string]cliEncrypt{}
	for _, v := range vectorVersions() {
		var enc cliEncrypt
		readVectorJSON(t, "cli-encrypt-"+v+".json", &enc)
		encs[v] = enc
	}
	_, otherPubPEM, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, err := ParsePublicKey(otherPubPEM)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectorVersions() {
		t.Run(v, func(t *testing.T) {
			encZip := readVector(t, "bundle-"+v+".zip_encrypted.zip")
			enc := encs[v]
			b, err := ImportEncrypted(encZip, enc.IVSessionKey, strings.ToUpper(enc.Checksum), pub, ZipLimits{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Zip, encZip) || b.Checksum != enc.Checksum || b.SessionKey != enc.IVSessionKey ||
				b.KeyID != "MIIBCgKCAQEAxiHQEJu8" || b.Files != nil {
				t.Errorf("bundle = {checksum %q session %q key %q files %v}", b.Checksum, b.SessionKey, b.KeyID, b.Files)
			}

			other := "1.0.1"
			if v == other {
				other = "1.0.2"
			}
			_, err = ImportEncrypted(encZip, enc.IVSessionKey, encs[other].Checksum, pub, ZipLimits{})
			if err == nil || !strings.Contains(err.Error(), "checksum does not match the zip: was it encrypted with another key?") {
				t.Errorf("wrong checksum: err = %v", err)
			}
			if _, err := ImportEncrypted(encZip, enc.IVSessionKey, enc.Checksum, otherPub, ZipLimits{}); err == nil {
				t.Errorf("wrong public key: no error")
			}
			if _, err := ImportEncrypted(encZip, encs[other].IVSessionKey, enc.Checksum, pub, ZipLimits{}); err == nil {
				t.Errorf("other release's session key: no error")
			}
			if _, err := ImportEncrypted(encZip, enc.IVSessionKey, enc.Checksum, nil, ZipLimits{}); err == nil {
				t.Errorf("nil public key: no error")
			}
		})
	}
}

func TestGenerateKeys(t *testing.T) {
	privPEM, pubPEM, err := GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(privPEM, []byte("-----BEGIN RSA PRIVATE KEY-----\n")) ||
		!bytes.HasPrefix(pubPEM, []byte("-----BEGIN RSA PUBLIC KEY-----\n")) {
		t.Fatalf("not PKCS#1 PEM:\n%s\n%s", privPEM, pubPEM)
	}
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.PublicKey.Equal(pub) {
		t.Fatal("public key does not match the private key")
	}
	if id := KeyID(string(pubPEM)); len(id) != 20 || !strings.HasPrefix(id, "MIIBCgKCAQEA") {
		t.Errorf("KeyID = %q", id)
	}
	sk, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sk.Seal(priv)
	if err != nil {
		t.Fatal(err)
	}
	if iv, key, _ := strings.Cut(sealed, ":"); len(iv) != 24 || len(key) != 344 {
		t.Errorf("sealed session key parts are %d and %d chars, want 24 and 344", len(iv), len(key))
	}
	got, err := OpenSessionKey(sealed, pub)
	if err != nil || got != sk {
		t.Fatalf("OpenSessionKey(Seal(k)) = %v, %v", got, err)
	}
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		ct := sk.Encrypt(plain)
		if len(ct)%16 != 0 || len(ct) <= n {
			t.Errorf("Encrypt(%d bytes) = %d bytes", n, len(ct))
		}
		back, err := sk.Decrypt(ct)
		if err != nil || !bytes.Equal(back, plain) {
			t.Errorf("Decrypt(Encrypt(%d bytes)) = %d bytes, %v", n, len(back), err)
		}
	}
}

func TestParseKeyErrors(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub := vectorKeys(t)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(priv)
	pkix, _ := x509.MarshalPKIXPublicKey(pub)
	ecPKIX, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey)
	ecPKCS8, _ := x509.MarshalPKCS8PrivateKey(ec)
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }

	if k, err := ParsePrivateKey(enc("PRIVATE KEY", pkcs8)); err != nil || !k.Equal(priv) {
		t.Errorf("PKCS#8 private key: %v", err)
	}
	if k, err := ParsePublicKey(enc("PUBLIC KEY", pkix)); err != nil || !k.Equal(pub) {
		t.Errorf("PKIX public key: %v", err)
	}

	privCases := []struct {
		name string
		in   []byte
		want string
	}{
		{"not PEM", []byte("hello"), "content: private key: not PEM"},
		{"public given", readVector(t, "test_public_key.pem"), "not a private key"},
		{"1024 bits", enc("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(small)), "RSA-1024"},
		{"EC PKCS#8", enc("PRIVATE KEY", ecPKCS8), "not an RSA key"},
		{"garbage DER", enc("RSA PRIVATE KEY", []byte{1, 2, 3}), "PKCS#1"},
		{"other block", enc("CERTIFICATE", []byte{1}), "unsupported PEM block"},
	}
	for _, tc := range privCases {
		if _, err := ParsePrivateKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePrivateKey(%s) error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
	pubCases := []struct {
		name string
		in   []byte
		want string
	}{
		{"not PEM", nil, "content: public key: not PEM"},
		{"private given", readVector(t, "test_private_key.pem"), "never the private one"},
		{"1024 bits", enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&small.PublicKey)), "RSA-1024"},
		{"EC PKIX", enc("PUBLIC KEY", ecPKIX), "not an RSA key"},
		{"garbage DER", enc("RSA PUBLIC KEY", []byte{1, 2, 3}), "PKCS#1"},
	}
	for _, tc := range pubCases {
		if _, err := ParsePublicKey(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParsePublicKey(%s) error = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestValidSessionKeyFormat(t *testing.T) {
	for in, want := range map[string]bool{
		"a:b":   true,
		"":      false,
		":":     false,
		"a:":    false,
		":b":    false,
		"ab":    false,
		"a:b:c": false,
		"a::b":  false,
	} {
		if got := ValidSessionKeyFormat(in); got != want {
			t.Errorf("ValidSessionKeyFormat(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	priv, pub := vectorKeys(t)
	var enc cliEncrypt
	readVectorJSON(t, "cli-encrypt-1.0.1.json", &enc)
	iv, key, _ := strings.Cut(enc.IVSessionKey, ":")
	short := base64.StdEncoding.EncodeToString(make([]byte, 15))
	// A correctly sealed 15-byte payload: valid padding, wrong length.
	sealed15, err := privateEncrypt(priv, make([]byte, 15))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{
		"empty":       "",
		"no colon":    iv + key,
		"bad iv b64":  "!!!:" + key,
		"short iv":    short + ":" + key,
		"bad key b64": iv + ":***",
		"short key":   iv + ":" + base64.StdEncoding.EncodeToString([]byte("abc")),
		"15-byte key": iv + ":" + base64.StdEncoding.EncodeToString(sealed15),
		"wrong bytes": iv + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256)),
	} {
		if _, err := OpenSessionKey(s, pub); err == nil {
			t.Errorf("OpenSessionKey(%s): no error", name)
		}
	}
	if _, err := OpenSessionKey(enc.IVSessionKey, nil); err == nil {
		t.Errorf("OpenSessionKey(nil key): no error")
	}

	sealed16, _ := privateEncrypt(priv, make([]byte, 16))
	for name, s := range map[string]string{
		"empty":      "",
		"short":      enc.Checksum[:510],
		"long":       enc.Checksum + "00",
		"not hex":    "zz" + enc.Checksum[2:],
		"wrong key":  strings.Repeat("07", 256),
		"16 bytes":   hex.EncodeToString(sealed16),
		"modulus+":   strings.Repeat("ff", 256),
		"plain hash": "2aad9cbde19f40228f3c1ddd04fcd59763bbc4fc8307dac2f58d80fee1044db6",
	} {
		if _, err := OpenChecksum(pub, s); err == nil {
			t.Errorf("OpenChecksum(%s): no error", name)
		}
	}
	if _, err := OpenChecksum(nil, enc.Checksum); err == nil {
		t.Errorf("OpenChecksum(nil key): no error")
	}
	for name, d := range map[string]string{"not hex": "xyz", "short": "abcd", "empty": ""} {
		if _, err := SealChecksum(priv, d); err == nil {
			t.Errorf("SealChecksum(%s): no error", name)
		}
	}
	if _, err := SealChecksum(nil, strings.Repeat("00", 32)); err == nil {
		t.Errorf("SealChecksum(nil key): no error")
	}
	if _, err := (SessionKey{}).Seal(nil); err == nil {
		t.Errorf("Seal(nil key): no error")
	}
	if _, err := RSAPublicRecover(pub, make([]byte, 255)); err == nil {
		t.Errorf("RSAPublicRecover(255 bytes): no error")
	}
	if _, err := RSAPublicRecover(&rsa.PublicKey{}, make([]byte, 256)); err == nil {
		t.Errorf("RSAPublicRecover(zero key): no error")
	}
}

func TestDecryptErrors(t *testing.T) {
	sk, err := NewSessionKey()
	if err != nil {
		t.Fatal(err)
	}
	ct := sk.Encrypt([]byte("hello"))
	// rawBlock returns the CBC encryption of one 16-byte block without
	// padding, so that decrypting it yields block and its last byte is
	// read as the padding length.
	rawBlock := func(last ...byte) []byte {
		block := bytes.Repeat([]byte{'x'}, 16)
		copy(block[16-len(last):], last)
		return sk.Encrypt(block)[:16]
	}
	for name, in := range map[string][]byte{
		"empty":            nil,
		"not a block":      ct[:15],
		"ragged":           append(bytes.Clone(ct), 1),
		"zero padding":     rawBlock(0),
		"padding too long": rawBlock(17),
		"inconsistent pad": rawBlock(3, 2, 3),
	} {
		if _, err := sk.Decrypt(in); err == nil {
			t.Errorf("Decrypt(%s): no error", name)
		}
	}
	if got, err := sk.Decrypt(rawBlock(2, 2)); err != nil || len(got) != 14 {
		t.Errorf("Decrypt(valid 2-byte padding) = %d bytes, %v", len(got), err)
	}
}
