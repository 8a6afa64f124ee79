package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// TestPartsStopInOrder: parts stop last started first, each after the
// one stopped before it returned, and a part's error comes back from
// stop and stops the others.
func TestPartsStopInOrder(t *testing.T) {
	p := newParts()
	var mu sync.Mutex
	var stopped []string
	for _, name := range []string{"cluster", "replication", "fleet"} {
		p.start(name, func(ctx context.Context) error {
			<-ctx.Done()
			mu.Lock()
			stopped = append(stopped, name)
			mu.Unlock()
			return nil
		})
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"fleet", "replication", "cluster"}; !slices.Equal(stopped, want) {
		t.Fatalf("stop order %v, want %v", stopped, want)
	}

	p = newParts()
	boom := errors.New("boom")
	p.start("waits", func(ctx context.Context) error { <-ctx.Done(); return nil })
	p.start("fails", func(context.Context) error { return boom })
	<-p.failed.Done()
	if err := p.stop(); !errors.Is(err, boom) {
		t.Fatalf("stop after a failed part: %v, want boom", err)
	}
}
