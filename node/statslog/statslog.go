// Package statslog keeps device stats events on disk, bounded in size.
//
// Events are appended as JSON lines to segment files under a directory;
// when a segment reaches its size it is closed and a new one started, and
// the oldest segments are deleted so that the total stays under the
// configured bound. Writes are buffered and flushed at least every
// FlushInterval and on Close: stats are telemetry, so a crash may lose
// the last interval of events but never corrupts earlier segments.
//
// The log has two areas, each with its own bound: counted events (and
// the other events of devices the node verified) in Dir, and events
// kept but not counted (AppendIgnored: unverified devices, duplicates,
// legacy download_fail, unknown versions) in Dir/ignored. Anyone can
// send the second kind, so a flood of them drops only older events of
// their own area and never a counted one. Readers see both areas merged
// by time of receipt.
package statslog

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
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
	MaxBytes      int64         // total bound for the segments of counted events
	SegmentBytes  int64         // size at which a segment is rotated
	FlushInterval time.Duration // how often buffered events reach the disk
	// Retention drops closed segments whose newest event is older than
	// this; 0 keeps them until MaxBytes pushes them out.
	Retention time.Duration
	// IgnoredMaxBytes bounds the area of ignored events (Dir/ignored);
	// 0 means MaxBytes/4.
	IgnoredMaxBytes int64
}

// IgnoredDir is the subdirectory of the ignored events' area.
const IgnoredDir = "ignored"

// Log is an append-only, size-bounded event log.
type Log struct {
	cfg     Config
	mu      sync.Mutex
	counted *area
	ignored *area
	done    chan struct{}
	wg      sync.WaitGroup
	err     error
	line    []byte // reused by Append (under mu)
	closed  bool
}

// area is one directory of segments with its own bound.
type area struct {
	dir          string
	maxBytes     int64
	segmentBytes int64
	f            *os.File
	w            *bufio.Writer
	size         int64 // bytes in the current segment
	segs         []segment
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
	if cfg.IgnoredMaxBytes <= 0 {
		cfg.IgnoredMaxBytes = max(cfg.MaxBytes/4, 8192)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = time.Second
	}
	l := &Log{cfg: cfg, done: make(chan struct{})}
	var err error
	if l.counted, err = openArea(cfg.Dir, cfg.MaxBytes, cfg.SegmentBytes); err != nil {
		return nil, err
	}
	if l.ignored, err = openArea(filepath.Join(cfg.Dir, IgnoredDir), cfg.IgnoredMaxBytes, cfg.SegmentBytes); err != nil {
		_ = l.counted.close()
		return nil, err
	}
	l.wg.Add(1)
	go l.flusher()
	return l, nil
}

func openArea(dir string, maxBytes, segmentBytes int64) (*area, error) {
	if segmentBytes <= 0 || segmentBytes > maxBytes/2 {
		segmentBytes = max(maxBytes/8, 4096)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("statslog: %w", err)
	}
	a := &area{dir: dir, maxBytes: maxBytes, segmentBytes: segmentBytes}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("statslog: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".jsonl") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		a.segs = append(a.segs, segment{name: e.Name(), size: info.Size(), last: info.ModTime()})
	}
	sort.Slice(a.segs, func(i, j int) bool { return a.segs[i].name < a.segs[j].name })
	if err := a.rotate(); err != nil {
		return nil, err
	}
	return a, nil
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
			if !l.closed {
				if err := errors.Join(l.counted.flush(), l.ignored.flush(), l.dropExpired(time.Now())); err != nil {
					l.err = err
				}
			}
			l.mu.Unlock()
		}
	}
}

func (a *area) flush() error {
	if a.w == nil {
		return nil
	}
	if err := a.w.Flush(); err != nil {
		return fmt.Errorf("statslog: flush: %w", err)
	}
	return nil
}

