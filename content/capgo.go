package content

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// This file implements Capgo's "encryption v2", byte-compatible with the
// Capgo CLI (`key create`, `bundle encrypt`) and the updater plugin:
//
//   - RSA-2048 keys, both halves PKCS#1 PEM. The developer keeps the
//     private key; the app embeds the public key.
//   - The CLI "private-encrypts" with PKCS#1 v1.5 type-1 (signature)
//     padding, which is deterministic; the device recovers the payload
//     with a raw public-key operation and strips 00 01 FF.. 00.
//   - Bundles and manifest files are AES-128-CBC with PKCS#7 padding under
//     one random key and IV per release.

// capgoKeyBits is the only RSA size the iOS plugin accepts.
const capgoKeyBits = 2048

// capgoRSABytes is the byte length of a capgoKeyBits modulus, so of every
// sealed session key and checksum.
const capgoRSABytes = capgoKeyBits / 8

// minPadding is the minimum number of 0xFF bytes PKCS#1 v1.5 requires in
// a type-1 block (RFC 8017, section 9.2, note 1).
const minPadding = 8

// GenerateKeys makes a new RSA-2048 key pair and returns both halves as
// PKCS#1 PEM ("RSA PRIVATE KEY" and "RSA PUBLIC KEY"), the format of
// `npx @capgo/cli key create`.
func GenerateKeys() (privPEM, pubPEM []byte, err error) {
	priv, err := rsa.GenerateKey(rand.Reader, capgoKeyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("content: generate key: %w", err)
	}
	privPEM = pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PRIVATE KEY",
		Bytes: x509.MarshalPKCS1PrivateKey(priv),
	})
	return privPEM, PublicKeyPEM(&priv.PublicKey), nil
}

// PublicKeyPEM encodes pub as PKCS#1 PEM ("RSA PUBLIC KEY"), the form the
// plugin's publicKey setting must have on Android.
func PublicKeyPEM(pub *rsa.PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{
		Type:  "RSA PUBLIC KEY",
		Bytes: x509.MarshalPKCS1PublicKey(pub),
	})
}

// ParsePrivateKey decodes a PEM RSA private key, PKCS#1 ("RSA PRIVATE
// KEY", as the Capgo CLI writes it) or PKCS#8 ("PRIVATE KEY"). The key
// must be RSA-2048, because devices reject any other size.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("content: private key: not PEM")
	}
	var priv *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("content: private key: PKCS#1: %w", err)
		}
		priv = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("content: private key: PKCS#8: %w", err)
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("content: private key: PKCS#8 holds a %T, not an RSA key", k)
		}
		priv = rk
	case "RSA PUBLIC KEY", "PUBLIC KEY":
		return nil, fmt.Errorf("content: private key: PEM block is a %q, not a private key", block.Type)
	default:
		return nil, fmt.Errorf("content: private key: unsupported PEM block %q (want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\")", block.Type)
	}
	if n := priv.N.BitLen(); n != capgoKeyBits {
		return nil, fmt.Errorf("content: private key: RSA-%d, but Capgo devices accept only RSA-%d", n, capgoKeyBits)
	}
	return priv, nil
}

// ParsePublicKey decodes a PEM RSA public key, PKCS#1 ("RSA PUBLIC KEY",
// as the Capgo CLI writes it) or PKIX ("PUBLIC KEY"). The key must be
// RSA-2048: the iOS plugin rejects any other size.
func ParsePublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("content: public key: not PEM")
	}
	var pub *rsa.PublicKey
	switch block.Type {
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("content: public key: PKCS#1: %w", err)
		}
		pub = k
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("content: public key: PKIX: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("content: public key: PKIX holds a %T, not an RSA key", k)
		}
		pub = rk
	case "RSA PRIVATE KEY", "PRIVATE KEY":
		return nil, fmt.Errorf("content: public key: PEM block is a %q; give the public key, never the private one", block.Type)
	default:
		return nil, fmt.Errorf("content: public key: unsupported PEM block %q (want \"RSA PUBLIC KEY\" or \"PUBLIC KEY\")", block.Type)
	}
	if n := pub.N.BitLen(); n != capgoKeyBits {
		return nil, fmt.Errorf("content: public key: RSA-%d, but Capgo devices accept only RSA-%d", n, capgoKeyBits)
	}
	return pub, nil
}

