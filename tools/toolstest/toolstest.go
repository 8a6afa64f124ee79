package toolstest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// StatModule looks at every file of the module (Go sources, go.mod,
// go.sum, embedded dashboard files) from a test that builds mirrord with
// a child `go build`. go test does not see the child's reads, but it
// does see the test's own os.Stat calls: a changed file then makes go
// test run the package again instead of reporting a cached pass for
// code it never built.
func StatModule(t testing.TB) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatalf("looking at the module's files: %v", err)
	}
}

// moduleRoot is the nearest directory above the working directory that
// holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("toolstest: no go.mod above the working directory")
		}
		dir = parent
	}
}
