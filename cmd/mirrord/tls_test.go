package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/consensus/consensustest"
	"mirrord/devicesim"
	"mirrord/node/tlscert/tlscerttest"
)

// tlsNode is a node serving HTTPS with a certificate of a test CA.
type tlsNode struct {
	*testNode
	ca                *tlscerttest.CA
	caFile            string
	certFile, keyFile string
	internal          string // node.internal_http's URL
}

// startTLSNode starts a node whose node.http serves HTTPS with a
// certificate for 127.0.0.1 issued by a CA made here, with
// node.internal_http on another port; MIRRORD_CA names the CA for the
// CLI commands of the test.
func startTLSNode(t *testing.T) *tlsNode {
	t.Helper()
	dir := t.TempDir()
	n := &tlsNode{ca: tlscerttest.NewCA(t, "mirrord test CA"), caFile: filepath.Join(dir, "ca.pem"),
		certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	if err := os.WriteFile(n.caFile, n.ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	n.ca.Issue(t, "127.0.0.1", "localhost").Install(t, n.certFile, n.keyFile)
	internal := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n.internal = "http://" + internal
	n.testNode = startNodeWith(t, "", func(c *configs.Config) {
		fastStats(c)
		c.TLS.CertFile, c.TLS.KeyFile = n.certFile, n.keyFile
		c.Node.InternalHTTP = internal
	})
	n.url = "https://" + strings.TrimPrefix(n.url, "http://")
	t.Setenv("MIRRORD_CA", n.caFile)
	return n
}

// protoRecorder records the protocol of every response a client got.
type protoRecorder struct {
	next   http.RoundTripper
	mu     sync.Mutex
	protos map[string]int
}

func (p *protoRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.next.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.protos[resp.Proto]++
		p.mu.Unlock()
	}
	return resp, err
}

// TestTLSCapgoFlow is the issue's must-show over HTTPS: the CLI
// publishes through https:// with the test CA, a simulated device
// updates by zip and then by manifest, reports stats and uses
// channel_self, all over HTTP/2; /metrics and /cluster/v1/peer are on
// the internal port only.
func TestTLSCapgoFlow(t *testing.T) {
	vec := vectors(t)
	n := startTLSNode(t)
	const app = "com.example.tls"
	ctx := context.Background()

	// Plain HTTP to the HTTPS port is refused; a CA the CLI does not
	// know fails the handshake, and --ca wins over MIRRORD_CA.
	if resp, body := httpGet(t, "http://"+strings.TrimPrefix(n.url, "https://")+"/healthz", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("plain HTTP to the HTTPS port: %d %s", resp.StatusCode, body)
	}
	other := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(other, tlscerttest.NewCA(t, "another CA").PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.cliErr("status", "--ca", other); err == nil || !strings.Contains(out+err.Error(), "certificate") {
		t.Fatalf("status with a CA that did not issue the node's certificate: %v\n%s", err, out)
	}
	n.cli(t, "app", "create", app, "--public-key", filepath.Join(vec, "test_public_key.pem"), "--ca", n.caFile)
	enc := readEncrypt(t, vec, "1.0.1")
	n.cli(t, "publish", "--app", app, "--version", "1.0.1", "--channel", "production",
		"--session-key", enc.IVSessionKey, "--checksum", enc.Checksum, filepath.Join(vec, "bundle-1.0.1.zip_encrypted.zip"))

	pub, err := os.ReadFile(filepath.Join(vec, "test_public_key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	dev := newDevice(t, n.testNode, app, pub)
	hc, err := devicesim.HTTPClient(n.ca.PEM)
	if err != nil {
		t.Fatal(err)
	}
	rec := &protoRecorder{next: hc.Transport, protos: map[string]int{}}
	hc.Transport = rec
	dev.Client = hc

	if ans, _, err := dev.Check(ctx); err != nil || !strings.HasPrefix(fmt.Sprint(ans["url"]), n.url+"/dl/") {
		t.Fatalf("the download URL is not on %s: %v %v", n.url, ans, err)
	}
	res, err := dev.Update(ctx)
	if err != nil || res.Installed != "1.0.1" || res.UsedManifest {
		t.Fatalf("update to 1.0.1 by zip over HTTPS: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.1"), dev.CurrentDir())

	n.cli(t, "publish", "--app", app, "--version", "1.0.2", "--channel", "production",
		"--key", filepath.Join(vec, "test_private_key.pem"), filepath.Join(vec, "src-1.0.2"))
	res, err = dev.Update(ctx)
	if err != nil || res.Installed != "1.0.2" || !res.UsedManifest || len(res.Downloaded) == 0 {
		t.Fatalf("update to 1.0.2 by manifest over HTTPS: %+v %v", res, err)
	}
	sameTree(t, filepath.Join(vec, "src-1.0.2"), dev.CurrentDir())

	// The device's stats reached the node over HTTPS.
	consensustest.WaitFor(t, "the installs counted from the device's stats", func() bool {
		tot := historyTotals(statsSince(t, n.testNode, app))
		return tot["1.0.1"].Installs >= 1 && tot["1.0.2"].Installs >= 1
	}, 30*time.Second)

	// channel_self over HTTPS.
	n.cli(t, "channel", "set", app, "beta", "--version", "1.0.1", "--allow-device-self-set", "true")
	if ans, err := dev.SetChannel(ctx, "beta"); err != nil || ans["status"] != "ok" {
		t.Fatalf("set channel: %v %v", ans, err)
	}
	if ans, err := dev.GetChannel(ctx); err != nil || ans["channel"] != "beta" {
		t.Fatalf("get channel: %v %v", ans, err)
	}
	rec.mu.Lock()
	protos := fmt.Sprint(rec.protos)
	rec.mu.Unlock()
	if rec.protos["HTTP/2.0"] == 0 || len(rec.protos) != 1 {
		t.Fatalf("device requests by protocol: %s, want HTTP/2.0 only", protos)
	}

	// The device-sim command trusts the CA with --ca.
	var stdout, stderr bytes.Buffer
	err = run(ctx, []string{"device-sim", "check", "--server", n.url, "--app", app, "--dir", t.TempDir(), "--ca", n.caFile,
		"--public-key", filepath.Join(vec, "test_public_key.pem")}, &stdout, &stderr)
	if err != nil || !strings.Contains(stdout.String(), `"version": "1.0.2"`) {
		t.Fatalf("device-sim check over HTTPS: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	checkInternalPort(t, n)
}

// checkInternalPort: /metrics and /cluster/v1/peer answer on
// node.internal_http and not on the device port; health answers on both.
func checkInternalPort(t *testing.T, n *tlsNode) {
	t.Helper()
	hc, err := httpClient(n.caFile, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		base, path string
		want       int
	}{
		{n.url, "/metrics", http.StatusNotFound},
		{n.url, "/cluster/v1/peer", http.StatusNotFound},
		{n.url, "/healthz", http.StatusOK},
		{n.url, "/readyz", http.StatusOK},
		{n.internal, "/metrics", http.StatusOK},
		{n.internal, "/cluster/v1/peer", http.StatusOK},
		{n.internal, "/healthz", http.StatusOK},
		{n.internal, "/readyz", http.StatusOK},
		{n.internal, "/updates", http.StatusNotFound},
		{n.internal, "/admin/v1/status", http.StatusNotFound},
	} {
		resp, err := hc.Get(tc.base + tc.path)
		if err != nil {
			t.Fatalf("GET %s%s: %v", tc.base, tc.path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s%s: %d, want %d", tc.base, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestTLSCertificateReload: a new certificate renamed into place (key
// first, then certificate, as certbot and cert-manager do) is presented
// by a later handshake, without a restart; the node keeps answering
// devices throughout.
func TestTLSCertificateReload(t *testing.T) {
	n := startTLSNode(t)
	first := servedSerial(t, n)
	next := n.ca.Issue(t, "127.0.0.1", "localhost")
	if first.Cmp(next.Serial) == 0 {
		t.Fatal("the new certificate has the old serial")
	}
	next.Install(t, n.certFile, n.keyFile)
	consensustest.WaitFor(t, "a handshake presenting the new certificate", func() bool {
		return servedSerial(t, n).Cmp(next.Serial) == 0
	}, 30*time.Second)
	out := n.cli(t, "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status after the reload: %v\n%s", err, out)
	}
}

// servedSerial dials node.http and returns the serial number of the
// certificate it presents; the handshake verifies it against the CA.
func servedSerial(t *testing.T, n *tlsNode) *big.Int {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(n.ca.Cert)
	conn, err := tls.Dial("tcp", strings.TrimPrefix(n.url, "https://"), &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	if st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12 {
		t.Fatalf("ALPN %q, version %x: want h2 over TLS 1.2 or later", st.NegotiatedProtocol, st.Version)
	}
	return st.PeerCertificates[0].SerialNumber
}

// TestTLSStartErrors: a certificate pair that does not load stops serve
// before the node starts, naming the file.
func TestTLSStartErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := configs.Default()
	cfg.Node.Data = filepath.Join(dir, "data")
	cfg.Node.HTTP = "127.0.0.1:0"
	cfg.Node.P2P = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "missing.crt"), filepath.Join(dir, "missing.key")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	err := serve(context.Background(), cfg, log, nil)
	if err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Fatalf("serve with missing certificate files: %v", err)
	}
}

// TestTLSACMEOffline: a node with tls.acme starts and answers on its
// internal port while no certificate can be obtained (the CA here is a
// closed local port); its HTTPS port offers h2 and acme-tls/1 but
// completes no handshake without a certificate. Obtaining one is not
// tested: no ACME CA is reachable where the tests run.
func TestTLSACMEOffline(t *testing.T) {
	internal := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	n := startNodeWith(t, "", func(c *configs.Config) {
		c.TLS.ACME = configs.ACME{Domains: []string{"mirror.example.com"}, CA: fmt.Sprintf("https://127.0.0.1:%d/directory", freePort(t))}
		c.Node.InternalHTTP = internal
	})
	resp, body := httpGet(t, "http://"+internal+"/readyz", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("internal /readyz: %d %s", resp.StatusCode, body)
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(n.url, "http://"), &tls.Config{ServerName: "mirror.example.com", InsecureSkipVerify: true})
	if err == nil {
		conn.Close()
		t.Fatal("a handshake completed without an ACME certificate")
	}
	n.stop()
}
