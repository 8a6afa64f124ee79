package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/consensus/state"
	"mirrord/content/object"
	"mirrord/resolver"
)

// StateSource gives the current local state snapshot.
type StateSource interface {
	State() *state.State
}

// Objects opens stored objects by CID. With opt.Remote the object may
// be fetched from peers (bounded by the store); without it only what is
// complete locally is served.
type Objects interface {
	OpenCached(ctx context.Context, c cid.Cid, opt object.OpenOptions) (object.File, error)
}

// StatsSink keeps device events. Each event is one JSON object.
type StatsSink interface {
	Append(events []json.RawMessage) error
}

// Overrides writes server-side device channel overrides (old plugins).
type Overrides interface {
	SetDeviceChannel(ctx context.Context, app, device, channel string) error
	UnsetDeviceChannel(ctx context.Context, app, device string) error
}

// Counter counts device outcomes per release for fleet statistics. Its
// methods are called on the request path and must be cheap.
type Counter interface {
	// CountCheck counts an update check answered with a release.
	CountCheck(app, version string)
	// CountEvent counts a stats event (it picks the actions it wants).
	CountEvent(app, version, action string)
}

// Config tunes the device API.
type Config struct {
	// PublicURL, when set, is the base of every URL given to devices
	// (e.g. "https://edge1.example.com"); else the request's Host is used.
	PublicURL string
	// MaxBodyBytes bounds update, stats and channel request bodies.
	MaxBodyBytes int64
	// Serving, if set, reports whether this node has a state to answer
	// devices from; until it does (a new node still joining), device
	// requests get 503 with Retry-After rather than answers computed
	// from an empty state.
	Serving func() bool
	// Counter, if set, receives update checks and stats events.
	Counter Counter
	// Observer, if set, receives check outcomes and latencies and stats
	// actions (metrics).
	Observer Observer
}

// API serves the device endpoints.
type API struct {
	cfg       Config
	state     StateSource
	objects   Objects
	stats     StatsSink
	overrides Overrides
	log       *slog.Logger
	cache     atomic.Pointer[answerCache]
	refs      refs     // objects the releases of the state reference
	faults    faultLog // download faults, rate-limited
}

// New returns the device API. overrides may be nil (then old plugins'
// server-side channel overrides are refused).
func New(cfg Config, st StateSource, obj Objects, stats StatsSink, ov Overrides, log *slog.Logger) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &API{cfg: cfg, state: st, objects: obj, stats: stats, overrides: ov, log: log}
}

// Register adds the device routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	h := func(pattern string, fn http.HandlerFunc) {
		if a.cfg.Serving != nil {
			fn = a.whenServing(fn)
		}
		mux.HandleFunc(pattern, fn)
	}
	h("POST /updates", a.handleUpdates)
	h("GET /updates", a.handleOK)
	h("POST /stats", a.handleStats)
	h("GET /stats", a.handleOK)
	h("GET /ok", a.handleOK)
	h("POST /channel_self", a.handleChannelSet)
	h("PUT /channel_self", a.handleChannelGet)
	h("GET /channel_self", a.handleChannelList)
	h("DELETE /channel_self", a.handleChannelDelete)
	h("GET /dl/{cid}/{name...}", a.handleDownload)
	h("HEAD /dl/{cid}/{name...}", a.handleDownload)
}

var notServingBody = []byte(`{"error":"not_ready","message":"this node is joining the cluster and has no state to answer from yet; try again shortly"}` + "\n")

// whenServing answers 503 until cfg.Serving says the node has a state.
func (a *API) whenServing(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.cfg.Serving() {
			w.Header().Set("Retry-After", "5")
			writeRaw(w, http.StatusServiceUnavailable, notServingBody)
			return
		}
		fn(w, r)
	}
}

var okBody = []byte(`{"status":"ok"}` + "\n")

func (a *API) handleOK(w http.ResponseWriter, _ *http.Request) {
	writeRaw(w, http.StatusOK, okBody)
}

