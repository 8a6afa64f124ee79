package devicesim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"mirrord/content"
	"mirrord/content/contenttest"
)

// TestEncryptedDevice walks a device holding only the public key through
// the CLI-encrypted 1.0.1 zip, the encrypted 1.0.2 delta manifest of the
// vectors, and a 1.0.3 manifest built by content.BuildBundle.
func TestEncryptedDevice(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	d := f.device(t, true)
	vec := contenttest.Vectors(t)

	// 1.0.1: encrypted zip.
	f.setVectorAnswer("update-response-1.0.1-zip-encrypted.json")
	res, err := d.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Android 8.51.23 names the builtin bundle by the native version
	// (TestVersionName has the other forms).
	check := f.lastCheck()
	if check["key_id"] != "MIIBCgKCAQEAxiHQEJu8" || check["version_name"] != "1.0.0" ||
		check["device_id"] != "8f0c1d2e-3b4a-4c5d-9e6f-0a1b2c3d4e5f" || check["plugin_version"] != DefaultPluginVersion {
		t.Errorf("update check body = %v", check)
	}
	if ua := f.userAgents[0]; ua != "CapacitorUpdater/8.51.23 (com.example.mirrord) android/14" {
		t.Errorf("User-Agent = %q", ua)
	}
	zipURL := f.url("/bundles/bundle-1.0.1.zip_encrypted.zip")
	if res.Installed != "1.0.1" || res.UsedManifest || join(res.Downloaded) != zipURL ||
		res.BytesDownloaded != int64(len(readVector(t, "bundle-1.0.1.zip_encrypted.zip"))) {
		t.Errorf("result = %s", summary(res))
	}
	if d.Current() != "1.0.1" || d.CurrentDir() != filepath.Join(d.Dir, "bundles", "1.0.1") {
		t.Errorf("current = %q in %q", d.Current(), d.CurrentDir())
	}
	assertTreesEqual(t, filepath.Join(vec, "src-1.0.1"), d.CurrentDir())
	want := "download_zip_start@1.0.1 download_zip_complete@1.0.1 download_complete@1.0.1 set@1.0.1"
	if got := join(f.takeStats()); got != want {
		t.Errorf("stats = %s\nwant    %s", got, want)
	}

	// 1.0.2: the vectors' encrypted manifest. app.js differs between
	// src-1.0.1 and src-1.0.2 (its console.log line), so all three files
	// are downloaded.
	f.setVectorAnswer("update-response-1.0.2-manifest-encrypted.json")
	res, err = d.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.lastCheck()["version_name"] != "1.0.1" {
		t.Errorf("second check sent version_name %v", f.lastCheck()["version_name"])
	}
	if res.Installed != "1.0.2" || !res.UsedManifest || join(res.Downloaded) != "app.js assets/big.js.br index.html" || len(res.Reused) != 0 {
		t.Errorf("result = %s", summary(res))
	}
	assertTreesEqual(t, filepath.Join(vec, "src-1.0.2"), d.CurrentDir())
	assertTreesEqual(t, filepath.Join(vec, "src-1.0.1"), filepath.Join(d.Dir, "bundles", "1.0.1"))
	want = "download_manifest_start@1.0.2 download_manifest_complete@1.0.2 download_complete@1.0.2 set@1.0.2"
	if got := join(f.takeStats()); got != want {
		t.Errorf("stats = %s\nwant    %s", got, want)
	}

	// 1.0.3 changes only index.html: app.js and the Brotli asset are
	// reused from 1.0.2 (compared after decompression).
	src103 := t.TempDir()
	copyDir(t, filepath.Join(vec, "src-1.0.2"), src103)
	if err := os.WriteFile(filepath.Join(src103, "index.html"), []byte("<html>1.0.3</html>"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.serveBundle(t, "1.0.3", src103, true)
	res, err = d.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Installed != "1.0.3" || join(res.Downloaded) != "index.html" || join(res.Reused) != "app.js assets/big.js.br" {
		t.Errorf("result = %s", summary(res))
	}
	assertTreesEqual(t, src103, d.CurrentDir())
	f.takeStats()

	// Up to date: nothing happens, no failure stat.
	f.setVectorAnswer("update-response-up-to-date.json")
	res, err = d.Update(ctx)
	if err != nil || res.Installed != "1.0.3" || res.Answer["kind"] != "up_to_date" {
		t.Errorf("up to date: %s, %v", summary(res), err)
	}
	// The answer naming the current version: nothing either.
	f.serveBundle(t, "1.0.3", src103, true)
	if res, err = d.Update(ctx); err != nil || res.Installed != "1.0.3" || len(res.Downloaded) != 0 {
		t.Errorf("same version: %s, %v", summary(res), err)
	}
	if got := f.takeStats(); len(got) != 0 {
		t.Errorf("stats = %v, want none", got)
	}

	// Revert to builtin, then back to 1.0.1, which is still on disk.
	f.setAnswer(`{"version":"builtin"}`)
	if res, err = d.Update(ctx); err != nil || res.Installed != Builtin || d.Current() != Builtin || d.CurrentDir() != "" {
		t.Errorf("builtin: %s, %v", summary(res), err)
	}
	f.setVectorAnswer("update-response-1.0.1-zip-encrypted.json")
	if res, err = d.Update(ctx); err != nil || res.Installed != "1.0.1" || len(res.Downloaded) != 0 {
		t.Errorf("back to 1.0.1: %s, %v", summary(res), err)
	}
	if got, want := join(f.takeStats()), "reset@builtin set@1.0.1"; got != want {
		t.Errorf("stats = %s, want %s", got, want)
	}
}

// TestPlainDevice updates a device without a public key through the
// plain zip and the plain manifest.
func TestPlainDevice(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	d := f.device(t, false)
	d.Platform = "ios"
	vec := contenttest.Vectors(t)

	f.setVectorAnswer("update-response-1.0.1-zip-plain.json")
	res, err := d.Update(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, has := f.lastCheck()["key_id"]; has {
		t.Error("a device without publicKey sent key_id")
	}
	if _, has := f.lastCheck()["install_source"]; has {
		t.Error("an iOS device sent install_source")
	}
	if res.Installed != "1.0.1" {
		t.Errorf("result = %s", summary(res))
	}
	assertTreesEqual(t, filepath.Join(vec, "src-1.0.1"), d.CurrentDir())

	f.setVectorAnswer("update-response-1.0.2-manifest-plain.json")
	if res, err = d.Update(ctx); err != nil {
		t.Fatal(err)
	}
	if res.Installed != "1.0.2" || !res.UsedManifest || join(res.Downloaded) != "app.js assets/big.js.br index.html" {
		t.Errorf("result = %s", summary(res))
	}
	assertTreesEqual(t, filepath.Join(vec, "src-1.0.2"), d.CurrentDir())

	// A new Device value on the same Dir resumes from state.json.
	again := f.device(t, false)
	again.Dir = d.Dir
	if again.Current() != "1.0.2" {
		t.Errorf("Current() on a fresh Device = %q", again.Current())
	}
}

// serveBundle builds a manifest release of dir with content.BuildBundle
// (encrypted with the vector key when encrypt), serves its files and zip,
// and sets it as the next answer.
func (f *fakeServer) serveBundle(t *testing.T, version, dir string, encrypt bool) *content.Bundle {
	t.Helper()
	zip, err := content.ZipDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b *content.Bundle
	if encrypt {
		priv, err := content.ParsePrivateKey(readVector(t, "test_private_key.pem"))
		if err != nil {
			t.Fatal(err)
		}
		b, err = content.BuildBundle(zip, priv, content.ZipLimits{})
		if err != nil {
			t.Fatal(err)
		}
	} else if b, err = content.BuildBundle(zip, nil, content.ZipLimits{}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.files["/bundles/"+version+".zip"] = b.Zip
	var manifest []map[string]string
	for _, bf := range b.Files {
		p := "/manifest/" + version + "/" + bf.Name
		f.files[p] = bf.Data
		manifest = append(manifest, map[string]string{"file_name": bf.Name, "file_hash": bf.Hash, "download_url": f.url(p)})
	}
	f.mu.Unlock()
	f.setAnswer(map[string]any{
		"version": version, "url": f.url("/bundles/" + version + ".zip"),
		"checksum": b.Checksum, "session_key": b.SessionKey, "manifest": manifest,
	})
	return b
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if de.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// answerWith loads a vector answer and applies edit to it.
func answerWith(t *testing.T, name string, edit func(m map[string]any)) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readVector(t, name), &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	return m
}

func TestNoDirIsAnError(t *testing.T) {
	f := newFakeServer(t)
	d := f.device(t, false)
	d.Dir = ""
	if _, err := d.Update(context.Background()); err == nil {
		t.Error("Update without Dir: no error")
	}
	if d.Current() != Builtin || d.CurrentDir() != "" {
		t.Error("a device without Dir is not on builtin")
	}
	bad := f.device(t, false)
	bad.PublicKeyPEM = []byte("not a key")
	if _, err := bad.Update(context.Background()); err == nil {
		t.Error("Update with a bad public key: no error")
	}
}

func TestStats(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	d := f.device(t, true)
	d.CustomID = "user-42"
	if err := d.SendStat(ctx, "app_moved_to_foreground", "builtin", ""); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	ev := f.stats[0]
	f.mu.Unlock()
	for k, want := range map[string]any{
		"action": "app_moved_to_foreground", "version_name": "builtin", "old_version_name": "",
		"app_id": "com.example.mirrord", "custom_id": "user-42", "key_id": "MIIBCgKCAQEAxiHQEJu8",
		"is_prod": true, "is_emulator": false, "platform": "android",
	} {
		if ev[k] != want {
			t.Errorf("event[%s] = %v, want %v", k, ev[k], want)
		}
	}
	if ts, ok := ev["timestamp"].(float64); !ok || ts < 1e12 {
		t.Errorf("timestamp = %v, want epoch milliseconds", ev["timestamp"])
	}
	d.StatsURL = ""
	if err := d.SendStat(ctx, "x", "y", ""); err != nil {
		t.Error(err)
	}
	d.StatsURL = f.url("/nope")
	if err := d.SendStat(ctx, "x", "y", ""); err == nil {
		t.Error("stats answered 404: no error")
	}
}

func TestChannels(t *testing.T) {
	ctx := context.Background()
	f := newFakeServer(t)
	d := f.device(t, false)
	d.DefaultChannel = "production"

	// A refused setChannel keeps the configured channel.
	f.channel.body = `{"error":"channel_self_set_not_allowed","message":"not allowed"}`
	m, err := d.SetChannel(ctx, "beta")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != "channel_self_set_not_allowed" || m["error"] == nil {
		t.Fatalf("SetChannel refused: %v, %v", m, err)
	}
	f.channel.body = `{"status":"ok","allowSet":true}`
	if m, err = d.SetChannel(ctx, "beta"); err != nil || m["status"] != "ok" {
		t.Fatalf("SetChannel: %v, %v", m, err)
	}
	req := f.channel.reqs[len(f.channel.reqs)-1]
	if req.method != http.MethodPost || req.body["channel"] != "beta" || req.body["defaultChannel"] != "production" {
		t.Errorf("set request = %+v", req)
	}
	// The persisted channel is sent from now on, also by a fresh Device.
	f.setVectorAnswer("update-response-up-to-date.json")
	if _, _, err := d.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.lastCheck()["defaultChannel"]; got != "beta" {
		t.Errorf("check sent defaultChannel %v, want beta", got)
	}
	fresh := f.device(t, false)
	fresh.Dir, fresh.DefaultChannel = d.Dir, "production"
	if _, _, err := fresh.Check(ctx); err != nil || f.lastCheck()["defaultChannel"] != "beta" {
		t.Errorf("fresh device sent defaultChannel %v (%v)", f.lastCheck()["defaultChannel"], err)
	}

	f.channel.body = `{"channel":"beta","status":"default"}`
	if m, err = d.GetChannel(ctx); err != nil || m["channel"] != "beta" {
		t.Errorf("GetChannel = %v, %v", m, err)
	}
	if req := f.channel.reqs[len(f.channel.reqs)-1]; req.method != http.MethodPut {
		t.Errorf("GetChannel used %s", req.method)
	}
	f.channel.status, f.channel.body = http.StatusBadRequest, `{"error":"channel_not_found"}`
	if m, err = d.GetChannel(ctx); err != nil || m["channel"] != "beta" || m["status"] != "default" {
		t.Errorf("GetChannel on channel_not_found = %v, %v", m, err)
	}
	f.channel.body = `{"error":"invalid_json_body"}`
	if _, err = d.GetChannel(ctx); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Errorf("GetChannel on 400 = %v", err)
	}

	f.channel.status, f.channel.body = http.StatusOK, `[{"id":1,"name":"beta","public":false,"allow_self_set":true}]`
	list, err := d.ListChannels(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if arr, ok := list.([]any); !ok || len(arr) != 1 {
		t.Errorf("ListChannels = %v", list)
	}
	req = f.channel.reqs[len(f.channel.reqs)-1]
	if req.method != http.MethodGet || req.query.Get("app_id") != "com.example.mirrord" ||
		req.query.Get("is_prod") != "true" || req.query.Get("is_emulator") != "false" {
		t.Errorf("list request = %+v", req)
	}
	f.channel.body = `{"error":"no_channels","message":"none"}`
	if _, err := d.ListChannels(ctx); !errors.As(err, &se) {
		t.Errorf("ListChannels error answer: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	for in, want := range map[any]string{"up_to_date": "up_to_date", "blocked": "blocked", "failed": "failed", "weird": "failed", nil: "failed", 3.0: "failed"} {
		if got := normalizeKind(in); got != want {
			t.Errorf("normalizeKind(%v) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]bool{"https://a.test/x.zip": true, "http://127.0.0.1:1/b": true, "": false, "/rel": false, "a b": false, "https://": false} {
		if got := validURL(in); got != want {
			t.Errorf("validURL(%q) = %v", in, got)
		}
	}
	for _, v := range []string{"", ".", "..", "a/b", `a\b`, "/x", "x/"} {
		if checkVersionName(v) == nil {
			t.Errorf("checkVersionName(%q) accepted", v)
		}
	}
	if err := checkVersionName("1.0.2-beta.1+build"); err != nil {
		t.Error(err)
	}
}
