package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	ipld "github.com/ipfs/go-ipld-format"
	"golang.org/x/sys/unix"

	"mirrord/content/object"
)

// ErrNotFound is returned when an object or one of its blocks is not in
// the store (object.ErrNotFound: the device path branches on it without
// importing this package).
var ErrNotFound = object.ErrNotFound

// ErrCorrupt is returned when a stored block does not hash to its CID.
var ErrCorrupt = errors.New("content: stored block does not match its CID")

// ErrNoSpace wraps a failure to store because the file system holding
// the store is full (ENOSPC) or over its quota (EDQUOT).
var ErrNoSpace = errors.New("content: no space left on the store's file system")

// IsNoSpace reports whether err is a failure for want of space.
func IsNoSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// noSpace marks err with ErrNoSpace when it is a failure for want of
// space, so callers need not know the errnos.
func noSpace(err error) error {
	if err != nil && !errors.Is(err, ErrNoSpace) && IsNoSpace(err) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Store keeps objects (zips, manifest files) as DAGs of blocks in a boxo
// blockstore on a flatfs datastore under a directory. Every block is
// verified against its CID when read.
type Store struct {
	// cacheDir holds whole objects assembled from verified blocks
	// (named by CID), so downloads can use sendfile. See OpenCached.
	cacheDir string
	dir      string   // the flatfs directory
	filling  sync.Map // cid string -> struct{}: materializations running
	// verified remembers cache copies hashed against their recorded
	// digest: name -> cacheStamp of the file as it was (see cache.go).
	verified sync.Map
	vlocks   [64]sync.Mutex // one verification of a copy at a time
	mem      memCache       // small verified objects (memcache.go)
	wg       sync.WaitGroup
	ds       *flatfs.Datastore
	bs       blockstore.Blockstore
	rbs      *repairingBlockstore
	gbs      *gcBlockstore // the bottom of bs, on flatfs (see gc.go)
	bserv    blockservice.BlockService
	dag      ipld.DAGService
	minFree  atomic.Int64 // bytes to keep free; 0: DefaultMinFree
	// localDag reads only this store, never the block exchange.
	localDag ipld.DAGService

	dl         DownloadConfig
	fetchSlots chan struct{} // one per download reading from peers
}

// OpenStore opens (creating if needed) the block store in dir. An object
// that Add (or Fetch) returned is on stable storage: blocks are written
// without a sync each, then the file system is synced once (syncfs) before
// the call returns, which is several times cheaper than an fsync per
// block and file. A block left torn by a crash before that point fails
// its CID check on read and is fetched again (or reported corrupt).
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("content: create store dir: %w", err)
	}
	fds, err := flatfs.CreateOrOpen(dir, flatfs.NextToLast(2), false)
	if err != nil {
		return nil, fmt.Errorf("content: open flatfs %s: %w", dir, err)
	}
	gbs, err := newGCBlockstore(dir, fds)
	if err != nil {
		fds.Close()
		return nil, err
	}
	bs := &repairingBlockstore{Blockstore: &blockstore.ValidatingBlockstore{Blockstore: gbs}}
	s := &Store{ds: fds, bs: bs, rbs: bs, gbs: gbs, dir: dir, cacheDir: dir + "-cache", mem: memCache{budget: memBudget}}
	if err := os.MkdirAll(s.cacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("content: create cache dir: %w", err)
	}
	s.localDag = merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	s.setExchange(offline.Exchange(bs), false)
	s.SetDownloads(DownloadConfig{})
	return s, nil
}

// SetExchange makes the store fetch missing blocks through ex (bitswap)
// and repair corrupt ones: a block that fails its CID check is deleted
// and fetched again instead of failing the read. Call it before the
// store is used concurrently.
func (s *Store) SetExchange(ex exchange.Interface) { s.setExchange(ex, true) }

func (s *Store) setExchange(ex exchange.Interface, online bool) {
	s.rbs.online.Store(online)
	// Write through: storing a block that is already present must reach
	// gcBlockstore, which refreshes its age for GC's grace period.
	s.bserv = blockservice.New(s.bs, ex, blockservice.WriteThrough(true))
	s.dag = merkledag.NewDAGService(s.bserv)
}

// Blockstore returns the verifying blockstore (for block exchange).
func (s *Store) Blockstore() blockstore.Blockstore { return s.bs }

// Close closes the datastore.
func (s *Store) Close() error {
	s.wg.Wait()
	if err := s.bserv.Close(); err != nil {
		return fmt.Errorf("content: close blockservice: %w", err)
	}
	return s.ds.Close()
}

// Object names a stored object.
type Object struct {
	CID  cid.Cid
	Size int64
}

