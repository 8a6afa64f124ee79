package adminapi

import (
	"context"
	"io"

	"mirrord/consensus/state"
)

// Local is the API for callers in the node's own process (the watch
// folder): the operations publishing needs, each first passing the read
// barrier (Config.Barrier) as an admitted HTTP request does, so that a
// follower sees the writes made through other nodes. Its errors are
// *Error, as over HTTP.
type Local struct{ a *API }

// Local returns the in-process view of the API.
func (a *API) Local() Local { return Local{a} }

func (l Local) barrier(ctx context.Context) {
	if l.a.cfg.Barrier != nil {
		if err := l.a.cfg.Barrier(ctx); err != nil {
			l.a.log.Debug("read barrier failed; answering from local state", "err", err)
		}
	}
}

// App is API.App.
func (l Local) App(ctx context.Context, id string) (AppInfo, error) {
	l.barrier(ctx)
	return l.a.App(ctx, id)
}

// CreateApp is API.CreateApp.
func (l Local) CreateApp(ctx context.Context, req CreateAppRequest) (AppInfo, error) {
	l.barrier(ctx)
	return l.a.CreateApp(ctx, req)
}

// Releases is API.Releases.
func (l Local) Releases(ctx context.Context, app string, withManifest bool) ([]ReleaseInfo, error) {
	l.barrier(ctx)
	return l.a.Releases(ctx, app, withManifest)
}

// Upload is API.Upload.
func (l Local) Upload(ctx context.Context, r io.Reader, size int64) (ObjectInfo, error) {
	l.barrier(ctx)
	return l.a.Upload(ctx, r, size)
}

// CreateRelease is API.CreateRelease.
func (l Local) CreateRelease(ctx context.Context, app string, req CreateReleaseRequest) (state.Release, error) {
	l.barrier(ctx)
	return l.a.CreateRelease(ctx, app, req)
}
