package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
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

// StatsSink keeps device events. Each event is one JSON object on one
// line.
type StatsSink interface {
	// Append keeps events that were counted.
	Append(events []json.RawMessage) error
	// AppendIgnored keeps events that were deliberately not counted,
	// marked with reason (one of the resolver.Ignored* markers).
	AppendIgnored(reason string, events []json.RawMessage) error
}

// Overrides writes server-side device channel overrides (old plugins).
type Overrides interface {
	SetDeviceChannel(ctx context.Context, app, device, channel string) error
	UnsetDeviceChannel(ctx context.Context, app, device string) error
}

// Counter counts device outcomes per release for fleet statistics. Its
// methods are called on the request path and must be cheap.
type Counter interface {
	// CountCheck remembers that the device checked in for the app (a
	// known app) and, when version is not "" (the check was answered
	// with that release), counts the check and remembers the device for
	// the release.
	CountCheck(app, version, device string)
	// CountEvent judges a stats event by its device (state.JudgeEvent)
	// and counts it if it should (it picks the actions it wants).
	// Unverified and duplicate events are stored apart in the stats
	// log, so that a flood of them cannot push out the others.
	CountEvent(app, version, action, device string) state.EventVerdict
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
	// StatsLimit bounds the stats events of one source; zero: no limit.
	StatsLimit RateLimit
	// Now is the limiter's clock (tests); nil means time.Now.
	Now func() time.Time
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
	limit     *limiter // stats events per source; nil: no limit
}

// New returns the device API. overrides may be nil (then old plugins'
// server-side channel overrides are refused).
func New(cfg Config, st StateSource, obj Objects, stats StatsSink, ov Overrides, log *slog.Logger) *API {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return &API{cfg: cfg, state: st, objects: obj, stats: stats, overrides: ov, log: log,
		limit: newLimiter(cfg.StatsLimit, cfg.Now)}
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

// decodeRequest reads and validates a device info body with the
// endpoint's checks. It writes the error answer itself and returns
// ok=false on failure.
func (a *API) decodeRequest(w http.ResponseWriter, r *http.Request, req *resolver.Request, c resolver.Checks) bool {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if !a.readBody(w, r, buf) {
		return false
	}
	return decodeInto(w, buf.Bytes(), req, c)
}

func decodeInto(w http.ResponseWriter, body []byte, req *resolver.Request, c resolver.Checks) bool {
	if emptyJSON(body) {
		writeJSON(w, http.StatusBadRequest, refusalBody(resolver.EmptyRefusal(c)))
		return false
	}
	if err := decodeDevice(body, req); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("invalid_json_parse_body", "body is not a JSON device info object: "+err.Error()))
		return false
	}
	req.Normalize()
	if ref := req.Check(c); ref.Code != "" {
		writeJSON(w, http.StatusBadRequest, refusalBody(ref))
		return false
	}
	return true
}

// emptyJSON reports whether body is a JSON value that carries no field:
// {}, [] or null (whitespace aside). Capgo answers these "Cannot parse
// body" before looking for device_id.
func emptyJSON(body []byte) bool {
	b := bytes.TrimSpace(body)
	if string(b) == "null" {
		return true
	}
	if len(b) < 2 || !(b[0] == '{' && b[len(b)-1] == '}' || b[0] == '[' && b[len(b)-1] == ']') {
		return false
	}
	return len(bytes.TrimSpace(b[1:len(b)-1])) == 0
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
