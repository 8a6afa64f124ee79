package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, _, err := runCLI("completion", shell)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompletionScripts: each script names every command word and the
// flags of `rollout start`, and is valid syntax for its shell (checked
// when the shell is installed).
func TestCompletionScripts(t *testing.T) {
	words := map[string]bool{}
	for _, c := range commands {
		for _, w := range strings.Fields(c.name) {
			words[w] = true
		}
	}
	syntax := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}
	for shell, check := range syntax {
		t.Run(shell, func(t *testing.T) {
			script := completionScript(t, shell)
			for w := range words {
				if !strings.Contains(script, w) {
					t.Errorf("script lacks command word %q", w)
				}
			}
			for _, f := range []string{"--version", "--percent", "--halt-failure-rate", "--halt-min-events", "--halt-confidence", "--halt-action"} {
				name := strings.TrimPrefix(f, "--")
				if !strings.Contains(script, f) && !strings.Contains(script, "-l "+name+" ") {
					t.Errorf("script lacks rollout start's flag %s", f)
				}
			}
			if _, err := exec.LookPath(check[0]); err != nil {
				t.Skipf("%s not installed: syntax not checked", check[0])
			}
			p := filepath.Join(t.TempDir(), "script")
			if err := os.WriteFile(p, []byte(script), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(check[0], append(check[1:], p)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(check, " "), err, out)
			}
		})
	}
	if _, _, err := runCLI("completion", "tcsh"); err == nil || exitCode(err) != 2 {
		t.Errorf("unknown shell: %v, want a usage error", err)
	}
	if _, _, err := runCLI("completion"); err == nil || exitCode(err) != 2 {
		t.Errorf("no shell: %v, want a usage error", err)
	}
}

// TestCompletionBash runs the bash script's completion function on
// command lines and compares what it offers.
func TestCompletionBash(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "mirrord.bash")
	if err := os.WriteFile(script, []byte(completionScript(t, "bash")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "dist"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys.pem"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line string // words; the last one is being completed
		want string // COMPREPLY joined by spaces
	}{
		{"mirrord ro", "rollback rollout"},
		{"mirrord rollout st", "start"},
		{"mirrord rollout start --p", "--percent"},
		{"mirrord rollout start APP CH --halt-f", "--halt-failure-rate"},
		{"mirrord rollout start APP CH --percent ", ""},
		{"mirrord co", "completion config"},
		{"mirrord completion ", "bash zsh fish"},
		{"mirrord config ", "check print"},
		{"mirrord config check --n", "--no-env"},
		{"mirrord app ", "create delete list"},
		{"mirrord app delete APP --f", "--force"},
		{"mirrord app create --public-key " + dir + "/k", dir + "/keys.pem"},
		{"mirrord serve --data " + dir + "/d", dir + "/dist"},
		{"mirrord publish " + dir + "/d", dir + "/dist"},
		{"mirrord device-sim u", "update"},
		{"mirrord nosuch --", ""},
	} {
		cmd := exec.Command("bash", "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _mirrord; echo "${COMPREPLY[*]}"`,
			"bash", script)
		cmd.Args = append(cmd.Args, strings.Split(tc.line, " ")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestCompletionFish asks fish itself what it completes (when fish is
// installed).
func TestCompletionFish(t *testing.T) {
	if _, err := exec.LookPath("fish"); err != nil {
		t.Skip("fish not installed")
	}
	script := filepath.Join(t.TempDir(), "mirrord.fish")
	if err := os.WriteFile(script, []byte(completionScript(t, "fish")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, want string }{
		{"mirrord ro", "rollback rollout"},
		{"mirrord rollout st", "start"},
		{"mirrord rollout start --p", "--percent"},
		{"mirrord completion ", "bash fish zsh"},
		{"mirrord config check --", "--no-env"},
	} {
		out, err := exec.Command("fish", "--no-config", "-c", `source $argv[1]; complete -C $argv[2] | string replace -r '\t.*' ''; true`, script, tc.line).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		if got := strings.Join(strings.Fields(string(out)), " "); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
}

func TestCompletionPositionalHint(t *testing.T) {
	for _, tc := range []struct {
		args    string
		choices []string
		files   bool
	}{
		{"bash|zsh|fish", []string{"bash", "zsh", "fish"}, false},
		{"[check|update|set-channel CH|get-channel|list-channels]", []string{"check", "update", "set-channel", "get-channel", "list-channels"}, false},
		{"FILE...", nil, true},
		{"[FILE]", nil, true},
		{"APP_ID FILE.csv", nil, true},
		{"PATH", nil, true},
		{"APP_ID CHANNEL", nil, false},
		{"", nil, false},
	} {
		choices, files := positionalHint(tc.args)
		if !reflect.DeepEqual(choices, tc.choices) || files != tc.files {
			t.Errorf("%q: %q %v, want %q %v", tc.args, choices, files, tc.choices, tc.files)
		}
	}
}

// TestCompletionZsh runs the zsh function with _describe and _arguments
// replaced by stubs that print what they were given (when zsh is
// installed): it checks which command the script finds and the specs it
// hands to zsh.
func TestCompletionZsh(t *testing.T) {
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh not installed")
	}
	script := filepath.Join(t.TempDir(), "_mirrord")
	if err := os.WriteFile(script, []byte(completionScript(t, "zsh")), 0o600); err != nil {
		t.Fatal(err)
	}
	stubs := `_describe() { print -r -- "describe ${(j: :)${(P)${@[-1]}}}"; }
_arguments() { print -r -- "arguments CURRENT=$CURRENT words=${(j:,:)words} $*"; }
source "$1"
words=("${@[2,-1]}")
CURRENT=${#words}
_mirrord`
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"mirrord ro", []string{"describe ", "rollout:rollout commands\\: abort", "rollback:Point a channel"}},
		{"mirrord rollout st", []string{"describe ", "start:Offer --version"}},
		{"mirrord rollout start --p", []string{"arguments CURRENT=2 words=start,--p ", "--percent[share of devices", "--version[", "--token-file[file holding the admin token (e.g. DATA/admin.token)]:token-file:_files"}},
		{"mirrord completion b", []string{"arguments CURRENT=2 words=completion,b ", "1:argument:(bash zsh fish)"}},
		{"mirrord serve --data x", []string{"--data[data dir (overrides node.data)]:data:_files -/"}},
	} {
		out, err := exec.Command("zsh", append([]string{"-f", "-c", stubs, "zsh", script}, strings.Split(tc.line, " ")...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", tc.line, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%q: output lacks %q:\n%s", tc.line, w, out)
			}
		}
	}
}
