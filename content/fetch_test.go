package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// TestFetchMissingFails: with no peer holding an object, Fetch gives up
// with ErrNotFound after a few rounds without progress instead of
// waiting forever; with the object local it counts every block and
// fetches none.
func TestFetchMissingFails(t *testing.T) {
	old, oldR := stallTimeout, stallRetries
	stallTimeout, stallRetries = 50*time.Millisecond, 2
	t.Cleanup(func() { stallTimeout, stallRetries = old, oldR })

	src, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	data := make([]byte, 3<<20)
	rand.Read(data)
	obj, err := src.Add(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	st, err := src.FetchWith(context.Background(), obj.CID, FetchOptions{Rank: 1, Of: 3})
	if err != nil || st.Fetched != 0 || st.Blocks < 3 {
		t.Fatalf("local fetch: %+v %v", st, err)
	}
	held, known, err := src.Count(context.Background(), obj.CID)
	if err != nil || held != known || held != st.Blocks {
		t.Fatalf("count %d/%d (%v), fetch saw %d blocks", held, known, err, st.Blocks)
	}

	empty, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	start := time.Now()
	_, err = empty.Fetch(context.Background(), obj.CID, nil)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("fetch without peers: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up only after %s", d)
	}
	if held, known, _ := empty.Count(context.Background(), obj.CID); held != 0 || known != 1 {
		t.Fatalf("empty store count %d/%d", held, known)
	}
}

// TestSplitShare: the shares of n nodes are disjoint and cover every
// block, and each node's share plus its rest is everything.
func TestSplitShare(t *testing.T) {
	var cs []cid.Cid
	for i := range 10 {
		c, err := cid.V1Builder{Codec: cid.Raw, MhType: multihash.SHA2_256}.Sum([]byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	owner := map[cid.Cid]int{}
	for rank := range 3 {
		mine, rest := splitShare(cs, rank, 3)
		if len(mine)+len(rest) != len(cs) {
			t.Fatalf("rank %d: %d + %d blocks", rank, len(mine), len(rest))
		}
		for _, c := range mine {
			if prev, ok := owner[c]; ok {
				t.Fatalf("block in the shares of %d and %d", prev, rank)
			}
			owner[c] = rank
		}
	}
	if len(owner) != len(cs) {
		t.Fatalf("shares cover %d of %d blocks", len(owner), len(cs))
	}
}
