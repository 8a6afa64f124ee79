package content

import (
	"context"
	"crypto/aes"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/ipfs/go-cid"
)

// ErrReleaseRefused is matched (errors.Is) by every refusal of
// CheckRelease: the request does not match the stored bytes, or names
// objects this store does not hold. Other errors of CheckRelease are
// failures to read the store.
var ErrReleaseRefused = errors.New("content: release refused")

// refusal is a refusal of CheckRelease; its message is for the
// operator, without a package prefix.
type refusal struct{ msg string }

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == ErrReleaseRefused }

func refuse(format string, args ...any) error {
	return &refusal{fmt.Sprintf(format, args...)}
}

// ReleaseObjects is what CheckRelease needs of a block store.
type ReleaseObjects interface {
	Complete(ctx context.Context, c cid.Cid) (bool, error)
	Open(ctx context.Context, c cid.Cid) (File, error)
}

// ReleaseFile is one manifest entry of a release to check.
type ReleaseFile struct {
	Name, Hash, CID string
}

// ReleaseSpec is a release to check against the stored bytes.
type ReleaseSpec struct {
	// App, PublicKey (PEM, "" for plain apps) and KeyID describe the app.
	App, PublicKey, KeyID string
	// ZipCID, Checksum, SessionKey and ReleaseKeyID are the release's, as
	// the publisher sent them; SessionKey is "" for a plain release.
	ZipCID, Checksum, SessionKey, ReleaseKeyID string
	Files                                      []ReleaseFile
	// Limits bound a plain zip; MaxFileBytes a plain manifest file once
	// decompressed.
	Limits       ZipLimits
	MaxFileBytes int64
}

// CheckedFile is a manifest entry that matched its bytes: Hash lower
// case, Size the stored object's size.
type CheckedFile struct {
	Name, Hash, CID string
	Size            int64
}

// CheckedRelease is what CheckRelease found.
type CheckedRelease struct {
	ZipSize int64
	// KeyID is the app's key for an encrypted release, "" otherwise.
	KeyID string
	Files []CheckedFile
}

var hex64Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CheckRelease checks a release against the stored bytes: every object
// complete; for a plain release the checksum, the zip's safety and the
// file hashes; for an encrypted one that the session key, checksum and
// file hashes open with the app's public key, and that no manifest file
// decrypts to nothing (ManifestRefusesEmpty; only one-block files are
// decrypted to tell, never the zip). Objects are streamed, never read whole into memory: a
// release of hundreds of MB held (and copied) in memory made a node's Go
// runtime stall for hundreds of ms, long enough for raft to lose its
// leader (docs/BENCHMARKS.md, "Publish and raft").
func CheckRelease(ctx context.Context, objs ReleaseObjects, s ReleaseSpec) (CheckedRelease, error) {
	var out CheckedRelease
	zf, err := openObject(ctx, objs, s.ZipCID, "zip")
	if err != nil {
		return out, err
	}
	defer zf.Close()
	out.ZipSize = int64(zf.Size())
	if s.SessionKey != "" {
		return checkEncrypted(ctx, objs, s, out)
	}
	if s.ReleaseKeyID != "" {
		return out, refuse("key_id given for a plain release")
	}
	if err := checkPlainZip(zf, out.ZipSize, s); err != nil {
		return out, err
	}
	seen := map[string]bool{}
	for _, f := range s.Files {
		if err := checkName(f.Name, seen); err != nil {
			return out, err
		}
		size, err := checkFileHash(ctx, objs, f, s.MaxFileBytes)
		if err != nil {
			return out, err
		}
		out.Files = append(out.Files, CheckedFile{Name: f.Name, Hash: strings.ToLower(f.Hash), CID: f.CID, Size: size})
	}
	return out, nil
}

// checkPlainZip compares a plain zip with its checksum and checks that
// it is safe to unpack.
func checkPlainZip(zf File, size int64, s ReleaseSpec) error {
	if !hex64Re.MatchString(strings.ToLower(s.Checksum)) {
		return refuse("checksum %q is not a hex SHA-256", s.Checksum)
	}
	h := sha256.New()
	if _, err := io.Copy(h, zf); err != nil {
		return fmt.Errorf("zip %s: %w", s.ZipCID, err)
	}
	if sum := h.Sum(nil); hex.EncodeToString(sum) != strings.ToLower(s.Checksum) {
		return refuse("checksum does not match the uploaded zip (sha256 %x)", sum)
	}
	if err := CheckZip(&fileReaderAt{f: zf, off: -1}, size, s.Limits); err != nil {
		var rerr *readError
		if errors.As(err, &rerr) {
			return fmt.Errorf("zip %s: %w", s.ZipCID, rerr.err)
		}
		return refuse("zip refused: %v", err)
	}
	return nil
}

