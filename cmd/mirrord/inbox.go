package main

import (
	"context"
	"fmt"
	"log/slog"

	"mirrord/node/adminapi"
	"mirrord/node/inbox"
)

// testHookInbox, when set (by tests), receives each node's watcher.
var testHookInbox func(*inbox.Watcher)

// startInbox runs the watch folder dir, publishing in-process through
// this node's admin API; the returned function stops it and waits.
func startInbox(ctx context.Context, dir, journal string, api *adminapi.API, log *slog.Logger) (*inbox.Watcher, func(), error) {
	w, err := inbox.NewWatcher(inbox.Config{Dir: dir, Journal: journal, Log: log}, api.Local())
	if err != nil {
		return nil, nil, fmt.Errorf("inbox: %w", err)
	}
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ictx) }()
	return w, func() { cancel(); <-done }, nil
}
