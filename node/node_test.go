package node

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEnsureToken(t *testing.T) {
	dir := t.TempDir()
	tok, created, err := EnsureToken(dir)
	if err != nil || !created || len(tok) != 64 {
		t.Fatalf("first: %q %v %v", tok, created, err)
	}
	info, _ := os.Stat(filepath.Join(dir, TokenFile))
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode())
	}
	again, created, err := EnsureToken(dir)
	if err != nil || created || again != tok {
		t.Fatalf("second: %q %v %v", again, created, err)
	}
	os.WriteFile(filepath.Join(dir, TokenFile), []byte("short\n"), 0o600)
	if _, _, err := EnsureToken(dir); err == nil {
		t.Fatal("short token accepted")
	}
}

func TestLockDataDir(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataDir(dir); err == nil {
		t.Fatal("second lock succeeded")
	}
	unlock()
	u2, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	u2()
}
