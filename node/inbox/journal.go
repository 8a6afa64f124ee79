package inbox

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mirrord/content"
)

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
