package configs

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// exampleChecks has one entry per example file: what sets it apart. A
// new example file without an entry fails TestExamples.
var exampleChecks = map[string]func(t *testing.T, c Config){
	"single-node.yaml": func(t *testing.T, c Config) {
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("differs from Default():\n%+v\n%+v", c, Default())
		}
	},
	"cluster-voter.yaml": func(t *testing.T, c Config) {
		want := []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
		switch {
		case c.Node.HTTP != "0.0.0.0:8443" || !strings.HasPrefix(c.Node.PublicURL, "https://"):
			t.Errorf("want a public HTTPS listener with an https public_url: %+v", c.Node)
		case c.TLS.CertFile == "" || c.TLS.KeyFile == "" || len(c.TLS.ACME.Domains) != 0:
			t.Errorf("want TLS from certificate files: %+v", c.TLS)
		case c.Node.InternalHTTP == "" || c.Node.Metrics != "token":
			t.Errorf("want /metrics and /cluster/v1/peer on internal_http, /metrics with a token: %+v", c.Node)
		case !reflect.DeepEqual(c.Node.P2P, want):
			t.Errorf("p2p %q, want %q", c.Node.P2P, want)
		case c.Cluster.Voters != 3 || c.Cluster.Join != "":
			t.Errorf("want the first of 3 voters: %+v", c.Cluster)
		case c.Replication.Zips != "eager" || c.Replication.DiskBudget == 0:
			t.Errorf("want eager zips and a disk budget: %+v", c.Replication)
		case c.Node.Data != "/var/lib/mirrord":
			t.Errorf("data %q, want the systemd unit's StateDirectory", c.Node.Data)
		}
	},
	"edge-nonvoter.yaml": func(t *testing.T, c Config) {
		voter := mustExample(t, "cluster-voter.yaml")
		switch {
		case c.Cluster.Join == "" || c.Cluster.JoinToken == "":
			t.Errorf("want join and join_token: %+v", c.Cluster)
		case c.Replication.Zips != "on-demand":
			t.Errorf("zips %q, want on-demand", c.Replication.Zips)
		case c.Replication.DiskBudget == 0 || c.Replication.DiskBudget >= voter.Replication.DiskBudget:
			t.Errorf("disk budget %d, want one smaller than a voter's %d", c.Replication.DiskBudget, voter.Replication.DiskBudget)
		case c.Node.PublicURL == "" || c.Node.PublicURL == voter.Node.PublicURL:
			t.Errorf("public_url %q, want the PoP's own", c.Node.PublicURL)
		case len(c.TLS.ACME.Domains) != 1 || !strings.Contains(c.Node.PublicURL, c.TLS.ACME.Domains[0]) || c.TLS.CertFile != "":
			t.Errorf("want an ACME certificate for the public_url's name: %+v", c.TLS)
		case c.Node.InternalHTTP == "" || !strings.HasSuffix(c.Cluster.Join, c.Node.InternalHTTP[strings.LastIndex(c.Node.InternalHTTP, ":"):]):
			t.Errorf("want internal_http, and join through a member's internal port: %+v %+v", c.Node, c.Cluster)
		case c.Node.Data != "/var/lib/mirrord":
			t.Errorf("data %q, want the systemd unit's StateDirectory", c.Node.Data)
		}
	},
}

