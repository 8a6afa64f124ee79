package consensus

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

var _ hclog.Logger = (*hclogBridge)(nil)

// levelTrace is the slog level used for hclog's Trace, below Debug.
const levelTrace = slog.LevelDebug - 4

// hclogBridge is an hclog.Logger that forwards to a *slog.Logger, so
// raft and raft-wal log through mirrord's handler with proper levels
// and key/value pairs. The level is the slog handler's; SetLevel is a
// no-op.
type hclogBridge struct {
	base    *slog.Logger // without name and implied args
	l       *slog.Logger // base with name and implied args
	name    string
	implied []any
}

// newHCLogger returns an hclog.Logger writing to l.
func newHCLogger(l *slog.Logger) hclog.Logger { return newBridge(l, "", nil) }

func newBridge(base *slog.Logger, name string, implied []any) *hclogBridge {
	l := base
	if name != "" {
		l = l.With("logger", name)
	}
	if len(implied) > 0 {
		l = l.With(implied...)
	}
	return &hclogBridge{base: base, l: l, name: name, implied: implied}
}

func slogLevel(level hclog.Level) (slog.Level, bool) {
	switch level {
	case hclog.Trace:
		return levelTrace, true
	case hclog.Debug:
		return slog.LevelDebug, true
	case hclog.Info, hclog.NoLevel:
		return slog.LevelInfo, true
	case hclog.Warn:
		return slog.LevelWarn, true
	case hclog.Error:
		return slog.LevelError, true
	}
	return 0, false // hclog.Off
}

// Log implements hclog.Logger.
func (b *hclogBridge) Log(level hclog.Level, msg string, args ...any) {
	lvl, ok := slogLevel(level)
	if !ok {
		return
	}
	ctx := context.Background()
	if !b.l.Enabled(ctx, lvl) {
		return
	}
	b.l.Log(ctx, lvl, msg, args...)
}

// Trace implements hclog.Logger.
func (b *hclogBridge) Trace(msg string, args ...any) { b.Log(hclog.Trace, msg, args...) }

// Debug implements hclog.Logger.
func (b *hclogBridge) Debug(msg string, args ...any) { b.Log(hclog.Debug, msg, args...) }

// Info implements hclog.Logger.
func (b *hclogBridge) Info(msg string, args ...any) { b.Log(hclog.Info, msg, args...) }

// Warn implements hclog.Logger.
func (b *hclogBridge) Warn(msg string, args ...any) { b.Log(hclog.Warn, msg, args...) }

// Error implements hclog.Logger.
func (b *hclogBridge) Error(msg string, args ...any) { b.Log(hclog.Error, msg, args...) }

func (b *hclogBridge) enabled(level hclog.Level) bool {
	lvl, _ := slogLevel(level)
	return b.l.Enabled(context.Background(), lvl)
}

// IsTrace implements hclog.Logger.
func (b *hclogBridge) IsTrace() bool { return b.enabled(hclog.Trace) }

// IsDebug implements hclog.Logger.
func (b *hclogBridge) IsDebug() bool { return b.enabled(hclog.Debug) }

// IsInfo implements hclog.Logger.
func (b *hclogBridge) IsInfo() bool { return b.enabled(hclog.Info) }

// IsWarn implements hclog.Logger.
func (b *hclogBridge) IsWarn() bool { return b.enabled(hclog.Warn) }

// IsError implements hclog.Logger.
func (b *hclogBridge) IsError() bool { return b.enabled(hclog.Error) }

// ImpliedArgs implements hclog.Logger.
func (b *hclogBridge) ImpliedArgs() []any { return b.implied }

// With implements hclog.Logger.
func (b *hclogBridge) With(args ...any) hclog.Logger {
	implied := append(append([]any(nil), b.implied...), args...)
	return newBridge(b.base, b.name, implied)
}

// Name implements hclog.Logger.
func (b *hclogBridge) Name() string { return b.name }

// Named implements hclog.Logger.
func (b *hclogBridge) Named(name string) hclog.Logger {
	if b.name != "" {
		name = b.name + "." + name
	}
	return newBridge(b.base, name, b.implied)
}

// ResetNamed implements hclog.Logger. The name becomes the "logger"
// attribute.
func (b *hclogBridge) ResetNamed(name string) hclog.Logger {
	return newBridge(b.base, name, b.implied)
}

// SetLevel implements hclog.Logger. It does nothing: the slog handler
// decides what is logged.
func (b *hclogBridge) SetLevel(hclog.Level) {}

// GetLevel implements hclog.Logger, deriving the level from the slog
// handler.
func (b *hclogBridge) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if b.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

// StandardLogger implements hclog.Logger.
func (b *hclogBridge) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(b.StandardWriter(opts), "", 0)
}

// StandardWriter implements hclog.Logger. Each written line becomes one
// record, at opts.ForceLevel, else at a level inferred from a "[WARN]"
// style prefix when opts.InferLevels is set, else at Info.
func (b *hclogBridge) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	w := &stdWriter{b: b, level: hclog.Info}
	if opts != nil {
		w.infer = opts.InferLevels
		if opts.ForceLevel != hclog.NoLevel {
			w.level, w.infer = opts.ForceLevel, false
		}
	}
	return w
}

type stdWriter struct {
	b     *hclogBridge
	level hclog.Level
	infer bool
}

var levelPrefixes = []struct {
	prefix string
	level  hclog.Level
}{
	{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug},
	{"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn},
	{"[ERROR]", hclog.Error}, {"[ERR]", hclog.Error},
}

// Write implements io.Writer.
func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg, level := strings.TrimSpace(string(line)), w.level
		if w.infer {
			for _, lp := range levelPrefixes {
				if rest, ok := strings.CutPrefix(msg, lp.prefix); ok {
					msg, level = strings.TrimSpace(rest), lp.level
					break
				}
			}
		}
		if msg != "" {
			w.b.Log(level, msg)
		}
	}
	return len(p), nil
}
