//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// tcpCopy sends size bytes over one plain TCP connection from namespace
// from to namespace to and returns the time from the dial until the
// receiver has read the last byte: the yardstick for a replication over
// the same link.
func tcpCopy(ctx context.Context, from, to *endpoint, size int64) (time.Duration, error) {
	ln, err := listenIn(to.ns, net.JoinHostPort(to.ip.String(), "7070"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	got := make(chan error, 1)
	var end time.Time
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		end = time.Now()
		if err == nil && n != size {
			err = fmt.Errorf("received %d of %d bytes", n, size)
		}
		got <- err
	}()
	start := time.Now()
	c, err := dialIn(ctx, from.ns, ln.Addr().String())
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { c.Close(); ln.Close() })
	defer stop()
	buf := make([]byte, 256<<10)
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := c.Write(buf[:n]); err != nil {
			c.Close()
			return 0, fmt.Errorf("send: %w", err)
		}
		left -= n
	}
	c.Close()
	if err := <-got; err != nil {
		return 0, fmt.Errorf("receive: %w", err)
	}
	return end.Sub(start), nil
}
