package main

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"
)

// closers are what serve opened (stores, host, consensus), closed in
// the reverse order of opening.
type closers struct {
	log *slog.Logger
	fns []closer
}

type closer struct {
	what string
	fn   func() error
}

// add registers fn to close what; a nil error or an ignored one is not
// logged.
func (c *closers) add(what string, fn func() error) {
	c.fns = append(c.fns, closer{what, fn})
}

// close closes everything, last opened first, logging failures.
func (c *closers) close() {
	for i := len(c.fns) - 1; i >= 0; i-- {
		closeLogged(c.log, c.fns[i].what, c.fns[i].fn)
	}
	c.fns = nil
}

// parts runs the node's long-lived parts under one errgroup. Each part
// is a Run(ctx) error that blocks until its context ends; stop ends
// them one at a time, last started first, each after the previous one
// returned, so a part never outlives one it depends on.
type parts struct {
	g *errgroup.Group
	// failed is done once a part returned an error (the group's
	// context); every part stops then.
	failed context.Context
	stops  []func()
}

func newParts() *parts {
	g, ctx := errgroup.WithContext(context.Background())
	return &parts{g: g, failed: ctx}
}

// start runs run in the group with its own context.
func (p *parts) start(name string, run func(context.Context) error) {
	ctx, cancel := context.WithCancel(p.failed)
	done := make(chan struct{})
	p.g.Go(func() error {
		defer close(done)
		if err := run(ctx); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
	p.stops = append(p.stops, func() {
		cancel()
		<-done
	})
}

// stop stops every part, last started first, and returns the first
// error a part failed with.
func (p *parts) stop() error {
	for i := len(p.stops) - 1; i >= 0; i-- {
		p.stops[i]()
	}
	p.stops = nil
	return p.g.Wait()
}
