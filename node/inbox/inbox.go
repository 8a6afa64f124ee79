// Package inbox is mirrord's watch folder. A bundle directory moved into
// the inbox, holding the web files and a release.yaml sidecar, is
// published once and then moved to done/ (or to failed/, with a file that
// says why).
//
// A directory is published only when it is complete:
//
//   - an atomic rename: copy it under a name that starts with "." (such
//     names are never touched), then rename it into place; or
//   - a ready marker: copy it under its final name and create the file
//     READY in it last.
//
// A visible directory without READY is taken as renamed into place when
// it already holds release.yaml the first time the watcher sees it and
// its files do not change during a short settle time. A directory first
// seen without release.yaml is being copied: it waits for READY however
// long the copy takes, so a half-copied bundle is never published.
//
// A bundle naming an app the cluster does not know is refused (to
// failed/, with the `mirrord app create` line to run) unless its
// release.yaml says create_app: true.
//
// Publishing is idempotent by content: a journal (a JSON file beside the
// node's data) maps the SHA-256 of each bundle's files to its release,
// written before the publish starts and after it ends. After a restart,
// a bundle already published (or published just before a crash, when
// the release exists) is moved to done/ without a second publish.
//
// Changes are watched with fsnotify (inotify on Linux); where it is not
// available the watcher polls and says so in the log.
package inbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"gopkg.in/yaml.v3"

	"mirrord/content"
)

// File names inside the inbox and inside a bundle.
const (
	MetaFile    = "release.yaml"
	ReadyMarker = "READY"
	DoneDir     = "done"
	FailedDir   = "failed"
)

// Meta is a bundle's release.yaml.
type Meta struct {
	App       string `yaml:"app" json:"app"`
	Version   string `yaml:"version" json:"version"`
	Channel   string `yaml:"channel,omitempty" json:"channel,omitempty"`
	MinNative string `yaml:"min_native,omitempty" json:"min_native,omitempty"`
	// Key is the private key file to encrypt with (Capgo v2). A relative
	// path is looked up in the bundle directory, then the inbox, then the
	// node's working directory; a key inside the bundle is left out of it.
	Key string `yaml:"key,omitempty" json:"key,omitempty"`
	// SessionKey and Checksum describe bundle.zip, already encrypted by
	// the Capgo CLI (`npx @capgo/cli bundle encrypt`).
	SessionKey string `yaml:"session_key,omitempty" json:"session_key,omitempty"`
	Checksum   string `yaml:"checksum,omitempty" json:"checksum,omitempty"`
	// CreateApp lets the inbox create App when the cluster does not know
	// it (with the public half of Key when the bundle is encrypted).
	// Without it, a bundle for an unknown app is refused: a typo in the
	// app id must not make a new app that no device asks for.
	CreateApp bool `yaml:"create_app,omitempty" json:"create_app,omitempty"`
}

// ZipName is the encrypted zip a bundle with a session key holds.
const ZipName = "bundle.zip"

// ParseMeta decodes release.yaml strictly: an unknown key is an error.
func ParseMeta(b []byte) (Meta, error) {
	var m Meta
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return m, errors.New("release.yaml is empty")
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
		if i, j := strings.Index(msg, "field "), strings.Index(msg, " not found in type "); i >= 0 && j > i {
			msg = msg[:i] + fmt.Sprintf("unknown key %q (known: app, version, channel, min_native, key, session_key, checksum, create_app)", msg[i+len("field "):j])
		}
		return m, fmt.Errorf("release.yaml: %s", msg)
	}
	switch {
	case m.App == "":
		return m, errors.New("release.yaml: app is missing")
	case m.Version == "":
		return m, errors.New("release.yaml: version is missing")
	case (m.SessionKey == "") != (m.Checksum == ""):
		return m, errors.New("release.yaml: session_key and checksum go together")
	case m.SessionKey != "" && m.Key != "":
		return m, errors.New("release.yaml: use key (mirrord encrypts) or session_key+checksum (bundle.zip is already encrypted), not both")
	case m.SessionKey != "" && m.CreateApp:
		return m, fmt.Errorf("release.yaml: create_app cannot be used with session_key: an already encrypted bundle does not carry "+
			"the app's public key; create the app first with `mirrord app create %s --public-key PUB.pem`", m.App)
	}
	return m, nil
}

// Bundle is a complete bundle directory ready to publish.
type Bundle struct {
	// Name is its name in the inbox.
	Name string
	// Dir is its path; Meta its release.yaml.
	Dir  string
	Meta Meta
	// Key is Meta.Key resolved to a path ("" if none).
	Key string
	// Skip lists the files of Dir that are not web files (release.yaml,
	// READY, a key kept in the bundle), relative with forward slashes.
	Skip []string
	// Digest is the SHA-256 of the bundle's files (names and bytes).
	Digest string
}

