package configs

import (
	"strings"
	"testing"
)

// TestValidateTLS: the tls section and node.internal_http, one decision
// per row: "" accepts, else the error names the key.
func TestValidateTLS(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"none", "tls: {}\n", ""},
		{"files", "tls:\n  cert_file: /c.pem\n  key_file: /k.pem\n", ""},
		{"files with https public_url", "node:\n  public_url: https://m.example.com\ntls:\n  cert_file: c\n  key_file: k\n", ""},
		{"cert without key", "tls:\n  cert_file: /c.pem\n", "line 2: tls.cert_file: set without tls.key_file"},
		{"key without cert", "tls:\n  key_file: /k.pem\n", "line 2: tls.key_file: set without tls.cert_file"},
		{"http public_url with tls", "node:\n  public_url: http://m.example.com\ntls:\n  cert_file: c\n  key_file: k\n", "node.public_url: \"http://m.example.com\" is http://"},
		{"acme", "tls:\n  acme:\n    domains: [m.example.com, edge.example.com]\n    email: ops@example.com\n", ""},
		{"acme private CA", "tls:\n  acme:\n    domains: [m.corp.internal]\n    ca: https://ca.corp.internal/acme/acme/directory\n    ca_root: /etc/ca.pem\n", ""},
		{"acme and files", "tls:\n  cert_file: c\n  key_file: k\n  acme:\n    domains: [m.example.com]\n", "line 5: tls.acme.domains: set together with tls.cert_file"},
		{"acme wildcard", "tls:\n  acme:\n    domains: ['*.example.com']\n", "tls.acme.domains: \"*.example.com\" is not a DNS name"},
		{"acme IP", "tls:\n  acme:\n    domains: [127.0.0.1]\n", "is not a DNS name"},
		{"acme single label", "tls:\n  acme:\n    domains: [localhost]\n", "is not a DNS name"},
		{"acme URL", "tls:\n  acme:\n    domains: ['https://m.example.com']\n", "is not a DNS name"},
		{"acme port", "tls:\n  acme:\n    domains: ['m.example.com:443']\n", "is not a DNS name"},
		{"acme hyphen", "tls:\n  acme:\n    domains: [-m.example.com]\n", "is not a DNS name"},
		{"acme twice", "tls:\n  acme:\n    domains: [m.example.com, M.example.com]\n", "listed twice"},
		{"acme email", "tls:\n  acme:\n    domains: [m.example.com]\n    email: ops\n", "tls.acme.email: \"ops\""},
		{"acme http CA", "tls:\n  acme:\n    domains: [m.example.com]\n    ca: http://ca.internal/directory\n", "tls.acme.ca: "},
		{"acme root without CA", "tls:\n  acme:\n    domains: [m.example.com]\n    ca_root: /r.pem\n", "tls.acme.ca_root: set without tls.acme.ca"},
		{"acme keys without domains", "tls:\n  acme:\n    email: ops@example.com\n", "tls.acme.domains: empty, but other tls.acme keys are set"},
		{"internal", "node:\n  internal_http: 127.0.0.1:8081\n", ""},
		{"internal not host:port", "node:\n  internal_http: '8081'\n", "line 2: node.internal_http: \"8081\" is not host:port"},
		{"internal same as http", "node:\n  http: 127.0.0.1:9000\n  internal_http: 127.0.0.1:9000\n", "node.internal_http: \"127.0.0.1:9000\" is node.http too"},
		{"internal and http on port 0", "node:\n  http: 127.0.0.1:0\n  internal_http: 127.0.0.1:0\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "" && c.TLS.Enabled() != (c.TLS.CertFile != "" || len(c.TLS.ACME.Domains) > 0):
				t.Fatalf("Enabled %v for %+v", c.TLS.Enabled(), c.TLS)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestTLSEnv: the tls keys have variables like every other key, the
// ACME domains a comma-separated list; MIRRORD_CA (the CLI's) is none.
func TestTLSEnv(t *testing.T) {
	c := Default()
	err := c.ApplyEnv([]string{"MIRRORD_TLS_ACME_DOMAINS=a.example.com, b.example.com", "MIRRORD_TLS_ACME_EMAIL=o@example.com",
		"MIRRORD_NODE_INTERNAL_HTTP=127.0.0.1:8081", "MIRRORD_CA=/etc/ca.pem"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TLS.ACME.Domains) != 2 || c.TLS.ACME.Domains[1] != "b.example.com" || c.TLS.ACME.Email != "o@example.com" ||
		c.Node.InternalHTTP != "127.0.0.1:8081" {
		t.Fatalf("%+v %+v", c.TLS, c.Node)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyEnv([]string{"MIRRORD_TLS_CERT=/c.pem"}); err == nil || !strings.Contains(err.Error(), "MIRRORD_TLS_CERT_FILE") {
		t.Fatalf("misspelt variable: %v", err)
	}
}
