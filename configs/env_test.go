package configs

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApplyEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    func(c *Config) // what the variables change on Default()
	}{
		{"string", []string{"MIRRORD_NODE_HTTP=0.0.0.0:9000"}, func(c *Config) { c.Node.HTTP = "0.0.0.0:9000" }},
		{"string kept literally", []string{"MIRRORD_NODE_PUBLIC_URL=http://a:1/#x"}, func(c *Config) { c.Node.PublicURL = "http://a:1/#x" }},
		{"empty string", []string{"MIRRORD_NODE_DATA="}, func(c *Config) { c.Node.Data = "" }},
		{"duration", []string{"MIRRORD_STATS_REPORT_INTERVAL=150ms"}, func(c *Config) { c.Stats.ReportInterval = Duration(150 * time.Millisecond) }},
		{"size with unit", []string{"MIRRORD_REPLICATION_DISK_BUDGET=50GiB"}, func(c *Config) { c.Replication.DiskBudget = 50 << 30 }},
		{"size in bytes", []string{"MIRRORD_LIMITS_MAX_REQUEST_BYTES=4096"}, func(c *Config) { c.Limits.MaxRequestBytes = 4096 }},
		{"int", []string{"MIRRORD_CLUSTER_VOTERS=5"}, func(c *Config) { c.Cluster.Voters = 5 }},
		{"uint64", []string{"MIRRORD_RAFT_SNAPSHOT_THRESHOLD=100"}, func(c *Config) { c.Raft.SnapshotThreshold = 100 }},
		{"list", []string{"MIRRORD_NODE_P2P=/ip4/0.0.0.0/tcp/4001, /ip4/0.0.0.0/udp/4001/quic-v1"},
			func(c *Config) { c.Node.P2P = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"} }},
		{"empty list", []string{"MIRRORD_NODE_P2P="}, func(c *Config) { c.Node.P2P = []string{} }},
		{"join", []string{"MIRRORD_CLUSTER_JOIN=http://a:8080", "MIRRORD_CLUSTER_JOIN_TOKEN=t"},
			func(c *Config) { c.Cluster.Join, c.Cluster.JoinToken = "http://a:8080", "t" }},
		{"first occurrence wins", []string{"MIRRORD_CLUSTER_VOTERS=5", "MIRRORD_CLUSTER_VOTERS=7"}, func(c *Config) { c.Cluster.Voters = 5 }},
		{"CLI and test variables ignored", []string{"MIRRORD_SERVER=http://x", "MIRRORD_TOKEN=t", "MIRRORD_REPORT_INTERVAL=1s"}, func(*Config) {}},
		{"other MIRRORD_ variables ignored", []string{"MIRRORD_TEST_AS_MAIN=1", "MIRRORD_BENCH_MIB=5", "MIRRORD_VERSION=2"}, func(*Config) {}},
		{"other variables ignored", []string{"HOME=/root", "NODE_HTTP=x", "mirrord_node_http=x", "MIRRORD_NODE_HTTPX"}, func(*Config) {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := Default(), Default()
			tc.want(&want)
			if err := got.ApplyEnv(tc.environ); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestApplyEnvErrors(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want []string // all in the error
	}{
		{"MIRRORD_NODE_FOO=1", []string{"MIRRORD_NODE_FOO", `no key "foo"`, "MIRRORD_NODE_HTTP"}},
		{"MIRRORD_NODE=1", []string{"MIRRORD_NODE", "section"}},
		{"MIRRORD_DATA=/x", []string{"MIRRORD_DATA is not a setting", "MIRRORD_NODE_DATA"}},
		{"MIRRORD_REPLICATON_DISK_BUDGET=1", []string{"MIRRORD_REPLICATON_DISK_BUDGET", "MIRRORD_REPLICATION_DISK_BUDGET"}},
		{"MIRRORD_STATS_REPORT_INTERVAL=soon", []string{"MIRRORD_STATS_REPORT_INTERVAL (stats.report_interval)", `"soon" is not a duration`}},
		{"MIRRORD_REPLICATION_DISK_BUDGET=lots", []string{"MIRRORD_REPLICATION_DISK_BUDGET", "not a size"}},
		{"MIRRORD_REPLICATION_DISK_BUDGET=", []string{"MIRRORD_REPLICATION_DISK_BUDGET", "not a size"}},
		{"MIRRORD_CLUSTER_VOTERS=three", []string{"MIRRORD_CLUSTER_VOTERS", `"three" is not a whole number`}},
		{"MIRRORD_CLUSTER_VOTERS=", []string{"MIRRORD_CLUSTER_VOTERS", "empty value"}},
		{"MIRRORD_RAFT_TRAILING_LOGS=-1", []string{"MIRRORD_RAFT_TRAILING_LOGS", "non-negative"}},
	} {
		c := Default()
		err := c.ApplyEnv([]string{tc.env})
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: got %v, want an error containing %q", tc.env, err, w)
			}
		}
	}
	// Every problem is reported, not only the first.
	c := Default()
	err := c.ApplyEnv([]string{"MIRRORD_NODE_FOO=1", "MIRRORD_CLUSTER_VOTERS=x"})
	if err == nil || !strings.Contains(err.Error(), "MIRRORD_NODE_FOO") || !strings.Contains(err.Error(), "MIRRORD_CLUSTER_VOTERS") {
		t.Errorf("want both variables named: %v", err)
	}
}

// TestEnvNames: every key of the file has a variable, derived from the
// yaml tags, and EnvKey maps it back.
func TestEnvNames(t *testing.T) {
	names := EnvNames()
	for _, want := range []string{"MIRRORD_NODE_HTTP", "MIRRORD_NODE_DATA", "MIRRORD_NODE_P2P", "MIRRORD_STATS_REPORT_INTERVAL",
		"MIRRORD_REPLICATION_DISK_BUDGET", "MIRRORD_CLUSTER_JOIN", "MIRRORD_CLUSTER_JOIN_TOKEN", "MIRRORD_RAFT_WAL_SEGMENT_SIZE"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("EnvNames lacks %s", want)
		}
	}
	for _, n := range names {
		key := EnvKey(n)
		if "MIRRORD_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_")) != n {
			t.Errorf("%s maps to key %q", n, key)
		}
		if envIgnored[n] {
			t.Errorf("%s is both a setting and ignored", n)
		}
	}
	if EnvKey("MIRRORD_SERVER") != "" || EnvKey("MIRRORD_VERSION") != "" {
		t.Error("MIRRORD_SERVER and MIRRORD_VERSION are not settings")
	}
	if got := EnvSettings([]string{"MIRRORD_SERVER=x", "MIRRORD_NODE_HTTP=a:1", "PATH=/bin", "MIRRORD_CLUSTER_VOTERS=5", "MIRRORD_NODE_HTTP=b:2"}); !reflect.DeepEqual(got, []string{"MIRRORD_CLUSTER_VOTERS", "MIRRORD_NODE_HTTP"}) {
		t.Errorf("EnvSettings: %q", got)
	}
}