// KeyID returns the key id the plugin sends as key_id: the first 20
// characters of the PEM body, after removing all whitespace and the
// "-----BEGIN ...-----" / "-----END ...-----" markers. A shorter body is
// returned whole; an empty PEM gives "".
func KeyID(pubPEM string) string {
	compact := strings.Join(strings.Fields(pubPEM), "")
	var body strings.Builder
	for {
		start := strings.Index(compact, "-----")
		if start < 0 {
			body.WriteString(compact)
			break
		}
		body.WriteString(compact[:start])
		rest := compact[start+5:]
		end := strings.Index(rest, "-----")
		if end < 0 {
			// An unterminated marker: treat the rest as marker text.
			break
		}
		compact = rest[end+5:]
	}
	id := body.String()
	if len(id) > 20 {
		id = id[:20]
	}
	return id
}

// SessionKey is the AES-128 key and CBC IV that encrypt one release: its
// zip and every manifest file.
type SessionKey struct {
	Key, IV [16]byte
}

// NewSessionKey draws a fresh random key and IV from crypto/rand.
func NewSessionKey() (SessionKey, error) {
	var k SessionKey
	if _, err := rand.Read(k.Key[:]); err != nil {
		return SessionKey{}, fmt.Errorf("content: session key: %w", err)
	}
	if _, err := rand.Read(k.IV[:]); err != nil {
		return SessionKey{}, fmt.Errorf("content: session key: %w", err)
	}
	return k, nil
}

// Seal returns the session_key string devices expect:
// base64(IV) + ":" + base64(RSA type-1 private-encrypt(Key)), exactly as
// the CLI prints it as ivSessionKey.
func (k SessionKey) Seal(priv *rsa.PrivateKey) (string, error) {
	if priv == nil {
		return "", errors.New("content: seal session key: no private key")
	}
	sealed, err := privateEncrypt(priv, k.Key[:])
	if err != nil {
		return "", fmt.Errorf("content: seal session key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(k.IV[:]) + ":" +
		base64.StdEncoding.EncodeToString(sealed), nil
}

// ValidSessionKeyFormat reports whether s has the shape the plugin
// requires before it tries to decrypt: two non-empty parts around a
// single ':'.
func ValidSessionKeyFormat(s string) bool {
	iv, key, ok := strings.Cut(s, ":")
	return ok && iv != "" && key != "" && !strings.Contains(key, ":")
}

// OpenSessionKey recovers the AES key and IV from a session_key string
// with the public key only, as a device does.
func OpenSessionKey(s string, pub *rsa.PublicKey) (SessionKey, error) {
	if pub == nil {
		return SessionKey{}, errors.New("content: open session key: no public key")
	}
	if !ValidSessionKeyFormat(s) {
		return SessionKey{}, errors.New("content: open session key: want base64(iv):base64(key)")
	}
	ivPart, keyPart, _ := strings.Cut(s, ":")
	iv, err := base64.StdEncoding.DecodeString(ivPart)
	if err != nil {
		return SessionKey{}, fmt.Errorf("content: open session key: iv: %w", err)
	}
	if len(iv) != 16 {
		return SessionKey{}, fmt.Errorf("content: open session key: iv is %d bytes, want 16", len(iv))
	}
	sealed, err := base64.StdEncoding.DecodeString(keyPart)
	if err != nil {
		return SessionKey{}, fmt.Errorf("content: open session key: key: %w", err)
	}
	key, err := RSAPublicRecover(pub, sealed)
	if err != nil {
		return SessionKey{}, fmt.Errorf("content: open session key: %w", err)
	}
	if len(key) != 16 {
		return SessionKey{}, fmt.Errorf("content: open session key: key is %d bytes, want 16", len(key))
	}
	var k SessionKey
	copy(k.Key[:], key)
	copy(k.IV[:], iv)
	return k, nil
}

// Encrypt returns AES-128-CBC(PKCS#7(plain)) under the session key, as
// the CLI's `bundle encrypt` does.
func (k SessionKey) Encrypt(plain []byte) []byte {
	block, err := aes.NewCipher(k.Key[:])
	if err != nil {
		// Unreachable: a 16-byte key is always a valid AES key.
		panic("content: aes: " + err.Error())
	}
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	buf := make([]byte, len(plain)+pad)
	copy(buf, plain)
	for i := len(plain); i < len(buf); i++ {
		buf[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, k.IV[:]).CryptBlocks(buf, buf)
	return buf
}

// Decrypt reverses Encrypt. It fails when ct is empty, not a multiple of
// the AES block size, or does not end in valid PKCS#7 padding (usually:
// the wrong key).
func (k SessionKey) Decrypt(ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("content: decrypt: length %d is not a positive multiple of %d", len(ct), aes.BlockSize)
	}
	block, err := aes.NewCipher(k.Key[:])
	if err != nil {
		return nil, fmt.Errorf("content: decrypt: %w", err)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, k.IV[:]).CryptBlocks(out, ct)
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("content: decrypt: bad padding (wrong session key?)")
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, errors.New("content: decrypt: bad padding (wrong session key?)")
		}
	}
	return out[:len(out)-pad], nil
}

