package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/content"
	"mirrord/node/adminapi"
	"mirrord/node/inbox"
)

// emptyFilesNote is what a publish says about an encrypted bundle with
// the empty files css/blank.css and empty.txt.
const emptyFilesNote = `manifest: none, served as a zip only: 2 empty files css/blank.css, empty.txt; ` +
	`Capgo's Android plugin (8.51.23) fails the whole download of an encrypted delta manifest holding an empty file ("Empty decrypted data"), while the zip installs`

// withEmptyFiles copies the vectors' src-1.0.1 and adds two empty files.
func withEmptyFiles(t *testing.T) string {
	t.Helper()
	src := copyTree(t, filepath.Join(vectors(t), "src-1.0.1"))
	if err := os.MkdirAll(filepath.Join(src, "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "empty.txt"), "")
	writeFile(t, filepath.Join(src, "css", "blank.css"), "")
	return src
}

// TestEncryptedEmptyFile is the must-show for empty files: an
// encrypted release holding empty files, published with `mirrord
// publish --key` and through the inbox, is served without a delta
// manifest (Android 8.51.23 fails an encrypted manifest holding an
// empty file), the publish says so naming the files, and a device
// installs it from the zip. A later release without empty files has its
// manifest again, and a client that builds an encrypted manifest with an
// empty file itself is refused by the admin API, naming the file.
func TestEncryptedEmptyFile(t *testing.T) {
	vec := vectors(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "inbox")
	n, _ := inboxNode(t, t.TempDir(), dir)
	const app = "com.example.empty"
	key := filepath.Join(vec, "test_private_key.pem")
	n.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"))
	pub, err := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	dev := newDevice(t, n, app, pub)

	// 1. The CLI.
	src := withEmptyFiles(t)
	out := n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production", "--key", key, src)
	if !strings.Contains(out, emptyFilesNote) || !strings.Contains(out, "no manifest: 2 empty files, see above") {
		t.Fatalf("publish output does not say the release has no manifest and why:\n%s", out)
	}
	ans, _, err := dev.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ans["manifest"]; ok || ans["version"] != "1.0.1" {
		t.Fatalf("answer for the release with empty files: %v", ans)
	}
	res, err := dev.Update(ctx)
	if err != nil || res.Installed != "1.0.1" || res.UsedManifest {
		t.Fatalf("update to 1.0.1: %+v, %v; want installed from the zip", res, err)
	}
	sameTree(t, src, dev.CurrentDir())

	// 2. The next release, without empty files, has its manifest.
	out = n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production", "--key", key, filepath.Join(vec, "src-1.0.2"))
	if strings.Contains(out, "manifest: none") || !strings.Contains(out, "3 manifest files") {
		t.Fatalf("publish output of a release without empty files:\n%s", out)
	}
	if res, err = dev.Update(ctx); err != nil || res.Installed != "1.0.2" || !res.UsedManifest {
		t.Fatalf("update to 1.0.2: %+v, %v; want installed from the manifest", res, err)
	}

	// 3. A client bypassing the library is refused.
	refuseHandMadeManifest(t, n, app)

	// 4. The inbox does what the CLI does.
	src = withEmptyFiles(t)
	tmp := filepath.Join(dir, ".tmp-empty")
	copyFiles(t, src, tmp, nil)
	writeFile(t, filepath.Join(tmp, "release.yaml"), "app: "+app+"\nversion: 1.0.4\nchannel: production\nkey: "+key+"\n")
	if err := os.Rename(tmp, filepath.Join(dir, "empty")); err != nil {
		t.Fatal(err)
	}
	consensustest.WaitFor(t, "empty in done/", func() bool { return exists(filepath.Join(dir, "done", "empty")) }, 20*time.Second)
	var note struct{ Release inbox.Published }
	b, _ := os.ReadFile(filepath.Join(dir, "done", "empty.published.json"))
	if err := json.Unmarshal(b, &note); err != nil || note.Release.Version != "1.0.4" || !strings.Contains(note.Release.NoManifest, emptyFilesNote) ||
		strings.Join(note.Release.EmptyFiles, ",") != "css/blank.css,empty.txt" {
		t.Fatalf("done note of a bundle with empty files:\n%s", b)
	}
	if res, err = dev.Update(ctx); err != nil || res.Installed != "1.0.4" || res.UsedManifest {
		t.Fatalf("update to 1.0.4: %+v, %v; want installed from the zip", res, err)
	}
	sameTree(t, src, dev.CurrentDir())
}

// refuseHandMadeManifest asks the node over HTTP for release 1.0.3: the
// files of 1.0.2 plus an empty file, encrypted with 1.0.2's session key.
func refuseHandMadeManifest(t *testing.T, n *testNode, app string) {
	t.Helper()
	ctx := context.Background()
	c := adminapi.NewClient(n.url, n.token, nil)
	rels, err := c.Releases(ctx, app, true)
	if err != nil {
		t.Fatal(err)
	}
	var req adminapi.CreateReleaseRequest
	for _, r := range rels {
		if r.Version != "1.0.2" {
			continue
		}
		req = adminapi.CreateReleaseRequest{Version: "1.0.3", ZipCID: r.ZipCID, Checksum: r.Checksum, SessionKey: r.SessionKey, KeyID: r.KeyID}
		for _, f := range r.Manifest {
			req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: f.FileName, FileHash: f.FileHash, CID: f.CID})
		}
	}
	priv, err := content.ParsePrivateKey(readFileT(t, filepath.Join(vectors(t), "test_private_key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := content.OpenSessionKey(req.SessionKey, &priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	empty := sk.Encrypt(nil)
	obj, err := c.Upload(ctx, strings.NewReader(string(empty)), int64(len(empty)))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := content.SealChecksum(priv, content.SHA256Hex(nil))
	if err != nil {
		t.Fatal(err)
	}
	req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: "empty.txt", FileHash: hash, CID: obj.CID})
	_, err = c.CreateRelease(ctx, app, req)
	var aerr *adminapi.Error
	if !errors.As(err, &aerr) || aerr.Status != http.StatusBadRequest ||
		!strings.Contains(aerr.Message, "manifest of an encrypted release holds 1 file decrypting to nothing: empty.txt;") ||
		!strings.Contains(aerr.Message, "Empty decrypted data") {
		t.Fatalf("a hand-made encrypted manifest with an empty file: %v", err)
	}
}

func readFileT(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
