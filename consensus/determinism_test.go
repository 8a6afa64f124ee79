package consensus

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestFSMIsDeterministic keeps sources of nondeterminism out of the code
// that Apply runs: the FSM, the command codec and the state package may
// not import clocks, randomness, the file system or the network.
// Timestamps and ids come from the proposer.
func TestFSMIsDeterministic(t *testing.T) {
	forbidden := map[string]bool{
		"time": true, "math/rand": true, "math/rand/v2": true,
		"crypto/rand": true, "os": true, "net": true, "net/http": true,
	}
	files, err := filepath.Glob("state/*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "fsm.go", "command.go", "snapshot.go", "snapshot_stats.go", "errors.go")
	for _, imp := range importsOf(t, files) {
		if forbidden[imp.path] {
			t.Errorf("%s imports %q", imp.file, imp.path)
		}
	}
}

// TestImportRules checks the package's import rules from doc.go.
func TestImportRules(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("state/*.go")
	files = append(files, more...)
	for _, imp := range importsOf(t, files) {
		p := imp.path
		switch {
		case strings.Contains(p, "libp2p"), strings.Contains(p, "ipfs/boxo"),
			p == "net/http":
			t.Errorf("%s imports %q", imp.file, p)
		case strings.HasPrefix(p, "mirrord/") && p != "mirrord/consensus/state" &&
			!(strings.HasSuffix(imp.file, "_test.go") && strings.HasPrefix(p, "mirrord/consensus")):
			t.Errorf("%s imports %q", imp.file, p)
		case strings.HasPrefix(imp.file, "state/") && strings.Contains(p, "hashicorp/raft"):
			t.Errorf("%s imports %q", imp.file, p)
		}
	}
}

type fileImport struct{ file, path string }

func importsOf(t *testing.T, files []string) []fileImport {
	t.Helper()
	var out []fileImport
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") && strings.HasPrefix(f, "state/") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range af.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			out = append(out, fileImport{filepath.ToSlash(f), p})
		}
	}
	return out
}
