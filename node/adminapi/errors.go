package adminapi

import (
	"errors"
	"fmt"
	"net/http"

	"mirrord/consensus"
	"mirrord/content"
)

// Sentinels for the kinds of refusal callers branch on; an *Error
// matches one of them with errors.Is by its HTTP status.
var (
	// ErrInvalid: the request is wrong (400).
	ErrInvalid = errors.New("adminapi: invalid request")
	// ErrNotFound: the app, release, channel... does not exist (404).
	ErrNotFound = errors.New("adminapi: not found")
	// ErrConflict: the change conflicts with the state (409).
	ErrConflict = errors.New("adminapi: conflict")
	// ErrTooLarge: a body, object or raft entry is too large (413).
	ErrTooLarge = errors.New("adminapi: too large")
	// ErrNoSpace: the node's disk or its budget is full (507).
	ErrNoSpace = errors.New("adminapi: no space")
	// ErrUnavailable: try again later: no raft leader (503), a gateway
	// error (502, 504), throttled (429), or the server is unreachable.
	ErrUnavailable = errors.New("adminapi: unavailable")
	// ErrUnauthorized: no token or an unknown one (401).
	ErrUnauthorized = errors.New("adminapi: unauthorized")
	// ErrForbidden: a read-only token on a write (403).
	ErrForbidden = errors.New("adminapi: forbidden")
)

// Error is a refusal or failure of an admin operation, as the HTTP API
// answers it: the status, a stable code ("invalid", "not_found",
// "conflict", "too_large", "no_space", "over_budget", "no_quorum",
// "partial", "internal"...), a message for the operator and, for a bulk
// request, the 1-based row it is about.
type Error struct {
	Status  int
	Code    string
	Message string
	Row     int
	// Err is the cause on the server side (nil in a client).
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered HTTP %d", e.Status)
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalid:
		return e.Status == http.StatusBadRequest
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrTooLarge:
		return e.Status == http.StatusRequestEntityTooLarge
	case ErrNoSpace:
		return e.Status == http.StatusInsufficientStorage
	case ErrUnavailable:
		switch e.Status {
		case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return true
		}
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	}
	return false
}

// body is the JSON answer of the error.
func (e *Error) body() map[string]any {
	ans := map[string]any{"error": e.Code, "message": e.Error()}
	if e.Row > 0 {
		ans["row"] = e.Row
	}
	return ans
}

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func bad(format string, args ...any) error {
	return newError(http.StatusBadRequest, "invalid", format, args...)
}

func notFound(format string, args ...any) error {
	return newError(http.StatusNotFound, "not_found", format, args...)
}

func conflict(format string, args ...any) error {
	return newError(http.StatusConflict, "conflict", format, args...)
}

// classifyErr replaces *err (if any) with its *Error; the exported
// operations defer it.
func classifyErr(err *error) {
	if *err != nil {
		*err = classify(*err)
	}
}

// classify turns any error of an operation into the *Error the HTTP API
// answers for it: the status, code and message say what to do.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e == err {
			return e
		}
		return &Error{Status: e.Status, Code: e.Code, Message: err.Error(), Err: err}
	}
	var ce *consensus.Error
	var mbe *http.MaxBytesError
	out := &Error{Status: http.StatusInternalServerError, Code: "internal", Message: err.Error(), Err: err}
	switch {
	case errors.Is(err, content.ErrReleaseRefused):
		out.Status, out.Code = http.StatusBadRequest, "invalid"
	case errors.As(err, &ce):
		out.Code, out.Message = ce.Code, ce.Msg // without the package prefix
		switch ce.Code {
		case "not_found":
			out.Status = http.StatusNotFound
		case "conflict":
			out.Status = http.StatusConflict
		default:
			out.Status = http.StatusBadRequest
		}
	case errors.As(err, &mbe):
		out.Status, out.Code = http.StatusRequestEntityTooLarge, "too_large"
		out.Message = fmt.Sprintf("request body is larger than %d bytes, this node's limits.max_admin_body_bytes", mbe.Limit)
	case errors.Is(err, consensus.ErrTooLarge):
		out.Status, out.Code = http.StatusRequestEntityTooLarge, "too_large"
		out.Message = fmt.Sprintf("the change does not fit in one raft log entry (%v); this bound is fixed, no setting raises it", err)
	case content.IsNoSpace(err):
		out.Status, out.Code = http.StatusInsufficientStorage, "no_space"
		out.Message = fmt.Sprintf("this node's disk is full (%v): free space on it, run `mirrord gc` "+
			"(add --grace 0 to also drop uploads no release uses yet) or delete old releases, then try again; "+
			"set replication.disk_budget or replication.min_free so that uploads are refused before the disk fills", err)
	case errors.Is(err, consensus.ErrNotLeader), errors.Is(err, consensus.ErrUnavailable):
		out.Status, out.Code = http.StatusServiceUnavailable, "no_quorum"
		out.Message = fmt.Sprintf("admin writes are unavailable: the cluster has no raft leader reachable from this node (%v); devices are still served, try again when quorum returns", err)
	}
	return out
}

// errorAnswer is the HTTP answer of an operation's error; server errors
// are logged.
func (a *API) errorAnswer(r *http.Request, err error) (int, any) {
	e := classify(err)
	if e.Status >= 500 {
		a.log.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", e.Error())
	}
	return e.Status, e.body()
}