// Add chunks r (content-defined buzhash chunks, so that an insertion does
// not shift every later block), stores the blocks and returns the root.
// When Add fails (r fails, ctx ends, the disk is full) it undoes what it
// did to ages: the blocks it wrote are left for the next GC to remove
// whatever its grace period, and the ones it refreshed get their old age
// back, unless another Add stored them since (see endAdd); GC still
// keeps whatever a kept object reaches. A failure for want of space is
// ErrNoSpace.
func (s *Store) Add(ctx context.Context, r io.Reader) (obj Object, err error) {
	cl := s.gbs.beginAdd()
	defer func() {
		s.gbs.endAdd(cl, err != nil)
		err = noSpace(err)
	}()
	cr := &countingReader{r: r, ctx: ctx}
	params := helpers.DagBuilderParams{
		// The importer stores with context.TODO(): claimDAG hands the
		// block store a context that names this Add.
		Dagserv:    claimDAG{DAGService: s.dag, ctx: withClaim(ctx, cl)},
		Maxlinks:   helpers.DefaultLinksPerBlock,
		RawLeaves:  true,
		CidBuilder: merkledag.V1CidPrefix(),
	}
	db, err := params.New(chunker.NewBuzhash(cr))
	if err != nil {
		return Object{}, fmt.Errorf("content: dag builder: %w", err)
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return Object{}, fmt.Errorf("content: import: %w", err)
	}
	if err := s.sync(); err != nil {
		return Object{}, err
	}
	return Object{CID: nd.Cid(), Size: cr.n}, nil
}

// claimDAG stores nodes with a fixed context (that of an Add).
type claimDAG struct {
	ipld.DAGService
	ctx context.Context
}

func (d claimDAG) Add(_ context.Context, nd ipld.Node) error {
	return d.DAGService.Add(d.ctx, nd)
}

func (d claimDAG) AddMany(_ context.Context, nds []ipld.Node) error {
	return d.DAGService.AddMany(d.ctx, nds)
}

