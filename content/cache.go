package content

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"
)

// A cache copy (DATA/blocks-cache/<cid>) is a whole object assembled from
// blocks verified against their CIDs. Its CID is a DAG root, not a hash
// of the file, so the copy cannot be checked against its name: when it is
// assembled, the SHA-256 of the verified bytes is written beside it
// (<cid>.sha256). A copy is served only once it is known to hash to that
// digest: it is hashed on first use after start, and the result is
// remembered with the file's identity and times from fstat, so any later
// write to the file (which moves its ctime) forces another hash. A scrub
// (ScrubCache) re-hashes every copy now and then, for bit rot, which
// moves no timestamp. A copy that fails is removed and the object served
// from its blocks, which are verified one by one.

// digestSuffix names the file holding a cache copy's SHA-256 in hex.
const digestSuffix = ".sha256"

// cacheRacyWindow: a verification is not remembered while the copy's
// ctime is this close to the moment its hashing began. File timestamps
// come from a coarse clock (a few ms on Linux, whole seconds on some file
// systems), so a write in the same tick as the verification could leave
// every stamp unchanged; such a copy is hashed again on each use until it
// is older (the "racy clean" problem git's index has).
var cacheRacyWindow = 2 * time.Second

// cacheScrubRate bounds the bytes per second ScrubCache reads by default.
const cacheScrubRate = 64 << 20

// errNoDigest marks a cache copy without a recorded digest (written by a
// version that did not record one).
var errNoDigest = errors.New("content: cache copy has no recorded digest")

// cacheStamp identifies one version of a cache copy on disk.
type cacheStamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func stampOf(f *os.File) (cacheStamp, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return cacheStamp{}, fmt.Errorf("content: fstat %s: %w", f.Name(), err)
	}
	return cacheStamp{dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

var vlockSeed = maphash.MakeSeed()

func (s *Store) vlock(name string) *sync.Mutex {
	return &s.vlocks[maphash.String(vlockSeed, name)%uint64(len(s.vlocks))]
}

// knownGood reports whether the copy with stamp st was verified before.
func (s *Store) knownGood(name string, st cacheStamp) bool {
	v, ok := s.verified.Load(name)
	return ok && v.(cacheStamp) == st
}

// remember records a verification of the copy with stamp st that began
// at start, unless the copy is too young for its stamp to show a later
// write (cacheRacyWindow).
func (s *Store) remember(name string, st cacheStamp, start time.Time) {
	if time.Unix(st.ctime.Unix()).Add(cacheRacyWindow).Before(start) {
		s.verified.Store(name, st)
	} else {
		s.verified.Delete(name)
	}
}

// openCache returns the cache copy called name, verified, or nil when
// there is none that can be served. A copy that fails verification is
// removed (the caller serves from the blocks and assembles it again).
func (s *Store) openCache(name string) File {
	f, err := openPlain(filepath.Join(s.cacheDir, name))
	if err != nil {
		return nil
	}
	st, err := stampOf(f)
	if err != nil {
		f.Close()
		return nil
	}
	if !s.knownGood(name, st) {
		mu := s.vlock(name)
		mu.Lock()
		// Another download may have verified this same file meanwhile.
		if !s.knownGood(name, st) {
			start := time.Now()
			if err := s.checkCopy(context.Background(), f, name, st.size, 0); err != nil {
				mu.Unlock()
				f.Close()
				s.dropCopy(name, st, err)
				return nil
			}
			s.remember(name, st, start)
		}
		mu.Unlock()
	}
	if !s.loadMem(f, name, st) {
		f.Close()
		return nil
	}
	return cachedFile{File: f, size: uint64(st.size)}
}

// openPlain opens a regular file for reading as os.Open does, without
// the netpoller registration os.Open attempts (and undoes) for every
// file: four fcntl calls and an epoll_ctl per download otherwise.
func openPlain(p string) (*os.File, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// checkCopy hashes the open cache copy f (size bytes) and compares it
// with its recorded digest. rate > 0 bounds the bytes read per second.
func (s *Store) checkCopy(ctx context.Context, f *os.File, name string, size int64, rate int64) error {
	want, err := s.readDigest(name)
	if err != nil {
		return err
	}
	h := sha256.New()
	r := io.Reader(io.NewSectionReader(f, 0, size))
	if rate > 0 {
		r = &pacedReader{r: r, ctx: ctx, rate: rate, start: time.Now()}
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return fmt.Errorf("content: read cache copy %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%w: cache copy %s: read %d of %d bytes", ErrCorrupt, name, n, size)
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%w: cache copy %s does not hash to its recorded digest", ErrCorrupt, name)
	}
	return nil
}

func (s *Store) readDigest(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.cacheDir, name+digestSuffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoDigest
	}
	if err != nil {
		return nil, fmt.Errorf("content: read digest of cache copy %s: %w", name, err)
	}
	d, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(d) != sha256.Size {
		return nil, fmt.Errorf("%w: digest file of cache copy %s is malformed", ErrCorrupt, name)
	}
	return d, nil
}

// dropCopy removes the cache copy that failed verification (and its
// digest), unless it was replaced meanwhile by a new copy.
func (s *Store) dropCopy(name string, st cacheStamp, why error) {
	s.forget(name)
	p := filepath.Join(s.cacheDir, name)
	var cur unix.Stat_t
	if err := unix.Stat(p, &cur); err != nil || uint64(cur.Ino) != st.ino || uint64(cur.Dev) != st.dev {
		return
	}
	rmErr := os.Remove(p)
	if err := os.Remove(p + digestSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) && rmErr == nil {
		rmErr = err
	}
	if errors.Is(why, errNoDigest) {
		s.dl.Log.Info("cache copy without a recorded digest discarded; it is assembled again from verified blocks", "cid", name)
		return
	}
	s.dl.Log.Warn("cache copy failed verification; removed, serving from verified blocks and assembling it again",
		"cid", name, "err", why, "remove_err", rmErr)
}

// pacedReader reads no faster than rate bytes per second on average.
type pacedReader struct {
	r     io.Reader
	ctx   context.Context
	rate  int64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	ahead := time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)) - time.Since(p.start)
	if ahead > 0 {
		t := time.NewTimer(ahead)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return 0, p.ctx.Err()
		case <-t.C:
		}
	}
	n, err := p.r.Read(b)
	p.n += int64(n)
	return n, err
}

