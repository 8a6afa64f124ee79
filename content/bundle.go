package content

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/andybalholm/brotli"
)

// Brotli settings of Capgo CLI's delta upload (cli/src/bundle/partial.ts):
// files of at least brotliMinSize bytes are compressed with node's
// default parameters, and kept only when that saves more than
// brotliMinSaving bytes.
const (
	brotliMinSize   = 8192
	brotliMinSaving = 10
	brotliQuality   = 11 // BROTLI_DEFAULT_QUALITY
	brotliLGWin     = 22 // BROTLI_DEFAULT_WINDOW
)

// Bundle is a release ready to serve: the zip as devices download it, the
// fields of the update answer, and the delta manifest.
type Bundle struct {
	// Zip is the bytes as served to devices (encrypted when SessionKey is
	// not "").
	Zip []byte
	// Checksum is the update answer's checksum: hex SHA-256 of the plain
	// zip, or its SealChecksum form when encrypted.
	Checksum string
	// SessionKey is the update answer's session_key, "" when plain.
	SessionKey string
	// KeyID is the key_id of the public key matching the private key that
	// sealed the bundle, "" when plain.
	KeyID string
	// Files is the delta manifest, sorted by Name; it may be empty.
	Files []BundleFile
	// EmptyFiles lists, sorted, the empty files of an encrypted bundle
	// that left it without a manifest (see ManifestRefusesEmpty); nil
	// otherwise.
	EmptyFiles []string
}

// ManifestRefusesEmpty says why an encrypted bundle holding an empty file
// gets no delta manifest: Capgo's Android plugin 8.51.23, with a
// publicKey set, refuses a manifest file whose decrypted content is
// empty (CryptoCipher.decryptAesFile, "Empty decrypted data") and fails
// the whole download, while a zip holding an empty file installs. Such
// a bundle is served as its zip alone. Plain manifests are not affected
// (nothing is decrypted); iOS is not documented either way, and a
// release serves both platforms, so the rule holds for every encrypted
// bundle.
const ManifestRefusesEmpty = "Capgo's Android plugin (8.51.23) fails the whole download of an encrypted delta manifest holding an empty file (\"Empty decrypted data\"), while the zip installs"

// EmptyFilesNote is the line telling a publisher that an encrypted
// bundle is served without a manifest because of its empty files, ""
// when b has a manifest or is plain.
func EmptyFilesNote(b *Bundle) string {
	if len(b.EmptyFiles) == 0 {
		return ""
	}
	return fmt.Sprintf("manifest: none, served as a zip only: %s %s; %s, so devices download the whole zip instead of a delta (fill the files or remove them to get a manifest)",
		plural(len(b.EmptyFiles), "empty file"), NameList(b.EmptyFiles, 10), ManifestRefusesEmpty)
}

