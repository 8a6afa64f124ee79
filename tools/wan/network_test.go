//go:build linux

package main

import (
	"context"
	"testing"
	"time"
)

// TestLinkShapes builds two namespaces joined by a shaped link and
// copies bytes over TCP through it: the WAN's plumbing works here.
func TestLinkShapes(t *testing.T) {
	if err := canRun(); err != nil {
		t.Skip(err)
	}
	w := newNetwork()
	defer w.close()
	a, err := w.addNamespace("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := w.addNamespace("b")
	if err != nil {
		t.Fatal(err)
	}
	spec := linkSpec{Delay: 10 * time.Millisecond, Rate: 100e6, Queue: 50 * time.Millisecond}
	w.connect(a, b, spec)
	w.connect(b, a, spec)
	w.start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const size = 4 << 20
	d, err := tcpCopy(ctx, a, b, size)
	if err != nil {
		t.Fatal(err)
	}
	st := w.link(a, b).stats()
	t.Logf("4 MiB in %v (%.1f Mbit/s); a->b %+v", d, size*8/d.Seconds()/1e6, st)
	if st.Bytes < size {
		t.Errorf("the link carried %d bytes, less than the %d sent", st.Bytes, size)
	}
}
