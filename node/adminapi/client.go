package adminapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client is the typed HTTP client of the admin API: one method per
// route, taking and returning the types the server uses. A refusal is an
// *Error (errors.Is with ErrNotFound, ErrUnavailable...); a server it
// cannot reach gives an error that matches ErrUnavailable.
type Client struct {
	server string
	token  string
	hc     *http.Client
}

// NewClient returns a client of the admin API at server (a base URL such
// as http://127.0.0.1:8080) with the bearer token. hc nil means
// http.DefaultClient.
func NewClient(server, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{server: strings.TrimRight(server, "/"), token: token, hc: hc}
}

// Server is the base URL the client talks to.
func (c *Client) Server() string { return c.server }

// unreachableError is a request that got no answer.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string   { return e.msg }
func (e *unreachableError) Unwrap() []error { return []error{e.err, ErrUnavailable} }

// maxAnswerBytes bounds an answer the client reads. Listings grow with
// the fleet (250,000 device overrides are ~30 MB), so the bound only
// guards against a runaway server.
const maxAnswerBytes = 1 << 30

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// appPath is the path of an app, or of a route under it (parts are
// escaped).
func appPath(app string, parts ...string) string {
	p := "/admin/v1/apps/" + esc(app)
	for _, s := range parts {
		p += "/" + esc(s)
	}
	return p
}

// do sends a JSON request (body may be nil) and decodes the JSON answer
// into out (may be nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	return c.send(ctx, method, path, "application/json", rd, -1, out)
}

func (c *Client) send(ctx context.Context, method, path, ctype string, body io.Reader, size int64, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return err
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return &unreachableError{fmt.Sprintf("cannot reach mirrord at %s: %v (is `mirrord serve` running? check --server)", c.server, err), err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if len(b) > maxAnswerBytes {
		return fmt.Errorf("%s %s: the answer is larger than %d bytes, more than this client reads", method, path, maxAnswerBytes)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// answerError decodes an error answer.
func answerError(status int, b []byte) *Error {
	var body struct {
		Code    string `json:"error"`
		Message string `json:"message"`
		Row     int    `json:"row"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(b, &body) == nil {
		e.Code, e.Message, e.Row = body.Code, body.Message, body.Row
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("server answered HTTP %d: %s", status, strings.TrimSpace(string(b)))
	}
	return e
}

// get is do for a GET into a new T.
func get[T any](ctx context.Context, c *Client, path string) (T, error) {
	var out T
	err := c.do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// request is do for a request with an answer of type T.
func request[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var out T
	err := c.do(ctx, method, path, body, &out)
	return out, err
}
