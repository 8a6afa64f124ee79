package node

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// BodyTimeouts bound how long a client may take to send a request
// body. Requests under /admin/ (uploads of any size, on slow links) get
// an idle timeout: the connection's read deadline is pushed Idle ahead
// each time a read of the body returns data. Every other request (the
// device API, whose bodies are small) gets a total timeout: the body
// must be in within Total of the handler starting. The deadline is
// lifted once the body ends, so it never cuts the next request on the
// connection.
//
// A client that sends headers and then stalls, or trickles a byte now
// and then, loses its connection instead of holding it and a goroutine
// for ever. This also bounds the read net/http does after a handler
// that answered without reading the body (a refused token, a GET with a
// body), which would otherwise wait on the client without a deadline.
type BodyTimeouts struct {
	Total time.Duration
	Idle  time.Duration
}

// Wrap returns h with the timeouts applied.
func (t BodyTimeouts) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		idle := strings.HasPrefix(r.URL.Path, "/admin/")
		d := t.Total
		if idle {
			d = t.Idle
		}
		rc := http.NewResponseController(w)
		if d <= 0 || rc.SetReadDeadline(time.Now().Add(d)) != nil {
			h.ServeHTTP(w, r) // no timeout, or not a plain connection
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc, idle: idle, d: d}
		h.ServeHTTP(w, r)
	})
}

type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle bool          // push the deadline on progress
	d    time.Duration // the idle or total timeout
	// pushed is when the deadline was last moved: moving it costs a
	// timer update, so it is done at most every tenth of d.
	pushed time.Time
	done   bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case b.done:
	case errors.Is(err, io.EOF):
		// The next request on this connection gets its own deadlines.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case n > 0 && b.idle:
		if now := time.Now(); now.Sub(b.pushed) >= b.d/10 {
			b.pushed = now
			_ = b.rc.SetReadDeadline(now.Add(b.d))
		}
	}
	return n, err
}