// Published is what a successful publish reports.
type Published struct {
	App      string `json:"app"`
	Version  string `json:"version"`
	Checksum string `json:"checksum,omitempty"`
	Channel  string `json:"channel,omitempty"`
	// CreatedApp is set when the app did not exist and was created.
	CreatedApp bool `json:"created_app,omitempty"`
}

// Publisher publishes bundles; the daemon implements it with the admin
// API, so a watch-folder release goes through the same checks as
// `mirrord publish`.
type Publisher interface {
	Publish(ctx context.Context, b Bundle) (Published, error)
	// Exists reports whether the app has the release version.
	Exists(ctx context.Context, app, version string) (bool, error)
}

// TemporaryError marks a publish error worth retrying (no quorum, the
// node not ready); other errors move the bundle to failed/.
type TemporaryError struct{ Err error }

func (e *TemporaryError) Error() string { return e.Err.Error() }
func (e *TemporaryError) Unwrap() error { return e.Err }

// Config configures a Watcher.
type Config struct {
	// Dir is the inbox; done/ and failed/ are made inside it.
	Dir string
	// Journal is the journal file (outside the inbox, e.g. DATA/inbox.json).
	Journal   string
	Publisher Publisher
	// Settle is how long the files of a directory seen complete must
	// stay unchanged before it is published without READY; 0 means 1 s.
	Settle time.Duration
	// Poll is the rescan interval (also the retry interval for temporary
	// errors); 0 means 2 s.
	Poll time.Duration
	// NoNotify forces polling (tests; inotify unavailable).
	NoNotify bool
	Log      *slog.Logger
}

// Watcher is a running watch folder.
type Watcher struct {
	cfg     Config
	log     *slog.Logger
	journal map[string]journalEntry
	// seen tracks visible directories not yet published.
	seen    map[string]*sighting
	barrier chan chan struct{}
	polling bool

	mu     sync.Mutex
	counts Counts
}

type sighting struct {
	// partial: first seen without release.yaml (being copied); only
	// READY releases it.
	partial bool
	sig     string    // file signature when first seen complete
	at      time.Time // when sig was taken
	logged  bool
	retryAt time.Time // after a temporary error
}

type journalEntry struct {
	Name    string    `json:"name"`
	App     string    `json:"app"`
	Version string    `json:"version"`
	State   string    `json:"state"` // publishing | published
	At      time.Time `json:"at"`
}

// Counts are what the watcher did since it started.
type Counts struct {
	Published, Duplicates, Failed int
}

// New checks the inbox (creating it and done/, failed/) and loads the
// journal.
func New(cfg Config) (*Watcher, error) {
	if cfg.Settle <= 0 {
		cfg.Settle = time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, DoneDir), filepath.Join(cfg.Dir, FailedDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	w := &Watcher{cfg: cfg, log: cfg.Log, journal: map[string]journalEntry{}, seen: map[string]*sighting{},
		barrier: make(chan chan struct{})}
	b, err := os.ReadFile(cfg.Journal)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("inbox: journal: %w", err)
	default:
		if err := json.Unmarshal(b, &w.journal); err != nil {
			return nil, fmt.Errorf("inbox: journal %s is damaged (%v); move it away to start a new one", cfg.Journal, err)
		}
	}
	return w, nil
}

// Counts returns what the watcher did so far.
func (w *Watcher) Counts() Counts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts
}

// Polling reports whether the watcher polls instead of using inotify.
func (w *Watcher) Polling() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.polling
}

// Sync waits until the watcher has looked at the inbox after the call
// (tests use it as a barrier instead of sleeping).
func (w *Watcher) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case w.barrier <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run watches until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if !w.cfg.NoNotify {
		fw, err := fsnotify.NewWatcher()
		if err == nil {
			err = fw.Add(w.cfg.Dir)
		}
		if err != nil {
			w.log.Warn("inotify is not available; polling the inbox instead", "dir", w.cfg.Dir, "every", w.cfg.Poll, "err", err)
			if fw != nil {
				fw.Close()
			}
		} else {
			defer fw.Close()
			events, errs = fw.Events, fw.Errors
		}
	}
	w.mu.Lock()
	w.polling = events == nil
	w.mu.Unlock()
	if w.polling && !w.cfg.NoNotify {
		w.log.Info("inbox: polling", "dir", w.cfg.Dir, "every", w.cfg.Poll)
	}
	w.log.Info("watching the inbox", "dir", w.cfg.Dir, "inotify", events != nil)

	tick := time.NewTicker(min(w.cfg.Poll, w.cfg.Settle/2+time.Millisecond))
	defer tick.Stop()
	w.scan(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-events:
			// Which entry changed does not matter: a scan looks at all.
		case err := <-errs:
			w.log.Warn("inbox: watch error; rescanning", "err", err)
		case <-tick.C:
		case done := <-w.barrier:
			w.scan(ctx)
			close(done)
			continue
		}
		w.scan(ctx)
	}
}

