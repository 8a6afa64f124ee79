package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"mirrord/content"
	"mirrord/node/adminapi"
	"mirrord/node/publish"
)

// Admin is what AdminPublisher needs of the admin API: publishing, and
// creating an app when release.yaml asks for it. adminapi.Local (in the
// node's process) and adminapi.Client implement it.
type Admin interface {
	publish.Admin
	CreateApp(ctx context.Context, req adminapi.CreateAppRequest) (adminapi.AppInfo, error)
}

// AdminPublisher publishes bundles through the admin API with
// publish.Publish, the code of `mirrord publish`. An error that says to
// try again later (adminapi.ErrUnavailable: no raft leader, the server
// unreachable) is a TemporaryError.
type AdminPublisher struct {
	Admin Admin
	Log   *slog.Logger
}

// NewWatcher is New with an AdminPublisher over admin.
func NewWatcher(cfg Config, admin Admin) (*Watcher, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Publisher = AdminPublisher{Admin: admin, Log: cfg.Log}
	return New(cfg)
}

// Publish implements Publisher.
func (p AdminPublisher) Publish(ctx context.Context, b Bundle) (Published, error) {
	m := b.Meta
	o := publish.Options{App: m.App, Version: m.Version, Path: b.Dir, Skip: b.Skip, Key: b.Key,
		Channel: m.Channel, MinNative: m.MinNative}
	if m.SessionKey != "" {
		o.Path, o.SessionKey, o.Checksum = filepath.Join(b.Dir, ZipName), m.SessionKey, m.Checksum
	}
	if err := o.Check(); err != nil {
		return Published{}, err
	}
	created, err := p.ensureApp(ctx, b)
	if err != nil {
		return Published{}, err
	}
	res, err := publish.Publish(ctx, p.Admin, o, logWriter{p.Log.With("entry", b.Name)})
	if err != nil {
		if errors.Is(err, adminapi.ErrUnavailable) {
			return Published{}, &TemporaryError{Err: err}
		}
		return Published{}, err
	}
	return Published{App: m.App, Version: res.Release.Version, Checksum: res.Release.Checksum, Channel: m.Channel, CreatedApp: created,
		EmptyFiles: res.EmptyFiles, NoManifest: res.NoManifest}, nil
}

// ensureApp makes sure the bundle's app exists. An unknown app is an
// error saying how to create it, unless release.yaml opts in with
// create_app: true; then the app is created with the public half of
// release.yaml's key when the bundle is to be encrypted, plain
// otherwise. A bundle already encrypted by the Capgo CLI cannot tell the
// public key, so its app must always be created first.
func (p AdminPublisher) ensureApp(ctx context.Context, b Bundle) (bool, error) {
	_, err := p.Admin.App(ctx, b.Meta.App)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, adminapi.ErrNotFound) {
		return false, &TemporaryError{Err: err}
	}
	if err := missingApp(b); err != nil {
		return false, err
	}
	req := adminapi.CreateAppRequest{ID: b.Meta.App}
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
	app, err := p.Admin.CreateApp(ctx, req)
	if err != nil {
		return false, fmt.Errorf("create app %s: %w", b.Meta.App, err)
	}
	p.Log.Info("inbox: created app", "app", app.ID, "key_id", app.KeyID)
	return true, nil
}

// missingApp is the refusal of a bundle for an app the cluster does not
// know, nil when release.yaml lets the inbox create it.
func missingApp(b Bundle) error {
	id := b.Meta.App
	switch {
	case b.Meta.SessionKey != "":
		return fmt.Errorf("app %s does not exist, and an already encrypted bundle does not carry its public key: "+
			"create it first with `mirrord app create %s --public-key PUB.pem`", id, id)
	case !b.Meta.CreateApp && b.Key != "":
		return fmt.Errorf("app %s does not exist on this cluster (is the app id right?): create it first with "+
			"`mirrord app create %s --public-key PUB.pem` (the public half of %s), "+
			"or add `create_app: true` to release.yaml to have the inbox create it with that key", id, id, b.Meta.Key)
	case !b.Meta.CreateApp:
		return fmt.Errorf("app %s does not exist on this cluster (is the app id right?): create it first with "+
			"`mirrord app create %s --public-key PUB.pem` (or without --public-key for plain bundles), "+
			"or add `create_app: true` to release.yaml to have the inbox create it", id, id)
	}
	return nil
}

// Exists implements Publisher.
func (p AdminPublisher) Exists(ctx context.Context, app, version string) (bool, error) {
	rels, err := p.Admin.Releases(ctx, app, false)
	if errors.Is(err, adminapi.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, &TemporaryError{Err: err}
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
