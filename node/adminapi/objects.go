package adminapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ObjectInfo names an uploaded object.
type ObjectInfo struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

// Upload stores the object read from r into the local block store. size
// is its length if known (< 0 if not): an object larger than
// limits.max_upload_bytes, or than the node's disk budget, is refused.
func (a *API) Upload(ctx context.Context, r io.Reader, size int64) (_ ObjectInfo, err error) {
	defer classifyErr(&err)
	if size > a.cfg.MaxUploadBytes {
		return ObjectInfo{}, newError(http.StatusRequestEntityTooLarge, "too_large",
			"object of %d bytes is larger than limits.max_upload_bytes (%d)", size, a.cfg.MaxUploadBytes)
	}
	var body io.Reader = http.MaxBytesReader(nil, io.NopCloser(r), a.cfg.MaxUploadBytes)
	if a.cfg.Budget != nil {
		if err := a.cfg.Budget(max(size, 0)); err != nil {
			return ObjectInfo{}, newError(http.StatusInsufficientStorage, "over_budget", "%s", err)
		}
		body = &budgetReader{r: body, budget: a.cfg.Budget, size: size, next: budgetEvery}
	}
	obj, err := a.store.Add(ctx, body)
	if err != nil {
		if a.cfg.Reclaim != nil {
			a.cfg.Reclaim()
		}
		var mbe *http.MaxBytesError
		var be *budgetError
		switch {
		case errors.As(err, &mbe):
			return ObjectInfo{}, newError(http.StatusRequestEntityTooLarge, "too_large",
				"object is larger than limits.max_upload_bytes (%d)", a.cfg.MaxUploadBytes)
		case errors.As(err, &be):
			return ObjectInfo{}, newError(http.StatusInsufficientStorage, "over_budget", "%s", be.err)
		}
		return ObjectInfo{}, fmt.Errorf("store object: %w", err)
	}
	return ObjectInfo{CID: obj.CID.String(), Size: obj.Size}, nil
}

func (a *API) httpUpload(r *http.Request) (int, any, error) {
	out, err := a.Upload(r.Context(), r.Body, r.ContentLength)
	return http.StatusCreated, out, err
}

// budgetEvery is how many bytes of an upload are read between two asks
// of the budget.
const budgetEvery = 4 << 20

// budgetReader asks the budget again as an upload is read, with the
// bytes still to come: an upload of unknown length, or several at once
// that each fitted when they started, stop at the budget instead of at
// a full disk.
type budgetReader struct {
	r      io.Reader
	budget func(n int64) error
	size   int64 // Content-Length; < 0 unknown
	read   int64
	next   int64 // read count of the next ask
}

// budgetError is a refusal of the budget during an upload.
type budgetError struct{ err error }

func (e *budgetError) Error() string { return e.err.Error() }
func (e *budgetError) Unwrap() error { return e.err }

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read >= b.next && err == nil {
		b.next = b.read + budgetEvery
		if berr := b.budget(max(b.size-b.read, 0)); berr != nil {
			return n, &budgetError{berr}
		}
	}
	return n, err
}
