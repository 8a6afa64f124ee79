package devicesim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/content"
)

// TestVersionName: the version_name of the update check per platform
// and plugin version. Android 8.51.23 reports the native version while
// the builtin bundle runs; iOS, older plugins and devices without a
// native version report "builtin"; an installed bundle is reported by
// its name everywhere.
func TestVersionName(t *testing.T) {
	for _, tc := range []struct {
		platform, plugin, build string
		installed               bool // a bundle 1.0.1 runs
		want                    string
	}{
		{"android", "8.51.23", "2.0", false, "2.0"},
		{"", "", "2.0", false, "2.0"}, // the defaults: android, DefaultPluginVersion
		{"android", "8.52.0", "2.0", false, "2.0"},
		{"android", "9.0.0", "2.0", false, "2.0"},
		{"android", "8.51.23-beta.1", "2.0", false, "2.0"},
		{"android", "8.51.22", "2.0", false, "builtin"},
		{"android", "7.17.0", "2.0", false, "builtin"},
		{"android", "6.14.25", "2.0", false, "builtin"},
		{"android", "not-a-version", "2.0", false, "builtin"},
		{"android", "8.51.23", "", false, "builtin"},
		{"ios", "8.51.23", "2.0", false, "builtin"},
		{"ios", "9.0.0", "2.0", false, "builtin"},
		{"electron", "8.51.23", "2.0", false, "builtin"},
		{"android", "8.51.23", "2.0", true, "1.0.1"},
		{"ios", "8.51.23", "2.0", true, "1.0.1"},
	} {
		t.Run(tc.platform+"/"+tc.plugin+"/"+tc.build, func(t *testing.T) {
			f := newFakeServer(t)
			d := f.device(t, false)
			d.Platform, d.PluginVersion, d.VersionBuild = tc.platform, tc.plugin, tc.build
			if tc.installed {
				f.setVectorAnswer("update-response-1.0.1-zip-plain.json")
				if _, err := d.Update(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			f.setAnswer(`{"error":"no_new_version_available","kind":"up_to_date"}`)
			if _, _, err := d.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			check := f.lastCheck()
			if check["version_name"] != tc.want || check["version_build"] != tc.build {
				t.Errorf("version_name %v, version_build %v; want %q, %q", check["version_name"], check["version_build"], tc.want, tc.build)
			}
			// The device's own notion of its bundle is unchanged.
			if want := map[bool]string{false: Builtin, true: "1.0.1"}[tc.installed]; d.Current() != want {
				t.Errorf("Current() = %q, want %q", d.Current(), want)
			}
		})
	}
}

// TestEmptyDecryptedManifestFile: an encrypted manifest holding a file
// that decrypts to nothing fails the whole download on Android, with
// download_manifest_file_fail about "<version>:<file>" then
// download_fail, as Android 8.51.23 does; iOS (nothing documented)
// writes the empty file. The same bundle served as a zip alone, the
// path mirrord chooses, installs on Android, empty file included, and
// so does a plain manifest.
func TestEmptyDecryptedManifestFile(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{"index.html": "<html>hi</html>", "app.js": "console.log(1)", "empty.txt": ""}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, platform, plugin string
		encrypted, zipOnly     bool
		wantErr                bool
		stats                  string
	}{
		{name: "android 8.51.23, encrypted manifest", platform: "android", plugin: "8.51.23", encrypted: true, wantErr: true,
			stats: "download_manifest_start@1.0.3 download_manifest_file_fail@1.0.3:empty.txt download_fail@1.0.3"},
		{name: "android 7.17.0, encrypted manifest", platform: "android", plugin: "7.17.0", encrypted: true, wantErr: true,
			stats: "download_manifest_start@1.0.3 download_manifest_file_fail@1.0.3:empty.txt download_fail@1.0.3"},
		{name: "ios, encrypted manifest", platform: "ios", plugin: "8.51.23", encrypted: true,
			stats: "download_manifest_start@1.0.3 download_manifest_complete@1.0.3 download_complete@1.0.3 set@1.0.3"},
		{name: "android, encrypted zip only", platform: "android", plugin: "8.51.23", encrypted: true, zipOnly: true,
			stats: "download_zip_start@1.0.3 download_zip_complete@1.0.3 download_complete@1.0.3 set@1.0.3"},
		{name: "android, plain manifest", platform: "android", plugin: "8.51.23",
			stats: "download_manifest_start@1.0.3 download_manifest_complete@1.0.3 download_complete@1.0.3 set@1.0.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeServer(t)
			d := f.device(t, tc.encrypted)
			d.Platform, d.PluginVersion = tc.platform, tc.plugin
			f.serveWithEmptyFile(t, "1.0.3", src, tc.encrypted, tc.zipOnly)
			res, err := d.Update(context.Background())
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !errors.Is(err, ErrEmptyDecrypted) {
				t.Errorf("err = %v, want ErrEmptyDecrypted", err)
			}
			if got := join(f.takeStats()); got != tc.stats {
				t.Errorf("stats = %s\nwant    %s", got, tc.stats)
			}
			if tc.wantErr {
				if d.Current() != Builtin {
					t.Errorf("current %q after a failed download", d.Current())
				}
				return
			}
			if res.Installed != "1.0.3" || res.UsedManifest == tc.zipOnly {
				t.Errorf("result %s", summary(res))
			}
			assertTreesEqual(t, src, d.CurrentDir())
		})
	}
}

// serveWithEmptyFile serves dir, which holds an empty file, as release
// version. content.BuildBundle gives an encrypted bundle with an empty
// file no manifest, so the manifest is made here as a server that did
// not know better would: the encrypted empty file is one AES block.
// zipOnly serves the zip alone (no manifest key), as mirrord does.
func (f *fakeServer) serveWithEmptyFile(t *testing.T, version, dir string, encrypted, zipOnly bool) {
	t.Helper()
	b := f.serveBundle(t, version, dir, encrypted)
	if !encrypted {
		if len(b.Files) != 3 {
			t.Fatalf("plain manifest of %d files", len(b.Files))
		}
		return
	}
	if len(b.Files) != 0 || strings.Join(b.EmptyFiles, ",") != "empty.txt" {
		t.Fatalf("encrypted bundle: %d manifest files, empty files %v", len(b.Files), b.EmptyFiles)
	}
	answer := map[string]any{"version": version, "url": f.url("/bundles/" + version + ".zip"), "checksum": b.Checksum, "session_key": b.SessionKey}
	if zipOnly {
		f.setAnswer(answer)
		return
	}
	priv, err := content.ParsePrivateKey(readVector(t, "test_private_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := content.OpenSessionKey(b.SessionKey, &priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var manifest []map[string]string
	for _, name := range []string{"app.js", "empty.txt", "index.html"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		hash, err := content.SealChecksum(priv, content.SHA256Hex(data))
		if err != nil {
			t.Fatal(err)
		}
		p := "/manifest/" + version + "/" + name
		f.mu.Lock()
		f.files[p] = sk.Encrypt(data)
		f.mu.Unlock()
		manifest = append(manifest, map[string]string{"file_name": name, "file_hash": hash, "download_url": f.url(p)})
	}
	answer["manifest"] = manifest
	f.setAnswer(answer)
}
