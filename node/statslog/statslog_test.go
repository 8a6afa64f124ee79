package statslog

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func count(t *testing.T, l *Log) (n int, first, last string) {
	t.Helper()
	err := l.Events(func(_ time.Time, ev json.RawMessage) bool {
		var e struct{ N int }
		json.Unmarshal(ev, &e)
		if n == 0 {
			first = fmt.Sprint(e.N)
		}
		last = fmt.Sprint(e.N)
		n++
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, first, last
}

func TestAppendReopenAndBound(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxBytes: 64 << 10, SegmentBytes: 8 << 10, FlushInterval: time.Hour}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := l.Append([]json.RawMessage{json.RawMessage(fmt.Sprintf(`{"N":%d,"action":"set"}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	if n, first, last := count(t, l); n != 10 || first != "0" || last != "9" {
		t.Fatalf("got %d events %s..%s", n, first, last)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	// Reopen keeps the events, then a flood stays within the bound and
	// drops the oldest.
	l, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, _, _ := count(t, l); n != 10 {
		t.Fatalf("after reopen: %d events", n)
	}
	for i := 10; i < 5000; i++ {
		if err := l.Append([]json.RawMessage{json.RawMessage(fmt.Sprintf(`{"N":%d,"action":"download_complete"}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	n, first, last := count(t, l)
	if last != "4999" || first == "0" || n >= 5000 {
		t.Fatalf("bound not applied: %d events %s..%s", n, first, last)
	}
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	for _, f := range files {
		info, _ := os.Stat(f)
		total += info.Size()
	}
	if total > cfg.MaxBytes {
		t.Fatalf("%d bytes on disk, bound %d", total, cfg.MaxBytes)
	}
	if l.Size() > cfg.MaxBytes {
		t.Fatalf("Size %d over bound", l.Size())
	}
}

func TestTornLineIgnored(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "00000000000000000001.jsonl"), []byte(`{"received":1,"event":{"N":1}}`+"\n"+`{"received":2,"ev`), 0o644)
	l, err := Open(Config{Dir: dir, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if n, _, _ := count(t, l); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}
}

// TestRetention drops closed segments older than the retention, keeps
// newer ones and the open segment.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "00000000000000000001.jsonl")
	if err := os.WriteFile(old, []byte(`{"received":1,"event":{"N":1}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recent := filepath.Join(dir, "00000000000000000002.jsonl")
	if err := os.WriteFile(recent, []byte(`{"received":2,"event":{"N":2}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	l, err := Open(Config{Dir: dir, Retention: 24 * time.Hour, FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.mu.Lock()
	err = l.dropExpired(time.Now())
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("expired segment kept: %v", err)
	}
	if n, first, _ := count(t, l); n != 1 || first != "2" {
		t.Fatalf("events %d first %s", n, first)
	}
}

// TestIgnoredMarker: ignored events carry their reason through a reopen,
// counted ones carry none, and a segment written before the marker
// existed reads as counted events.
func TestIgnoredMarker(t *testing.T) {
	dir := t.TempDir()
	old := `{"received":1,"event":{"N":0,"action":"download_fail"}}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.jsonl"), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dir: dir, MaxBytes: 1 << 20, FlushInterval: time.Hour}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append([]json.RawMessage{json.RawMessage(`{"N":1,"action":"set"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendIgnored(`legacy_download_fail`, []json.RawMessage{
		json.RawMessage(`{"N":2,"action":"download_fail"}`), json.RawMessage(`{"N":3,"action":"download_fail"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendIgnored("", []json.RawMessage{json.RawMessage(`{"N":4}`)}); err == nil {
		t.Fatal("AppendIgnored without a reason was accepted")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var got []string
	err = l.Records(func(r Record) bool {
		var e struct{ N int }
		if err := json.Unmarshal(r.Event, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", e.N, r.Ignored))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[0: 1: 2:legacy_download_fail 3:legacy_download_fail]"; fmt.Sprint(got) != want {
		t.Fatalf("records %v, want %s", got, want)
	}
	if n, _, _ := count(t, l); n != 4 {
		t.Fatalf("Events saw %d events, want 4 (ignored ones included)", n)
	}
	// Stopping early stops.
	seen := 0
	if err := l.Records(func(Record) bool { seen++; return false }); err != nil || seen != 1 {
		t.Fatalf("early stop: %d records, %v", seen, err)
	}
}

// TestFloodOfIgnoredKeepsCounted: ignored events have their own bounded
// area, so a flood of them (here 40 times that area's bound) drops only
// older ignored events; every counted event stays, and readers see both
// areas merged by time of receipt.
func TestFloodOfIgnoredKeepsCounted(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Dir: dir, MaxBytes: 64 << 10, IgnoredMaxBytes: 32 << 10, SegmentBytes: 8 << 10, FlushInterval: time.Hour}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	flood := make([]json.RawMessage, 100)
	for i := 0; i < 200; i++ {
		if i%20 == 0 {
			if err := l.Append([]json.RawMessage{json.RawMessage(fmt.Sprintf(`{"N":%d,"action":"update_fail"}`, i))}); err != nil {
				t.Fatal(err)
			}
		}
		for j := range flood {
			flood[j] = json.RawMessage(fmt.Sprintf(`{"N":%d,"action":"update_fail","device_id":"forged"}`, 1000+i*100+j))
		}
		if err := l.AppendIgnored("unverified_device", flood); err != nil {
			t.Fatal(err)
		}
	}
	var counted []string
	ignored := 0
	var prev time.Time
	err = l.Records(func(r Record) bool {
		if r.Received.Before(prev) {
			t.Fatalf("records out of order: %v after %v", r.Received, prev)
		}
		prev = r.Received
		if r.Ignored == "" {
			var e struct{ N int }
			json.Unmarshal(r.Event, &e)
			counted = append(counted, fmt.Sprint(e.N))
		} else {
			ignored++
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "[0 20 40 60 80 100 120 140 160 180]"; fmt.Sprint(counted) != want {
		t.Fatalf("counted events %v, want %s", counted, want)
	}
	if ignored == 0 || ignored >= 20000 {
		t.Fatalf("%d ignored events kept of 20000", ignored)
	}
	var total int64
	files, _ := filepath.Glob(filepath.Join(dir, IgnoredDir, "*.jsonl"))
	for _, f := range files {
		info, _ := os.Stat(f)
		total += info.Size()
	}
	if total > cfg.IgnoredMaxBytes {
		t.Fatalf("ignored area holds %d bytes, bound %d", total, cfg.IgnoredMaxBytes)
	}
	if l.Size() > cfg.MaxBytes+cfg.IgnoredMaxBytes {
		t.Fatalf("Size %d", l.Size())
	}
}
