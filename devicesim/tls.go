package devicesim

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
)

// HTTPClient returns a client for Device.Client that trusts, besides
// the system's roots, the CA certificates in caPEM: a device on which a
// private CA was installed and trusted (an iOS configuration profile
// with full trust, an Android network security config naming the CA).
// It speaks HTTP/2 where the server offers it, as the plugin's
// platform HTTP stacks do.
func HTTPClient(caPEM []byte) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("devicesim: the CA file holds no PEM certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Timeout: defaultTimeout, Transport: tr}, nil
}
