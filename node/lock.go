package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockDataDir takes an exclusive lock on dir/LOCK so that two processes
// never open the same data directory (the raft WAL would block forever).
// The lock is released by calling the returned function or when the
// process exits.
func LockDataDir(dir string) (func() error, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("node: data dir %s is in use by another mirrord process (stop it, or use another --data)", dir)
		}
		return nil, fmt.Errorf("node: lock data dir: %w", err)
	}
	return f.Close, nil
}
