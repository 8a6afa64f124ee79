package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"mirrord/node/adminapi"
)

// isTerminal reports whether w is a character device (a terminal), so
// that progress bars are drawn only for people, not into pipes and logs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// bar draws a fixed-width progress bar for done of total.
func bar(done, total int64, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat(" ", width) + "]"
	}
	n := int(int64(width) * min(done, total) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// uploadProgress redraws one line on a terminal as objects upload.
type uploadProgress struct {
	w     io.Writer
	total int64
	files int
	done  int64
	sent  int
	last  time.Time
}

// Add implements publish.Progress.
func (p *uploadProgress) Add(n int64) {
	p.done += n
	p.sent++
	// At most ~10 redraws a second, and always the last one.
	if p.sent < p.files && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r%s %s / %s, %d/%d objects", bar(p.done, p.total, 30), humanBytes(p.done), humanBytes(p.total), p.sent, p.files)
	if p.sent == p.files {
		fmt.Fprintln(p.w)
	}
}

// watchStatus prints the status every interval until ctx ends: on a
// terminal it redraws the screen with a replication bar per release and
// node; otherwise it prints one snapshot after another.
func watchStatus(ctx context.Context, c *adminapi.Client, w io.Writer, interval time.Duration, term bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		out, err := c.Status(ctx)
		if term {
			fmt.Fprint(w, "\x1b[H\x1b[2J")
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(w, "%s: %v (retrying every %s)\n", time.Now().Format(time.TimeOnly), err, interval)
		} else {
			fmt.Fprintf(w, "%s  (every %s; Ctrl-C to stop)\n", time.Now().Format(time.TimeOnly), interval)
			printStatus(w, out)
			printReplicationBars(w, out)
		}
		if !term {
			fmt.Fprintln(w)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// printReplicationBars draws blocks held of known per release and node.
func printReplicationBars(w io.Writer, out adminapi.Status) {
	for _, rs := range out.Releases {
		for _, n := range out.Nodes {
			for _, p := range n.Releases {
				if p.App != rs.App || p.Version != rs.Version || p.Ready {
					continue
				}
				fmt.Fprintf(w, "%s %s on %s %s %d/%d blocks\n", rs.App, rs.Version, shortID(n.ID),
					bar(int64(p.BlocksHeld), int64(p.BlocksKnown), 30), p.BlocksHeld, p.BlocksKnown)
			}
		}
	}
}

// Start implements publish.Progress.
func (p *uploadProgress) Start(total int64, objects int) { p.total, p.files = total, objects }
