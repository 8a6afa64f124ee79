package main

import (
	"crypto/tls"
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

	"mirrord/node/adminapi"
	"mirrord/node/tlscert"
)

// clientOptions are the flags of every admin command: where the admin
// API is, the token, and --json.
type clientOptions struct {
	server, token, tokenFile, ca string
	json                         bool
}

func (o *clientOptions) bind(fs *flag.FlagSet) {
	o.bindConn(fs)
	fs.BoolVar(&o.json, "json", false, "print JSON")
}

// bindConn adds --server, --token and --token-file.
func (o *clientOptions) bindConn(fs *flag.FlagSet) {
	fs.StringVar(&o.server, "server", "", "admin `URL` of any node (env MIRRORD_SERVER; default http://127.0.0.1:8080)")
	fs.StringVar(&o.token, "token", "", "admin `token` (env MIRRORD_TOKEN)")
	fs.StringVar(&o.tokenFile, "token-file", "", "`file` holding the admin token (e.g. DATA/admin.token)")
	fs.StringVar(&o.ca, "ca", "", "PEM `file` of a private CA to trust for an https --server, besides the system's (env MIRRORD_CA)")
}

// httpClient is the HTTP client of the CLI: HTTP/2 over TLS, the
// system's roots plus the CA in caFile (flag, else MIRRORD_CA; "" for
// none).
func httpClient(caFile string, timeout time.Duration) (*http.Client, error) {
	if caFile == "" {
		caFile = os.Getenv("MIRRORD_CA")
	}
	pool, err := tlscert.CertPool(caFile)
	if err != nil {
		return nil, usagef("--ca: %v", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// serverURL is the node a command talks to: flag (when not empty),
// else MIRRORD_SERVER, else the default node on this machine.
func serverURL(flag string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv("MIRRORD_SERVER"); s != "" {
		return s
	}
	return "http://127.0.0.1:8080"
}

// client returns the admin client the options name: the server from
// --server, MIRRORD_SERVER or the default, the token from --token,
// --token-file, MIRRORD_TOKEN or ./mirrord-data/admin.token.
func (o *clientOptions) client() (*adminapi.Client, error) {
	server := serverURL(o.server)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--server %q is not a URL like http://127.0.0.1:8080", server)
	}
	token, err := o.readToken()
	if err != nil {
		return nil, err
	}
	hc, err := httpClient(o.ca, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	return adminapi.NewClient(server, token, hc), nil
}

func (o *clientOptions) readToken() (string, error) {
	token := o.token
	if token == "" && o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
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
		return "", usagef("no admin token: pass --token, --token-file DATA/admin.token or set MIRRORD_TOKEN")
	}
	return token, nil
}

func isNotFound(err error) bool { return errors.Is(err, adminapi.ErrNotFound) }

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
