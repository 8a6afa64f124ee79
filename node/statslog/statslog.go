// Package statslog keeps device stats events on disk, bounded in size.
//
// Events are appended as JSON lines to segment files under a directory;
// when a segment reaches its size it is closed and a new one started, and
// the oldest segments are deleted so that the total stays under the
// configured bound. Writes are buffered and flushed at least every
// FlushInterval and on Close: stats are telemetry, so a crash may lose
// the last interval of events but never corrupts earlier segments.
package statslog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config bounds the log.
type Config struct {
	Dir           string
	MaxBytes      int64         // total bound for all segments
	SegmentBytes  int64         // size at which a segment is rotated
	FlushInterval time.Duration // how often buffered events reach the disk
	// Retention drops closed segments whose newest event is older than
	// this; 0 keeps them until MaxBytes pushes them out.
	Retention time.Duration
}

// Log is an append-only, size-bounded event log.
type Log struct {
	cfg  Config
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	size int64 // bytes in the current segment
	segs []segment
	done chan struct{}
	wg   sync.WaitGroup
	err  error
	line []byte // reused by Append (under mu)
}

type segment struct {
	name string
	size int64
	last time.Time // newest event (modification time)
}

// Open opens or creates the log in cfg.Dir.
func Open(cfg Config) (*Log, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 256 << 20
	}
	if cfg.SegmentBytes <= 0 || cfg.SegmentBytes > cfg.MaxBytes/2 {
		cfg.SegmentBytes = max(cfg.MaxBytes/8, 4096)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("statslog: %w", err)
	}
	l := &Log{cfg: cfg, done: make(chan struct{})}
	ents, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("statslog: %w", err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		l.segs = append(l.segs, segment{name: e.Name(), size: info.Size(), last: info.ModTime()})
	}
	sort.Slice(l.segs, func(i, j int) bool { return l.segs[i].name < l.segs[j].name })
	if err := l.rotate(); err != nil {
		return nil, err
	}
	l.wg.Add(1)
	go l.flusher()
	return l, nil
}

func (l *Log) flusher() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			l.mu.Lock()
			if l.w != nil {
				if err := l.w.Flush(); err != nil {
					l.err = err
				}
				if err := l.dropExpired(time.Now()); err != nil {
					l.err = err
				}
			}
			l.mu.Unlock()
		}
	}
}

