package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/consensus/consensustest"
	"mirrord/content"
	"mirrord/content/contenttest"
	"mirrord/node/adminapi"
)

// newAPI is the admin API of a one-node raft cluster over a real block
// store, with app com.example.app (encrypted, the vectors' key) and
// com.example.plain.
func newAPI(t *testing.T) *adminapi.API {
	t.Helper()
	cl := consensustest.NewCluster(t, 1)
	store, err := content.OpenStore(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	api := adminapi.New(adminapi.Config{Token: "tok"}, cl.Node(0), store, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	pub := readVector(t, "test_public_key.pem")
	if _, err := api.CreateApp(ctx, adminapi.CreateAppRequest{ID: "com.example.app", PublicKey: string(pub)}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateApp(ctx, adminapi.CreateAppRequest{ID: "com.example.plain"}); err != nil {
		t.Fatal(err)
	}
	return api
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contenttest.Vectors(t), filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportCapgoEncrypted: a zip the Capgo CLI encrypted is published
// with its session key and checksum as they are, in process and over
// HTTP.
func TestImportCapgoEncrypted(t *testing.T) {
	api := newAPI(t)
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var enc struct {
		Checksum   string `json:"checksum"`
		Filename   string `json:"filename"`
		SessionKey string `json:"ivSessionKey"`
	}
	if err := json.Unmarshal(readVector(t, "cli-encrypt-1.0.1.json"), &enc); err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(contenttest.Vectors(t), enc.Filename)
	for i, a := range []Admin{api.Local(), adminapi.NewClient(srv.URL, "tok", nil)} {
		version := []string{"1.0.1", "1.0.2"}[i]
		o := Options{App: "com.example.app", Version: version, Path: zipPath, SessionKey: enc.SessionKey, Checksum: enc.Checksum}
		if err := o.Check(); err != nil {
			t.Fatal(err)
		}
		res, err := Publish(context.Background(), a, o, io.Discard)
		if err != nil {
			t.Fatalf("%T: %v", a, err)
		}
		info, _ := os.Stat(zipPath)
		rel := res.Release
		if rel.SessionKey != enc.SessionKey || rel.Checksum != strings.ToLower(enc.Checksum) || rel.ZipSize != info.Size() || res.Uploaded != info.Size() {
			t.Errorf("%T: release %+v, uploaded %d", a, rel, res.Uploaded)
		}
	}
}

// TestEncryptReusesSessionKey: publishing the vectors' sources with the
// vectors' private key encrypts them, and the next release reuses the
// session key, so an unchanged file keeps its CID.
func TestEncryptReusesSessionKey(t *testing.T) {
	api := newAPI(t)
	key := filepath.Join(contenttest.Vectors(t), "test_private_key.pem")
	src := filepath.Join(contenttest.Vectors(t), "src-1.0.1")
	var notes bytes.Buffer
	first, err := Publish(context.Background(), api.Local(), Options{App: "com.example.app", Version: "1.0.1", Path: src, Key: key}, &notes)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Release.Encrypted() || !strings.Contains(notes.String(), "new random key") {
		t.Fatalf("first release %+v, notes %q", first.Release, notes.String())
	}
	notes.Reset()
	second, err := Publish(context.Background(), api.Local(), Options{App: "com.example.app", Version: "1.0.2", Path: src, Key: key}, &notes)
	if err != nil {
		t.Fatal(err)
	}
	if second.Release.SessionKey != first.Release.SessionKey || !strings.Contains(notes.String(), "reused from release 1.0.1") {
		t.Errorf("session key not reused: notes %q", notes.String())
	}
	if len(second.Release.Manifest) == 0 || second.Release.Manifest[0].CID != first.Release.Manifest[0].CID {
		t.Errorf("unchanged file changed CID: %+v vs %+v", second.Release.Manifest, first.Release.Manifest)
	}
	// A fresh key is asked for.
	notes.Reset()
	third, err := Publish(context.Background(), api.Local(), Options{App: "com.example.app", Version: "1.0.3", Path: src, Key: key, FreshKey: true}, &notes)
	if err != nil || third.Release.SessionKey == first.Release.SessionKey {
		t.Errorf("fresh key: %v, same key %v", err, third.Release.SessionKey == first.Release.SessionKey)
	}
}

// TestPublishRefusals: the refusals that keep devices from bundles they
// cannot open, and contradictory options.
func TestPublishRefusals(t *testing.T) {
	api := newAPI(t)
	ctx := context.Background()
	src := filepath.Join(contenttest.Vectors(t), "src-1.0.1")
	key := filepath.Join(contenttest.Vectors(t), "test_private_key.pem")
	otherKey := filepath.Join(t.TempDir(), "other.pem")
	priv, _, err := content.GenerateKeys()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(otherKey, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"plain for encrypted app", Options{App: "com.example.app", Version: "1.0.0", Path: src}, "expect encrypted bundles"},
		{"key for plain app", Options{App: "com.example.plain", Version: "1.0.0", Path: src, Key: key}, "has no public key"},
		{"other key", Options{App: "com.example.app", Version: "1.0.0", Path: src, Key: otherKey}, "does not match"},
		{"unknown app", Options{App: "com.example.none", Version: "1.0.0", Path: src, Server: "http://x"}, "does not exist on http://x"},
		{"session key for directory", Options{App: "com.example.app", Version: "1.0.0", Path: src, SessionKey: "a", Checksum: "b"}, "not a directory"},
	} {
		_, err := Publish(ctx, api.Local(), tc.o, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := Publish(ctx, api.Local(), Options{App: "com.example.plain", Version: "1.0.0", Path: src}, io.Discard); err != nil {
		t.Errorf("plain: %v", err)
	}
	for _, o := range []Options{{App: "a"}, {App: "a", Version: "1", SessionKey: "s"}, {App: "a", Version: "1", FreshKey: true},
		{App: "a", Version: "1", Key: "k", SessionKey: "s", Checksum: "c"}} {
		if err := o.Check(); !errors.Is(err, ErrOptions) {
			t.Errorf("Check(%+v) = %v, want ErrOptions", o, err)
		}
	}
}

// TestPublishEmptyFiles: a bundle directory with an empty file is
// published with a manifest when plain, and without one (said in the
// notes and the result, naming the files) when encrypted; a request
// that builds its own encrypted manifest with that file is refused by
// the admin API, naming it.
func TestPublishEmptyFiles(t *testing.T) {
	api := newAPI(t)
	ctx := context.Background()
	key := filepath.Join(contenttest.Vectors(t), "test_private_key.pem")
	src := t.TempDir()
	for name, data := range map[string]string{"index.html": "<html>hi</html>", "app.js": "console.log(1)", "empty.txt": "", "css/blank.css": ""} {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name     string
		o        Options
		manifest int
		empty    string
	}{
		{"plain", Options{App: "com.example.plain", Version: "1.0.0", Path: src}, 4, ""},
		{"encrypted", Options{App: "com.example.app", Version: "1.0.0", Path: src, Key: key}, 0, "css/blank.css,empty.txt"},
		{"encrypted, reused key", Options{App: "com.example.app", Version: "1.0.1", Path: src, Key: key}, 0, "css/blank.css,empty.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var notes bytes.Buffer
			res, err := Publish(ctx, api.Local(), tc.o, &notes)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Release.Manifest) != tc.manifest || strings.Join(res.EmptyFiles, ",") != tc.empty {
				t.Fatalf("%d manifest files, empty files %v; want %d, %s", len(res.Release.Manifest), res.EmptyFiles, tc.manifest, tc.empty)
			}
			if tc.empty == "" {
				if res.NoManifest != "" || strings.Contains(notes.String(), "manifest") {
					t.Errorf("plain notes %q, no-manifest %q", notes.String(), res.NoManifest)
				}
				return
			}
			want := "manifest: none, served as a zip only: 2 empty files css/blank.css, empty.txt; Capgo's Android plugin (8.51.23) fails the whole download"
			if !strings.Contains(notes.String(), want) || !strings.Contains(res.NoManifest, want) {
				t.Errorf("notes %q\nresult %q\nwant %q", notes.String(), res.NoManifest, want)
			}
		})
	}

	// A client bypassing the library: the files of an encrypted build
	// without the empty ones, plus the empty one uploaded by hand.
	rel, err := Publish(ctx, api.Local(), Options{App: "com.example.app", Version: "1.0.2", Path: filepath.Join(contenttest.Vectors(t), "src-1.0.1"), Key: key}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := content.ParsePrivateKey(readVector(t, "test_private_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sk, err := content.OpenSessionKey(rel.Release.SessionKey, &priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := api.Local().Upload(ctx, bytes.NewReader(sk.Encrypt(nil)), 16)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := content.SealChecksum(priv, content.SHA256Hex(nil))
	if err != nil {
		t.Fatal(err)
	}
	req := adminapi.CreateReleaseRequest{Version: "1.0.3", ZipCID: rel.Release.ZipCID, Checksum: rel.Release.Checksum,
		SessionKey: rel.Release.SessionKey, KeyID: rel.Release.KeyID}
	for _, f := range rel.Release.Manifest {
		req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: f.FileName, FileHash: f.FileHash, CID: f.CID})
	}
	req.Manifest = append(req.Manifest, adminapi.ReleaseFile{FileName: "empty.txt", FileHash: hash, CID: obj.CID})
	_, err = api.Local().CreateRelease(ctx, "com.example.app", req)
	var aerr *adminapi.Error
	if !errors.As(err, &aerr) || aerr.Status != http.StatusBadRequest || !strings.Contains(aerr.Message, "1 file decrypting to nothing: empty.txt") {
		t.Errorf("hand-made manifest with an empty file: %v", err)
	}
}