// materialize assembles the cache copy of c (named name) from local
// blocks, each verified on read, and records the SHA-256 of those bytes
// beside it. The digest is renamed into place before the copy, so a copy
// that exists has its digest (or is from an older version and is
// discarded on first use).
func (s *Store) materialize(c cid.Cid, name string) error {
	ctx := context.Background()
	src, err := s.open(ctx, s.localDag, c)
	if err != nil {
		return err
	}
	defer src.Close()
	// The copy is a convenience (sendfile): serving from the blocks works
	// without it, so it is not made when it would take the free space
	// below the margin (nor retried by every download of a full node).
	if sp, err := s.Space(); err == nil && sp.Free-int64(src.Size()) < sp.MinFree {
		return errCacheNoRoom
	}
	err = WriteAtomic(filepath.Join(s.cacheDir, name), 0o600, func(w io.Writer) error {
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), src); err != nil {
			return err
		}
		// Into place before the copy is (see above).
		return s.writeDigest(name, h.Sum(nil))
	})
	if err != nil {
		return err
	}
	s.forget(name)
	return nil
}

func (s *Store) writeDigest(name string, sum []byte) error {
	return WriteFileAtomic(filepath.Join(s.cacheDir, name+digestSuffix), []byte(hex.EncodeToString(sum)+"\n"), 0o644)
}

// CacheScrubResult reports one ScrubCache.
type CacheScrubResult struct {
	Checked int   // cache copies hashed
	Removed int   // copies that failed and were removed
	Bytes   int64 // bytes read
}

// ScrubCache hashes every cache copy against its recorded digest, reading
// at most bytesPerSec bytes a second (0: 64 MiB/s), and removes the
// copies that fail (they are assembled again on their next download).
// It catches what the checks on use cannot see: bits that rot on disk
// without a write.
func (s *Store) ScrubCache(ctx context.Context, bytesPerSec int64) (CacheScrubResult, error) {
	var res CacheScrubResult
	if bytesPerSec <= 0 {
		bytesPerSec = cacheScrubRate
	}
	entries, err := os.ReadDir(s.cacheDir)
	if err != nil {
		return res, fmt.Errorf("content: scrub cache: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, digestSuffix) {
			continue
		}
		if _, err := cid.Decode(name); err != nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		f, err := os.Open(filepath.Join(s.cacheDir, name))
		if err != nil {
			continue // removed meanwhile
		}
		st, err := stampOf(f)
		if err == nil {
			start := time.Now()
			err = s.checkCopy(ctx, f, name, st.size, bytesPerSec)
			res.Checked++
			res.Bytes += st.size
			switch {
			case ctx.Err() != nil:
			case err != nil:
				res.Removed++
				s.dropCopy(name, st, err)
			default:
				s.remember(name, st, start)
			}
		}
		f.Close()
	}
	return res, ctx.Err()
}
