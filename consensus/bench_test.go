package consensus

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkApplyDurable measures one admin write on a single on-disk
// node, from proposal to acknowledgement: raft's WAL append and fsync,
// the FSM apply, and the applied mark's write (restart.go) that an
// acknowledgement now waits for.
func BenchmarkApplyDurable(b *testing.B) {
	cfg := testConfig(b, b.TempDir())
	cfg.Logger = nil
	n := openNode(b, cfg)
	defer n.Close()
	for _, cmd := range base {
		if _, err := n.Apply(context.Background(), cmd); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := n.Apply(context.Background(), DeviceSet{App: app, DeviceID: fmt.Sprintf("D%d", i), Channel: "production"}); err != nil {
			b.Fatal(err)
		}
	}
}