// rotate closes the current segment and opens a new one, then drops the
// oldest segments beyond the bound. Called with mu held (or before use).
func (l *Log) rotate() error {
	if l.f != nil {
		if err := l.w.Flush(); err != nil {
			return fmt.Errorf("statslog: flush: %w", err)
		}
		if err := l.f.Close(); err != nil {
			return fmt.Errorf("statslog: close: %w", err)
		}
		l.segs[len(l.segs)-1].size = l.size
		l.segs[len(l.segs)-1].last = time.Now()
	}
	name := fmt.Sprintf("%020d.jsonl", time.Now().UnixNano())
	if n := len(l.segs); n > 0 && name <= l.segs[n-1].name {
		name = fmt.Sprintf("%s-%d.jsonl", strings.TrimSuffix(l.segs[n-1].name, ".jsonl"), n)
	}
	f, err := os.OpenFile(filepath.Join(l.cfg.Dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("statslog: %w", err)
	}
	l.f, l.w, l.size = f, bufio.NewWriterSize(f, 64<<10), 0
	l.segs = append(l.segs, segment{name: name})
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	for len(l.segs) > 1 && total+l.cfg.SegmentBytes > l.cfg.MaxBytes {
		old := l.segs[0]
		if err := os.Remove(filepath.Join(l.cfg.Dir, old.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("statslog: drop old segment: %w", err)
		}
		total -= old.size
		l.segs = l.segs[1:]
	}
	return nil
}

// dropExpired deletes closed segments past the retention. Called with mu
// held.
func (l *Log) dropExpired(now time.Time) error {
	if l.cfg.Retention <= 0 {
		return nil
	}
	for len(l.segs) > 1 && now.Sub(l.segs[0].last) > l.cfg.Retention {
		if err := os.Remove(filepath.Join(l.cfg.Dir, l.segs[0].name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("statslog: drop expired segment: %w", err)
		}
		l.segs = l.segs[1:]
	}
	return nil
}

// Append writes events, one JSON object per line, each prefixed by the
// time it was received.
func (l *Log) Append(events []json.RawMessage) error {
	return l.append("", events)
}

// AppendIgnored writes events that were received but deliberately not
// counted (for example a legacy plugin's download_fail that only means
// "no new version"), each line marked with reason in its "ignored"
// field. Lines without the field, including every line written before
// it existed, are counted events.
func (l *Log) AppendIgnored(reason string, events []json.RawMessage) error {
	if reason == "" {
		return errors.New("statslog: AppendIgnored needs a reason")
	}
	return l.append(reason, events)
}

func (l *Log) append(ignored string, events []json.RawMessage) error {
	now := time.Now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return errors.New("statslog: closed")
	}
	for _, ev := range events {
		line := append(l.line[:0], `{"received":`...)
		line = strconv.AppendInt(line, now, 10)
		if ignored != "" {
			line = append(line, `,"ignored":`...)
			line = strconv.AppendQuote(line, ignored)
		}
		line = append(line, `,"event":`...)
		line = append(line, ev...)
		line = append(line, "}\n"...)
		l.line = line
		if l.size+int64(len(line)) > l.cfg.SegmentBytes && l.size > 0 {
			if err := l.rotate(); err != nil {
				return err
			}
		}
		if _, err := l.w.Write(line); err != nil {
			return fmt.Errorf("statslog: write: %w", err)
		}
		l.size += int64(len(line))
	}
	return nil
}

// Size is the bytes on disk (plus buffered) across all segments.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var total int64
	for _, s := range l.segs[:len(l.segs)-1] {
		total += s.size
	}
	return total + l.size
}

// Record is one stored event.
type Record struct {
	Received time.Time
	// Ignored is the reason the event was not counted, "" for a counted
	// event (and for every event of logs written before the marker).
	Ignored string
	Event   json.RawMessage
}

// Events calls fn for every stored event, oldest first, until fn returns
// false. Buffered events are flushed first. Ignored events are included;
// Records tells them apart.
func (l *Log) Events(fn func(received time.Time, event json.RawMessage) bool) error {
	return l.Records(func(r Record) bool { return fn(r.Received, r.Event) })
}

// Records calls fn for every stored event with its marker, oldest first,
// until fn returns false. Buffered events are flushed first.
func (l *Log) Records(fn func(Record) bool) error {
	l.mu.Lock()
	if l.w != nil {
		if err := l.w.Flush(); err != nil {
			l.mu.Unlock()
			return fmt.Errorf("statslog: flush: %w", err)
		}
	}
	names := make([]string, len(l.segs))
	for i, s := range l.segs {
		names[i] = s.name
	}
	l.mu.Unlock()
	for _, n := range names {
		more, err := readSegment(filepath.Join(l.cfg.Dir, n), fn)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// readSegment calls fn for each event of one segment file; more is false
// once fn asked to stop. A segment dropped meanwhile reads as empty.
func readSegment(path string, fn func(Record) bool) (more bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return true, nil // dropped by rotation meanwhile
		}
		return false, fmt.Errorf("statslog: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec struct {
			Received int64           `json:"received"`
			Ignored  string          `json:"ignored"`
			Event    json.RawMessage `json:"event"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // a torn last line after a crash
		}
		if !fn(Record{Received: time.UnixMilli(rec.Received), Ignored: rec.Ignored, Event: rec.Event}) {
			return false, nil
		}
	}
	return true, nil
}

// Close flushes and closes the log. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.f == nil {
		l.mu.Unlock()
		return nil
	}
	close(l.done)
	err := errors.Join(l.w.Flush(), l.f.Sync(), l.f.Close())
	l.f, l.w = nil, nil
	l.mu.Unlock()
	l.wg.Wait()
	if err != nil {
		return fmt.Errorf("statslog: close: %w", err)
	}
	return nil
}
