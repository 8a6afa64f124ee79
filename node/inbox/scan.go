package inbox

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

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
	if p.NoManifest != "" {
		log.Warn("inbox: published without a delta manifest: devices download the whole zip", "empty_files", p.EmptyFiles, "why", p.NoManifest)
	}
	w.done(name, p, "")
}

func (w *Watcher) retry(s *sighting, log *slog.Logger, err error) {
	s.retryAt = time.Now().Add(w.cfg.Poll)
	log.Warn("inbox: publish failed for now; retrying", "in", w.cfg.Poll, "err", err)
}
