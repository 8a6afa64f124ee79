package tlscert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mirrord/node/tlscert/tlscerttest"
)

// serveTLS serves HTTPS on a loopback port with cfg until the test ends
// and returns its address.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	})}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// presented dials addr trusting ca and returns the serial number of the
// certificate the server presents and the protocol ALPN chose.
func presented(t *testing.T, addr string, ca *tlscerttest.CA) (*big.Int, string) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0].SerialNumber, st.NegotiatedProtocol
}

// TestFilesReloadRenamedIntoPlace: a new pair renamed into place is
// served from a later handshake on, without restarting the listener; a
// pair that does not load leaves the previous one served.
func TestFilesReloadRenamedIntoPlace(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca := tlscerttest.NewCA(t, "test CA")
	first := ca.Issue(t, "127.0.0.1", "localhost")
	first.Install(t, certFile, keyFile)
	f, err := LoadFiles(certFile, keyFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addr := serveTLS(t, ServerConfig(f.GetCertificate))
	if serial, proto := presented(t, addr, ca); serial.Cmp(first.Serial) != 0 || proto != "h2" {
		t.Fatalf("first handshake: serial %v (want %v), ALPN %q (want h2)", serial, first.Serial, proto)
	}

	second := ca.Issue(t, "127.0.0.1", "localhost")
	second.Install(t, certFile, keyFile)
	waitServed(t, addr, ca, second.Serial)

	// A broken certificate file: Reload fails, the second pair stays.
	tlscerttest.WriteRenamed(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"))
	if _, err := f.Reload(); err == nil {
		t.Fatal("a broken certificate loaded")
	}
	// A key that does not match the certificate: refused too.
	third := ca.Issue(t, "127.0.0.1")
	tlscerttest.WriteRenamed(t, certFile, third.CertPEM)
	if _, err := f.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("mismatched pair: %v", err)
	}
	if serial, _ := presented(t, addr, ca); serial.Cmp(second.Serial) != 0 {
		t.Fatalf("after bad pairs: serial %v, want the second %v kept", serial, second.Serial)
	}
	// Its key arrives: the watcher picks the whole pair up.
	tlscerttest.WriteRenamed(t, keyFile, third.KeyPEM)
	waitServed(t, addr, ca, third.Serial)
}

// waitServed waits until a handshake with addr presents the certificate
// with serial want.
func waitServed(t *testing.T, addr string, ca *tlscerttest.CA, want *big.Int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := presented(t, addr, ca)
		if got.Cmp(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving serial %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLoadFilesErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlscerttest.NewCA(t, "test CA")
	p := ca.Issue(t, "localhost")
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := LoadFiles(certFile, keyFile, log); err == nil || !strings.Contains(err.Error(), "c.pem") {
		t.Fatalf("missing files: %v", err)
	}
	// Key and certificate swapped.
	p.Install(t, keyFile, certFile)
	if _, err := LoadFiles(certFile, keyFile, log); err == nil {
		t.Fatal("swapped files loaded")
	}
	p.Install(t, certFile, keyFile)
	f, err := LoadFiles(certFile, keyFile, log)
	if err != nil || f.Leaf().SerialNumber.Cmp(p.Serial) != 0 {
		t.Fatalf("good pair: %v", err)
	}
}

func TestCertPool(t *testing.T) {
	dir := t.TempDir()
	ca := tlscerttest.NewCA(t, "test CA")
	good, bad := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(good, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := CertPool(""); err != nil {
		t.Fatalf("no CA file: %v", err)
	}
	if _, err := CertPool(bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("bad file: %v", err)
	}
	if _, err := CertPool(filepath.Join(dir, "none.pem")); err == nil {
		t.Fatal("missing file accepted")
	}
	pool, err := CertPool(good)
	if err != nil {
		t.Fatal(err)
	}
	leaf := ca.Issue(t, "node.internal")
	block, _ := pemDecode(leaf.CertPEM)
	if _, err := block.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node.internal"}); err != nil {
		t.Fatalf("a certificate of the CA does not verify with the pool: %v", err)
	}
}

func pemDecode(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	return x509.ParseCertificate(block.Bytes)
}

// TestACMEConfig: the ACME listener offers the TLS-ALPN-01 protocol
// beside h2, and a bad trust file for the CA is refused before anything
// runs. Obtaining a certificate needs a reachable ACME CA and is not
// tested here.
func TestACMEConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := NewACME(ACMEConfig{Domains: []string{"mirror.example.com"}, Email: "ops@example.com",
		Storage: t.TempDir(), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer a.cache.Stop()
	c := a.TLSConfig()
	if !slices.Equal(c.NextProtos, []string{"h2", "http/1.1", "acme-tls/1"}) || c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("NextProtos %q, MinVersion %x", c.NextProtos, c.MinVersion)
	}
	// No certificate yet (Run never ran): a handshake fails, nothing
	// is made up.
	addr := serveTLS(t, c)
	if conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "mirror.example.com", InsecureSkipVerify: true}); err == nil {
		conn.Close()
		t.Fatal("a handshake succeeded without a certificate")
	}
	bad := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(bad, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := NewACME(ACMEConfig{Domains: []string{"a.example"}, CARoot: bad, Storage: t.TempDir(), Log: log}); err == nil {
		t.Fatal("bad ca_root accepted")
	}
}
