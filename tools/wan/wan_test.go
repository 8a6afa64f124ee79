//go:build linux

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"mirrord/tools/toolstest"
)

// TestShortScenario runs the whole scenario small: a hub and one PoP at
// 10 ms RTT, a 1 MB release, a 2 s cut. It asserts only that every step
// completes and produces its numbers (no timing asserts); it skips where
// namespaces or TUN devices are not available (not root, a container
// without CAP_NET_ADMIN).
func TestShortScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real mirrord processes")
	}
	if err := canRun(); err != nil {
		t.Skip(err)
	}
	o := options{
		Bin: buildMirrord(t), Dir: t.TempDir(), PoPs: 1, RTTs: []time.Duration{10 * time.Millisecond},
		Jitter: time.Millisecond, Loss: 0.001, Rate: 100e6, Size: 1e6, Partition: 2 * time.Second, Wait: 60 * time.Second,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	r, err := run(ctx, o)
	if r != nil {
		var b bytes.Buffer
		printTable(&b, o, r)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case r.Baseline == 0 || r.Publish == 0:
		t.Error("no TCP copy or publish time")
	case r.PoPs[0].Ready == 0:
		t.Error("the PoP never held the release")
	case r.HubEgress == 0 || r.ReleaseBytes == 0:
		t.Error("no egress or release size counted")
	case r.PartitionCheck.OK == 0 || r.KillChecks.OK == 0:
		t.Error("no device check answered")
	case r.CatchUp == 0:
		t.Error("the cut PoP did not catch up")
	}
}

// buildMirrord builds the binary under test into a temporary directory.
func buildMirrord(t *testing.T) string {
	t.Helper()
	toolstest.StatModule(t)
	bin, err := buildMirrordIn(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestParseFlags(t *testing.T) {
	dir := t.TempDir()
	o, err := parseFlags([]string{"-pops", "8", "-rtt", "20ms, 150ms", "-size", "20", "-dir", dir})
	if err != nil {
		t.Fatal(err)
	}
	if o.PoPs != 8 || len(o.RTTs) != 2 || o.RTTs[1] != 150*time.Millisecond || o.Size != 20e6 || o.Rate != 100e6 || o.Dir != dir {
		t.Errorf("got %+v", o)
	}
	for _, bad := range [][]string{{"-pops", "9"}, {"-pops", "0"}, {"-rtt", "fast"}} {
		if _, err := parseFlags(append(bad, "-dir", dir)); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: err %v", bad, err)
		}
	}
}