// TestEnvOverFile: the environment wins over the file, and a value the
// file needs (a join token kept out of it) can come from the
// environment before validation.
func TestEnvOverFile(t *testing.T) {
	c, err := Decode("f.yaml", []byte("node:\n  http: 127.0.0.1:1\ncluster:\n  join: http://a:8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Validate() == nil {
		t.Fatal("join without join_token should not validate")
	}
	if err := c.ApplyEnv([]string{"MIRRORD_NODE_HTTP=127.0.0.1:2", "MIRRORD_CLUSTER_JOIN_TOKEN=tok"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil || c.Node.HTTP != "127.0.0.1:2" || c.Cluster.JoinToken != "tok" || c.Cluster.Join != "http://a:8080" {
		t.Fatalf("%v %+v", err, c)
	}
}

// TestExplain: a value that fails validation is blamed on the variable
// that set it, else on the file's line for its key.
func TestExplain(t *testing.T) {
	doc := []byte("version: 1\nnode:\n  data: d\n  http: nope\ncluster:\n  join: x\n")
	for _, tc := range []struct {
		name    string
		environ []string
		want    string
	}{
		{"file", nil, `config f.yaml: line 4: node.http: "nope" is not host:port`},
		{"variable", []string{"MIRRORD_NODE_HTTP=still-nope"}, `environment MIRRORD_NODE_HTTP: node.http: "still-nope"`},
		{"rule across keys", []string{"MIRRORD_NODE_HTTP=a:1"}, "config f.yaml: cluster.join and cluster.join_token go together"},
		{"value from the file, another variable", []string{"MIRRORD_CLUSTER_JOIN_TOKEN=t"}, "config f.yaml: line 4: node.http"},
	} {
		c, err := Decode("f.yaml", doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyEnv(tc.environ); err != nil {
			t.Fatal(err)
		}
		verr := c.Validate()
		if verr == nil {
			t.Fatalf("%s: no validation error", tc.name)
		}
		if got := Explain(verr, "f.yaml", doc, EnvSettings(tc.environ)).Error(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want prefix %q", tc.name, got, tc.want)
		}
	}
	if got := Explain(Default().withHTTP("x").Validate(), "", nil, nil).Error(); !strings.HasPrefix(got, "node.http:") {
		t.Errorf("no file: %q", got)
	}
}

func (c Config) withHTTP(h string) Config { c.Node.HTTP = h; return c }
