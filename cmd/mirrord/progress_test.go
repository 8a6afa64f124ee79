package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 10, "[..........]"}, {5, 10, "[#####.....]"}, {10, 10, "[##########]"}, {20, 10, "[##########]"}, {0, 0, "[          ]"},
	} {
		if got := bar(tc.done, tc.total, 10); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
	var b bytes.Buffer
	p := &uploadProgress{w: &b}
	p.Start(300, 3)
	p.Add(100)
	p.Add(100)
	p.Add(100)
	if out := b.String(); !strings.Contains(out, "3/3 objects") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("progress %q", out)
	}
}

// TestStatusWatch: without a terminal, --watch prints one snapshot per
// interval until the context ends.
func TestStatusWatch(t *testing.T) {
	n := startNode(t, "")
	var out lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"status", "--watch", "--interval", "100ms", "--server", n.url, "--token", n.token}, &out, &out)
	}()
	consensustest.WaitFor(t, "two snapshots", func() bool { return strings.Count(out.String(), "app(s)") >= 2 }, 10*time.Second)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatal("terminal escapes written to a pipe")
	}
	if _, err := n.cliErr("status", "--watch", "--json"); err == nil {
		t.Fatal("--watch --json accepted")
	}
}