// scan looks at every visible entry of the inbox.
func (w *Watcher) scan(ctx context.Context) {
	ents, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		w.log.Warn("inbox: cannot read the inbox", "err", err)
		return
	}
	present := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") || name == DoneDir || name == FailedDir {
			continue
		}
		present[name] = true
		if !e.IsDir() {
			if s := w.sight(name); !s.logged {
				s.logged = true
				w.log.Warn("inbox: only bundle directories are published; leaving this file alone", "entry", name)
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		w.consider(ctx, name)
	}
	for name := range w.seen {
		if !present[name] {
			delete(w.seen, name)
		}
	}
}

func (w *Watcher) sight(name string) *sighting {
	s := w.seen[name]
	if s == nil {
		s = &sighting{}
		w.seen[name] = s
	}
	return s
}

// consider decides whether directory name is complete, and publishes it
// when it is.
func (w *Watcher) consider(ctx context.Context, name string) {
	dir := filepath.Join(w.cfg.Dir, name)
	first := w.seen[name] == nil
	s := w.sight(name)
	if !s.retryAt.IsZero() && time.Now().Before(s.retryAt) {
		return
	}
	if exists(filepath.Join(dir, ReadyMarker)) {
		w.process(ctx, name, s)
		return
	}
	hasMeta := exists(filepath.Join(dir, MetaFile))
	if first && !hasMeta {
		s.partial = true
	}
	if s.partial {
		if !s.logged {
			s.logged = true
			w.log.Info("inbox: directory is still being copied; it is published once READY appears in it (or use an atomic rename)",
				"entry", name)
		}
		return
	}
	sig, err := signature(dir)
	if err != nil {
		return
	}
	if s.sig == "" {
		s.sig, s.at = sig, time.Now()
		return
	}
	if sig != s.sig {
		// It changed after it looked complete: someone is still writing.
		// Only READY will do now.
		s.partial = true
		return
	}
	if time.Since(s.at) >= w.cfg.Settle {
		w.process(ctx, name, s)
	}
}

// process publishes the complete bundle directory name.
func (w *Watcher) process(ctx context.Context, name string, s *sighting) {
	dir := filepath.Join(w.cfg.Dir, name)
	b, err := w.load(name, dir)
	if err != nil {
		w.fail(name, err)
		return
	}
	log := w.log.With("entry", name, "app", b.Meta.App, "version", b.Meta.Version)
	if j, ok := w.journal[b.Digest]; ok {
		if j.State == "published" {
			w.done(name, Published{App: j.App, Version: j.Version}, "already published with the same content")
			return
		}
		// A publish started before a crash: did it land?
		ok, err := w.cfg.Publisher.Exists(ctx, j.App, j.Version)
		if err != nil {
			w.retry(s, log, err)
			return
		}
		if ok {
			w.record(b, name, "published")
			w.done(name, Published{App: j.App, Version: j.Version}, "published before a restart")
			return
		}
	}
	if err := w.record(b, name, "publishing"); err != nil {
		w.retry(s, log, err)
		return
	}
	p, err := w.cfg.Publisher.Publish(ctx, b)
	if err != nil {
		var te *TemporaryError
		if errors.As(err, &te) || ctx.Err() != nil {
			w.retry(s, log, err)
			return
		}
		delete(w.journal, b.Digest)
		_ = w.saveJournal()
		w.fail(name, err)
		return
	}
	if err := w.record(b, name, "published"); err != nil {
		log.Warn("inbox: journal not written; the release is published", "err", err)
	}
	log.Info("inbox: published")
	w.done(name, p, "")
}

func (w *Watcher) retry(s *sighting, log *slog.Logger, err error) {
	s.retryAt = time.Now().Add(w.cfg.Poll)
	log.Warn("inbox: publish failed for now; retrying", "in", w.cfg.Poll, "err", err)
}

// load reads a bundle directory: its release.yaml, key and digest.
func (w *Watcher) load(name, dir string) (Bundle, error) {
	b := Bundle{Name: name, Dir: dir, Skip: []string{MetaFile, ReadyMarker}}
	raw, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return b, errors.New("no release.yaml in the bundle directory (keys: app, version, channel, min_native, key or session_key + checksum, create_app)")
		}
		return b, err
	}
	if b.Meta, err = ParseMeta(raw); err != nil {
		return b, err
	}
	if k := b.Meta.Key; k != "" {
		b.Key = w.resolveKey(dir, k)
		if b.Key == "" {
			return b, fmt.Errorf("release.yaml: key %s not found (a relative path is looked up in the bundle directory, the inbox, then the node's working directory)", k)
		}
		if rel, err := filepath.Rel(dir, b.Key); err == nil && !strings.HasPrefix(rel, "..") {
			b.Skip = append(b.Skip, filepath.ToSlash(rel))
		}
	}
	if b.Meta.SessionKey != "" && !exists(filepath.Join(dir, ZipName)) {
		return b, fmt.Errorf("release.yaml has session_key and checksum, so the directory must hold %s (the zip the Capgo CLI encrypted)", ZipName)
	}
	if b.Digest, err = digest(dir, b.Skip); err != nil {
		return b, err
	}
	return b, nil
}

