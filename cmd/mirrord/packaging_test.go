package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mirrord/configs"
	"mirrord/node"
)

// packagingDir is packaging/ at the repository root.
var packagingDir = filepath.Join("..", "..", "packaging")

// unitFile is a parsed systemd unit: section -> key -> values (a key may
// repeat).
type unitFile map[string]map[string][]string

func (u unitFile) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// parseUnit reads the ini syntax of systemd units: [Section] lines,
// Key=Value lines, # and ; comments, no continuation lines.
func parseUnit(path string) (unitFile, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	u := unitFile{}
	var order []string
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			order = append(order, section)
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			return nil, nil, fmt.Errorf("line %d: continuation lines are not expected", n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				return nil, nil, fmt.Errorf("line %d: %q is not Key=Value inside a section", n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u, order, sc.Err()
}

func TestPackagingSystemdUnit(t *testing.T) {
	path := filepath.Join(packagingDir, "mirrord.service")
	u, order, err := parseUnit(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "Unit Service Install" {
		t.Errorf("sections %q, want [Unit] [Service] [Install]", order)
	}
	exec0 := strings.Fields(u.get("Service", "ExecStart"))
	if len(exec0) < 4 || exec0[0] != "/usr/local/bin/mirrord" || strings.Join(exec0[1:3], " ") != "serve --config" {
		t.Errorf("ExecStart %q, want /usr/local/bin/mirrord serve --config FILE", exec0)
	}
	for _, tc := range []struct{ section, key, want string }{
		{"Service", "Restart", "on-failure"},
		{"Service", "StateDirectory", "mirrord"},
		{"Service", "NoNewPrivileges", "yes"},
		{"Service", "ProtectSystem", "strict"},
		{"Service", "ProtectHome", "yes"},
		{"Service", "PrivateTmp", "yes"},
		{"Service", "AmbientCapabilities", ""},
		{"Service", "CapabilityBoundingSet", ""},
		{"Install", "WantedBy", "multi-user.target"},
	} {
		if _, ok := u[tc.section][tc.key]; !ok || u.get(tc.section, tc.key) != tc.want {
			t.Errorf("[%s] %s=%q, want %q", tc.section, tc.key, u.get(tc.section, tc.key), tc.want)
		}
	}
	if user := u.get("Service", "User"); user == "" || user == "root" {
		t.Errorf("User=%q, want a dedicated user", user)
	}
	if n := u.get("Service", "LimitNOFILE"); n == "" {
		t.Error("LimitNOFILE not set")
	}
	// A leader hands leadership over before it stops; the HTTP drain
	// alone may take 10s.
	if d, err := time.ParseDuration(u.get("Service", "TimeoutStopSec")); err != nil || d < 30*time.Second {
		t.Errorf("TimeoutStopSec=%q, want at least 30s", u.get("Service", "TimeoutStopSec"))
	}
	dataDir := "/var/lib/" + u.get("Service", "StateDirectory")
	if !strings.Contains(" "+strings.Join(u["Service"]["ReadWritePaths"], " ")+" ", " "+dataDir+" ") {
		t.Errorf("ReadWritePaths %q lacks the data dir %s", u["Service"]["ReadWritePaths"], dataDir)
	}
	// The examples meant for a server keep their data where the unit
	// lets the node write.
	for _, n := range []string{"cluster-voter.yaml", "edge-nonvoter.yaml"} {
		c, err := configs.Load(filepath.Join("..", "..", "configs", n))
		if err != nil || c.Node.Data != dataDir {
			t.Errorf("%s: node.data %q (%v), want %s", n, c.Node.Data, err, dataDir)
		}
	}

	// systemd's own check, where systemd-analyze is installed, with
	// ExecStart pointing at an executable that exists here.
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze not installed; unit checked by the parser above only")
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "mirrord.service")
	if err := os.WriteFile(tmp, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/mirrord", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", tmp).CombinedOutput()
	if err != nil || strings.Contains(string(out), "mirrord.service:") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// dockerInstr is one Dockerfile instruction.
type dockerInstr struct{ cmd, args string }

// parseDockerfile returns the instructions, continuation lines joined
// and comments dropped.
func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "#") || (trim == "" && cur == "") {
			continue
		}
		if s, ok := strings.CutSuffix(trim, `\`); ok {
			cur += s + " "
			continue
		}
		cur += trim
		cmd, args, _ := strings.Cut(cur, " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// goBuildFlags returns the flags of the first `go build` in s, up to -o.
func goBuildFlags(s string) string {
	i := strings.Index(s, "go build ")
	if i < 0 {
		return ""
	}
	rest := s[i+len("go build "):]
	if j := strings.Index(rest, " -o "); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimSpace(rest)
}

func TestPackagingDockerfile(t *testing.T) {
	instrs := parseDockerfile(t, filepath.Join(packagingDir, "Dockerfile"))
	var stages []string
	all := map[string][]string{} // instruction -> args, final stage only
	var builds []string
	for _, in := range instrs {
		switch in.cmd {
		case "FROM":
			stages = append(stages, in.args)
			all = map[string][]string{}
		case "RUN":
			if f := goBuildFlags(in.args); f != "" {
				builds = append(builds, in.args)
			}
		}
		all[in.cmd] = append(all[in.cmd], in.args)
	}
	// The builder is the Go of go.mod; the image is empty but for the
	// binary.
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	if len(stages) != 2 || goVer == nil || !strings.HasPrefix(stages[0], "golang:"+string(goVer[1])+" ") || stages[1] != "scratch" {
		t.Errorf("stages %q, want golang:%s AS build, then scratch", stages, goVer)
	}
	// The same build flags as the Makefile's build target.
	mk, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	want := goBuildFlags(string(mk))
	if want == "" || len(builds) != 1 || goBuildFlags(builds[0]) != want || !strings.HasSuffix(builds[0], " ./cmd/mirrord") {
		t.Errorf("Dockerfile builds with %q, Makefile with %q", builds, want)
	}
	df, _ := os.ReadFile(filepath.Join(packagingDir, "Dockerfile"))
	if !strings.Contains(string(df), "ENV CGO_ENABLED=0") {
		t.Error("the builder does not set CGO_ENABLED=0")
	}

	// The final stage: user, volume, ports, entrypoint and command.
	if got := all["USER"]; len(got) != 1 || !strings.HasPrefix(got[0], "65532") {
		t.Errorf("USER %q, want 65532", got)
	}
	var entry, cmd []string
	if err := json.Unmarshal([]byte(strings.Join(all["ENTRYPOINT"], "")), &entry); err != nil || strings.Join(entry, " ") != "/mirrord" {
		t.Errorf("ENTRYPOINT %q (%v), want [\"/mirrord\"]", all["ENTRYPOINT"], err)
	}
	if err := json.Unmarshal([]byte(strings.Join(all["CMD"], "")), &cmd); err != nil || len(cmd) != 3 || cmd[0] != "serve" || cmd[1] != "--config" {
		t.Fatalf("CMD %q (%v), want [\"serve\", \"--config\", FILE]", all["CMD"], err)
	}
	// The config CMD names is copied in from packaging/, passes config
	// check, and puts data in the volume and HTTP on the exposed port.
	var src string
	for _, c := range all["COPY"] {
		if f := strings.Fields(c); len(f) == 2 && f[1] == cmd[2] {
			src = f[0]
		}
	}
	if src == "" {
		t.Fatalf("no COPY puts a config at %s", cmd[2])
	}
	srcPath := filepath.Join("..", "..", filepath.FromSlash(src))
	clearSettingEnv(t)
	if out, _, err := runCLI("config", "check", srcPath); err != nil {
		t.Fatalf("config check %s: %v", src, err)
	} else if !strings.Contains(out, ": ok") {
		t.Errorf("config check %s: %s", src, out)
	}
	c, err := configs.Load(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := all["VOLUME"]; len(got) != 1 || got[0] != c.Node.Data {
		t.Errorf("VOLUME %q, want the config's data dir %s", got, c.Node.Data)
	}
	host, port, _ := net.SplitHostPort(c.Node.HTTP)
	expose := " " + strings.Join(all["EXPOSE"], " ") + " "
	for _, p := range []string{port, fmt.Sprintf("%d/tcp", node.DefaultP2PPort), fmt.Sprintf("%d/udp", node.DefaultP2PPort)} {
		if !strings.Contains(expose, " "+p+" ") {
			t.Errorf("EXPOSE %q lacks %s", all["EXPOSE"], p)
		}
	}
	if host != "0.0.0.0" || len(c.Node.P2P) != 0 {
		t.Errorf("the container config listens on %q and p2p %q; want 0.0.0.0 and the default p2p addresses", c.Node.HTTP, c.Node.P2P)
	}
}