// countingReader counts the bytes read and stops when ctx ends (the
// uploading client went away).
type countingReader struct {
	r   io.Reader
	ctx context.Context
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Space is the room on the file system that holds a store.
type Space struct {
	Size int64 `json:"size_bytes"` // the file system's size
	Free int64 `json:"free_bytes"` // available to the node
	// MinFree is what the node keeps free: uploads and fetches that
	// would leave less are refused, cache copies are not made.
	MinFree int64 `json:"min_free_bytes"`
}

// DefaultMinFree is the free space kept on a file system of size bytes
// when none is set: 5% of it and at least 1 GiB (room for the raft log,
// the stats log and a GC to run), but at most a quarter of a small one.
func DefaultMinFree(size int64) int64 {
	return max(0, min(max(1<<30, size/20), size/4))
}

// SetMinFree sets the bytes to keep free (see Space); n <= 0 restores
// DefaultMinFree.
func (s *Store) SetMinFree(n int64) { s.minFree.Store(max(n, 0)) }

// Space reports the room on the store's file system (statfs).
func (s *Store) Space() (Space, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(s.dir, &st); err != nil {
		return Space{}, fmt.Errorf("content: statfs %s: %w", s.dir, err)
	}
	unit := int64(st.Frsize)
	if unit <= 0 {
		unit = int64(st.Bsize)
	}
	sp := Space{Size: int64(st.Blocks) * unit, Free: int64(st.Bavail) * unit}
	sp.MinFree = s.minFree.Load()
	if sp.MinFree == 0 {
		sp.MinFree = DefaultMinFree(sp.Size)
	}
	return sp, nil
}

// File is an open stored object (object.File).
type File = object.File

// Open opens the object rooted at c for reading. Missing blocks give
// ErrNotFound, corrupt blocks ErrCorrupt (also from Read).
func (s *Store) Open(ctx context.Context, c cid.Cid) (File, error) {
	f, err := s.open(ctx, s.dag, c)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// open opens the object rooted at c reading its blocks through dag.
func (s *Store) open(ctx context.Context, dag ipld.DAGService, c cid.Cid) (*file, error) {
	nd, err := dag.Get(ctx, c)
	if err != nil {
		return nil, mapErr(c, err)
	}
	r, err := uio.NewDagReader(ctx, nd, dag)
	if err != nil {
		return nil, fmt.Errorf("content: open %s: %w", c, err)
	}
	return &file{DagReader: r, c: c, s: s, ctx: ctx}, nil
}

type file struct {
	uio.DagReader
	c   cid.Cid
	s   *Store
	ctx context.Context
}

func (f *file) Read(p []byte) (int, error) {
	n, err := f.DagReader.Read(p)
	if err != nil && err != io.EOF {
		err = f.diagnose(err)
	}
	return n, err
}

func (f *file) Seek(off int64, whence int) (int64, error) {
	n, err := f.DagReader.Seek(off, whence)
	if err != nil {
		err = f.diagnose(err)
	}
	return n, err
}

// diagnose classifies a read failure: the DAG reader's batch fetch
// reports "failed to fetch all nodes" without the cause, so walk the DAG
// block by block to tell a missing block from a corrupt one.
func (f *file) diagnose(err error) error {
	ok, cerr := f.s.Verify(f.ctx, f.c)
	switch {
	case cerr != nil:
		return cerr
	case !ok:
		return fmt.Errorf("%w: a block of %s is missing", ErrNotFound, f.c)
	}
	return mapErr(f.c, err)
}

// OSFile is implemented by files backed by one plain file on disk, so
// that HTTP can hand them to sendfile (object.OSFile).
type OSFile = object.OSFile

type cachedFile struct {
	*os.File
	size uint64
}

func (f cachedFile) Size() uint64     { return f.size }
func (f cachedFile) OSFile() *os.File { return f.File }

// OpenCached opens an object for serving. When the object was assembled
// into the cache before and the copy still hashes to the digest recorded
// from the verified blocks it was assembled from, it returns that file
// (an OSFile; see cache.go). Otherwise, when every block is here, it
// serves from the blocks, verifying each, and assembles the cache copy
// in the background. Only with opt.Remote does it read missing (or
// corrupt) blocks through the block exchange, within the limits of
// SetDownloads (ErrBusy, ErrFetchTimeout); without it the network is
// never asked and a missing object is ErrNotFound at once.
func (s *Store) OpenCached(ctx context.Context, c cid.Cid, opt OpenOptions) (File, error) {
	name := c.String()
	if b, ok := s.mem.get(name); ok {
		return memFile{bytes.NewReader(b)}, nil
	}
	if f := s.openCache(name); f != nil {
		return f, nil
	}
	complete, err := s.Complete(ctx, c)
	switch {
	case err != nil && !(opt.Remote && errors.Is(err, ErrCorrupt)):
		return nil, err
	case !complete && !opt.Remote:
		return nil, fmt.Errorf("%w: %s is not complete on this node", ErrNotFound, c)
	case !complete:
		// The blocks read now are stored; a later download finds the
		// object complete and assembles the cache copy.
		return s.openRemote(ctx, c, true)
	}
	var f File
	if opt.Remote {
		// Complete, so no fetch slot; but a block found corrupt while
		// reading is dropped by the repairing store and fetched again,
		// so the read still goes through the exchange, with its limits.
		f, err = s.openRemote(ctx, c, false)
	} else {
		f, err = s.open(ctx, s.localDag, c)
	}
	if err != nil {
		return nil, err
	}
	if _, busy := s.filling.LoadOrStore(name, struct{}{}); !busy {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.filling.Delete(name)
			if err := s.materialize(c, name); err != nil {
				s.dl.Log.Debug("cache copy not assembled", "cid", name, "err", err)
			}
		}()
	}
	return f, nil
}

// errCacheNoRoom stops a cache copy that would eat into the free space
// kept for uploads and the node's own logs.
var errCacheNoRoom = errors.New("content: no room for a cache copy")

// Complete reports whether every block of the object rooted at c is in
// the local store. Leaves are checked for presence only; Verify also
// rehashes them.
func (s *Store) Complete(ctx context.Context, c cid.Cid) (bool, error) {
	return s.walk(ctx, c, false)
}

// Verify reads every block of the object rooted at c and checks it against
// its CID: false with a nil error when a block is missing, ErrCorrupt when
// one does not match.
func (s *Store) Verify(ctx context.Context, c cid.Cid) (bool, error) {
	return s.walk(ctx, c, true)
}

func (s *Store) walk(ctx context.Context, root cid.Cid, rehash bool) (bool, error) {
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c.Type() == cid.Raw && !rehash {
			ok, err := s.bs.Has(ctx, c)
			if err != nil || !ok {
				return false, err
			}
			continue
		}
		blk, err := s.bs.Get(ctx, c)
		if err != nil {
			if ipld.IsNotFound(err) {
				return false, nil
			}
			return false, mapErr(c, err)
		}
		if c.Type() != cid.DagProtobuf {
			continue
		}
		nd, err := merkledag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return false, fmt.Errorf("%w: %s: %v", ErrCorrupt, c, err)
		}
		for _, l := range nd.Links() {
			stack = append(stack, l.Cid)
		}
	}
	return true, nil
}

func mapErr(c cid.Cid, err error) error {
	switch {
	case ipld.IsNotFound(err):
		return fmt.Errorf("%w: %s: %v", ErrNotFound, c, err)
	case errors.Is(err, blockstore.ErrHashMismatch):
		return fmt.Errorf("%w: %s", ErrCorrupt, c)
	}
	return fmt.Errorf("content: %s: %w", c, err)
}

// ParseCID parses a CID string and accepts only the CIDv1 sha2-256 forms
// that Add produces (raw leaves or dag-pb roots).
func ParseCID(s string) (cid.Cid, error) { return object.ParseCID(s) }

// sync makes every block written so far durable: one syncfs(2) of the
// file system holding the store (blocks and their directories).
func (s *Store) sync() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("content: sync: %w", err)
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return noSpace(fmt.Errorf("content: syncfs %s: %w", s.dir, err))
	}
	return nil
}
