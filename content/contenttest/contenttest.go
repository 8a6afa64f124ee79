// Package contenttest holds helpers for tests of the block store and
// its users: a real file system that fills up.
//
// It may be imported by tests of any package; non-test code must not
// import it.
package contenttest

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size (as mount(8) takes it: "8m") on a
// new directory and unmounts it when the test ends. Writes past its
// size fail with ENOSPC, as on a full disk. It skips the test, saying
// why, when the process is not root or may not mount (CI runs as root).
func MountTmpfs(tb testing.TB, size string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: mounting a tmpfs (a real full disk) needs root; CI runs as root")
	}
	dir := tb.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		tb.Skipf("skipped: cannot mount a tmpfs on %s (%v); this test needs a real full disk", dir, err)
	}
	// Registered after TempDir's cleanup, so it runs first.
	tb.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Free returns the bytes available on the file system holding dir.
func Free(tb testing.TB, dir string) int64 {
	tb.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		tb.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// FlipByte flips one bit of the byte at off of the file at p, in place,
// as bit rot or a stray write would: same inode, same size.
func FlipByte(tb testing.TB, p string, off int64) {
	tb.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		tb.Fatal(err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		tb.Fatal(err)
	}
}
