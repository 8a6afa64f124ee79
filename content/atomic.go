package content

import (
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes data to p via a temp file in the same
// directory, fsync and rename, so a crash never leaves a half-written
// file: p holds the old bytes or the new ones.
func WriteFileAtomic(p string, data []byte, mode os.FileMode) error {
	return WriteAtomic(p, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteAtomic is WriteFileAtomic for content that write streams into
// the temp file. When write fails, p is left as it was.
func WriteAtomic(p string, mode os.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
