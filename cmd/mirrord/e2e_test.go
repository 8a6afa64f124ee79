package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mirrord/devicesim"
	"mirrord/node/adminapi"
)

type cliEncrypt struct {
	Checksum     string `json:"checksum"`
	IVSessionKey string `json:"ivSessionKey"`
}

func readEncrypt(t *testing.T, vec, version string) cliEncrypt {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vec, "cli-encrypt-"+version+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c cliEncrypt
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func newDevice(t *testing.T, n *testNode, app string, pubPEM []byte) *devicesim.Device {
	return &devicesim.Device{
		UpdateURL: n.url + "/updates", StatsURL: n.url + "/stats", ChannelURL: n.url + "/channel_self",
		AppID: app, DeviceID: "8f0c1d2e-3b4a-4c5d-9e6f-" + fmt.Sprintf("%012x", len(t.Name())*7919+len(app)),
		Platform: "android", VersionBuild: "1.0.0", VersionCode: "10", VersionOS: "14", PluginVersion: "8.51.23",
		IsProd: true, PublicKeyPEM: pubPEM, Dir: t.TempDir(),
	}
}

// TestCapgoVectorsEndToEnd is the must-show: the Capgo-CLI
// encrypted 1.0.1 zip installs as exactly src-1.0.1/, 1.0.2 published from
// the directory with --key installs as exactly src-1.0.2/, and the upgrade
// through the manifest downloads only the changed files.
func TestCapgoVectorsEndToEnd(t *testing.T) {
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.mirrord"
	pub, err := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	out := n.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"))
	if !strings.Contains(out, "MIIBCgKCAQEAxiHQEJu8") {
		t.Fatalf("app create did not report the key id: %s", out)
	}

	enc := readEncrypt(t, vec, "1.0.1")
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production",
		"--session-key", enc.IVSessionKey, "--checksum", enc.Checksum, filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))

	// The answer carries the CLI's values untouched.
	dev := newDevice(t, n, app, pub)
	ans, status, err := dev.Check(context.Background())
	if err != nil || status != 200 {
		t.Fatalf("check: %v %d", err, status)
	}
	if ans["version"] != "1.0.1" || ans["checksum"] != enc.Checksum || ans["session_key"] != enc.IVSessionKey {
		t.Fatalf("answer does not carry the CLI's checksum and session key: %v", ans)
	}
	if _, ok := ans["manifest"]; ok {
		t.Fatalf("a release without manifest must not send the key: %v", ans)
	}
	res, err := dev.Update(context.Background())
	if err != nil {
		t.Fatalf("update to 1.0.1: %v", err)
	}
	if res.Installed != "1.0.1" || res.UsedManifest {
		t.Fatalf("want 1.0.1 by zip, got %+v", res)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())

	// The zip served is byte-identical to the CLI's encrypted zip.
	resp, body := httpGet(t, ans["url"].(string), nil)
	want, _ := os.ReadFile(filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))
	if resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("download: HTTP %d, %d bytes, identical=%v", resp.StatusCode, len(body), bytes.Equal(body, want))
	}

	// 1.0.2 from the directory, encrypted by mirrord.
	out = n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	if !strings.Contains(out, "encrypted") || !strings.Contains(out, "3 manifest files") {
		t.Fatalf("publish output: %s", out)
	}
	res, err = dev.Update(context.Background())
	if err != nil {
		t.Fatalf("update to 1.0.2: %v", err)
	}
	if res.Installed != "1.0.2" || !res.UsedManifest {
		t.Fatalf("want 1.0.2 by manifest, got %+v", res)
	}
	// Every file of 1.0.2 differs from 1.0.1 (app.js too), so all three
	// are fetched here; 1.0.3 below changes one file.
	slices.Sort(res.Downloaded)
	if !slices.Equal(res.Downloaded, []string{"app.js", "assets/big.js.br", "index.html"}) || len(res.Reused) != 0 {
		t.Fatalf("upgrade fetched %v and reused %v", res.Downloaded, res.Reused)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())

	// 1.0.3 changes only index.html: the device fetches only that file.
	src103 := copyTree(t, filepath.Join(vec, "src-1.0.2"))
	if err := os.WriteFile(filepath.Join(src103, "index.html"), []byte("<!doctype html><title>1.0.3</title><script src=app.js></script>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.cli(t, "publish", "--app", app, "--version", "1.0.3", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), src103)
	res, err = dev.Update(context.Background())
	if err != nil || res.Installed != "1.0.3" || !res.UsedManifest {
		t.Fatalf("update to 1.0.3: %+v %v", res, err)
	}
	slices.Sort(res.Reused)
	if !slices.Equal(res.Downloaded, []string{"index.html"}) || !slices.Equal(res.Reused, []string{"app.js", "assets/big.js.br"}) {
		t.Fatalf("1.0.3 fetched %v and reused %v; want only index.html fetched", res.Downloaded, res.Reused)
	}
	sameTree(t, src103, dev.CurrentDir())
	n.cli(t, "rollback", app, "production")

	// A fresh device gets every file of 1.0.2 and ends identical too.
	fresh := newDevice(t, n, app, pub)
	fresh.DeviceID = "00000000-0000-4000-8000-000000000001"
	if res, err = fresh.Update(context.Background()); err != nil || res.Installed != "1.0.2" {
		t.Fatalf("fresh device: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), fresh.CurrentDir())

	// Up to date now.
	ans, _, _ = fresh.Check(context.Background())
	if ans["error"] != "no_new_version_available" || ans["kind"] != "up_to_date" {
		t.Fatalf("want up to date, got %v", ans)
	}

	// A device without the public key must not get an encrypted bundle.
	nokey := newDevice(t, n, app, nil)
	ans, _, _ = nokey.Check(context.Background())
	if ans["error"] != "key_id_mismatch" || ans["kind"] != "blocked" {
		t.Fatalf("device without key: %v", ans)
	}

	// Rollback (twice: 1.0.3 -> 1.0.2 above, now -> 1.0.1).
	n.cli(t, "rollback", app, "production")
	ans, _, _ = fresh.Check(context.Background())
	if ans["version"] != "1.0.1" {
		t.Fatalf("after rollback: %v", ans)
	}

	// Stats reached the node's log on disk.
	n.stop()
	var all []byte
	files, _ := filepath.Glob(filepath.Join(n.data, "stats", "*.jsonl"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(`"action":"set"`)) {
		t.Fatalf("no install event in the stats log (%d bytes)", len(all))
	}
}

func TestPlainAppAndCommands(t *testing.T) {
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.plain"
	n.cli(t, "app", "create", app)
	if out := n.cli(t, "app", "list"); !strings.Contains(out, app) {
		t.Fatalf("app list: %s", out)
	}
	// Publishing a plain zip made by the Capgo CLI.
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", filepath.Join(vec, "bundle-1.0.1.zip"))
	dev := newDevice(t, n, app, nil)
	ans, _, _ := dev.Check(context.Background())
	if ans["checksum"] != "2aad9cbde19f40228f3c1ddd04fcd59763bbc4fc8307dac2f58d80fee1044db6" || ans["session_key"] != "" {
		t.Fatalf("plain answer: %v", ans)
	}
	if res, err := dev.Update(context.Background()); err != nil || res.Installed != "1.0.1" {
		t.Fatalf("update: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())

	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "beta", filepath.Join(vec, "src-1.0.2"))
	if out := n.cli(t, "channel", "list", app); !strings.Contains(out, "beta") || !strings.Contains(out, "production") {
		t.Fatalf("channel list: %s", out)
	}
	// beta is not public and not self-settable: devices stay on production
	// until an operator pins them.
	if res, _ := dev.Update(context.Background()); res.Installed != "1.0.1" {
		t.Fatalf("device moved to beta on its own: %+v", res)
	}
	n.cli(t, "device", "set", app, strings.ToUpper(dev.DeviceID), "--channel", "beta")
	res, err := dev.Update(context.Background())
	if err != nil || res.Installed != "1.0.2" || !res.UsedManifest {
		t.Fatalf("pinned device: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())
	n.cli(t, "device", "unset", app, dev.DeviceID)

	// channel set: gates, and --version builtin.
	n.cli(t, "channel", "set", app, "production", "--android=false")
	if ans, _, _ := dev.Check(context.Background()); ans["error"] != "no_channel" && ans["error"] != "disabled_platform_android" {
		t.Fatalf("android disabled: %v", ans)
	}
	n.cli(t, "channel", "set", app, "production", "--android=true", "--version", "builtin")
	if ans, _, _ := dev.Check(context.Background()); ans["error"] != "already_on_builtin" {
		t.Fatalf("builtin: %v", ans)
	}

	// release delete: refused while a channel points at it.
	if out, err := n.cliErr("release", "delete", app, "1.0.2"); err == nil || !strings.Contains(out+err.Error(), "beta") && !strings.Contains(err.Error(), "channel") {
		t.Fatalf("delete of a release in use: %v %s", err, out)
	}
	n.cli(t, "channel", "set", app, "beta", "--version", "1.0.1")
	n.cli(t, "release", "delete", app, "1.0.2")
	if out := n.cli(t, "release", "list", app, "--json"); strings.Contains(out, `"1.0.2"`) {
		t.Fatalf("1.0.2 still listed: %s", out)
	}
	if out := n.cli(t, "status"); !strings.Contains(out, "leader") {
		t.Fatalf("status: %s", out)
	}
}

func TestPublishRefusesUnsafeZip(t *testing.T) {
	n := startNode(t, "")
	n.cli(t, "app", "create", "com.example.bad")
	for _, name := range []string{"../evil.js", "/etc/evil", "a/../../evil"} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, f := range []string{"index.html", name} {
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: f, Method: zip.Store})
			w.Write([]byte("x"))
		}
		zw.Close()
		p := filepath.Join(t.TempDir(), "bad.zip")
		os.WriteFile(p, buf.Bytes(), 0o644)
		out, err := n.cliErr("publish", "--app", "com.example.bad", "--version", "1.0.0", p)
		if err == nil {
			t.Fatalf("zip with %q was published: %s", name, out)
		}
		if !strings.Contains(err.Error(), "unsafe") && !strings.Contains(err.Error(), name) {
			t.Errorf("zip with %q: error does not say why: %v", name, err)
		}
	}
	// The server refuses it too when a client skips the CLI's check.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range []string{"index.html", "../evil.js"} {
		w, _ := zw.CreateHeader(&zip.FileHeader{Name: f, Method: zip.Store})
		w.Write([]byte("x"))
	}
	zw.Close()
	c := adminapi.NewClient(n.url, n.token, http.DefaultClient)
	o, err := c.Upload(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256Hex(buf.Bytes())
	_, err = c.CreateRelease(context.Background(), "com.example.bad",
		adminapi.CreateReleaseRequest{Version: "1.0.0", ZipCID: o.CID, Checksum: sum})
	if err == nil || !strings.Contains(err.Error(), "zip refused") {
		t.Fatalf("server accepted an unsafe zip: %v", err)
	}
}

func TestAdminAuthAndErrors(t *testing.T) {
	n := startNode(t, "")
	for _, tc := range []struct {
		method, path, token string
		body                string
		want                int
	}{
		{"GET", "/admin/v1/apps", "", "", 401},
		{"GET", "/admin/v1/apps", "wrong", "", 401},
		{"GET", "/admin/v1/apps", n.token, "", 200},
		{"POST", "/admin/v1/apps", n.token, `{"id":"not an id"}`, 400},
		{"POST", "/admin/v1/apps", n.token, `{"id":"com.x.y","extra":1}`, 400},
		{"POST", "/admin/v1/apps", n.token, `{"id":"com.x.y","public_key":"garbage"}`, 400},
		{"GET", "/admin/v1/apps/com.none.here/releases", n.token, "", 404},
		{"POST", "/admin/v1/apps", n.token, `{"id":"` + strings.Repeat("a", adminapi.DefaultMaxBodyBytes) + `"}`, 413},
		{"GET", "/admin/v1/nothing", n.token, "", 404},
	} {
		req, _ := http.NewRequest(tc.method, n.url+tc.path, strings.NewReader(tc.body))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: HTTP %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, b)
		}
		if resp.StatusCode >= 400 && !bytes.Contains(b, []byte(`"message"`)) {
			t.Errorf("%s %s: error without message: %s", tc.method, tc.path, b)
		}
	}
	// The token file is private.
	info, err := os.Stat(filepath.Join(n.data, "admin.token"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin.token mode: %v %v", info.Mode(), err)
	}
}

// TestCrashSafety kills the server process with SIGKILL right after a
// publish is acknowledged; after a restart the release is served with
// identical bytes.
func TestCrashSafety(t *testing.T) {
	vec := vectors(t)
	data := t.TempDir()
	p := startProc(t, data)
	tok, _ := os.ReadFile(filepath.Join(data, "admin.token"))
	n := &testNode{url: p.url, data: data, token: strings.TrimSpace(string(tok))}
	const app = "com.example.crash"
	n.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"))
	enc := readEncrypt(t, vec, "1.0.1")
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production",
		"--session-key", enc.IVSessionKey, "--checksum", enc.Checksum, filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))
	p.kill(t)

	p = startProc(t, data)
	n.url = p.url
	pub, _ := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	dev := newDevice(t, n, app, pub)
	ans, _, err := dev.Check(context.Background())
	if err != nil || ans["version"] != "1.0.1" {
		t.Fatalf("check after restart: %v %v", ans, err)
	}
	resp, got := httpGet(t, ans["url"].(string), nil)
	want, _ := os.ReadFile(filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))
	if resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("zip after restart: HTTP %d, identical=%v", resp.StatusCode, bytes.Equal(got, want))
	}
	if res, err := dev.Update(context.Background()); err != nil || res.Installed != "1.0.1" {
		t.Fatalf("install after restart: %+v %v", res, err)
	}

	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	p.kill(t)
	p = startProc(t, data)
	n.url = p.url
	dev.UpdateURL, dev.StatsURL, dev.ChannelURL = p.url+"/updates", p.url+"/stats", p.url+"/channel_self"
	res, err := dev.Update(context.Background())
	if err != nil || res.Installed != "1.0.2" || !res.UsedManifest {
		t.Fatalf("upgrade after restart: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())
}
