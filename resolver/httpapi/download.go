package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/content/object"
)

// handleDownload serves a stored object by CID, with HEAD, byte ranges,
// Content-Length and a strong ETag (the CID). Bytes are never re-encoded.
//
// Only an object that a release of the committed state references may
// be fetched from peers when blocks are missing here: anyone can ask for
// any well-formed CID, and such a request must cost neither the network
// nor memory. Any other object is served only if it is complete on this
// node (e.g. uploaded by a publish whose release is not committed yet).
func (a *API) handleDownload(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("cid")
	c, err := object.ParseCID(raw)
	if err != nil {
		http.Error(w, "bad object id", http.StatusBadRequest)
		return
	}
	remote := a.refs.referenced(a.state.State(), raw, c)
	f, err := a.objects.OpenCached(r.Context(), c, object.OpenOptions{Remote: remote})
	if err != nil {
		a.downloadFailed(w, r, c, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("ETag", `"`+c.String()+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Content-Type", contentType(r.PathValue("name")))
	h.Set("X-Content-Type-Options", "nosniff")
	var rs io.ReadSeeker = f
	if of, ok := f.(object.OSFile); ok {
		rs = of.OSFile() // a plain *os.File lets net/http use sendfile
	}
	http.ServeContent(w, r, "", zeroTime, rs)
}

// downloadFailed answers a download whose object could not be opened.
func (a *API) downloadFailed(w http.ResponseWriter, r *http.Request, c cid.Cid, err error) {
	switch {
	case r.Context().Err() != nil:
		// The client went away: there is nobody to answer, and nothing
		// is wrong with this node.
		a.log.Debug("download abandoned by the client", "cid", c)
	case errors.Is(err, object.ErrNotFound):
		http.Error(w, "object not found on this node", http.StatusNotFound)
	case errors.Is(err, object.ErrBusy):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "too many downloads are fetching from other nodes; retry later", http.StatusServiceUnavailable)
	case errors.Is(err, object.ErrFetchTimeout):
		a.faults.log(a.log, slog.LevelWarn, "fetch_timeout", "download: no peer sent the object in time", "cid", c, "err", err)
		w.Header().Set("Retry-After", "30")
		http.Error(w, "object not available from other nodes now; retry later", http.StatusServiceUnavailable)
	default:
		a.faults.log(a.log, slog.LevelError, "open_failed", "download: open object", "cid", c, "err", err)
		http.Error(w, "object unavailable", http.StatusServiceUnavailable)
	}
}

// faultLogEvery is the least time between two log lines of one kind of
// download fault: a fault that hits every download (a dead disk, a
// cluster that lost an object) must not write a line per request.
var faultLogEvery = 10 * time.Second

// faultLog rate-limits log lines by kind and counts the ones held back.
type faultLog struct {
	mu    sync.Mutex
	kinds map[string]*faultKind
}

type faultKind struct {
	last time.Time
	held int
}

func (f *faultLog) log(l *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	now := time.Now()
	f.mu.Lock()
	if f.kinds == nil {
		f.kinds = map[string]*faultKind{}
	}
	k := f.kinds[kind]
	if k == nil {
		k = &faultKind{}
		f.kinds[kind] = k
	}
	if !k.last.IsZero() && now.Sub(k.last) < faultLogEvery {
		k.held++
		f.mu.Unlock()
		return
	}
	held := k.held
	k.last, k.held = now, 0
	f.mu.Unlock()
	if held > 0 {
		args = append(args, "similar_not_logged", held)
	}
	l.Log(context.Background(), level, msg, args...)
}

func contentType(name string) string {
	if strings.HasSuffix(name, ".zip") {
		return "application/zip"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" && !strings.HasSuffix(name, ".br") {
		return t
	}
	return "application/octet-stream"
}

var zeroTime time.Time

var _ io.ReadSeeker = object.File(nil)