// resolveKey finds the key file k: absolute, or relative to the bundle
// directory, the inbox, or the working directory, in that order.
func (w *Watcher) resolveKey(dir, k string) string {
	if filepath.IsAbs(k) {
		if exists(k) {
			return k
		}
		return ""
	}
	for _, base := range []string{dir, w.cfg.Dir, "."} {
		if p := filepath.Join(base, k); exists(p) {
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
			return p
		}
	}
	return ""
}

// record writes the bundle's journal entry.
func (w *Watcher) record(b Bundle, name, st string) error {
	w.journal[b.Digest] = journalEntry{Name: name, App: b.Meta.App, Version: b.Meta.Version, State: st, At: time.Now().UTC()}
	return w.saveJournal()
}

func (w *Watcher) saveJournal() error {
	b, err := json.MarshalIndent(w.journal, "", "  ")
	if err != nil {
		return err
	}
	return content.WriteFileAtomic(w.cfg.Journal, b, 0o600)
}

// done moves the entry to done/ with a note of what was published. The
// note is written first, so whoever sees the directory in done/ finds
// the note too.
func (w *Watcher) done(name string, p Published, note string) {
	rec := map[string]any{"release": p, "at": time.Now().UTC().Format(time.RFC3339)}
	if note != "" {
		rec["note"] = note
	}
	b, _ := json.MarshalIndent(rec, "", "  ")
	// The count changes under the same lock as the move, so whoever
	// sees the entry in done/ and then asks Counts finds it counted.
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.move(name, DoneDir, ".published.json", append(b, '\n')); err != nil {
		w.log.Error("inbox: cannot move a published bundle to done/", "entry", name, "err", err)
		return
	}
	delete(w.seen, name)
	if note == "" {
		w.counts.Published++
	} else {
		w.counts.Duplicates++
	}
}

// fail moves the entry to failed/ with a file that says why.
func (w *Watcher) fail(name string, why error) {
	w.log.Warn("inbox: bundle refused", "entry", name, "err", why)
	msg := fmt.Sprintf("%s was not published: %v\n\nFix it and move the directory back into the inbox.\n", name, why)
	w.mu.Lock() // as in done
	defer w.mu.Unlock()
	if err := w.move(name, FailedDir, ".error.txt", []byte(msg)); err != nil {
		w.log.Error("inbox: cannot move a refused bundle to failed/", "entry", name, "err", err)
		return
	}
	delete(w.seen, name)
	w.counts.Failed++
}

// move writes note as sub/NAME+suffix, then renames inbox/name to
// sub/NAME, where NAME is name, or name-2, name-3... when taken.
func (w *Watcher) move(name, sub, suffix string, note []byte) error {
	src := filepath.Join(w.cfg.Dir, name)
	for i := 1; i < 1000; i++ {
		dst := filepath.Join(w.cfg.Dir, sub, name)
		if i > 1 {
			dst = fmt.Sprintf("%s-%d", dst, i)
		}
		if exists(dst) || exists(dst+".published.json") || exists(dst+".error.txt") {
			continue
		}
		if err := content.WriteFileAtomic(dst+suffix, note, 0o644); err != nil {
			return err
		}
		return os.Rename(src, dst)
	}
	return fmt.Errorf("too many entries named %s in %s", name, sub)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// walkFiles lists the regular files under dir (relative, slash
// separated, sorted), without the skipped ones.
func walkFiles(dir string, skip []string) ([]string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		for _, s := range skip {
			if rel == s {
				return nil
			}
		}
		names = append(names, rel)
		return nil
	})
	sort.Strings(names)
	return names, err
}

// signature is a cheap summary of a tree (names, sizes, times) to see
// whether it is still changing.
func signature(dir string) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", p, info.Size(), info.ModTime().UnixNano())
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}

// digest hashes the bundle's files: names and bytes, in order.
func digest(dir string, skip []string) (string, error) {
	names, err := walkFiles(dir, skip)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(n)))
		if err != nil {
			return "", err
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, info.Size())
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", err
		}
	}
	// release.yaml decides where and how the files are published: it is
	// part of the content.
	meta, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\x00%d\x00", MetaFile, len(meta))
	h.Write(meta)
	return hex.EncodeToString(h.Sum(nil)), nil
}
