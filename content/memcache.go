package content

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
)

// Small objects (a delta manifest's files are mostly a few KiB) are
// served from memory: for them, opening, stat-ing and closing the cache
// copy and the extra writes of the sendfile path cost more than the
// bytes. A small object enters memory from its cache copy once that copy
// is known good (see cache.go), on its second use (so that objects asked
// once do not push out the ones asked often), and only after the bytes
// read into memory hash to the copy's recorded digest: what is served
// from memory was verified when it was loaded, and is never written
// again. Copies dropped from the disk cache (a failed verification, GC,
// a deleted block) leave memory too.

const (
	// memObjectMax is the largest object kept in memory: one block of
	// the chunker (larger objects are served with sendfile).
	memObjectMax = 256 << 10
	// memBudget bounds the bytes of all objects kept in memory.
	memBudget = 64 << 20
	// memSeenMax bounds the names remembered as seen once.
	memSeenMax = 1 << 16
)

// memCache holds small verified objects by CID string.
type memCache struct {
	mu     sync.RWMutex
	m      map[string][]byte
	bytes  int64
	budget int64
	seen   map[string]struct{} // used once from disk, not in m
}

// get returns the bytes of the object called name, if held. The caller
// must not modify them.
func (c *memCache) get(name string) ([]byte, bool) {
	c.mu.RLock()
	b, ok := c.m[name]
	c.mu.RUnlock()
	return b, ok
}

// wants reports whether an object of size bytes called name, just
// served from disk, should now be loaded: it is small, not held, and was
// used before. It remembers the first use.
func (c *memCache) wants(name string, size int64) bool {
	if size > memObjectMax || size > c.budget {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[name]; ok {
		return false
	}
	if _, ok := c.seen[name]; ok {
		return true
	}
	if c.seen == nil || len(c.seen) >= memSeenMax {
		c.seen = map[string]struct{}{}
	}
	c.seen[name] = struct{}{}
	return false
}

// put holds b as the object name, dropping other objects (any: Go's map
// order) while the budget would be exceeded.
func (c *memCache) put(name string, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]byte{}
	}
	if old, ok := c.m[name]; ok {
		c.bytes -= int64(len(old))
	}
	for k, v := range c.m {
		if c.bytes+int64(len(b)) <= c.budget {
			break
		}
		delete(c.m, k)
		c.bytes -= int64(len(v))
	}
	c.m[name] = b
	c.bytes += int64(len(b))
	delete(c.seen, name)
}

// drop forgets the object name.
func (c *memCache) drop(name string) {
	c.mu.Lock()
	if b, ok := c.m[name]; ok {
		delete(c.m, name)
		c.bytes -= int64(len(b))
	}
	delete(c.seen, name)
	c.mu.Unlock()
}

// CachedBytes returns the object called name (its canonical CID string)
// when it is held in memory, verified. The caller must not modify the
// bytes. It does not allocate.
func (s *Store) CachedBytes(name string) ([]byte, bool) {
	return s.mem.get(name)
}

// forget drops what is remembered of the cache copy called name: its
// verification and its bytes in memory.
func (s *Store) forget(name string) {
	s.verified.Delete(name)
	s.mem.drop(name)
}

// loadMem reads the known-good cache copy f (stamp st) of the object
// called name into memory if it is small and used again, after checking
// that the bytes read hash to the copy's recorded digest. It reports
// false when they do not: the copy rotted since it was verified, and
// has been dropped (the caller must not serve f).
func (s *Store) loadMem(f *os.File, name string, st cacheStamp) bool {
	if !s.mem.wants(name, st.size) {
		return true
	}
	want, err := s.readDigest(name)
	if err != nil {
		return true // served from disk as verified; memory waits
	}
	b := make([]byte, st.size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, st.size), b); err != nil {
		return true
	}
	if sum := sha256.Sum256(b); !bytes.Equal(sum[:], want) {
		s.dropCopy(name, st, fmt.Errorf("%w: cache copy %s does not hash to its recorded digest", ErrCorrupt, name))
		return false
	}
	s.mem.put(name, b)
	return true
}

// memFile is an object served from memory.
type memFile struct{ *bytes.Reader }

func (memFile) Close() error   { return nil }
func (f memFile) Size() uint64 { return uint64(f.Reader.Size()) }
