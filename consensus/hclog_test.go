package consensus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogBridge(t *testing.T) {
	var buf bytes.Buffer
	l := newHCLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if l.IsTrace() || !l.IsDebug() || l.GetLevel() != hclog.Debug {
		t.Errorf("levels: trace %v debug %v level %v", l.IsTrace(), l.IsDebug(), l.GetLevel())
	}
	sub := l.Named("raft").Named("wal").With("peer", "n2")
	sub.Trace("hidden")
	sub.Warn("failed to contact", "error", "timeout")
	if got := sub.ImpliedArgs(); len(got) != 2 || sub.Name() != "raft.wal" {
		t.Errorf("implied %v name %q", got, sub.Name())
	}
	sub.ResetNamed("snap").Info("reset")
	sub.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}).Print("[ERROR] boom")
	sub.StandardWriter(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}).Write([]byte("forced\n"))
	out := buf.String()
	for _, want := range []string{
		`level=WARN msg="failed to contact" logger=raft.wal peer=n2 error=timeout`,
		`level=INFO msg=reset logger=snap peer=n2`,
		`level=ERROR msg=boom logger=raft.wal peer=n2`,
		`level=DEBUG msg=forced`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hidden") {
		t.Error("trace line logged at debug level")
	}
}
