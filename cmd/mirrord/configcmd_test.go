package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mirrord/configs"
)

// clearSettingEnv unsets the MIRRORD_* setting variables of the test's
// environment for the duration of t, so the checks are hermetic.
func clearSettingEnv(t *testing.T) {
	t.Helper()
	for _, name := range configs.EnvSettings(os.Environ()) {
		t.Setenv(name, "") // restores the old value after the test
		os.Unsetenv(name)
	}
}

// runCLI runs mirrord in process.
func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func writeConfigFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigCheckExamples: every example shipped in configs/ passes
// `config check`, with a summary.
func TestConfigCheckExamples(t *testing.T) {
	clearSettingEnv(t)
	names, err := fs.Glob(configs.Examples, "*.yaml")
	if err != nil || len(names) < 3 {
		t.Fatalf("examples: %q %v", names, err)
	}
	for _, n := range names {
		p := filepath.Join("..", "..", "configs", n)
		out, _, err := runCLI("config", "check", p)
		if err != nil {
			t.Errorf("%s: %v", n, err)
			continue
		}
		for _, want := range []string{p + ": ok\n", "data:", "http:", "p2p:", "inbox:", "cluster:", "voters:"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", n, want, out)
			}
		}
	}
	out, _, err := runCLI("config", "check", "../../configs/edge-nonvoter.yaml", "../../configs/cluster-voter.yaml")
	if err != nil || !strings.Contains(out, "joins through http://mirror-1.internal:8081") || !strings.Contains(out, "bootstraps a new cluster") ||
		!strings.Contains(out, "tls:     HTTPS with ACME certificates for edge-fra.example.com") || !strings.Contains(out, "HTTPS with /etc/mirrord/tls/tls.crt") {
		t.Errorf("two files: %v\n%s", err, out)
	}
}

func TestConfigCheckErrors(t *testing.T) {
	clearSettingEnv(t)
	good := writeConfigFile(t, "good.yaml", "version: 1\nnode:\n  http: 127.0.0.1:9\n")
	for _, tc := range []struct {
		name string
		doc  string // file content; "" means use good.yaml
		env  []string
		want []string // all in the error
		code int
	}{
		{"unknown key", "version: 1\nnode:\n  dta: x\n", nil, []string{"bad.yaml", "line 3", `unknown key "dta"`}, 1},
		{"bad value in the file", "version: 1\nnode:\n  http: nope\n", nil, []string{"bad.yaml", "line 3", "node.http", `"nope"`}, 1},
		{"bad duration", "stats:\n  retention: 1d\n", nil, []string{"bad.yaml", "line 2", "not a duration"}, 1},
		{"rule across keys", "cluster:\n  join: http://a:1\n", nil, []string{"bad.yaml", "cluster.join and cluster.join_token"}, 1},
		{"psk with quic", "node:\n  psk_file: k\n  p2p: [/ip4/0.0.0.0/udp/4001/quic-v1]\n", nil, []string{"bad.yaml", "line 3", "node.p2p"}, 1},
		{"bad value from the environment", "", []string{"MIRRORD_NODE_HTTP", "nope"}, []string{"environment MIRRORD_NODE_HTTP", "node.http"}, 1},
		{"unknown variable", "", []string{"MIRRORD_NODE_FOO", "1"}, []string{"MIRRORD_NODE_FOO", `no key "foo"`}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := good
			if tc.doc != "" {
				p = writeConfigFile(t, "bad.yaml", tc.doc)
			}
			if tc.env != nil {
				t.Setenv(tc.env[0], tc.env[1])
			}
			_, _, err := runCLI("config", "check", p)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit code %d, want %d", got, tc.code)
			}
		})
	}
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"config", "check"}, 2},
		{[]string{"config", "check", filepath.Join(t.TempDir(), "missing.yaml")}, 1},
		{[]string{"config", "print", "a", "b"}, 2},
	} {
		if _, _, err := runCLI(tc.args...); err == nil || exitCode(err) != tc.code {
			t.Errorf("%q: %v (exit %d), want exit %d", tc.args, err, exitCode(err), tc.code)
		}
	}
	// --no-env checks the file alone.
	t.Setenv("MIRRORD_NODE_HTTP", "nope")
	if _, _, err := runCLI("config", "check", "--no-env", good); err != nil {
		t.Errorf("--no-env: %v", err)
	}
	// A private network key file that is not there is a warning only:
	// the file may be checked on another machine than the node's.
	psk := writeConfigFile(t, "psk.yaml", "node:\n  psk_file: "+filepath.Join(t.TempDir(), "none")+"\n")
	if out, stderr, err := runCLI("config", "check", "--no-env", psk); err != nil || !strings.Contains(out, "ok") || !strings.Contains(stderr, "warning: node.psk_file") {
		t.Errorf("missing psk file: %v\n%s%s", err, out, stderr)
	}
	// Several files: each bad one is named.
	bad := writeConfigFile(t, "bad.yaml", "node:\n  dta: x\n")
	_, stderr, err := runCLI("config", "check", "--no-env", good, bad)
	if err == nil || !strings.Contains(err.Error(), "1 of 2") || !strings.Contains(stderr, bad) {
		t.Errorf("two files: %v\n%s", err, stderr)
	}
}

