package replication

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"mirrord/consensus/consensustest"
	"mirrord/content"
	"mirrord/node"
)

// benchSize is the release size of the replication benchmarks: 100 MiB,
// or MIRRORD_BENCH_MIB.
func benchSize(b *testing.B) int {
	if s := os.Getenv("MIRRORD_BENCH_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		return n << 20
	}
	return 100 << 20
}

// BenchmarkReplicate measures how long one release takes to reach 1 and
// 4 followers over bitswap (on-disk stores, real libp2p over loopback
// TCP), and how much of it the origin sent. Compare with
// BenchmarkTCPCopy in the same run.
//
//	go test -run '^$' -bench 'Replicate|TCPCopy' -benchtime 3x ./node/replication/
func BenchmarkReplicate(b *testing.B) {
	size := benchSize(b)
	for _, followers := range []int{1, 4} {
		b.Run(fmt.Sprintf("followers=%d", followers), func(b *testing.B) {
			data := randomBytes(b, size)
			var total time.Duration
			var originSent, sent uint64
			for range b.N {
				b.StopTimer()
				origin := newTestPeer(b)
				fs := make([]*testPeer, followers)
				for i := range fs {
					fs[i] = newTestPeer(b)
				}
				connectPeers(b, append([]*testPeer{origin}, fs...)...)
				obj := origin.add(b, data)
				b.StartTimer()
				start := time.Now()
				var wg sync.WaitGroup
				errs := make(chan error, followers)
				for i, f := range fs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						opt := content.FetchOptions{Rank: i, Of: followers}
						if _, err := f.store.FetchWith(context.Background(), obj.CID, opt); err != nil {
							errs <- err
						}
					}()
				}
				wg.Wait()
				total += time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				os, _ := node.ExchangeStatsOf(origin.bs)
				originSent += os.BytesSent
				for _, f := range fs {
					st, _ := node.ExchangeStatsOf(f.bs)
					sent += st.BytesSent
				}
				b.StartTimer()
			}
			per := total.Seconds() / float64(b.N)
			b.ReportMetric(per, "s/release")
			b.ReportMetric(float64(size)/per/1e6, "MB/s/follower")
			b.ReportMetric(float64(originSent)/float64(b.N)/float64(size), "origin-sent/size")
			b.ReportMetric(float64(sent)/float64(b.N)/float64(size), "peers-sent/size")
			b.SetBytes(int64(size))
		})
	}
}

// BenchmarkTCPCopy is the baseline: the same bytes copied over plain
// loopback TCP connections from one sender to 1 and 4 receivers at
// once, each receiver writing a file and fsyncing it (as the block store
// does), and to io.Discard.
func BenchmarkTCPCopy(b *testing.B) {
	size := benchSize(b)
	data := randomBytes(b, size)
	for _, sink := range []string{"file", "discard"} {
		for _, receivers := range []int{1, 4} {
			b.Run(fmt.Sprintf("sink=%s/receivers=%d", sink, receivers), func(b *testing.B) {
				dir := b.TempDir()
				var total time.Duration
				for range b.N {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						b.Fatal(err)
					}
					var wg sync.WaitGroup
					start := time.Now()
					for i := range receivers {
						wg.Add(1)
						go func() {
							defer wg.Done()
							c, err := net.Dial("tcp", ln.Addr().String())
							if err != nil {
								b.Error(err)
								return
							}
							defer c.Close()
							var w io.Writer = io.Discard
							var f *os.File
							if sink == "file" {
								f, err = os.Create(filepath.Join(dir, fmt.Sprint("r", i)))
								if err != nil {
									b.Error(err)
									return
								}
								defer f.Close()
								w = f
							}
							if _, err := io.Copy(w, c); err != nil {
								b.Error(err)
							}
							if f != nil {
								if err := f.Sync(); err != nil {
									b.Error(err)
								}
							}
						}()
					}
					var sw sync.WaitGroup
					for range receivers {
						c, err := ln.Accept()
						if err != nil {
							b.Fatal(err)
						}
						sw.Add(1)
						go func() {
							defer sw.Done()
							defer c.Close()
							if _, err := c.Write(data); err != nil {
								b.Error(err)
							}
						}()
					}
					sw.Wait()
					wg.Wait()
					total += time.Since(start)
					ln.Close()
				}
				per := total.Seconds() / float64(b.N)
				b.ReportMetric(per, "s/release")
				b.ReportMetric(float64(size)/per/1e6, "MB/s/receiver")
				b.SetBytes(int64(size))
			})
		}
	}
}