// rotate closes the current segment and opens a new one, then drops the
// oldest segments beyond the bound. Called with mu held (or before use).
func (a *area) rotate() error {
	if a.f != nil {
		if err := a.w.Flush(); err != nil {
			return fmt.Errorf("statslog: flush: %w", err)
		}
		if err := a.f.Close(); err != nil {
			return fmt.Errorf("statslog: close: %w", err)
		}
		a.segs[len(a.segs)-1].size = a.size
		a.segs[len(a.segs)-1].last = time.Now()
	}
	name := fmt.Sprintf("%020d.jsonl", time.Now().UnixNano())
	if n := len(a.segs); n > 0 && name <= a.segs[n-1].name {
		name = fmt.Sprintf("%s-%d.jsonl", strings.TrimSuffix(a.segs[n-1].name, ".jsonl"), n)
	}
	f, err := os.OpenFile(filepath.Join(a.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("statslog: %w", err)
	}
	a.f, a.w, a.size = f, bufio.NewWriterSize(f, 64<<10), 0
	a.segs = append(a.segs, segment{name: name})
	var total int64
	for _, s := range a.segs {
		total += s.size
	}
	for len(a.segs) > 1 && total+a.segmentBytes > a.maxBytes {
		old := a.segs[0]
		if err := os.Remove(filepath.Join(a.dir, old.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("statslog: drop old segment: %w", err)
		}
		total -= old.size
		a.segs = a.segs[1:]
	}
	return nil
}

// dropExpired deletes closed segments past the retention. Called with mu
// held.
func (l *Log) dropExpired(now time.Time) error {
	if l.cfg.Retention <= 0 {
		return nil
	}
	return errors.Join(l.counted.dropExpired(now, l.cfg.Retention), l.ignored.dropExpired(now, l.cfg.Retention))
}

func (a *area) dropExpired(now time.Time, retention time.Duration) error {
	for len(a.segs) > 1 && now.Sub(a.segs[0].last) > retention {
		if err := os.Remove(filepath.Join(a.dir, a.segs[0].name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("statslog: drop expired segment: %w", err)
		}
		a.segs = a.segs[1:]
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
	if l.closed {
		return errors.New("statslog: closed")
	}
	a := l.counted
	if ignored != "" {
		a = l.ignored
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
		if a.size+int64(len(line)) > a.segmentBytes && a.size > 0 {
			if err := a.rotate(); err != nil {
				return err
			}
		}
		if _, err := a.w.Write(line); err != nil {
			return fmt.Errorf("statslog: write: %w", err)
		}
		a.size += int64(len(line))
	}
	return nil
}

// Size is the bytes on disk (plus buffered) across all segments of
// both areas.
func (l *Log) Size() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counted.bytes() + l.ignored.bytes()
}

func (a *area) bytes() int64 {
	var total int64
	for _, s := range a.segs[:len(a.segs)-1] {
		total += s.size
	}
	return total + a.size
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

// Records calls fn for every stored event with its marker, oldest first
// (both areas merged by time of receipt; counted events first within a
// millisecond), until fn returns false. Buffered events are flushed
// first.
func (l *Log) Records(fn func(Record) bool) error {
	l.mu.Lock()
	if err := errors.Join(l.counted.flush(), l.ignored.flush()); err != nil {
		l.mu.Unlock()
		return err
	}
	counted, ignored := l.counted.paths(), l.ignored.paths()
	l.mu.Unlock()
	var err error
	nextC, stopC := iter.Pull(readSegments(counted, &err))
	defer stopC()
	nextI, stopI := iter.Pull(readSegments(ignored, &err))
	defer stopI()
	c, okC := nextC()
	g, okI := nextI()
	for okC || okI {
		var r Record
		if okC && (!okI || !g.Received.Before(c.Received)) {
			r = c
			c, okC = nextC()
		} else {
			r = g
			g, okI = nextI()
		}
		if !fn(r) {
			return nil
		}
	}
	return err
}

// paths are the files of the area's segments, oldest first.
func (a *area) paths() []string {
	out := make([]string, len(a.segs))
	for i, s := range a.segs {
		out[i] = filepath.Join(a.dir, s.name)
	}
	return out
}

// readSegments yields the events of segment files in order; a read
// error ends it and is joined into *errp.
func readSegments(paths []string, errp *error) iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for _, p := range paths {
			more, err := readSegment(p, yield)
			if err != nil {
				*errp = errors.Join(*errp, err)
				return
			}
			if !more {
				return
			}
		}
	}
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
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.done)
	err := errors.Join(l.counted.close(), l.ignored.close())
	l.mu.Unlock()
	l.wg.Wait()
	return err
}

func (a *area) close() error {
	if a.f == nil {
		return nil
	}
	err := errors.Join(a.w.Flush(), a.f.Sync(), a.f.Close())
	a.f, a.w = nil, nil
	if err != nil {
		return fmt.Errorf("statslog: close: %w", err)
	}
	return nil
}
