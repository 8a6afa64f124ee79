package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mirrord/consensus/state"
	"mirrord/resolver"
)

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
	if !a.decodeRequest(w, r, &req, resolver.UpdateChecks) {
		return
	}
	st := a.state.State()
	app := st.App(req.AppID)
	d := resolver.Resolve(app, req)
	if a.cfg.Counter != nil && app != nil && (d.Error != "" || d.Revert || d.Release == nil) {
		// Not answered with a release: the device is only seen for the
		// app (its events about no release are kept with the others).
		a.cfg.Counter.CountCheck(req.AppID, "", req.DeviceID)
	}
	switch {
	case d.Error != "":
		outcome = d.Error
		a.writeFail(w, st, failBody{Error: d.Error, Message: d.Message, Kind: d.Kind, Version: d.Version, Old: d.Old, Major: d.Major})
	case d.Revert || d.Release == nil:
		outcome = OutcomeRevert
		writeRaw(w, http.StatusOK, revertBody)
	default:
		outcome = OutcomeOK
		if a.cfg.Counter != nil {
			a.cfg.Counter.CountCheck(req.AppID, d.Version, req.DeviceID)
		}
		a.writeSuccess(w, r, st, d.Release)
	}
}

// revertBody answers a device that should go back to its builtin bundle.
var revertBody = []byte(`{"version":"` + state.Builtin + `"}` + "\n")

// answerCache keeps the encoded answers of one state snapshot: a success
// body depends only on the release and the base URL, and a refusal (an
// up-to-date device, a blocked one) only on the decision, so most checks
// reuse the bytes instead of encoding them again.
type answerCache struct {
	st      *state.State
	answers sync.Map // base URL + "\x00" + version -> []byte
	n       atomic.Int64
	fails   sync.Map // failBody -> []byte
	nFails  atomic.Int64
}

// maxCachedAnswers bounds each cache (distinct Host headers, or versions
// echoed from devices, could grow it).
const maxCachedAnswers = 4096

// answersFor returns the answer cache of snapshot st.
func (a *API) answersFor(st *state.State) *answerCache {
	c := a.cache.Load()
	if c == nil || c.st != st {
		c = &answerCache{st: st}
		a.cache.Store(c)
	}
	return c
}

// writeFail answers a decision that offers no release.
func (a *API) writeFail(w http.ResponseWriter, st *state.State, fb failBody) {
	c := a.answersFor(st)
	if b, ok := c.fails.Load(fb); ok {
		writeRaw(w, http.StatusOK, b.([]byte))
		return
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fb); err != nil {
		writeJSON(w, http.StatusInternalServerError, errBody("internal", "cannot encode answer"))
		return
	}
	if c.nFails.Add(1) <= maxCachedAnswers {
		c.fails.Store(fb, buf.Bytes())
	}
	writeRaw(w, http.StatusOK, buf.Bytes())
}

func (a *API) writeSuccess(w http.ResponseWriter, r *http.Request, st *state.State, rel *state.Release) {
	c := a.answersFor(st)
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
