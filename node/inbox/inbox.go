package inbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"gopkg.in/yaml.v3"
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
	// EmptyFiles and NoManifest: the empty files that left an encrypted
	// release without a delta manifest, and the note saying so
	// (publish.Result).
	EmptyFiles []string `json:"empty_files,omitempty"`
	NoManifest string   `json:"no_manifest,omitempty"`
}

// Publisher publishes bundles; AdminPublisher implements it with the
// node's admin API, so a watch-folder release goes through the same code
// and checks as `mirrord publish`.
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

// Run watches until ctx ends; it returns nil then.
func (w *Watcher) Run(ctx context.Context) error {
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
			return nil
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
