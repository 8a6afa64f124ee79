package devicesim

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHTTPClientTrustsCA: a client given the server's CA reaches it over
// HTTP/2; without it the handshake fails; a file without a certificate
// is refused.
func TestHTTPClientTrustsCA(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})

	hc, err := HTTPClient(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "HTTP/2.0" {
		t.Fatalf("protocol %q, want HTTP/2.0", body)
	}
	plain, err := HTTPClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(srv.URL); err == nil {
		t.Fatal("a client without the CA trusted the server")
	}
	if _, err := HTTPClient([]byte("not a certificate")); err == nil {
		t.Fatal("a CA file without a certificate accepted")
	}
}
