package object

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/ipfs/go-cid"
)

// ErrNotFound is returned when an object or one of its blocks is not in
// the store.
var ErrNotFound = errors.New("content: object not found")

// ErrBusy is returned by OpenCached when serving an object needs blocks
// from peers and DownloadConfig.MaxFetches downloads already fetch.
var ErrBusy = errors.New("content: too many downloads are fetching from peers")

// ErrFetchTimeout is returned (by OpenCached or a Read) when the peers
// sent no block of the object for DownloadConfig.FetchStall, or the
// download fetched for longer than DownloadConfig.FetchTimeout.
var ErrFetchTimeout = errors.New("content: peers did not send the object's blocks in time")

// File is an open stored object.
type File interface {
	io.ReadSeekCloser
	Size() uint64
}

// OSFile is implemented by files backed by one plain file on disk, so
// that HTTP can hand them to sendfile.
type OSFile interface {
	OSFile() *os.File
}

// OpenOptions tune OpenCached.
type OpenOptions struct {
	// Remote lets blocks missing here come from peers (within the
	// DownloadConfig limits). Without it an object is served only when
	// it is complete in this store, and the network is never asked.
	Remote bool
}

// ParseCID parses a CID string and accepts only the CIDv1 sha2-256 forms
// that Add produces (raw leaves or dag-pb roots).
func ParseCID(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("content: bad cid %q: %w", s, err)
	}
	p := c.Prefix()
	if p.Version != 1 || p.MhType != 0x12 || (p.Codec != cid.Raw && p.Codec != cid.DagProtobuf) {
		return cid.Undef, fmt.Errorf("content: unsupported cid %q (want CIDv1 sha2-256 raw or dag-pb)", s)
	}
	return c, nil
}