// bufPool recycles body and response buffers on the hot update path.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads a bounded request body. It writes the error answer
// itself and returns ok=false on failure.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) bool {
	if r.ContentLength > a.cfg.MaxBodyBytes {
		writeJSON(w, http.StatusRequestEntityTooLarge, errBody("body_too_large", "request body exceeds "+strconv.FormatInt(a.cfg.MaxBodyBytes, 10)+" bytes"))
		return false
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, errBody("body_too_large", "request body exceeds "+strconv.FormatInt(a.cfg.MaxBodyBytes, 10)+" bytes"))
			return false
		}
		// The server's read deadline (node.BodyTimeouts) passed: the
		// client sent its headers and stalled.
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestTimeout, errBody("body_timeout", "request body not received in time"))
			return false
		}
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "cannot read request body: "+err.Error()))
		return false
	}
	return true
}

// decodeRequest reads and validates a device info body. It writes the
// error answer itself and returns ok=false on failure.
func (a *API) decodeRequest(w http.ResponseWriter, r *http.Request, req *resolver.Request) bool {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return false
	}
	return decodeInto(w, buf.Bytes(), req)
}

func decodeInto(w http.ResponseWriter, body []byte, req *resolver.Request) bool {
	if err := json.Unmarshal(body, req); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "body is not a JSON device info object: "+err.Error()))
		return false
	}
	req.Normalize()
	if code, msg := req.Validate(); code != "" {
		writeJSON(w, http.StatusBadRequest, errBody(code, msg))
		return false
	}
	return true
}

func errBody(code, msg string) map[string]any {
	return map[string]any{"error": code, "message": msg}
}

