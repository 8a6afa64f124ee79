package resolver

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package pure, as its doc says: the standard
// library minus I/O and networking packages, plus consensus/state.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"fmt": true, "net/url": true, "sort": true, "strconv": true, "strings": true,
		// pure hashing for rollout cohorts
		"crypto/sha256": true, "encoding/binary": true,
		"mirrord/consensus/state": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %s; resolver must stay a pure decision package", name, path)
			}
		}
	}
}
