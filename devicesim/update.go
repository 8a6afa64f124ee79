package devicesim

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"mirrord/content"
)

// Update runs one update cycle as the plugin's background download does
// (protocol sections 3.3 and 4): it checks for an update, then downloads,
// decrypts (with the public key only), verifies and installs the new
// bundle, sending the plugin's stats on the way.
//
// An answer with "error" or "kind" is not a Go error: nothing is
// installed, and kind "failed" (or a missing or unknown kind) sends
// download_fail. Every failure after that returns an error and sends the
// matching stat (checksum_fail, session_key_required, ...) followed by
// download_fail for the target version. Like the plugin, the specific
// stat names the current bundle, except per-file manifest failures
// ("<version>:<file>") and set_fail (the target). A failed check also
// sends download_fail. On Android a manifest file that decrypts to
// nothing fails the download (ErrEmptyDecrypted, stat
// download_manifest_file_fail), as the real plugin does. On success the
// bundle is in Dir/bundles/<version>,
// becomes current and stat "set" is sent. A version already present in
// Dir/bundles is switched to without downloading. Previous bundles are
// kept.
func (d *Device) Update(ctx context.Context) (*Result, error) {
	if d.Dir == "" {
		return nil, errors.New("devicesim: update: Dir is not set")
	}
	pub, err := d.publicKey()
	if err != nil {
		return nil, err
	}
	st, err := d.loadState()
	if err != nil {
		return nil, err
	}
	u := &updater{d: d, ctx: ctx, pub: pub, old: st.Current, version: st.Current}
	u.res = &Result{Installed: st.Current}

	ans, status, err := d.Check(ctx)
	u.res.Answer, u.res.Status = ans, status
	version, proceed, err := u.checked(ans, status, err)
	if !proceed {
		return u.res, err
	}
	if version == Builtin {
		return u.res, u.reset(st)
	}
	u.version = version
	rawURL, _ := ans["url"].(string)
	if !validURL(rawURL) {
		return u.res, u.fail("download_fail", fmt.Errorf("invalid url %q", rawURL))
	}
	if version == st.Current {
		return u.res, nil
	}
	sessionKey, _ := ans["session_key"].(string)
	if pub != nil && !content.ValidSessionKeyFormat(sessionKey) {
		return u.res, u.fail("session_key_required", errors.New("a public key is configured but session_key is not iv:key"))
	}
	if err := checkVersionName(version); err != nil {
		return u.res, u.fail("download_fail", err)
	}
	if fi, err := os.Stat(d.bundleDir(version)); err == nil && fi.IsDir() {
		return u.res, u.install(st)
	}
	return u.res, u.download(st, ans, rawURL, sessionKey)
}

// checked reads the update check's outcome: the version the answer
// offers, or proceed false when the cycle ends here (with the error of a
// failed check; an answer with "error" or "kind" is not one).
func (u *updater) checked(ans map[string]any, status int, checkErr error) (version string, proceed bool, err error) {
	if checkErr != nil {
		u.stat("download_fail", u.old, "")
		return "", false, checkErr
	}
	_, hasErr := ans["error"]
	_, hasKind := ans["kind"]
	if hasErr || hasKind {
		if normalizeKind(ans["kind"]) == "failed" {
			u.stat("download_fail", u.old, "")
		}
		return "", false, nil
	}
	if !ok2xx(status) {
		u.stat("download_fail", u.old, "")
		return "", false, fmt.Errorf("devicesim: update check: %w", &ServerError{Status: status})
	}
	version, _ = ans["version"].(string)
	if version == "" {
		u.stat("download_fail", u.old, "")
		return "", false, errors.New("devicesim: update check: answer has no string version")
	}
	return version, true, nil
}

// download fetches the bundle of the answer (its manifest, else its zip)
// into a temporary directory, checks it has an index.html, moves it to
// Dir/bundles/<version> and installs it.
func (u *updater) download(st state, ans map[string]any, rawURL, sessionKey string) error {
	d := u.d
	manifest, hasManifest := ans["manifest"]
	hasManifest = hasManifest && manifest != nil
	checksum, _ := ans["checksum"].(string)
	if !hasManifest && checksum == "" {
		return u.fail("checksum_required", errors.New("zip answer without checksum"))
	}

	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("devicesim: update: %w", err)
	}
	tmp, err := os.MkdirTemp(d.Dir, ".download-")
	if err != nil {
		return fmt.Errorf("devicesim: update: %w", err)
	}
	defer os.RemoveAll(tmp)
	dest := filepath.Join(tmp, "bundle")
	if hasManifest {
		u.res.UsedManifest = true
		err = u.manifest(manifest, sessionKey, dest)
	} else {
		err = u.zip(rawURL, checksum, sessionKey, dest)
	}
	if err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(dest, "index.html")); err != nil || !fi.Mode().IsRegular() {
		return u.failAbout("set_fail", u.version, content.ErrNoIndex)
	}
	if err := os.MkdirAll(filepath.Join(d.Dir, bundlesDir), 0o755); err != nil {
		return fmt.Errorf("devicesim: update: %w", err)
	}
	// A directory moved into place whole: a crash leaves the bundle
	// there complete or not at all.
	if err := os.Rename(dest, d.bundleDir(u.version)); err != nil {
		return fmt.Errorf("devicesim: update: %w", err)
	}
	return u.install(st)
}

