package inbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

// failingAdmin answers every call with err.
type failingAdmin struct{ err error }

func (f failingAdmin) App(context.Context, string) (adminapi.AppInfo, error) {
	return adminapi.AppInfo{}, f.err
}
func (f failingAdmin) Releases(context.Context, string, bool) ([]adminapi.ReleaseInfo, error) {
	return nil, f.err
}
func (f failingAdmin) Upload(context.Context, io.Reader, int64) (adminapi.ObjectInfo, error) {
	return adminapi.ObjectInfo{}, f.err
}
func (f failingAdmin) CreateRelease(context.Context, string, adminapi.CreateReleaseRequest) (state.Release, error) {
	return state.Release{}, f.err
}
func (f failingAdmin) CreateApp(context.Context, adminapi.CreateAppRequest) (adminapi.AppInfo, error) {
	return adminapi.AppInfo{}, f.err
}

// TestAdminPublisherTemporary: what says "try again later" is retried,
// an unknown app is not, and Exists treats an unknown app as no release.
func TestAdminPublisherTemporary(t *testing.T) {
	b := Bundle{Name: "x", Dir: t.TempDir(), Meta: Meta{App: "com.example.app", Version: "1.0.0"}}
	for _, tc := range []struct {
		status    int
		temporary bool
	}{
		{http.StatusServiceUnavailable, true}, {http.StatusBadGateway, true}, {http.StatusGatewayTimeout, true},
		{http.StatusTooManyRequests, true}, {http.StatusInternalServerError, true}, {http.StatusNotFound, false},
	} {
		p := AdminPublisher{Admin: failingAdmin{&adminapi.Error{Status: tc.status, Message: "x"}}, Log: slog.New(slog.DiscardHandler)}
		_, err := p.Publish(context.Background(), b)
		var te *TemporaryError
		if err == nil || errors.As(err, &te) != tc.temporary {
			t.Errorf("HTTP %d: %v, temporary %v", tc.status, err, tc.temporary)
		}
	}
	p := AdminPublisher{Admin: failingAdmin{&adminapi.Error{Status: http.StatusNotFound}}, Log: slog.New(slog.DiscardHandler)}
	if ok, err := p.Exists(context.Background(), "com.example.app", "1.0.0"); ok || err != nil {
		t.Errorf("Exists of an unknown app: %v %v", ok, err)
	}
}