// checkEncrypted checks an encrypted release: its sealed values open
// with the app's public key and its objects are complete.
func checkEncrypted(ctx context.Context, objs ReleaseObjects, s ReleaseSpec, out CheckedRelease) (CheckedRelease, error) {
	if s.PublicKey == "" {
		return out, refuse("release is encrypted but app %s has no public key: recreate the app with --public-key", s.App)
	}
	pub, err := ParsePublicKey([]byte(s.PublicKey))
	if err != nil {
		return out, fmt.Errorf("app public key: %w", err)
	}
	if s.ReleaseKeyID != "" && s.ReleaseKeyID != s.KeyID {
		return out, refuse("release was encrypted for key %s but app %s has key %s", s.ReleaseKeyID, s.App, s.KeyID)
	}
	out.KeyID = s.KeyID
	sk, err := checkSealed(pub, s.SessionKey, strings.ToLower(s.Checksum), out.ZipSize)
	if err != nil {
		return out, err
	}
	seen := map[string]bool{}
	var empty []string
	for _, f := range s.Files {
		if err := checkName(f.Name, seen); err != nil {
			return out, err
		}
		if _, err := OpenChecksum(pub, strings.ToLower(f.Hash)); err != nil {
			return out, refuse("manifest file %s: hash does not open with the app's public key: %v", f.Name, err)
		}
		size, isEmpty, err := encryptedFileSize(ctx, objs, f, sk)
		if err != nil {
			return out, err
		}
		if isEmpty {
			empty = append(empty, f.Name)
		}
		out.Files = append(out.Files, CheckedFile{Name: f.Name, Hash: strings.ToLower(f.Hash), CID: f.CID, Size: size})
	}
	if len(empty) > 0 {
		return out, refuse("manifest of an encrypted release holds %s decrypting to nothing: %s; %s. "+
			"Leave the manifest out to serve the release as a zip only (mirrord publish does that itself), or fill or remove the files",
			plural(len(empty), "file"), NameList(empty, 10), ManifestRefusesEmpty)
	}
	return out, nil
}

// encryptedFileSize is the stored size of an encrypted manifest file,
// and whether it decrypts to nothing (ManifestRefusesEmpty). Only a
// one-block object can: it alone is read and decrypted.
func encryptedFileSize(ctx context.Context, objs ReleaseObjects, f ReleaseFile, sk SessionKey) (int64, bool, error) {
	obj, err := openObject(ctx, objs, f.CID, f.Name)
	if err != nil {
		return 0, false, err
	}
	defer obj.Close()
	size := int64(obj.Size())
	if size != aes.BlockSize {
		return size, false, nil
	}
	ct, err := io.ReadAll(io.LimitReader(obj, aes.BlockSize+1))
	if err != nil {
		return 0, false, fmt.Errorf("%s %s: %w", f.Name, f.CID, err)
	}
	plain, err := sk.Decrypt(ct)
	if err != nil {
		return 0, false, refuse("manifest file %s does not decrypt with the release's session key (%v)", f.Name, err)
	}
	return size, len(plain) == 0, nil
}

// checkSealed checks an encrypted release's session key and checksum
// against the app's public key, and its zip's size against AES. It
// returns the opened session key.
func checkSealed(pub *rsa.PublicKey, sessionKey, checksum string, zipSize int64) (SessionKey, error) {
	sk, err := OpenSessionKey(sessionKey, pub)
	if err != nil {
		return sk, refuse("session key does not open with the app's public key (%v): was the bundle encrypted with this app's private key?", err)
	}
	if _, err := OpenChecksum(pub, checksum); err != nil {
		return sk, refuse("checksum does not open with the app's public key (%v): pass the checksum printed by the encrypting CLI", err)
	}
	if zipSize%16 != 0 {
		return sk, refuse("encrypted zip is %d bytes, not a multiple of the AES block size", zipSize)
	}
	return sk, nil
}

// checkName refuses a manifest file name that is not a clean, safe
// relative path (CleanPath's rules, unchanged by cleaning, no drive
// letter) or that appears twice.
func checkName(name string, seen map[string]bool) error {
	clean, err := CleanPath(name)
	if err != nil || clean != name || (len(name) > 1 && name[1] == ':') {
		return refuse("manifest file name %q is not a safe relative path", name)
	}
	if seen[name] {
		return refuse("manifest file %q appears twice", name)
	}
	seen[name] = true
	return nil
}

// checkFileHash streams a plain manifest file (decompressing a ".br"
// one) through SHA-256 and compares it with its hash. It returns the
// stored size.
func checkFileHash(ctx context.Context, objs ReleaseObjects, f ReleaseFile, limit int64) (int64, error) {
	obj, err := openObject(ctx, objs, f.CID, f.Name)
	if err != nil {
		return 0, err
	}
	defer obj.Close()
	stored := &errReader{r: obj}
	var src io.Reader = stored
	br := strings.HasSuffix(f.Name, ".br")
	if br {
		src = brotli.NewReader(stored)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(src, limit+1))
	switch {
	case stored.err != nil:
		return 0, fmt.Errorf("%s %s: %w", f.Name, f.CID, stored.err)
	case err != nil && br:
		return 0, refuse("manifest file %s is not valid Brotli: %v", f.Name, err)
	case err != nil:
		return 0, fmt.Errorf("%s %s: %w", f.Name, f.CID, err)
	case n > limit:
		return 0, refuse("manifest file %s decompresses to more than limits.max_upload_bytes (%d)", f.Name, limit)
	}
	if hex.EncodeToString(h.Sum(nil)) != strings.ToLower(f.Hash) {
		return 0, refuse("manifest file %s: file_hash does not match its bytes", f.Name)
	}
	return int64(obj.Size()), nil
}

// openObject checks that an object is complete in the store and opens
// it; what names it in errors.
func openObject(ctx context.Context, objs ReleaseObjects, s, what string) (File, error) {
	c, err := ParseCID(s)
	if err != nil {
		return nil, refuse("%s: %v", what, err)
	}
	ok, err := objs.Complete(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, s, err)
	}
	if !ok {
		return nil, refuse("%s: object %s is not on this node: upload it first (POST /admin/v1/objects)", what, s)
	}
	f, err := objs.Open(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, s, err)
	}
	return f, nil
}
