package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/content/object"
)

// ErrBusy is returned by OpenCached when serving an object needs blocks
// from peers and DownloadConfig.MaxFetches downloads already fetch
// (object.ErrBusy).
var ErrBusy = object.ErrBusy

// ErrFetchTimeout is returned (by OpenCached or a Read) when the peers
// sent no block of the object for DownloadConfig.FetchStall, or the
// download fetched for longer than DownloadConfig.FetchTimeout
// (object.ErrFetchTimeout).
var ErrFetchTimeout = object.ErrFetchTimeout

// DownloadConfig bounds what downloads (OpenCached) may ask of peers and
// where the store reports trouble with its cache copies.
type DownloadConfig struct {
	// FetchStall is how long a download that reads through the block
	// exchange waits for a block before it fails with ErrFetchTimeout.
	// 0 means 30s.
	FetchStall time.Duration
	// FetchTimeout bounds a whole download that holds a fetch slot (a
	// device on a slow link takes long, but a client that stops reading
	// must not hold a slot for ever). 0 means 15m.
	FetchTimeout time.Duration
	// MaxFetches is how many downloads of objects that are not complete
	// here may fetch from peers at once (each holds a fetch slot); one
	// more gets ErrBusy. 0 means 64.
	MaxFetches int
	// Log receives warnings about cache copies that failed verification.
	// nil discards them.
	Log *slog.Logger
}

func (c DownloadConfig) withDefaults() DownloadConfig {
	if c.FetchStall <= 0 {
		c.FetchStall = 30 * time.Second
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 15 * time.Minute
	}
	if c.MaxFetches <= 0 {
		c.MaxFetches = 64
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// SetDownloads sets the download limits. Call it before the store is
// used concurrently.
func (s *Store) SetDownloads(cfg DownloadConfig) {
	s.dl = cfg.withDefaults()
	s.fetchSlots = make(chan struct{}, s.dl.MaxFetches)
}

// Fetching reports how many downloads hold a fetch slot now: they read
// an object that was not complete here through the block exchange.
func (s *Store) Fetching() int { return len(s.fetchSlots) }

// OpenOptions tune OpenCached (object.OpenOptions).
type OpenOptions = object.OpenOptions

// openRemote opens c reading through the block exchange, within the
// stall and overall deadlines, holding a fetch slot until the file is
// closed if slot is set.
func (s *Store) openRemote(ctx context.Context, c cid.Cid, slot bool) (File, error) {
	release := func() {}
	if slot {
		select {
		case s.fetchSlots <- struct{}{}:
		default:
			return nil, ErrBusy
		}
		release = func() { <-s.fetchSlots }
	}
	// The download's context ends when the client goes away (the
	// request's context), when the stall timer fires, or, for a slot
	// holder, when FetchTimeout passes; either way the block exchange
	// drops its wants and the reader's goroutines end.
	fctx, cancel := context.WithCancelCause(ctx)
	tctx, tcancel := fctx, context.CancelFunc(func() {})
	if slot {
		tctx, tcancel = context.WithTimeoutCause(fctx, s.dl.FetchTimeout, ErrFetchTimeout)
	}
	stall := s.dl.FetchStall
	timer := time.AfterFunc(stall, func() { cancel(ErrFetchTimeout) })
	f, err := s.open(tctx, s.dag, c)
	timer.Stop()
	if err != nil {
		tcancel()
		cancel(nil)
		release()
		return nil, fetchErr(tctx, ctx, err)
	}
	return &fetchingFile{file: f, ctx: tctx, parent: ctx, stall: stall, timer: timer,
		cancel: func() { tcancel(); cancel(nil) }, release: release}, nil
}

// fetchErr names why a read through the block exchange failed: the
// fetch deadline, the caller going away, or err itself.
func fetchErr(fctx, parent context.Context, err error) error {
	if parent.Err() != nil {
		return fmt.Errorf("content: download: %w", parent.Err())
	}
	if cause := context.Cause(fctx); errors.Is(cause, ErrFetchTimeout) {
		return fmt.Errorf("%w (%v)", ErrFetchTimeout, err)
	}
	return err
}

// fetchingFile is an object read through the block exchange. The stall
// timer runs only while a Read or Seek waits on the exchange, so a
// client that reads slowly is not mistaken for a peer that sends
// nothing.
type fetchingFile struct {
	*file
	ctx, parent context.Context
	stall       time.Duration
	timer       *time.Timer
	cancel      func()
	release     func()
	once        sync.Once
}

func (f *fetchingFile) Read(p []byte) (int, error) {
	f.timer.Reset(f.stall)
	n, err := f.DagReader.Read(p)
	f.timer.Stop()
	if err != nil && err != io.EOF {
		err = f.fail(err)
	}
	return n, err
}

func (f *fetchingFile) Seek(off int64, whence int) (int64, error) {
	f.timer.Reset(f.stall)
	n, err := f.DagReader.Seek(off, whence)
	f.timer.Stop()
	if err != nil {
		err = f.fail(err)
	}
	return n, err
}

func (f *fetchingFile) fail(err error) error {
	if f.ctx.Err() != nil {
		return fetchErr(f.ctx, f.parent, err)
	}
	return f.diagnose(err)
}

func (f *fetchingFile) Close() error {
	var err error
	f.once.Do(func() {
		f.timer.Stop()
		err = f.DagReader.Close()
		f.cancel()
		f.release()
	})
	return err
}
