package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// writeDeltaSrc writes 60 files into a new directory: index.html, 49
// small scripts and 10 big ones (served as ".br"); change maps names to
// replacement contents.
func writeDeltaSrc(t *testing.T, change map[string]string) string {
	t.Helper()
	files := map[string]string{"index.html": "<!doctype html><title>delta</title><script src=js/f00.js></script>\n"}
	for i := range 49 {
		files[fmt.Sprintf("js/f%02d.js", i)] = fmt.Sprintf("export const f%02d = %q;\n", i, strings.Repeat(fmt.Sprint(i), i+1))
	}
	for i := range 10 {
		var b strings.Builder
		for j := 0; b.Len() < 20000; j++ {
			fmt.Fprintf(&b, "function big%d_%d(x) { return x * %d + %d; }\n", i, j, j, i)
		}
		files[fmt.Sprintf("assets/big%d.js", i)] = b.String()
	}
	for name, data := range change {
		files[name] = data
	}
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// releasesByVersion reads the app's releases from the admin API.
func releasesByVersion(t *testing.T, n *testNode, app string) map[string]*state.Release {
	t.Helper()
	resp, body := httpGet(t, n.url+"/admin/v1/apps/"+app+"/releases", map[string]string{"Authorization": "Bearer " + n.token})
	if resp.StatusCode != 200 {
		t.Fatalf("list releases: HTTP %d: %s", resp.StatusCode, body)
	}
	var list []adminapi.ReleaseInfo
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]*state.Release{}
	for _, r := range list {
		out[r.Version] = r.Release
	}
	return out
}

// compareCIDs returns the manifest file names whose CID is the same in
// both releases and those whose CID differs.
func compareCIDs(t *testing.T, a, b *state.Release) (same, diff []string) {
	t.Helper()
	old := map[string]string{}
	for _, f := range a.Manifest {
		old[f.FileName] = f.CID
	}
	for _, f := range b.Manifest {
		c, ok := old[f.FileName]
		if !ok {
			t.Fatalf("%s of %s is not in %s", f.FileName, b.Version, a.Version)
		}
		if c == f.CID {
			same = append(same, f.FileName)
		} else {
			diff = append(diff, f.FileName)
		}
	}
	return same, diff
}

