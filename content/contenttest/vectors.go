package contenttest

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Vectors returns the folder of Capgo CLI test vectors (keys, bundles,
// encrypted zips, update answers made by the real Capgo CLI), kept in
// the repository at testdata/capgo so that tests run in a bare clone.
// It is found from this file's own place, whatever the test's package.
func Vectors(tb testing.TB) string {
	tb.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("contenttest: cannot tell where the repository is")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "testdata", "capgo")
	if _, err := os.Stat(filepath.Join(dir, "test_public_key.pem")); err != nil {
		tb.Fatalf("contenttest: Capgo vectors missing from the repository: %v", err)
	}
	return dir
}
