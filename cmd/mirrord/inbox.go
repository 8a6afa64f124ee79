package main

import (
	"fmt"
	"path/filepath"

	"mirrord/node/inbox"
)

// testHookInbox, when set (by tests), receives each node's watcher.
var testHookInbox func(*inbox.Watcher)

// startInbox runs the watch folder, when one is configured, as a part
// of the node: it publishes in-process through this node's admin API
// and stops before the services it publishes through.
func (d *daemon) startInbox() error {
	if d.cfg.Node.Inbox == "" {
		return nil
	}
	w, err := inbox.NewWatcher(inbox.Config{Dir: d.cfg.Node.Inbox, Journal: filepath.Join(d.data, "inbox.json"),
		Log: d.log.With("component", "inbox")}, d.admin.Local())
	if err != nil {
		return fmt.Errorf("inbox: %w", err)
	}
	if testHookInbox != nil {
		testHookInbox(w)
	}
	d.parts.start("inbox", w.Run)
	return nil
}
