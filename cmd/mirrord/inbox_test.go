package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/node/inbox"
)

// inboxNode starts a node watching dir and returns it with its watcher.
func inboxNode(t *testing.T, data, dir string) (*testNode, *inbox.Watcher) {
	t.Helper()
	got := make(chan *inbox.Watcher, 1)
	testHookInbox = func(w *inbox.Watcher) { got <- w }
	defer func() { testHookInbox = nil }()
	n := startNodeWith(t, data, func(c *configs.Config) { c.Node.Inbox = dir })
	select {
	case w := <-got:
		return n, w
	case <-time.After(10 * time.Second):
		t.Fatal("the inbox did not start")
	}
	return nil, nil
}

// copyFiles copies the regular files of src into dst (made if missing),
// calling each after every file.
func copyFiles(t *testing.T, src, dst string, each func(name string)) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		if each != nil {
			each(rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func releaseVersions(t *testing.T, n *testNode, app string) []string {
	t.Helper()
	var out []struct{ Version string }
	if err := json.Unmarshal([]byte(n.cli(t, "release", "list", app, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, r := range out {
		vs = append(vs, r.Version)
	}
	return vs
}

// TestInbox is the watch-folder must-show: a bundle copied
// slowly is published once, after it is complete; an atomic rename is
// published; broken bundles land in failed/ with their reason; a
// restart publishes nothing twice, also after a crash in the middle.
func TestInbox(t *testing.T) {
	vec := vectors(t)
	data := t.TempDir()
	dir := filepath.Join(t.TempDir(), "inbox")
	n, w := inboxNode(t, data, dir)
	ctx := context.Background()
	const app = "com.example.inbox"
	n.cli(t, "app", "create", app)
	sync := func() {
		t.Helper()
		if err := w.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// 1. A slow copy under the final name: nothing happens until READY,
	// whatever order the files come in.
	slow := filepath.Join(dir, "slow")
	if err := os.Mkdir(slow, 0o755); err != nil {
		t.Fatal(err)
	}
	sync()
	writeFile(t, filepath.Join(slow, "release.yaml"), "app: "+app+"\nversion: 1.0.1\nchannel: production\n")
	sync()
	copyFiles(t, filepath.Join(vec, "src-1.0.1"), slow, func(string) {
		sync()
		if len(releaseVersions(t, n, app)) != 0 || !exists(slow) {
			t.Fatal("a half-copied bundle was published")
		}
	})
	writeFile(t, filepath.Join(slow, inbox.ReadyMarker), "")
	consensustest.WaitFor(t, "slow in done/", func() bool { return exists(filepath.Join(dir, "done", "slow")) }, 20*time.Second)
	if vs := releaseVersions(t, n, app); len(vs) != 1 || vs[0] != "1.0.1" {
		t.Fatalf("releases %v", vs)
	}
	var note struct{ Release inbox.Published }
	b, _ := os.ReadFile(filepath.Join(dir, "done", "slow.published.json"))
	if err := json.Unmarshal(b, &note); err != nil || note.Release.Version != "1.0.1" || note.Release.Checksum == "" {
		t.Fatalf("done note %s", b)
	}

	// 2. The atomic rename of the acceptance run.
	tmp := filepath.Join(dir, ".tmp-x")
	copyFiles(t, filepath.Join(vec, "src-1.0.2"), tmp, nil)
	writeFile(t, filepath.Join(tmp, "release.yaml"), "app: "+app+"\nversion: 1.0.2\nchannel: production\nmin_native: 1.0.0\n")
	sync()
	if len(releaseVersions(t, n, app)) != 1 {
		t.Fatal("a hidden directory was published")
	}
	if err := os.Rename(tmp, filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	consensustest.WaitFor(t, "x in done/", func() bool { return exists(filepath.Join(dir, "done", "x")) }, 20*time.Second)
	fc := newFleetClient(t, app)
	if v := fc.check(n.url, deviceID(1), "builtin"); v != "1.0.2" {
		t.Fatalf("device got %q after the inbox publish", v)
	}

	// 3. Broken bundles: each lands in failed/ with a file saying why.
	for _, tc := range []struct{ name, yaml, why string }{
		{"unknown-key", "app: " + app + "\nversion: 2.0.0\ncolour: red\n", `"colour"`},
		{"no-app-encrypted-zip", "app: com.example.nope\nversion: 2.0.0\nsession_key: aXY=:a2V5\nchecksum: abc\n", "mirrord app create com.example.nope --public-key"},
		// An app the cluster does not know is not created behind the
		// operator's back (a typo in the id would make a new app).
		{"unknown-app", "app: com.example.typo\nversion: 2.0.0\n", "app com.example.typo does not exist on this cluster (is the app id right?): " +
			"create it first with `mirrord app create com.example.typo --public-key PUB.pem`"},
		{"unknown-app-key", "app: com.example.typo\nversion: 2.0.1\nkey: " + filepath.Join(vec, "test_private_key.pem") + "\n",
			"`mirrord app create com.example.typo --public-key PUB.pem` (the public half of " + filepath.Join(vec, "test_private_key.pem") + "), or add `create_app: true`"},
		{"create-app-encrypted-zip", "app: com.example.nope\nversion: 2.0.0\nsession_key: aXY=:a2V5\nchecksum: abc\ncreate_app: true\n", "create_app cannot be used with session_key"},
		{"no-version", "app: " + app + "\n", "version is missing"},
		{"same-version", "app: " + app + "\nversion: 1.0.1\n", "already exists"},
		{"no-index", "app: " + app + "\nversion: 2.0.1\n", "index.html"},
	} {
		tmp := filepath.Join(dir, ".tmp-"+tc.name)
		if strings.HasSuffix(tc.name, "-encrypted-zip") {
			if err := os.MkdirAll(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(tmp, "bundle.zip"), "not really a zip")
		} else if tc.name == "no-index" {
			if err := os.MkdirAll(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(tmp, "app.js"), "x")
		} else {
			copyFiles(t, filepath.Join(vec, "src-1.0.1"), tmp, nil)
			writeFile(t, filepath.Join(tmp, "extra.txt"), tc.name) // new content
		}
		writeFile(t, filepath.Join(tmp, "release.yaml"), tc.yaml)
		if err := os.Rename(tmp, filepath.Join(dir, tc.name)); err != nil {
			t.Fatal(err)
		}
		// The reason is written before the directory moves.
		consensustest.WaitFor(t, tc.name+" in failed/", func() bool { return exists(filepath.Join(dir, "failed", tc.name)) }, 20*time.Second)
		b, _ := os.ReadFile(filepath.Join(dir, "failed", tc.name+".error.txt"))
		if !strings.Contains(string(b), tc.why) {
			t.Errorf("%s: reason %q does not say %q", tc.name, b, tc.why)
		}
	}
	if out := n.cli(t, "app", "list"); strings.Contains(out, "com.example.typo") || strings.Contains(out, "com.example.nope") {
		t.Fatalf("a refused bundle created its app:\n%s", out)
	}
	// 4. A bundle for an app that does not exist yet, encrypted with
	// release.yaml's key and opting in with create_app: the app is
	// created with that key's public half.
	tmp = filepath.Join(dir, ".tmp-new")
	copyFiles(t, filepath.Join(vec, "src-1.0.1"), tmp, nil)
	writeFile(t, filepath.Join(tmp, "release.yaml"), "app: com.example.fresh\nversion: 1.0.1\nchannel: production\ncreate_app: true\nkey: "+
		filepath.Join(vec, "test_private_key.pem")+"\n")
	if err := os.Rename(tmp, filepath.Join(dir, "new")); err != nil {
		t.Fatal(err)
	}
	consensustest.WaitFor(t, "new in done/", func() bool { return exists(filepath.Join(dir, "done", "new")) }, 20*time.Second)
	if out := n.cli(t, "app", "list"); !strings.Contains(out, "com.example.fresh") || !strings.Contains(out, "MIIBCgKCAQEAxiHQEJu8") {
		t.Fatalf("app list after an inbox publish for a new app:\n%s", out)
	}
	pub, _ := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	dev := newDevice(t, n, "com.example.fresh", pub)
	if res, err := dev.Update(ctx); err != nil || res.Installed != "1.0.1" {
		t.Fatalf("encrypted inbox release: %v %+v", err, res)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())

	b, _ = os.ReadFile(filepath.Join(dir, "done", "new.published.json"))
	if err := json.Unmarshal(b, &note); err != nil || !note.Release.CreatedApp {
		t.Fatalf("done note of the bundle that created its app: %s", b)
	}

	if c := w.Counts(); c.Published != 3 || c.Failed != 8 {
		t.Fatalf("counts %+v", c)
	}

	// 5. Restart: the same content again (another name) is not published
	// twice; nor is one whose publish landed just before a crash.
	n.stop()
	journal := filepath.Join(data, "inbox.json")
	var j map[string]map[string]any
	b, _ = os.ReadFile(journal)
	if err := json.Unmarshal(b, &j); err != nil || len(j) != 3 {
		t.Fatalf("journal %s", b)
	}
	for _, e := range j {
		if e["version"] == "1.0.2" {
			e["state"] = "publishing" // as if the node died before writing "published"
		}
	}
	b, _ = json.Marshal(j)
	writeFile(t, journal, string(b))
	n, w = inboxNode(t, data, dir)
	for _, again := range []struct{ src, version, name string }{
		{"src-1.0.1", "1.0.1", "slow-again"}, {"src-1.0.2", "1.0.2", "x-again"},
	} {
		tmp := filepath.Join(dir, ".tmp-again")
		copyFiles(t, filepath.Join(vec, again.src), tmp, nil)
		yaml := "app: " + app + "\nversion: " + again.version + "\nchannel: production\n"
		if again.version == "1.0.2" {
			yaml += "min_native: 1.0.0\n"
		}
		writeFile(t, filepath.Join(tmp, "release.yaml"), yaml)
		if err := os.Rename(tmp, filepath.Join(dir, again.name)); err != nil {
			t.Fatal(err)
		}
		consensustest.WaitFor(t, again.name+" in done/", func() bool { return exists(filepath.Join(dir, "done", again.name)) }, 20*time.Second)
	}
	if c := w.Counts(); c.Published != 0 || c.Duplicates != 2 || c.Failed != 0 {
		t.Fatalf("after the restart: %+v", c)
	}
	if vs := releaseVersions(t, n, app); len(vs) != 2 {
		t.Fatalf("releases after the restart: %v", vs)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