// BenchmarkDeltaEncrypted measures the bytes a follower fetches for an
// encrypted release that changes 2 of its 60 files, against the size of
// those 2 files (encrypted, as stored). "reused-key" is what
// `publish --key` does (the previous release's session key, so unchanged
// files keep their CIDs); "fresh-key" encrypts with a new key; "eager-zips"
// also replicates the zip, which AES-CBC changes from the first changed
// byte on.
//
//	go test -run '^$' -bench DeltaEncrypted -benchtime 1x ./node/replication/
func BenchmarkDeltaEncrypted(b *testing.B) {
	privPEM, _, err := content.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	priv, err := content.ParsePrivateKey(privPEM)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"reused-key", "fresh-key", "eager-zips"} {
		b.Run(mode, func(b *testing.B) {
			var ratio, moved, changed float64
			for range b.N {
				b.StopTimer()
				dir := b.TempDir()
				for i := range 59 {
					// 20-200 KiB of incompressible bytes per file.
					data := randomBytes(b, 20<<10+i*3<<10)
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.js", i)), data, 0o644); err != nil {
						b.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html><script src=f00.js></script>"), 0o644); err != nil {
					b.Fatal(err)
				}
				zip1, err := content.ZipDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				b1, err := content.BuildBundle(zip1, priv, content.ZipLimits{})
				if err != nil {
					b.Fatal(err)
				}
				for _, i := range []int{17, 42} {
					if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%02d.js", i)), randomBytes(b, 64<<10), 0o644); err != nil {
						b.Fatal(err)
					}
				}
				zip2, err := content.ZipDir(dir)
				if err != nil {
					b.Fatal(err)
				}
				var b2 *content.Bundle
				if mode == "fresh-key" {
					b2, err = content.BuildBundle(zip2, priv, content.ZipLimits{})
				} else {
					sk, oerr := content.OpenSessionKey(b1.SessionKey, &priv.PublicKey)
					if oerr != nil {
						b.Fatal(oerr)
					}
					b2, err = content.BuildBundleWithKey(zip2, priv, sk, content.ZipLimits{})
				}
				if err != nil {
					b.Fatal(err)
				}
				origin, follower := newTestPeer(b), newTestPeer(b)
				connectPeers(b, origin, follower)
				box := newStateBox()
				zips := ZipsOnDemand
				if mode == "eager-zips" {
					zips = ZipsEager
				}
				repl := New(Config{Store: follower.store, State: box, Zips: zips, GCInterval: -1, ScrubInterval: -1})
				stopRepl := start(b, repl)
				publish := func(version string, bu *content.Bundle) {
					zip := origin.add(b, bu.Zip)
					var files []content.Object
					for _, f := range bu.Files {
						files = append(files, origin.add(b, f.Data))
					}
					box.publish("app", version, zip, files...)
					consensustest.WaitFor(b, version+" replicated", func() bool { return repl.Ready("app", version) }, time.Minute)
				}
				publish("1.0.0", b1)
				before, _ := node.ExchangeStatsOf(follower.bs)
				b.StartTimer()
				publish("1.0.1", b2)
				b.StopTimer()
				after, _ := node.ExchangeStatsOf(follower.bs)
				stopRepl()
				old := map[string]bool{}
				for _, f := range b1.Files {
					old[string(f.Data)] = true
				}
				ch := 0
				for _, f := range b2.Files {
					if f.Name == "f17.js" || f.Name == "f42.js" {
						ch += len(f.Data)
					}
				}
				m := float64(after.BytesReceived - before.BytesReceived)
				moved += m
				changed += float64(ch)
				ratio += m / float64(ch)
				b.StartTimer()
			}
			b.ReportMetric(moved/float64(b.N), "bytes-moved")
			b.ReportMetric(changed/float64(b.N), "bytes-of-2-files")
			b.ReportMetric(ratio/float64(b.N), "moved/changed")
		})
	}
}
