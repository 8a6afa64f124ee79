// Package tlscert gives the node's HTTPS listener its certificate: a
// PEM certificate and key pair read from files and read again when they
// change on disk (Files), or certificates obtained and renewed over ACME
// (acme.go). Both hand out the certificate through
// tls.Config.GetCertificate, so a new one takes effect on the next
// handshake without a restart.
package tlscert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// ServerConfig returns the TLS settings of the node's HTTPS listener:
// TLS 1.2 at least, HTTP/2 offered first, the certificate from get.
func ServerConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error)) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: get,
	}
}

// Files serves a certificate and key pair kept in two PEM files. Run
// watches the files' directories and loads the pair again after a
// change; a pair that does not load (a half-written file, a key that
// does not match) is logged and the previous one kept.
type Files struct {
	certFile, keyFile string
	log               *slog.Logger
	cur               atomic.Pointer[tls.Certificate]
	// settle is how long Run waits after the last change before it
	// loads: writers replace the two files one after the other.
	settle time.Duration
}

// LoadFiles reads the pair once; an error here stops the node from
// starting with a certificate it cannot serve.
func LoadFiles(certFile, keyFile string, log *slog.Logger) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, log: log, settle: 100 * time.Millisecond}
	if _, err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// GetCertificate is tls.Config.GetCertificate: the pair last loaded.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// Leaf is the certificate served now.
func (f *Files) Leaf() *x509.Certificate { return f.cur.Load().Leaf }

// Reload reads the pair again and serves it from the next handshake on;
// changed says whether it differs from the one served before. On an
// error the previous pair stays.
func (f *Files) Reload() (changed bool, err error) {
	pair, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return false, fmt.Errorf("tls: load %s and %s: %w", f.certFile, f.keyFile, err)
	}
	if len(pair.Certificate) == 0 || pair.Leaf == nil {
		return false, fmt.Errorf("tls: %s holds no certificate", f.certFile)
	}
	old := f.cur.Swap(&pair)
	return old == nil || !old.Leaf.Equal(pair.Leaf), nil
}

// Run watches the directories of the two files until ctx ends. It
// watches directories, not files, because certificate tools (certbot,
// cert-manager, a Kubernetes secret volume) write a new file and rename
// it into place, or swap a symlink: a watch on the old file would see
// nothing of it. When the watch cannot be set up or breaks, the node
// keeps serving the pair it has and says so: a certificate that cannot
// be reloaded is no reason to stop answering devices.
func (f *Files) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = f.watch(ctx, w)
		_ = w.Close()
	}
	if err != nil {
		f.log.Error("tls: certificate files are not watched; restart the node after replacing them", "err", err)
		<-ctx.Done()
	}
	return nil
}

// watch loads the pair again after changes in its directories, until
// ctx ends (nil) or the watch fails.
func (f *Files) watch(ctx context.Context, w *fsnotify.Watcher) error {
	for _, dir := range uniqueDirs(f.certFile, f.keyFile) {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("certificate watch closed")
			}
			if ev.Op != fsnotify.Chmod {
				settle = time.After(f.settle)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("certificate watch closed")
			}
			f.log.Warn("tls: certificate watch", "err", err)
		case <-settle:
			settle = nil
			f.reloadLogged()
		}
	}
}

// reloadLogged reloads and says what happened.
func (f *Files) reloadLogged() {
	changed, err := f.Reload()
	switch {
	case err != nil:
		f.log.Warn("tls: new certificate files not loaded; still serving the previous certificate",
			"err", err, "serving_until", f.Leaf().NotAfter.UTC().Format(time.RFC3339))
	case changed:
		leaf := f.Leaf()
		f.log.Info("tls: certificate reloaded", "subject", leaf.Subject.String(), "dns", leaf.DNSNames,
			"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

func uniqueDirs(files ...string) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, p := range files {
		d := filepath.Dir(p)
		if abs, err := filepath.Abs(d); err == nil {
			d = abs
		}
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// CertPool returns the system's roots plus the PEM certificates in
// caFile ("" adds none): what a client trusts to reach a node whose
// certificate a private CA issued.
func CertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tls: CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}
