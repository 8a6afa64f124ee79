package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
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
	if m, ok := a.objects.(memObjects); ok && plainGet(r) {
		if b, ok := m.CachedBytes(raw); ok {
			writeObject(w, raw, r.PathValue("name"), b)
			return
		}
	}
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
	setObjectHeaders(w.Header(), c.String(), r.PathValue("name"))
	var rs io.ReadSeeker = f
	if of, ok := f.(object.OSFile); ok {
		rs = of.OSFile() // a plain *os.File lets net/http use sendfile
	}
	http.ServeContent(w, r, "", zeroTime, rs)
}

// memObjects is implemented by object stores that keep small objects in
// memory, verified against their CID when loaded (content.Store).
type memObjects interface {
	// CachedBytes returns the object named by its canonical CID string
	// if it is held in memory; the bytes must not be modified.
	CachedBytes(name string) ([]byte, bool)
}

// plainGet reports whether r is a GET with no range and no condition:
// what devices send, answered in full by writeObject. Others go through
// http.ServeContent.
func plainGet(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	h := r.Header
	for _, k := range conditionalHeaders {
		if _, ok := h[k]; ok {
			return false
		}
	}
	return true
}

var conditionalHeaders = []string{"Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range"}

// Header values shared by every download answer (never modified).
var (
	cacheForever = []string{"public, max-age=31536000, immutable"}
	noSniff      = []string{"nosniff"}
	byteRanges   = []string{"bytes"}
)

// setObjectHeaders sets the headers of an object's answer but its
// length: the same as http.ServeContent adds to them.
func setObjectHeaders(h http.Header, cid, name string) {
	h["Etag"] = []string{`"` + cid + `"`}
	h["Cache-Control"] = cacheForever
	h["Content-Type"] = contentTypeOf(name)
	h["X-Content-Type-Options"] = noSniff
}

// writeObject answers a plain GET with the whole object b, as
// http.ServeContent would, in as few writes as net/http allows.
func writeObject(w http.ResponseWriter, cid, name string, b []byte) {
	h := w.Header()
	setObjectHeaders(h, cid, name)
	h["Accept-Ranges"] = byteRanges
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
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

// contentTypes memoizes contentType's answer by file extension (which
// alone decides it), for at most contentTypesMax extensions.
var contentTypes struct {
	sync.RWMutex
	m map[string][]string
}

const contentTypesMax = 256

// contentTypeOf returns the Content-Type header value for a file name,
// shared between answers (never modified).
func contentTypeOf(name string) []string {
	ext := path.Ext(name)
	contentTypes.RLock()
	v, ok := contentTypes.m[ext]
	contentTypes.RUnlock()
	if ok {
		return v
	}
	v = []string{contentType(name)}
	contentTypes.Lock()
	if contentTypes.m == nil {
		contentTypes.m = map[string][]string{}
	}
	if len(contentTypes.m) < contentTypesMax {
		contentTypes.m[ext] = v
	}
	contentTypes.Unlock()
	return v
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
