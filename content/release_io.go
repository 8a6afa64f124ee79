package content

import (
	"io"
	"sync"
)

// errReader remembers the error of its reader other than io.EOF.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// fileReaderAt reads a stored object at offsets for archive/zip, which
// reads the central directory at the end and then each entry front to
// back: it seeks only when the offset is not where the last read ended
// (off, -1 before the first read, whatever the file's position).
// A read error of the store (a corrupt block) is wrapped in readError so
// that it is not reported as a bad zip.
type fileReaderAt struct {
	mu  sync.Mutex
	f   File
	off int64
}

type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

func (r *fileReaderAt) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off != r.off {
		if _, err := r.f.Seek(off, io.SeekStart); err != nil {
			return 0, &readError{err}
		}
		r.off = off
	}
	n, err := io.ReadFull(r.f, p)
	r.off += int64(n)
	switch {
	case err == io.ErrUnexpectedEOF:
		err = io.EOF
	case err != nil && err != io.EOF:
		err = &readError{err}
	}
	return n, err
}