// updater carries one Update run.
type updater struct {
	d       *Device
	ctx     context.Context
	pub     *rsa.PublicKey
	res     *Result
	old     string // version current when the update started
	version string // target version
}

// stat sends a stat, best effort: the plugin queues stats and retries,
// and a simulated device must not fail an update because stats are down.
func (u *updater) stat(action, versionName, oldVersionName string) {
	_ = u.d.SendStat(u.ctx, action, versionName, oldVersionName)
}

// fail reports a failure as the plugin does: the specific action is sent
// about the current bundle (the plugin's one-argument sendStats), then
// download_fail about the target version. It returns the error.
func (u *updater) fail(action string, err error) error {
	if action == "download_fail" {
		return u.failAbout(action, u.version, err)
	}
	return u.failAbout(action, u.old, err)
}

// failAbout is fail with the specific stat's version_name given, e.g.
// "<version>:<file>" for manifest file failures.
func (u *updater) failAbout(action, versionName string, err error) error {
	u.stat(action, versionName, "")
	if action != "download_fail" {
		u.stat("download_fail", u.version, "")
	}
	return fmt.Errorf("devicesim: update to %s: %s: %w", u.version, action, err)
}

// install makes the target version current.
func (u *updater) install(st state) error {
	st.Current = u.version
	if err := u.d.saveState(st); err != nil {
		return err
	}
	u.res.Installed = u.version
	u.stat("set", u.version, u.old)
	return nil
}

// reset returns to the builtin assets (answer {"version":"builtin"}).
func (u *updater) reset(st state) error {
	if st.Current == Builtin {
		return nil
	}
	st.Current = Builtin
	if err := u.d.saveState(st); err != nil {
		return err
	}
	u.res.Installed = Builtin
	u.stat("reset", Builtin, u.old)
	return nil
}

func (u *updater) sessionKey(s string) (content.SessionKey, error) {
	sk, err := content.OpenSessionKey(s, u.pub)
	if err != nil {
		return content.SessionKey{}, u.fail("decrypt_fail", err)
	}
	return sk, nil
}

// zip downloads, decrypts, verifies and unpacks a zip bundle into dest.
func (u *updater) zip(rawURL, checksum, sessionKey, dest string) error {
	u.stat("download_zip_start", u.version, "")
	status, body, err := u.d.do(u.ctx, http.MethodGet, rawURL, nil, maxDownload)
	if err != nil {
		return u.fail("download_fail", err)
	}
	if status != http.StatusOK {
		return u.fail("download_fail", &ServerError{Status: status})
	}
	u.res.Downloaded = append(u.res.Downloaded, rawURL)
	u.res.BytesDownloaded += int64(len(body))
	u.stat("download_zip_complete", u.version, "")
	u.stat("download_complete", u.version, "")

	plain := body
	want := strings.ToLower(checksum)
	if u.pub != nil {
		sk, err := u.sessionKey(sessionKey)
		if err != nil {
			return err
		}
		if plain, err = sk.Decrypt(body); err != nil {
			return u.fail("decrypt_fail", err)
		}
		if want, err = content.OpenChecksum(u.pub, checksum); err != nil {
			return u.fail("checksum_fail", err)
		}
	}
	if got := content.SHA256Hex(plain); got != want {
		return u.fail("checksum_fail", fmt.Errorf("zip sha256 %s, answer says %s", got, want))
	}
	if err := content.Unzip(plain, dest, content.ZipLimits{}); err != nil {
		if errors.Is(err, content.ErrUnsafePath) {
			return u.fail("canonical_path_fail", err)
		}
		return u.fail("unzip_fail", err)
	}
	return nil
}

// manifestFile is one validated manifest entry.
type manifestFile struct {
	name, hash, url string
	// target is the path written in the bundle: name without ".br".
	target string
}

// parseManifest validates a manifest before anything is downloaded. It
// returns the stat action to send with an error.
func parseManifest(raw any) ([]manifestFile, string, error) {
	list, ok := raw.([]any)
	if !ok {
		return nil, "download_fail", errors.New("manifest is not an array")
	}
	files := make([]manifestFile, 0, len(list))
	seen := make(map[string]bool, len(list))
	for i, it := range list {
		m, ok := it.(map[string]any)
		if !ok {
			return nil, "download_fail", fmt.Errorf("manifest entry %d is not an object", i)
		}
		f := manifestFile{}
		f.name, _ = m["file_name"].(string)
		f.hash, _ = m["file_hash"].(string)
		f.url, _ = m["download_url"].(string)
		if f.hash == "" || f.url == "" {
			return nil, "download_fail", fmt.Errorf("manifest entry %d (%q) lacks file_hash or download_url", i, f.name)
		}
		target, err := content.CleanPath(strings.TrimSuffix(f.name, ".br"))
		if err != nil {
			return nil, "manifest_path_fail", fmt.Errorf("manifest entry %d: %w", i, err)
		}
		if seen[target] {
			return nil, "manifest_path_fail", fmt.Errorf("manifest entry %d: %w: %q is listed twice", i, content.ErrUnsafePath, target)
		}
		seen[target] = true
		f.target = target
		files = append(files, f)
	}
	for _, f := range files {
		for dir := path.Dir(f.target); dir != "."; dir = path.Dir(dir) {
			if seen[dir] {
				return nil, "manifest_path_fail", fmt.Errorf("%w: %q is both a file and a directory", content.ErrUnsafePath, dir)
			}
		}
	}
	return files, "", nil
}

