package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreRoundTripAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 5<<20+123)
	rand.New(rand.NewSource(1)).Read(data)
	obj, err := s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(data)) {
		t.Fatalf("size %d", obj.Size)
	}
	// Same bytes, same CID; an empty object works too.
	again, _ := s.Add(ctx, bytes.NewReader(data))
	if !again.CID.Equals(obj.CID) {
		t.Fatal("same bytes gave another CID")
	}
	empty, err := s.Add(ctx, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := s.Open(ctx, obj.CID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, data) || f.Size() != uint64(len(data)) {
		t.Fatalf("read back: %v, equal=%v", err, bytes.Equal(got, data))
	}
	// Seek into the middle.
	f, _ = s.Open(ctx, obj.CID)
	if _, err := f.Seek(3<<20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	part := make([]byte, 1000)
	if _, err := io.ReadFull(f, part); err != nil || !bytes.Equal(part, data[3<<20:3<<20+1000]) {
		t.Fatalf("seek read: %v", err)
	}
	f.Close()
	if ok, err := s.Complete(ctx, obj.CID); !ok || err != nil {
		t.Fatalf("complete: %v %v", ok, err)
	}
	if f, err := s.Open(ctx, empty.CID); err != nil || f.Size() != 0 {
		t.Fatalf("empty object: %v", err)
	}
}

func TestStoreMissingAndCorrupt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(2)).Read(data)
	obj, err := s.Add(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt one leaf block on disk.
	var leaf string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".data") && info.Size() > 100<<10 && leaf == "" {
			leaf = p
		}
		return nil
	})
	if leaf == "" {
		t.Fatal("no leaf block on disk")
	}
	b, _ := os.ReadFile(leaf)
	b[10] ^= 1
	os.WriteFile(leaf, b, 0o644)
	f, err := s.Open(ctx, obj.CID)
	if err == nil {
		_, err = io.ReadAll(f)
		f.Close()
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a corrupt block: %v, want ErrCorrupt", err)
	}
	if ok, err := s.Verify(ctx, obj.CID); ok || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("complete on corrupt: %v %v", ok, err)
	}
	// Missing.
	os.Remove(leaf)
	if ok, err := s.Complete(ctx, obj.CID); ok || err != nil {
		t.Fatalf("complete on missing block: %v %v", ok, err)
	}
	other, _ := ParseCID("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if _, err := s.Open(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
}

func TestParseCID(t *testing.T) {
	for _, s := range []string{"", "x", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", "bafkr2qgx3v5yvqzn"} {
		if _, err := ParseCID(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func FuzzParseCID(f *testing.F) {
	f.Add("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err == nil && c.Prefix().Version != 1 {
			t.Fatal("accepted a non-v1 CID")
		}
	})
}