// NameList joins names for a message, the first max of them and how many
// more.
func NameList(names []string, max int) string {
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// BundleFile is one delta manifest entry and its stored bytes.
type BundleFile struct {
	// Name is the file_name as served: a relative POSIX path, with ".br"
	// appended when the Brotli form was kept.
	Name string
	// Hash is the file_hash as served: hex SHA-256 of the original file
	// bytes, or SealChecksum of it when encrypted.
	Hash string
	// Data is the stored bytes: the original or its Brotli form, then
	// AES-encrypted with the release's session key when encrypted.
	Data []byte
}

// BuildBundle prepares a release from a plain zip (from ZipDir or a
// user's zip), after validating it with ReadZip.
//
// With priv nil the bundle is plain: Zip is zip as given and Checksum its
// SHA256Hex. With priv set, one new session key encrypts the zip and
// every manifest file (BuildBundleWithKey takes a given one instead),
// Checksum and every file hash are sealed with priv, and KeyID names
// priv's public key.
//
// The manifest follows Capgo CLI's partial.ts: each file of at least
// 8192 bytes is Brotli-compressed (quality 11, window 22) and the ".br"
// form is kept only if it is smaller by more than 10 bytes. An encrypted
// bundle holding an empty file has no manifest: EmptyFiles lists those
// files and ManifestRefusesEmpty says why.
func BuildBundle(zip []byte, priv *rsa.PrivateKey, lim ZipLimits) (*Bundle, error) {
	var sk SessionKey
	if priv != nil {
		var err error
		if sk, err = NewSessionKey(); err != nil {
			return nil, fmt.Errorf("content: build bundle: %w", err)
		}
	}
	return buildBundle(zip, priv, sk, lim)
}

// BuildBundleWithKey is BuildBundle with priv set and the session key
// given instead of drawn. Publishing reuses the key (and IV) of the
// app's previous encrypted release, opened with OpenSessionKey: the
// unchanged manifest files of the new release then encrypt to the same
// bytes and CIDs, so nodes neither store nor replicate them again.
//
// Reusing a session key is a trade-off. AES-CBC with the same key and IV
// is deterministic, so someone who sees the ciphertexts of both releases
// (served files, or blocks exchanged by nodes) learns which files are
// identical in both and, for a changed file and for the zip, the length
// of the prefix it shares with its old version, to 16-byte blocks, just
// as the files of one release already reveal that among themselves.
// Nothing else about the plaintext is revealed, and the key is no more
// exposed than before: anyone with the app's public key can open
// session_key anyway. A fresh key per release (BuildBundle) hides even
// that, at the price of every encrypted byte changing.
func BuildBundleWithKey(zip []byte, priv *rsa.PrivateKey, sk SessionKey, lim ZipLimits) (*Bundle, error) {
	if priv == nil {
		return nil, errors.New("content: build bundle: a session key needs a private key")
	}
	return buildBundle(zip, priv, sk, lim)
}

// buildBundle is BuildBundle with the session key given, so that tests
// can reproduce the CLI's bytes with its key.
func buildBundle(zip []byte, priv *rsa.PrivateKey, sk SessionKey, lim ZipLimits) (*Bundle, error) {
	files, err := ReadZip(zip, lim)
	if err != nil {
		return nil, fmt.Errorf("content: build bundle: %w", err)
	}
	b := &Bundle{Zip: zip, Checksum: SHA256Hex(zip)}
	if priv != nil {
		if b.SessionKey, err = sk.Seal(priv); err != nil {
			return nil, fmt.Errorf("content: build bundle: %w", err)
		}
		if b.Checksum, err = SealChecksum(priv, b.Checksum); err != nil {
			return nil, fmt.Errorf("content: build bundle: %w", err)
		}
		b.Zip = sk.Encrypt(zip)
		b.KeyID = KeyID(string(PublicKeyPEM(&priv.PublicKey)))
		if b.EmptyFiles = emptyFiles(files); b.EmptyFiles != nil {
			return b, nil // no manifest: ManifestRefusesEmpty
		}
	}

	b.Files = make([]BundleFile, 0, len(files))
	for _, f := range files {
		bf := BundleFile{Name: f.Name, Hash: SHA256Hex(f.Data), Data: f.Data}
		if len(f.Data) >= brotliMinSize && mayCompress(f.Data) {
			br, err := brotliCompress(f.Data)
			if err != nil {
				return nil, fmt.Errorf("content: build bundle: %s: %w", f.Name, err)
			}
			if len(br) < len(f.Data)-brotliMinSaving {
				bf.Name += ".br"
				bf.Data = br
			}
		}
		if priv != nil {
			bf.Data = sk.Encrypt(bf.Data)
			if bf.Hash, err = SealChecksum(priv, bf.Hash); err != nil {
				return nil, fmt.Errorf("content: build bundle: %s: %w", f.Name, err)
			}
		}
		b.Files = append(b.Files, bf)
	}
	// ReadZip sorts by the original names; appending ".br" can change
	// the order ("a.js.br" sorts after "a.js-x"), so sort the served names.
	sortBundleFiles(b.Files)
	return b, nil
}

// emptyFiles lists the empty files of a zip, sorted.
func emptyFiles(files []ZipFile) []string {
	var out []string
	for _, f := range files {
		if len(f.Data) == 0 {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}

// ImportEncrypted accepts a zip that the Capgo CLI already encrypted
// (`bundle encrypt`), with the session key and checksum it printed. It
// opens both with pub, checks that the checksum matches the decrypted
// zip and validates that zip with ReadZip. The returned bundle serves
// encZip unchanged and has no manifest: sealing file hashes would need
// the private key. Empty files in it are therefore fine: the zip path
// installs them (ManifestRefusesEmpty is about manifests only).
func ImportEncrypted(encZip []byte, sessionKey, checksum string, pub *rsa.PublicKey, lim ZipLimits) (*Bundle, error) {
	if pub == nil {
		return nil, errors.New("content: import encrypted: no public key")
	}
	sk, err := OpenSessionKey(sessionKey, pub)
	if err != nil {
		return nil, fmt.Errorf("content: import encrypted: %w", err)
	}
	plain, err := sk.Decrypt(encZip)
	if err != nil {
		return nil, fmt.Errorf("content: import encrypted: zip: %w", err)
	}
	want, err := OpenChecksum(pub, checksum)
	if err != nil {
		return nil, fmt.Errorf("content: import encrypted: %w", err)
	}
	if SHA256Hex(plain) != want {
		return nil, errors.New("content: import encrypted: checksum does not match the zip: was it encrypted with another key?")
	}
	if _, err := ReadZip(plain, lim); err != nil {
		return nil, fmt.Errorf("content: import encrypted: %w", err)
	}
	return &Bundle{
		Zip:        encZip,
		Checksum:   strings.ToLower(checksum),
		SessionKey: sessionKey,
		KeyID:      KeyID(string(PublicKeyPEM(pub))),
	}, nil
}

// BrotliDecode decompresses a Brotli stream, reading at most limit
// decompressed bytes (limit <= 0 means 2 GiB).
func BrotliDecode(data []byte, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = defaultMaxTotalBytes
	}
	out, err := readAllLimit(brotli.NewReader(bytes.NewReader(data)), limit)
	if err != nil {
		return nil, fmt.Errorf("content: brotli: %w", err)
	}
	return out, nil
}

// mayCompress is a cheap guess whether Brotli at full quality could
// shrink data: it compresses three 16 KiB samples (start, middle, end)
// at the fastest level and says no when they did not shrink by 2%.
// Quality 11 on incompressible bytes (images, already compressed
// assets) costs seconds per MiB and is then thrown away; a file whose
// samples are all incompressible but whose other parts are not is
// served uncompressed, which is still correct.
func mayCompress(data []byte) bool {
	const sample = 16 << 10
	if len(data) <= 3*sample {
		return true
	}
	var in, out int
	for _, off := range []int{0, len(data)/2 - sample/2, len(data) - sample} {
		var buf bytes.Buffer
		w := brotli.NewWriterLevel(&buf, brotli.BestSpeed)
		_, _ = w.Write(data[off : off+sample])
		_ = w.Close()
		in += sample
		out += buf.Len()
	}
	return out < in*98/100
}

func brotliCompress(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	w := brotli.NewWriterOptions(&buf, brotli.WriterOptions{Quality: brotliQuality, LGWin: brotliLGWin})
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("brotli: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("brotli: %w", err)
	}
	return buf.Bytes(), nil
}

func sortBundleFiles(files []BundleFile) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
}

// readAllLimit reads r to the end, failing once it yields more than limit
// bytes.
func readAllLimit(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("more than %d bytes", limit)
	}
	return b, nil
}