// TestPublishReusesSessionKey: `publish --key` reuses the session key of
// the app's latest encrypted release, so a release changing 2 of 60
// files shares the other 58 manifest CIDs with the previous one (and a
// device still installs it exactly); --fresh-session-key shares none.
func TestPublishReusesSessionKey(t *testing.T) {
	vec := vectors(t)
	n := startNode(t, "")
	const app = "com.example.delta"
	privPath, pubPath := filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "test_public_key.pem")
	pub, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	n.cli(t, "app", "create", app, "--public-key", pubPath)
	publish := func(version, src string, extra ...string) string {
		t.Helper()
		args := append([]string{"publish", "--app", app, "--version", version, "--channel", "production", "--key", privPath}, extra...)
		return n.cli(t, append(args, src)...)
	}

	// Versions 1.1.x: newDevice's native version is 1.0.0.
	src110 := writeDeltaSrc(t, nil)
	out := publish("1.1.0", src110)
	if !strings.Contains(out, "session key: new random key (no earlier release") || !strings.Contains(out, "60 manifest files") {
		t.Fatalf("publish 1.1.0: %s", out)
	}
	dev := newDevice(t, n, app, pub)
	if res, err := dev.Update(context.Background()); err != nil || res.Installed != "1.1.0" {
		t.Fatalf("update to 1.1.0: %+v %v", res, err)
	}
	sameTree(t, src110, dev.CurrentDir())

	b, err := os.ReadFile(filepath.Join(src110, "assets", "big3.js"))
	if err != nil {
		t.Fatal(err)
	}
	src111 := writeDeltaSrc(t, map[string]string{
		"js/f17.js":      "export const f17 = 'changed';\n",
		"assets/big3.js": string(b) + "function added() {}\n",
	})
	out = publish("1.1.1", src111)
	if !strings.Contains(out, "session key: reused from release 1.1.0") {
		t.Fatalf("publish 1.1.1: %s", out)
	}
	rels := releasesByVersion(t, n, app)
	r110, r111 := rels["1.1.0"], rels["1.1.1"]
	if r110.SessionKey != r111.SessionKey {
		t.Errorf("1.1.1 has another session_key than 1.1.0")
	}
	same, diff := compareCIDs(t, r110, r111)
	slices.Sort(diff)
	if len(same) != 58 || !slices.Equal(diff, []string{"assets/big3.js.br", "js/f17.js"}) {
		t.Fatalf("1.1.1 shares %d CIDs with 1.1.0 and changed %v; want 58 shared and the 2 changed files", len(same), diff)
	}
	res, err := dev.Update(context.Background())
	if err != nil || res.Installed != "1.1.1" || !res.UsedManifest {
		t.Fatalf("update to 1.1.1: %+v %v", res, err)
	}
	slices.Sort(res.Downloaded)
	if !slices.Equal(res.Downloaded, diff) || len(res.Reused) != 58 {
		t.Errorf("1.1.1 fetched %v and reused %d files", res.Downloaded, len(res.Reused))
	}
	sameTree(t, src111, dev.CurrentDir())

	// --fresh-session-key: the same files, but no CID in common.
	out = publish("1.1.2", src111, "--fresh-session-key")
	if !strings.Contains(out, "session key: new random key (--fresh-session-key)") {
		t.Fatalf("publish 1.1.2: %s", out)
	}
	rels = releasesByVersion(t, n, app)
	r112 := rels["1.1.2"]
	if r112.SessionKey == r111.SessionKey || r112.ZipCID == r111.ZipCID {
		t.Errorf("--fresh-session-key reused the session key")
	}
	if same, _ := compareCIDs(t, r111, r112); len(same) != 0 {
		t.Errorf("--fresh-session-key: %d CIDs shared with 1.1.1: %v", len(same), same)
	}
	fresh := newDevice(t, n, app, pub)
	fresh.DeviceID = "00000000-0000-4000-8000-0000000000d2"
	if res, err := fresh.Update(context.Background()); err != nil || res.Installed != "1.1.2" {
		t.Fatalf("fresh device, 1.1.2: %+v %v", res, err)
	}
	sameTree(t, src111, fresh.CurrentDir())

	// The next release reuses the latest one's key (1.1.2's, not 1.1.0's);
	// with --json the note goes to stderr and stdout stays JSON.
	var stdout, stderr bytes.Buffer
	args := []string{"publish", "--app", app, "--version", "1.1.3", "--key", privPath, "--json", src111, "--server", n.url, "--token", n.token}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("publish 1.1.3: %v\n%s", err, stderr.String())
	}
	var r113 state.Release
	if err := json.Unmarshal(stdout.Bytes(), &r113); err != nil {
		t.Fatalf("publish --json stdout is not JSON: %v\n%s", err, stdout.String())
	}
	if !strings.Contains(stderr.String(), "session key: reused from release 1.1.2") {
		t.Fatalf("publish 1.1.3 stderr: %s", stderr.String())
	}
	if same, diff := compareCIDs(t, r112, &r113); len(diff) != 0 || len(same) != 60 || r113.ZipCID != r112.ZipCID {
		t.Errorf("1.1.3 (same files as 1.1.2) changed CIDs %v", diff)
	}

	if out, err := n.cliErr("publish", "--app", app, "--version", "1.1.4", "--fresh-session-key", src111); err == nil || !strings.Contains(err.Error(), "--fresh-session-key goes with --key") {
		t.Fatalf("--fresh-session-key without --key: %v %s", err, out)
	}
}