// manifest builds the bundle in dest from a delta manifest: each file is
// copied from the current bundle when its bytes already hash to the
// expected value, else downloaded, decrypted, Brotli-decoded (".br") and
// verified.
func (u *updater) manifest(raw any, sessionKey, dest string) error {
	u.stat("download_manifest_start", u.version, "")
	files, action, err := parseManifest(raw)
	if err != nil {
		return u.fail(action, err)
	}
	var sk content.SessionKey
	if u.pub != nil {
		if sk, err = u.sessionKey(sessionKey); err != nil {
			return err
		}
	}
	dir, err := content.OpenBundleDir(dest)
	if err != nil {
		return fmt.Errorf("devicesim: update: %w", err)
	}
	defer dir.Close()
	curDir := u.d.CurrentDir()

	for _, f := range files {
		about := u.version + ":" + f.name
		want := strings.ToLower(f.hash)
		if u.pub != nil {
			if want, err = content.OpenChecksum(u.pub, f.hash); err != nil {
				return u.failAbout("download_manifest_checksum_fail", about, err)
			}
		}
		data, reused := reuseFile(curDir, f.target, want)
		if reused {
			u.res.Reused = append(u.res.Reused, f.name)
		} else {
			status, body, err := u.d.do(u.ctx, http.MethodGet, f.url, nil, maxDownload)
			if err != nil {
				return u.failAbout("download_manifest_file_fail", about, err)
			}
			if !ok2xx(status) {
				return u.failAbout("download_manifest_file_fail", about, &ServerError{Status: status})
			}
			u.res.Downloaded = append(u.res.Downloaded, f.name)
			u.res.BytesDownloaded += int64(len(body))
			if u.pub != nil {
				if body, err = u.decryptFile(sk, body); err != nil {
					return u.failAbout("download_manifest_file_fail", about, err)
				}
			}
			if strings.HasSuffix(f.name, ".br") {
				if body, err = content.BrotliDecode(body, maxDownload); err != nil {
					return u.failAbout("download_manifest_brotli_fail", about, err)
				}
			}
			if got := content.SHA256Hex(body); got != want {
				return u.failAbout("download_manifest_checksum_fail", about, fmt.Errorf("sha256 %s, manifest says %s", got, want))
			}
			data = body
		}
		if err := dir.WriteFile(f.target, data); err != nil {
			return u.failAbout("download_manifest_file_fail", about, err)
		}
	}
	u.stat("download_manifest_complete", u.version, "")
	u.stat("download_complete", u.version, "")
	return nil
}

// ErrEmptyDecrypted is the failure of a manifest file that decrypts to
// nothing on a device that refuses it (Android: "Empty decrypted data").
var ErrEmptyDecrypted = errors.New(`decrypted file is empty (Android: "Empty decrypted data")`)

// decryptFile decrypts one downloaded manifest file as the platform
// does: Android refuses an empty result (refusesEmptyDecrypted), and the
// whole manifest download fails with download_manifest_file_fail.
func (u *updater) decryptFile(sk content.SessionKey, body []byte) ([]byte, error) {
	plain, err := sk.Decrypt(body)
	if err == nil && len(plain) == 0 && u.d.refusesEmptyDecrypted() {
		return nil, ErrEmptyDecrypted
	}
	return plain, err
}

// reuseFile returns the current bundle's file at target when its bytes
// hash to want.
func reuseFile(curDir, target, want string) ([]byte, bool) {
	if curDir == "" {
		return nil, false
	}
	p := filepath.Join(curDir, filepath.FromSlash(target))
	fi, err := os.Lstat(p)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil || content.SHA256Hex(b) != want {
		return nil, false
	}
	return b, true
}

// normalizeKind maps an answer's kind as plugin >= 8.45.11 does: unknown
// or missing kinds are "failed".
func normalizeKind(k any) string {
	switch s, _ := k.(string); s {
	case "up_to_date", "blocked":
		return s
	default:
		return "failed"
	}
}

// validURL is the plugin's check on "url": an absolute URL with a scheme
// and a host.
func validURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != ""
}

// checkVersionName refuses version names that cannot be a directory name
// under Dir/bundles.
func checkVersionName(v string) error {
	clean, err := content.CleanPath(v)
	if err != nil {
		return fmt.Errorf("version name: %w", err)
	}
	if clean != v || strings.Contains(v, "/") {
		return fmt.Errorf("version name %q is not a plain directory name", v)
	}
	return nil
}