func mustExample(t *testing.T, name string) Config {
	t.Helper()
	b, err := fs.ReadFile(Examples, name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(name, b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExamples(t *testing.T) {
	names, err := fs.Glob(Examples, "*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, n := range names {
		t.Run(n, func(t *testing.T) {
			check, ok := exampleChecks[n]
			if !ok {
				t.Fatalf("example %s has no entry in exampleChecks", n)
			}
			check(t, mustExample(t, n))
			b, _ := fs.ReadFile(Examples, n)
			checkDocumented(t, b)
		})
	}
	for n := range exampleChecks {
		if _, err := fs.Stat(Examples, n); err != nil {
			t.Errorf("exampleChecks names %s, which is not embedded: %v", n, err)
		}
	}
}

// checkDocumented fails unless the document sets every setting (so each
// example shows every key) and every key has a comment.
func checkDocumented(t *testing.T, b []byte) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			if v.Kind == yaml.MappingNode {
				walk(v, p)
				continue
			}
			seen[p] = true
			if k.LineComment == "" && v.LineComment == "" && k.HeadComment == "" {
				t.Errorf("line %d: key %s has no comment", k.Line, p)
			}
		}
	}
	walk(doc.Content[0], "")
	for _, name := range EnvNames() {
		if key := EnvKey(name); !seen[key] {
			t.Errorf("key %s is missing (examples show every setting)", key)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"version: 1\nnode:\n  dta: x\n", `line 3: unknown key "dta"`},
		{"version: 2\n", "version: 2 is not supported"},
		{"node:\n  http: nope\n", "node.http"},
		{"stats:\n  flush_interval: soon\n", "not a duration"},
		{"limits:\n  max_upload_bytes: lots\n", "not a size"},
		{"limits:\n  max_admin_body_bytes: 64KiB\n", "line 2: limits.max_admin_body_bytes: must be at least 1MiB"},
		{"version: [\n", "config f.yaml"},
		{"node:\n  psk_file: k\n  p2p: [/ip4/0.0.0.0/udp/1/quic-v1]\n", "node.p2p"},
		{"raft:\n  heartbeat_timeout: 2s\n", "raft.election_timeout: 500ms is shorter"},
		{"raft:\n  election_timeout: 100ms\n", "raft.election_timeout"},
		{"raft:\n  heartbeat_timeout: 100ms\n", "line 2: raft.heartbeat_timeout: 100ms"},
		{"raft:\n  heartbeat_timeout: -1s\n", "raft.heartbeat_timeout"},
		{"raft:\n  election_timeout: -1s\n", "line 2: raft.election_timeout: must not be negative"},
		{"cluster:\n  join: http://a:1\n", "cluster.join and cluster.join_token"},
		{"node:\n  data: x\n  data: y\n", `"data" already defined`},
	} {
		_, err := Parse("f.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.yaml") {
			t.Errorf("%q: got %v, want error containing %q and the file name", tc.doc, err, tc.want)
		}
	}
	if c, err := Parse("empty.yaml", nil); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("empty file: %v %+v", err, c)
	}
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range []struct {
		doc  string
		want func(c Config) bool
	}{
		{"node:\n  psk_file: k\n  p2p: [/ip4/0.0.0.0/tcp/4001]\n", func(c Config) bool { return c.Node.PSKFile == "k" }},
		{"raft:\n  heartbeat_timeout: 2s\n  election_timeout: 2s\n", func(c Config) bool { return time.Duration(c.Raft.ElectionTimeout) == 2*time.Second }},
		{"raft:\n  election_timeout: 3s\n", func(c Config) bool { return time.Duration(c.Raft.ElectionTimeout) == 3*time.Second }},
		{"limits:\n  max_request_bytes: 64KiB\n  max_admin_body_bytes: 256MiB\n", func(c Config) bool {
			return c.Limits.MaxRequestBytes == 64<<10 && c.Limits.MaxAdminBodyBytes == 256<<20
		}},
	} {
		c, err := Parse("f.yaml", []byte(tc.doc))
		if err != nil || !tc.want(c) {
			t.Errorf("%q: %v %+v", tc.doc, err, c)
		}
	}
}

// TestMarshalRoundTrip: what `mirrord config print` writes reads back
// as the same configuration, in the file's units.
func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"single-node.yaml", "cluster-voter.yaml", "edge-nonvoter.yaml"} {
		c := mustExample(t, name)
		c.Raft.HeartbeatTimeout = Duration(90 * time.Minute)
		c.Raft.ElectionTimeout = Duration(90 * time.Minute)
		c.Stats.SegmentBytes = 1000
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse("printed", b)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("%s: round trip: %v\n%s", name, err, b)
		}
		for _, want := range []string{"max_upload_bytes: 2GiB", "retention: ", "heartbeat_timeout: 1h30m\n", "segment_bytes: 1000\n"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: printed form lacks %q:\n%s", name, want, b)
			}
		}
	}
}

func TestDurationMarshal(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", time.Second: "1s", 2 * time.Minute: "2m", 720 * time.Hour: "720h",
		90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s", time.Hour + time.Second: "1h0m1s"} {
		got, _ := Duration(d).MarshalYAML()
		if got != want {
			t.Errorf("%s: %q, want %q", d, got, want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(want)); err != nil || time.Duration(back) != d {
			t.Errorf("%q: read back %s %v", want, time.Duration(back), err)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "12": 12, "1KiB": 1024, "64MiB": 64 << 20, "2GiB": 2 << 30, "1KB": 1000, "5 MB": 5e6, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5MiB", "99999999999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := fs.ReadFile(Examples, "single-node.yaml")
	f.Add(b)
	f.Add([]byte("version: 1\nnode: {data: x, http: 'a:1'}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse("fuzz.yaml", doc)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted an invalid config: %v", err)
			}
		}
	})
}
