package content

import (
	"context"
	"os"
	"sync"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// inflightBlock is a block stored by at least one running Add.
type inflightBlock struct {
	claims int    // running Adds that stored it
	last   uint64 // the Add that stored it last; 0 if anything else did
}

// addClaim records what one Add stored, so that when it fails its
// blocks become collectable at once instead of after the grace period.
// Its stores carry it in their context (see withClaim).
type addClaim struct {
	id     uint64
	mu     sync.Mutex
	stored map[string]claimedBlock // by multihash
}

// claimedBlock is the first store of a block by one Add.
type claimedBlock struct {
	c        cid.Cid
	created  bool      // the Add wrote it; else it refreshed a stored one
	prev     time.Time // the refreshed block's age before the refresh
	recorded bool      // the store looked at the block (see record)
}

type claimKey struct{}

func withClaim(ctx context.Context, cl *addClaim) context.Context {
	return context.WithValue(ctx, claimKey{}, cl)
}

func claimFrom(ctx context.Context) *addClaim {
	cl, _ := ctx.Value(claimKey{}).(*addClaim)
	return cl
}

// collectable is the age a failed Add gives the blocks it wrote: older
// than any grace period, so the next GC removes them unless a kept
// object reaches them.
var collectable = time.Unix(1, 0)

// beginAdd starts tracking the blocks of one Add.
func (g *gcBlockstore) beginAdd() *addClaim {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	g.lastClaim++
	return &addClaim{id: g.lastClaim, stored: map[string]claimedBlock{}}
}

// note registers the stores of bs before they happen: by cl (an Add)
// or, when cl is nil, by anything else (a fetch), which makes the
// blocks no longer any failed Add's to undo. Called with mu held for
// reading, so GC cannot sweep in between.
func (g *gcBlockstore) note(cl *addClaim, bs []blocks.Block) {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	if cl == nil {
		if len(g.inflight) == 0 {
			return
		}
		for _, b := range bs {
			if e := g.inflight[string(b.Cid().Hash())]; e != nil {
				e.last = 0
			}
		}
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if g.inflight == nil {
		g.inflight = map[string]*inflightBlock{}
	}
	for _, b := range bs {
		k := string(b.Cid().Hash())
		e := g.inflight[k]
		if e == nil {
			e = &inflightBlock{}
			g.inflight[k] = e
		}
		if _, again := cl.stored[k]; !again {
			e.claims++
			// record says what the store found; a block it never
			// looked at is left as it is when the Add fails.
			cl.stored[k] = claimedBlock{c: b.Cid()}
		}
		e.last = cl.id
	}
}

// record notes how cl's first store of a block found it.
func (cl *addClaim) record(c cid.Cid, created bool, prev time.Time) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	k := string(c.Hash())
	if cl.stored[k].recorded {
		// A repeated block of the same object: the first store tells
		// what the Add found.
		return
	}
	cl.stored[k] = claimedBlock{c: c, created: created, prev: prev, recorded: true}
}

// endAdd stops tracking cl. When the Add failed, each block it was the
// last to store and no other running Add stored goes back to the age it
// had before (refreshed blocks) or becomes collectable at once (blocks
// it wrote). A block that a kept object reaches stays whatever its age,
// so this never loses a block a committed release needs; one that an
// Add which returned stored after this one keeps that Add's age.
func (g *gcBlockstore) endAdd(cl *addClaim, failed bool) {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	for k, cb := range cl.stored {
		e := g.inflight[k]
		if e == nil {
			continue
		}
		e.claims--
		mine := e.last == cl.id
		if mine {
			e.last = 0
		}
		if e.claims > 0 {
			// Another running Add stored it: it stays in flight.
			continue
		}
		delete(g.inflight, k)
		if !failed || !mine || !cb.recorded {
			continue
		}
		at := collectable
		if !cb.created {
			at = cb.prev
		}
		// Best effort: a block that is gone needs nothing, and one whose
		// age cannot be set back is only kept for the grace period.
		_ = os.Chtimes(g.blockPath(cb.c), at, at)
	}
	cl.stored = nil
}

// claimed reports whether a running Add stored the block (mu held).
func (g *gcBlockstore) claimed(c cid.Cid) bool {
	g.claimMu.Lock()
	defer g.claimMu.Unlock()
	return g.inflight[string(c.Hash())] != nil
}
