package inbox

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
)

func TestParseMeta(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{"minimal", "app: a.b\nversion: 1.0.0\n", ""},
		{"all", "app: a.b\nversion: 1.0.0\nchannel: beta\nmin_native: 1.0.0\nkey: k.pem\ncreate_app: true\n", ""},
		{"create app with session key", "app: a.b\nversion: 1\nsession_key: x\nchecksum: y\ncreate_app: true\n", "create_app cannot be used with session_key"},
		{"create app not a bool", "app: a.b\nversion: 1\ncreate_app: please\n", "cannot unmarshal"},
		{"session key", "app: a.b\nversion: 1\nsession_key: iv:key\nchecksum: abc\n", ""},
		{"empty", "", "empty"},
		{"unknown key", "app: a.b\nversion: 1\nchanel: beta\n", `unknown key "chanel"`},
		{"no app", "version: 1\n", "app is missing"},
		{"no version", "app: a.b\n", "version is missing"},
		{"half session key", "app: a\nversion: 1\nsession_key: x\n", "go together"},
		{"both keys", "app: a\nversion: 1\nkey: k\nsession_key: x\nchecksum: y\n", "not both"},
		{"not a map", "- a\n- b\n", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseMeta([]byte(tc.in))
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("ParseMeta: %v, want %q", err, tc.err)
			}
		})
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add([]byte("app: a.b\nversion: 1.0.0\nchannel: beta\n"))
	f.Add([]byte("{app: [1, 2]}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err == nil && (m.App == "" || m.Version == "") {
			t.Fatalf("accepted %q without app or version", b)
		}
	})
}

// recorder is a Publisher that keeps what it was asked to publish. The
// daemon's real publisher (the admin API) is exercised by
// cmd/mirrord's TestInbox; this one tests the watcher's own decisions.
type recorder struct {
	mu        sync.Mutex
	published []Bundle
	temporary int // fail this many times with a temporary error
}

func (r *recorder) Publish(_ context.Context, b Bundle) (Published, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.temporary > 0 {
		r.temporary--
		return Published{}, &TemporaryError{Err: errors.New("no quorum")}
	}
	r.published = append(r.published, b)
	return Published{App: b.Meta.App, Version: b.Meta.Version}, nil
}

func (r *recorder) Exists(context.Context, string, string) (bool, error) { return false, nil }

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.published)
}

// TestPollingFallback runs the watcher without inotify: bundles are
// still found, temporary errors are retried, and keys inside the bundle
// are left out of it.
func TestPollingFallback(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "in")
	rec := &recorder{temporary: 2}
	w, err := New(Config{Dir: dir, Journal: filepath.Join(t.TempDir(), "j.json"), Publisher: rec,
		NoNotify: true, Poll: 20 * time.Millisecond, Settle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	tmp := filepath.Join(dir, ".b")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"index.html": "<html>", "priv.pem": "KEY", MetaFile: "app: a.b\nversion: 1.0.0\nkey: priv.pem\n",
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	consensustest.WaitFor(t, "the publish", func() bool { return rec.count() == 1 }, 10*time.Second)
	consensustest.WaitFor(t, "b in done/", func() bool { _, err := os.Stat(filepath.Join(dir, DoneDir, "b")); return err == nil }, 10*time.Second)
	if !w.Polling() {
		t.Fatal("not polling")
	}
	b := rec.published[0]
	if !strings.HasSuffix(b.Key, "priv.pem") || !strings.Contains(strings.Join(b.Skip, ","), "priv.pem") || b.Digest == "" {
		t.Fatalf("bundle %+v", b)
	}
}
