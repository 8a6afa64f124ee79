package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"mirrord/content"
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
	created, err := p.ensureApp(ctx, b)
	if err != nil {
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
	return inbox.Published{App: m.App, Version: rel.Version, Checksum: rel.Checksum, Channel: m.Channel, CreatedApp: created}, nil
}

// ensureApp makes sure the bundle's app exists. An unknown app is an
// error saying how to create it, unless release.yaml opts in with
// create_app: true; then the app is created with the public half of
// release.yaml's key when the bundle is to be encrypted, plain
// otherwise. A bundle already encrypted by the Capgo CLI cannot tell the
// public key, so its app must always be created first.
func (p inboxPublisher) ensureApp(ctx context.Context, b inbox.Bundle) (bool, error) {
	var app adminapi.AppInfo
	err := p.c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(b.Meta.App), nil, &app)
	if err == nil {
		return false, nil
	}
	if !isNotFound(err) {
		return false, &inbox.TemporaryError{Err: err}
	}
	id := b.Meta.App
	switch {
	case b.Meta.SessionKey != "":
		return false, fmt.Errorf("app %s does not exist, and an already encrypted bundle does not carry its public key: "+
			"create it first with `mirrord app create %s --public-key PUB.pem`", id, id)
	case !b.Meta.CreateApp && b.Key != "":
		return false, fmt.Errorf("app %s does not exist on this cluster (is the app id right?): create it first with "+
			"`mirrord app create %s --public-key PUB.pem` (the public half of %s), "+
			"or add `create_app: true` to release.yaml to have the inbox create it with that key", id, id, b.Meta.Key)
	case !b.Meta.CreateApp:
		return false, fmt.Errorf("app %s does not exist on this cluster (is the app id right?): create it first with "+
			"`mirrord app create %s --public-key PUB.pem` (or without --public-key for plain bundles), "+
			"or add `create_app: true` to release.yaml to have the inbox create it", id, id)
	}
	req := adminapi.CreateAppRequest{ID: id}
	if b.Key != "" {
		pem, err := os.ReadFile(b.Key)
		if err != nil {
			return false, fmt.Errorf("key: %w", err)
		}
		priv, err := content.ParsePrivateKey(pem)
		if err != nil {
			return false, fmt.Errorf("key %s: %w", b.Key, err)
		}
		req.PublicKey = string(content.PublicKeyPEM(&priv.PublicKey))
	}
	if err := p.c.do(ctx, "POST", "/admin/v1/apps", req, &app); err != nil {
		return false, fmt.Errorf("create app %s: %w", b.Meta.App, err)
	}
	p.log.Info("inbox: created app", "app", app.ID, "key_id", app.KeyID)
	return true, nil
}

// Exists implements inbox.Publisher.
func (p inboxPublisher) Exists(ctx context.Context, app, version string) (bool, error) {
	var rels []adminapi.ReleaseInfo
	err := p.c.do(ctx, "GET", "/admin/v1/apps/"+pathEsc(app)+"/releases?manifest=false", nil, &rels)
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
