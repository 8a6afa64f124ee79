package state

import "fmt"

// Error codes of business errors. The admin HTTP layer maps them to
// statuses: CodeNotFound to 404, CodeConflict to 409, CodeInvalid to 400.
const (
	CodeNotFound = "not_found"
	CodeConflict = "conflict"
	CodeInvalid  = "invalid"
)

// Error is a business error: a command that is well formed but cannot be
// applied to the current state (unknown app, duplicate version, bad
// field value). The FSM returns it as the raft response value, so every
// node rejects the command in the same way and nothing changes.
type Error struct {
	// Code is one of CodeNotFound, CodeConflict or CodeInvalid.
	Code string `json:"code"`
	// Msg is a lowercase human-readable explanation without a package
	// prefix, suitable for an API response body.
	Msg string `json:"message"`
}

// Error returns the message prefixed with the package name.
func (e *Error) Error() string { return "consensus: " + e.Msg }

// Is reports whether target is an *Error with the same code and either
// the same message or no message, so that errors.Is(err, ErrNotFound)
// matches every not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil {
		return false
	}
	return t.Code == e.Code && (t.Msg == "" || t.Msg == e.Msg)
}

// Sentinels for errors.Is; they match any Error with the same code.
var (
	ErrNotFound = &Error{Code: CodeNotFound}
	ErrConflict = &Error{Code: CodeConflict}
	ErrInvalid  = &Error{Code: CodeInvalid}
)

func notFound(format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Msg: fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) *Error {
	return &Error{Code: CodeConflict, Msg: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Msg: fmt.Sprintf(format, args...)}
}