// SHA256Hex returns the lowercase hex SHA-256 of b, the plain checksum
// form of zips and manifest files.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// SealChecksum returns the encrypted checksum form ("V3"): lowercase hex
// of the RSA type-1 private-encrypt of the 32 raw digest bytes, 512 hex
// characters. hexDigest is a SHA-256 in hex (either case).
func SealChecksum(priv *rsa.PrivateKey, hexDigest string) (string, error) {
	if priv == nil {
		return "", errors.New("content: seal checksum: no private key")
	}
	digest, err := hex.DecodeString(hexDigest)
	if err != nil {
		return "", fmt.Errorf("content: seal checksum: digest is not hex: %w", err)
	}
	if len(digest) != sha256.Size {
		return "", fmt.Errorf("content: seal checksum: digest is %d bytes, want %d", len(digest), sha256.Size)
	}
	sealed, err := privateEncrypt(priv, digest)
	if err != nil {
		return "", fmt.Errorf("content: seal checksum: %w", err)
	}
	return hex.EncodeToString(sealed), nil
}

// OpenChecksum recovers the hex SHA-256 from an encrypted checksum with
// the public key, as a device does. The checksum must be 512 hex
// characters (either case) and hold exactly 32 bytes.
func OpenChecksum(pub *rsa.PublicKey, checksum string) (string, error) {
	if pub == nil {
		return "", errors.New("content: open checksum: no public key")
	}
	if len(checksum) != 2*capgoRSABytes {
		return "", fmt.Errorf("content: open checksum: %d characters, want %d hex (the RSA-2048 \"V3\" form)", len(checksum), 2*capgoRSABytes)
	}
	sealed, err := hex.DecodeString(checksum)
	if err != nil {
		return "", fmt.Errorf("content: open checksum: not hex: %w", err)
	}
	digest, err := RSAPublicRecover(pub, sealed)
	if err != nil {
		return "", fmt.Errorf("content: open checksum: %w", err)
	}
	if len(digest) != sha256.Size {
		return "", fmt.Errorf("content: open checksum: recovered %d bytes, want a %d-byte SHA-256", len(digest), sha256.Size)
	}
	return hex.EncodeToString(digest), nil
}

// RSAPublicRecover undoes an RSA PKCS#1 v1.5 type-1 private-encrypt: it
// computes sig^e mod n and strips the 00 01 FF.. 00 padding, returning
// the payload. This is what the plugin does (Android "RSA/ECB/
// PKCS1Padding" in decrypt mode with a public key, iOS RSA.swift).
func RSAPublicRecover(pub *rsa.PublicKey, sig []byte) ([]byte, error) {
	if pub == nil || pub.N == nil || pub.N.Sign() <= 0 || pub.E < 2 {
		return nil, errors.New("content: rsa recover: invalid public key")
	}
	k := (pub.N.BitLen() + 7) / 8
	if len(sig) != k {
		return nil, fmt.Errorf("content: rsa recover: input is %d bytes, want %d", len(sig), k)
	}
	c := new(big.Int).SetBytes(sig)
	if c.Cmp(pub.N) >= 0 {
		return nil, errors.New("content: rsa recover: input is not smaller than the modulus")
	}
	m := new(big.Int).Exp(c, big.NewInt(int64(pub.E)), pub.N)
	em := m.FillBytes(make([]byte, k))
	if em[0] != 0x00 || em[1] != 0x01 {
		return nil, errors.New("content: rsa recover: not PKCS#1 type-1 padding (wrong key?)")
	}
	i := 2
	for i < len(em) && em[i] == 0xFF {
		i++
	}
	if i == len(em) || em[i] != 0x00 {
		return nil, errors.New("content: rsa recover: padding has no 00 separator (wrong key?)")
	}
	if i-2 < minPadding {
		return nil, fmt.Errorf("content: rsa recover: only %d padding bytes, want at least %d", i-2, minPadding)
	}
	return bytes.Clone(em[i+1:]), nil
}

// privateEncrypt is the CLI's privateEncrypt with RSA_PKCS1_PADDING:
// crypto.Hash(0) makes SignPKCS1v15 pad the raw payload with type-1
// padding and no DigestInfo, which is deterministic.
func privateEncrypt(priv *rsa.PrivateKey, payload []byte) ([]byte, error) {
	return rsa.SignPKCS1v15(nil, priv, crypto.Hash(0), payload)
}
