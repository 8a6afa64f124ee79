package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"

	"mirrord/node/adminapi"
	"mirrord/node/inbox"
)

// inboxPublisher publishes watch-folder bundles through this node's own
// admin API, with the same code and checks as `mirrord publish`.
type inboxPublisher struct {
	c   *client
	log *slog.Logger
}

// Publish implements inbox.Publisher.
func (p inboxPublisher) Publish(ctx context.Context, b inbox.Bundle) (inbox.Published, error) {
	m := b.Meta
	o := publishOptions{App: m.App, Version: m.Version, Path: b.Dir, Skip: b.Skip, Key: b.Key,
		Channel: m.Channel, MinNative: m.MinNative}
	if m.SessionKey != "" {
		o.Path, o.SessionKey, o.Checksum = filepath.Join(b.Dir, inbox.ZipName), m.SessionKey, m.Checksum
	}
	if err := o.check(); err != nil {
		return inbox.Published{}, err
	}
	rel, _, err := publish(ctx, p.c, o, logWriter{p.log.With("entry", b.Name)})
	if err != nil {
		var ae *apiErr
		if errors.As(err, &ae) && (ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusBadGateway ||
			ae.Status == http.StatusGatewayTimeout || ae.Status == http.StatusTooManyRequests) {
			return inbox.Published{}, &inbox.TemporaryError{Err: err}
		}
		if strings.HasPrefix(err.Error(), "cannot reach mirrord") {
			return inbox.Published{}, &inbox.TemporaryError{Err: err}
		}
		return inbox.Published{}, err
	}
	return inbox.Published{App: m.App, Version: rel.Version, Checksum: rel.Checksum, Channel: m.Channel}, nil
}

// Exists implements inbox.Publisher.
func (p inboxPublisher) Exists(ctx context.Context, app, version string) (bool, error) {
	var rels []adminapi.ReleaseInfo
	err := p.c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(app)+"/releases", nil, &rels)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, &inbox.TemporaryError{Err: err}
	}
	for _, r := range rels {
		if r.Version == version {
			return true, nil
		}
	}
	return false, nil
}

// logWriter turns publish's notes into log lines.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	w.log.Info("inbox: " + strings.TrimSpace(string(b)))
	return len(b), nil
}

// testHookInbox, when set (by tests), receives each node's watcher.
var testHookInbox func(*inbox.Watcher)

// startInbox runs the watch folder of cfg against this node's admin API
// at addr; the returned function stops it and waits.
func startInbox(ctx context.Context, dir, journal, addr, token string, log *slog.Logger) (*inbox.Watcher, func(), error) {
	c := &client{server: "http://" + addr, token: token, hc: &http.Client{}}
	w, err := inbox.New(inbox.Config{Dir: dir, Journal: journal, Publisher: inboxPublisher{c: c, log: log}, Log: log})
	if err != nil {
		return nil, nil, fmt.Errorf("inbox: %w", err)
	}
	ictx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ictx) }()
	return w, func() { cancel(); <-done }, nil
}
