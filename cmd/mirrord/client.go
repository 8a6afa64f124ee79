package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// addClientFlags adds --server, --token, --token-file and --json.
func addClientFlags(fs *flag.FlagSet, withJSON bool) {
	fs.String("server", "", "admin `URL` of any node (env MIRRORD_SERVER; default http://127.0.0.1:8080)")
	fs.String("token", "", "admin `token` (env MIRRORD_TOKEN)")
	fs.String("token-file", "", "`file` holding the admin token (e.g. DATA/admin.token)")
	if withJSON {
		fs.Bool("json", false, "print JSON")
	}
}

// clientFlags returns a flag setup with the client flags (and --json)
// plus those extra adds (extra may be nil).
func clientFlags(extra func(fs *flag.FlagSet)) func(fs *flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		addClientFlags(fs, true)
		if extra != nil {
			extra(fs)
		}
	}
}

// client talks to a node's admin API.
type client struct {
	server string
	token  string
	hc     *http.Client
}

func newClient(fs *flag.FlagSet) (*client, error) {
	server := flagString(fs, "server")
	if server == "" {
		server = os.Getenv("MIRRORD_SERVER")
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not a URL like http://127.0.0.1:8080", server)
	}
	token := flagString(fs, "token")
	if token == "" {
		if f := flagString(fs, "token-file"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("--token-file: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		token = os.Getenv("MIRRORD_TOKEN")
	}
	if token == "" {
		// A node started here with the defaults keeps its token here.
		if b, err := os.ReadFile(filepath.Join("mirrord-data", "admin.token")); err == nil {
			token = strings.TrimSpace(string(b))
		}
	}
	if token == "" {
		return nil, usagef("no admin token: pass --token, --token-file DATA/admin.token or set MIRRORD_TOKEN")
	}
	return &client{server: strings.TrimRight(server, "/"), token: token, hc: &http.Client{Timeout: 10 * time.Minute}}, nil
}

// apiErr is an error answer from the admin API.
type apiErr struct {
	Status  int
	Code    string `json:"error"`
	Message string `json:"message"`
	// Row is the 1-based row of a bulk request the error is about, 0
	// when none.
	Row int `json:"row"`
}

func (e *apiErr) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("server answered HTTP %d", e.Status)
	}
	return e.Message
}

// maxAnswerBytes bounds an answer the client reads. Listings grow with
// the fleet (250,000 device overrides are ~30 MB), so the bound only
// guards against a runaway server.
const maxAnswerBytes = 1 << 30

// do sends a JSON request (body may be nil) and decodes the JSON answer
// into out (may be nil).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
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

func (c *client) send(ctx context.Context, method, path, ctype string, body io.Reader, size int64, out any) error {
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
		return fmt.Errorf("cannot reach mirrord at %s: %w (is `mirrord serve` running? check --server)", c.server, err)
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
		e := &apiErr{Status: resp.StatusCode}
		if json.Unmarshal(b, e) != nil || e.Message == "" {
			e.Message = fmt.Sprintf("server answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

func isNotFound(err error) bool {
	var e *apiErr
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