// TestConfigPrint: defaults, then the file, then the environment.
func TestConfigPrint(t *testing.T) {
	clearSettingEnv(t)
	p := writeConfigFile(t, "f.yaml", "node:\n  http: 127.0.0.1:9000\nreplication:\n  disk_budget: 10GiB\n")
	t.Setenv("MIRRORD_REPLICATION_DISK_BUDGET", "50GiB")
	t.Setenv("MIRRORD_NODE_P2P", "/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/udp/4001/quic-v1")
	t.Setenv("MIRRORD_SERVER", "http://ignored:1")
	out, _, err := runCLI("config", "print", p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"disk_budget: 50GiB", "http: 127.0.0.1:9000", "- /ip4/0.0.0.0/udp/4001/quic-v1", "retention: 720h",
		"# mirrord effective configuration: built-in defaults + " + p + " + environment (MIRRORD_NODE_P2P, MIRRORD_REPLICATION_DISK_BUDGET)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	want := configs.Default()
	want.Node.HTTP = "127.0.0.1:9000"
	want.Node.P2P = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	want.Replication.DiskBudget = 50 << 30
	got, err := configs.Parse("printed", []byte(out))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("printed config reads back as %+v (%v), want %+v", got, err, want)
	}
	// No file: defaults and environment; an invalid result is printed
	// and reported.
	t.Setenv("MIRRORD_CLUSTER_VOTERS", "12")
	out, _, err = runCLI("config", "print")
	if err == nil || !strings.Contains(err.Error(), "MIRRORD_CLUSTER_VOTERS") || !strings.Contains(out, "voters: 12") {
		t.Errorf("invalid env: %v\n%s", err, out)
	}
}

// TestConfigPrecedenceServe: serve takes flags over the environment over
// the file over the defaults. The data dirs are under regular files, so
// serve stops at once and its error names the data dir it used.
func TestConfigPrecedenceServe(t *testing.T) {
	clearSettingEnv(t)
	dir := t.TempDir()
	for _, f := range []string{"file", "env", "flag"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := writeConfigFile(t, "m.yaml", "node:\n  data: "+filepath.Join(dir, "file", "d")+"\n  http: 127.0.0.1:0\n")
	for _, tc := range []struct {
		name      string
		env, flag bool
		want      string
	}{
		{"file", false, false, "file"},
		{"env over file", true, false, "env"},
		{"flag over env", true, true, "flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"serve", "--config", cfgFile}
			if tc.env {
				t.Setenv("MIRRORD_NODE_DATA", filepath.Join(dir, "env", "d"))
			}
			if tc.flag {
				args = append(args, "--data", filepath.Join(dir, "flag", "d"))
			}
			_, _, err := runCLI(args...)
			if err == nil || !strings.Contains(err.Error(), "create data dir") || !strings.Contains(err.Error(), filepath.Join(dir, tc.want)+":") {
				t.Fatalf("got %v, want serve to use the %s data dir", err, tc.want)
			}
		})
	}
	// Who is blamed for an invalid value: the file (exit 1), the
	// environment (exit 1), or a flag (usage, exit 2).
	bad := writeConfigFile(t, "bad.yaml", "node:\n  http: nope\n")
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want string
		code int
	}{
		{"file", "", nil, "line 2: node.http", 1},
		{"environment over file", "also-nope", nil, "environment MIRRORD_NODE_HTTP", 1},
		{"flag over environment", "127.0.0.1:0", []string{"--http", "flag-nope"}, `"flag-nope"`, 2},
	} {
		t.Run("blame "+tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("MIRRORD_NODE_HTTP", tc.env)
			}
			_, _, err := runCLI(append([]string{"serve", "--config", bad}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != tc.code {
				t.Fatalf("got %v (exit %d), want %q and exit %d", err, exitCode(err), tc.want, tc.code)
			}
		})
	}
}
