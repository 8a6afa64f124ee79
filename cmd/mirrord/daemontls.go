package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"mirrord/configs"
	"mirrord/node/tlscert"
)

// openTLS prepares HTTPS on node.http when the tls section asks for it:
// the certificate files are read now (a node does not start with a pair
// it cannot serve), ACME only once run starts it.
func (d *daemon) openTLS() error {
	t := d.cfg.TLS
	switch {
	case t.CertFile != "":
		files, err := tlscert.LoadFiles(t.CertFile, t.KeyFile, d.log.With("component", "tls"))
		if err != nil {
			return err
		}
		d.tls = tlscert.ServerConfig(files.GetCertificate)
		d.certs = files.Run
		leaf := files.Leaf()
		d.log.Info("tls: serving HTTPS", "cert_file", t.CertFile, "dns", leaf.DNSNames, "ips", fmt.Sprint(leaf.IPAddresses),
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	case len(t.ACME.Domains) > 0:
		a, err := tlscert.NewACME(tlscert.ACMEConfig{Domains: t.ACME.Domains, Email: t.ACME.Email, CA: t.ACME.CA,
			CARoot: t.ACME.CARoot, Storage: filepath.Join(d.data, "acme"), Log: d.log.With("component", "acme")})
		if err != nil {
			return err
		}
		d.tls = a.TLSConfig()
		d.certs = a.Run
		d.log.Info("tls: serving HTTPS with ACME certificates", "domains", t.ACME.Domains, "storage", filepath.Join(d.data, "acme"))
	}
	return nil
}

// scheme is how node.http is reached: https when it serves TLS.
func (d *daemon) scheme() string {
	if d.cfg.TLS.Enabled() {
		return "https"
	}
	return "http"
}

// tlsSummary says in a line how node.http is secured (config check).
func tlsSummary(cfg configs.Config) string {
	switch t := cfg.TLS; {
	case t.CertFile != "":
		return "HTTPS with " + t.CertFile + " and " + t.KeyFile + " (reloaded when they change)"
	case len(t.ACME.Domains) > 0:
		ca := t.ACME.CA
		if ca == "" {
			ca = "Let's Encrypt"
		}
		return "HTTPS with ACME certificates for " + strings.Join(t.ACME.Domains, ", ") + " from " + ca
	}
	return "none: plain HTTP (set tls for HTTPS; iOS devices need it)"
}

// listenInternal takes node.internal_http, when set.
func (d *daemon) listenInternal() error {
	addr := d.cfg.Node.InternalHTTP
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (node.internal_http): %w", addr, err)
	}
	d.internalLn = ln
	d.closers.add("internal http listener", func() error { _ = ln.Close(); return nil })
	return nil
}

// httpServers are the running HTTP servers: node.http (HTTPS when tls is
// set) and node.internal_http (nil when not set).
type httpServers struct {
	dev, internal *http.Server
	errc          chan error
}

// startHTTP starts the certificate part (reload or ACME), then serves
// node.http and node.internal_http.
func (d *daemon) startHTTP() (*httpServers, error) {
	if d.certs != nil {
		d.parts.start("tls", d.certs)
	}
	dev, internal, err := d.newHTTPServers()
	if err != nil {
		return nil, err
	}
	s := &httpServers{dev: dev, internal: internal, errc: make(chan error, 2)}
	if d.tls != nil {
		dev.TLSConfig = d.tls
		go func() { s.errc <- dev.ServeTLS(d.ln, "", "") }()
	} else {
		go func() { s.errc <- dev.Serve(d.ln) }()
	}
	if internal != nil {
		go func() { s.errc <- fmt.Errorf("internal: %w", internal.Serve(d.internalLn)) }()
	}
	return s, nil
}

// shutdown drains both servers.
func (s *httpServers) shutdown(d *daemon) {
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	for _, srv := range []*http.Server{s.dev, s.internal} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Warn("http shutdown", "err", err)
		}
	}
}