// manifestEntry is one manifest entry as the plugin reads it.
type manifestEntry struct {
	FileName    string `json:"file_name"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
}

// successBody is Capgo's resToVersion shape (capgo-protocol 3.6).
type successBody struct {
	Version    string          `json:"version"`
	URL        string          `json:"url"`
	Checksum   string          `json:"checksum"`
	SessionKey string          `json:"session_key"`
	Manifest   []manifestEntry `json:"manifest,omitempty"`
}

// failBody is a no-update, blocked or failed answer.
type failBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	Kind    string `json:"kind"`
	Version string `json:"version,omitempty"`
	Old     string `json:"old,omitempty"`
	Major   bool   `json:"major,omitempty"`
}

func (a *API) handleUpdates(w http.ResponseWriter, r *http.Request) {
	outcome := OutcomeBadRequest
	if o := a.cfg.Observer; o != nil {
		start := time.Now()
		defer func() { o.ObserveCheck(outcome, time.Since(start)) }()
	}
	var req resolver.Request
	if !a.decodeRequest(w, r, &req) {
		return
	}
	st := a.state.State()
	d := resolver.Resolve(st.App(req.AppID), req)
	switch {
	case d.Error != "":
		outcome = d.Error
		writeJSON(w, http.StatusOK, failBody{Error: d.Error, Message: d.Message, Kind: d.Kind, Version: d.Version, Old: d.Old, Major: d.Major})
	case d.Revert || d.Release == nil:
		outcome = OutcomeRevert
		writeJSON(w, http.StatusOK, map[string]string{"version": state.Builtin})
	default:
		outcome = OutcomeOK
		if a.cfg.Counter != nil {
			a.cfg.Counter.CountCheck(req.AppID, d.Version)
		}
		a.writeSuccess(w, r, st, d.Release)
	}
}

// answerCache keeps the encoded success answers of one state snapshot: a
// success body depends only on the release and the base URL, so most
// checks reuse the bytes instead of encoding them again.
type answerCache struct {
	st      *state.State
	answers sync.Map // base URL + "\x00" + version -> []byte
	n       atomic.Int64
}

// maxCachedAnswers bounds the cache (distinct Host headers could grow it).
const maxCachedAnswers = 4096

func (a *API) writeSuccess(w http.ResponseWriter, r *http.Request, st *state.State, rel *state.Release) {
	c := a.cache.Load()
	if c == nil || c.st != st {
		c = &answerCache{st: st}
		a.cache.Store(c)
	}
	base := a.baseURL(r)
	key := base + "\x00" + rel.App + "\x00" + rel.Version
	if b, ok := c.answers.Load(key); ok {
		writeRaw(w, http.StatusOK, b.([]byte))
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a.successFor(base, rel)); err != nil {
		writeJSON(w, http.StatusInternalServerError, errBody("internal", "cannot encode answer"))
		return
	}
	if c.n.Add(1) <= maxCachedAnswers {
		c.answers.Store(key, buf.Bytes())
	}
	writeRaw(w, http.StatusOK, buf.Bytes())
}

func (a *API) successFor(base string, rel *state.Release) successBody {
	b := successBody{
		Version:    rel.Version,
		URL:        base + "/dl/" + rel.ZipCID + "/" + url.PathEscape(zipName(rel)),
		Checksum:   rel.Checksum,
		SessionKey: rel.SessionKey,
	}
	if len(rel.Manifest) > 0 {
		b.Manifest = make([]manifestEntry, len(rel.Manifest))
		for i, f := range rel.Manifest {
			b.Manifest[i] = manifestEntry{
				FileName:    f.FileName,
				FileHash:    f.FileHash,
				DownloadURL: base + "/dl/" + f.CID + "/" + escapePath(f.FileName),
			}
		}
	}
	return b
}

func zipName(rel *state.Release) string {
	if rel.Encrypted() {
		return rel.Version + ".zip_encrypted.zip"
	}
	return rel.Version + ".zip"
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// baseURL is the absolute URL of this node as the device reached it.
func (a *API) baseURL(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return a.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host
}

// handleStats keeps device events (capgo-protocol section 6). The body
// is one event object or an array of them (plugins from 8.42.0 batch up
// to 200). Only a body that is not JSON at all is a 400: a batch gets a
// result per index, and a single event that is not usable gets a 200
// with an error, which the plugin treats as delivered (it would retry a
// 5xx or drop any 4xx anyway). Unknown actions are kept: the plugin sends
// some that Capgo's own list lacks.
func (a *API) handleStats(w http.ResponseWriter, r *http.Request) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return
	}
	body := bytes.TrimSpace(buf.Bytes())
	// One validating pass over the body; the events are then split and
	// read by the scanners of statscan.go, which rely on it.
	if !json.Valid(body) {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "stats body is not JSON"))
		return
	}
	var events []json.RawMessage
	batch := body[0] == '['
	if batch {
		var ok bool
		if events, ok = splitArray(body); !ok {
			writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "stats body is not a JSON array"))
			return
		}
	} else {
		events = []json.RawMessage{json.RawMessage(body)}
	}
	var results []statResult
	if batch {
		results = make([]statResult, len(events))
	}
	keep := make([]json.RawMessage, 0, len(events))
	for i, ev := range events {
		e, msg := parseStatEvent(ev)
		if msg != "" {
			if !batch {
				writeJSON(w, http.StatusOK, map[string]any{"status": "error", "error": "invalid_json_body", "message": msg})
				return
			}
			results[i] = statResult{Status: "error", Index: i, Error: "invalid_json_body", Message: msg}
			continue
		}
		if batch {
			results[i] = statResult{Status: "ok", Index: i}
		}
		if bytes.IndexAny(ev, "\r\n") < 0 {
			keep = append(keep, ev) // already one line: stored as sent
		} else {
			var c bytes.Buffer
			if err := json.Compact(&c, ev); err == nil {
				keep = append(keep, c.Bytes())
			}
		}
		if a.cfg.Counter != nil {
			a.cfg.Counter.CountEvent(e.AppID, e.VersionName, e.Action)
		}
		if a.cfg.Observer != nil {
			a.cfg.Observer.ObserveStat(e.Action)
		}
	}
	if len(keep) > 0 && a.stats != nil {
		if err := a.stats.Append(keep); err != nil {
			// Losing a stats batch must not make the plugin retry forever
			// against a broken disk: log it and still answer 200.
			a.log.Warn("stats append failed", "err", err, "events", len(keep))
		}
	}
	if batch {
		writeJSON(w, http.StatusOK, statBatchAnswer{Status: "ok", Results: results})
		return
	}
	writeRaw(w, http.StatusOK, okBody)
}

type statResult struct {
	Status  string `json:"status"`
	Index   int    `json:"index"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

type statBatchAnswer struct {
	Status  string       `json:"status"`
	Results []statResult `json:"results"`
}

// statEvent is the part of a stats event that is checked on receipt.
type statEvent struct {
	Action      string `json:"action"`
	AppID       string `json:"app_id"`
	DeviceID    string `json:"device_id"`
	VersionName string `json:"version_name"`
}

// parseStatEvent decodes the checked fields of one event, or says what
// is wrong with it.
func parseStatEvent(ev json.RawMessage) (statEvent, string) {
	if len(ev) == 0 || ev[0] != '{' {
		return statEvent{}, "event must be a JSON object"
	}
	e, err := scanStatEvent(ev)
	if err != nil {
		return e, "event fields have the wrong types: action, app_id, device_id and version_name are strings"
	}
	switch {
	case e.Action == "":
		return e, "event has no action"
	case e.AppID == "":
		return e, "event has no app_id"
	case e.DeviceID == "":
		return e, "event has no device_id"
	case len(e.Action) > 128:
		return e, "event action is longer than 128 bytes"
	}
	return e, ""
}

func (a *API) handleChannelSet(w http.ResponseWriter, r *http.Request) {
	var req resolver.Request
	if !a.decodeRequest(w, r, &req) {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelSet(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelGet(w http.ResponseWriter, r *http.Request) {
	var req resolver.Request
	if !a.decodeRequest(w, r, &req) {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelGet(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelList(w http.ResponseWriter, r *http.Request) {
	req, ok := requestFromQuery(w, r.URL.Query(), false)
	if !ok {
		return
	}
	a.answerChannel(w, r, req, resolver.ChannelList(a.state.State().App(req.AppID), req))
}

func (a *API) handleChannelDelete(w http.ResponseWriter, r *http.Request) {
	// Old plugins send a JSON body; Capgo reads query parameters. Accept
	// either, preferring a body when there is one.
	var req resolver.Request
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return
	}
	if len(bytes.TrimSpace(buf.Bytes())) > 0 {
		if !decodeInto(w, buf.Bytes(), &req) {
			return
		}
	} else {
		var ok bool
		if req, ok = requestFromQuery(w, r.URL.Query(), true); !ok {
			return
		}
	}
	a.answerChannel(w, r, req, resolver.ChannelDelete(a.state.State().App(req.AppID), req))
}

// requestFromQuery builds a device request from query parameters (GET
// and DELETE channel_self send the info fields stringified).
func requestFromQuery(w http.ResponseWriter, q url.Values, requireDevice bool) (resolver.Request, bool) {
	req := resolver.RequestFromQuery(q)
	if code, msg := req.ValidateQuery(requireDevice); code != "" {
		writeJSON(w, http.StatusBadRequest, errBody(code, msg))
		return req, false
	}
	return req, true
}

func (a *API) answerChannel(w http.ResponseWriter, r *http.Request, req resolver.Request, ans resolver.ChannelAnswer) {
	if ans.SetOverride != nil || ans.DeleteOverride {
		if a.overrides == nil {
			writeJSON(w, http.StatusOK, errBody("cannot_override", "this server does not keep server-side channel overrides"))
			return
		}
		var err error
		if ans.SetOverride != nil {
			err = a.overrides.SetDeviceChannel(r.Context(), req.AppID, req.DeviceID, *ans.SetOverride)
		} else {
			err = a.overrides.UnsetDeviceChannel(r.Context(), req.AppID, req.DeviceID)
		}
		if err != nil {
			a.log.Warn("channel override write failed", "app", req.AppID, "err", err)
			writeJSON(w, http.StatusServiceUnavailable, errBody("cannot_override", "the channel override could not be stored now, try again later"))
			return
		}
	}
	status := ans.Status
	if status == 0 {
		status = http.StatusOK
	}
	writeJSON(w, status, ans.Payload())
}

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

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal","message":"cannot encode answer"}` + "\n")
	}
	writeRaw(w, status, buf.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

var zeroTime time.Time

var _ io.ReadSeeker = object.File(nil)
