// Command publishbench measures what a large publish does to raft
// (docs/BENCHMARKS.md, "Publish and raft"). For each round and each
// mirrord binary given, it starts a cluster of real `mirrord serve`
// processes on loopback, publishes one release of random bytes (or
// -parallel releases at once) through the real CLI (its own process),
// and records raft's view while the publish runs and until every node
// holds the release: leader changes,
// term changes, the longest time a follower went without hearing from
// the leader (sampled from /metrics), the leader's "failed to contact"
// warnings and the followers' election timeouts (from the logs). In the
// same round it times writing the release's bytes to a file with fsync,
// the SPEC's yardstick, and runs a probe that fsyncs a small file on the
// same file system every 20 ms, to see disk stalls that raft's own WAL
// fsyncs would see. Everything is bounded by -timeout.
//
//	go build -o /tmp/mirrord ./cmd/mirrord
//	go run ./tools/publishbench -bin new=/tmp/mirrord -size 200 -rounds 3
package main

import (
	"archive/zip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

func main() {
	var bins binFlags
	flag.Var(&bins, "bin", "`name=path` of a mirrord binary to measure, repeatable (runs interleave); default: build ./cmd/mirrord as \"cur\"")
	nodes := flag.Int("nodes", 3, "cluster size (all voters up to 3, as mirrord assigns)")
	sizeMB := flag.Int("size", 200, "release size in MB (10^6 bytes) of random data")
	files := flag.Int("files", 4, "the release's data is split into this many files (plus index.html)")
	deflate := flag.Bool("deflate", false, "publish a directory (the CLI deflates it) instead of a stored zip")
	rounds := flag.Int("rounds", 3, "rounds; each round runs every binary once on a fresh cluster")
	dir := flag.String("dir", "", "work `dir` (data dirs, release, fsync baseline); default a temp dir")
	poll := flag.Duration("poll", 50*time.Millisecond, "how often /metrics of every node is read")
	timeout := flag.Duration("timeout", 20*time.Minute, "bound on the whole run")
	keepLogs := flag.Bool("logs", false, "keep each run's node logs (not their data), print their path and a timeline of raft events")
	upload := flag.Bool("upload-only", false, "only upload the zip (POST /admin/v1/objects) to the leader, no release")
	parallel := flag.Int("parallel", 1, "publishes at once, each of its own release of -size MB")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, config{bins: bins, nodes: *nodes, size: int64(*sizeMB) * 1e6, files: *files, deflate: *deflate,
		rounds: *rounds, dir: *dir, poll: *poll, keepLogs: *keepLogs, uploadOnly: *upload, parallel: max(*parallel, 1)}); err != nil {
		fmt.Fprintln(os.Stderr, "publishbench:", err)
		os.Exit(1)
	}
}

type binFlags []namedBin

type namedBin struct{ name, path string }

func (b *binFlags) String() string { return fmt.Sprint(*b) }

func (b *binFlags) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return errors.New("want name=path")
	}
	*b = append(*b, namedBin{name, path})
	return nil
}

type config struct {
	bins       []namedBin
	nodes      int
	size       int64
	files      int
	deflate    bool
	rounds     int
	dir        string
	poll       time.Duration
	keepLogs   bool
	uploadOnly bool
	parallel   int
}

func run(ctx context.Context, cfg config) error {
	work := cfg.dir
	if work == "" {
		d, err := os.MkdirTemp("", "publishbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	if len(cfg.bins) == 0 {
		p := filepath.Join(work, "mirrord")
		fmt.Fprintln(os.Stderr, "building ./cmd/mirrord")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", p, "./cmd/mirrord")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build: %w", err)
		}
		cfg.bins = []namedBin{{"cur", p}}
	}
	var rels []string
	var relBytes int64
	for i := range cfg.parallel {
		rel, n, err := makeRelease(filepath.Join(work, fmt.Sprintf("release%d", i)), cfg, byte(i))
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "release: %s (%d bytes)\n", rel, n)
		rels, relBytes = append(rels, rel), relBytes+n
	}
	load0 := loadAvg()
	var results []result
	for round := 1; round <= cfg.rounds; round++ {
		for _, b := range cfg.bins {
			fmt.Fprintf(os.Stderr, "round %d: %s\n", round, b.name)
			r, err := measure(ctx, cfg, work, b, rels, relBytes, round)
			if err != nil {
				return fmt.Errorf("round %d %s: %w", round, b.name, err)
			}
			results = append(results, r)
			printResults(os.Stderr, results[len(results)-1:])
		}
	}
	fmt.Printf("\n%d nodes, %d release(s) at once, %.0f MB in all (%s), %d rounds; load average %s at the start, %s at the end\n\n",
		cfg.nodes, cfg.parallel, float64(relBytes)/1e6, map[bool]string{false: "stored zip", true: "deflated directory"}[cfg.deflate],
		cfg.rounds, load0, loadAvg())
	printResults(os.Stdout, results)
	return nil
}

// makeRelease writes a release under work: index.html and cfg.files
// files of random bytes (from seed), as a stored zip (or as a directory
// with -deflate). It returns the path to publish and the bytes a device
// downloads.
func makeRelease(work string, cfg config, seed byte) (string, int64, error) {
	src := filepath.Join(work, "release")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", 0, err
	}
	rng := rand.NewChaCha8([32]byte{7, seed})
	names := []string{"index.html"}
	data := map[string][]byte{"index.html": []byte("<html><body>publishbench</body></html>\n")}
	per := cfg.size / int64(max(cfg.files, 1))
	for i := range max(cfg.files, 1) {
		b := make([]byte, per)
		_, _ = rng.Read(b)
		name := fmt.Sprintf("assets/blob%02d.bin", i)
		names = append(names, name)
		data[name] = b
	}
	if cfg.deflate {
		for _, n := range names {
			p := filepath.Join(src, filepath.FromSlash(n))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", 0, err
			}
			if err := os.WriteFile(p, data[n], 0o644); err != nil {
				return "", 0, err
			}
		}
		return src, cfg.size, nil
	}
	p := filepath.Join(work, "release.zip")
	f, err := os.Create(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			return "", 0, err
		}
		if _, err := w.Write(data[n]); err != nil {
			return "", 0, err
		}
	}
	if err := zw.Close(); err != nil {
		return "", 0, err
	}
	info, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	return p, info.Size(), f.Close()
}

// result is one publish on one cluster.
type result struct {
	bin   string
	round int
	// fsyncBase is writing the release's bytes to a file and fsyncing it.
	fsyncBase time.Duration
	publish   time.Duration // the CLI's publish, until it answered
	replicate time.Duration // from the publish's start until every node holds it
	err       string        // the publish's error, if any

	leaderChanges, termChanges int
	maxSilence                 time.Duration // longest follower last contact seen
	failedContact              int           // leader's "failed to contact" warnings
	failedContactMax           time.Duration
	stepDowns                  int // "failed to contact quorum of nodes, stepping down"
	electionTimeouts           int // followers' "heartbeat timeout reached"
	fsyncProbeMax              time.Duration
}

func printResults(w io.Writer, rs []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "binary\tround\tfile+fsync s\tpublish s\tratio\tall nodes s\tleader changes\tterm changes\tmax follower silence ms\tleader 'failed to contact' (max ms)\tstep-downs\telection timeouts\tprobe fsync max ms\tresult\t")
	for _, r := range rs {
		res := "ok"
		if r.err != "" {
			res = r.err
			if rs := []rune(res); len(rs) > 60 {
				res = string(rs[:60]) + "…"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.1fx\t%.2f\t%d\t%d\t%d\t%d (%d)\t%d\t%d\t%d\t%s\t\n", r.bin, r.round,
			r.fsyncBase.Seconds(), r.publish.Seconds(), r.publish.Seconds()/r.fsyncBase.Seconds(), r.replicate.Seconds(),
			r.leaderChanges, r.termChanges, r.maxSilence.Milliseconds(), r.failedContact, r.failedContactMax.Milliseconds(),
			r.stepDowns, r.electionTimeouts, r.fsyncProbeMax.Milliseconds(), res)
	}
	_ = tw.Flush()
}

// measure publishes rels at once on a fresh cluster of b.
func measure(ctx context.Context, cfg config, work string, b namedBin, rels []string, relBytes int64, round int) (result, error) {
	res := result{bin: b.name, round: round}
	runDir := filepath.Join(work, fmt.Sprintf("run-%d-%s", round, b.name))
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return res, err
	}
	if !cfg.keepLogs {
		defer os.RemoveAll(runDir)
	} else {
		// Keep the logs (runDir/nI.log), not the nodes' data.
		defer func() {
			for i := range cfg.nodes {
				os.RemoveAll(filepath.Join(runDir, fmt.Sprintf("n%d", i)))
			}
		}()
		fmt.Fprintln(os.Stderr, "logs:", runDir)
	}
	cl, err := startCluster(ctx, b.path, runDir, cfg.nodes)
	defer cl.stop()
	if err != nil {
		return res, err
	}
	// The app first, and every node reporting, so that the cluster has
	// settled.
	if _, err := cl.cli(ctx, "app", "create", "com.example.bench"); err != nil {
		return res, err
	}
	if err := cl.waitReplicated(ctx, "", time.Minute); err != nil {
		return res, err
	}
	if res.fsyncBase, err = fsyncBaseline(runDir, relBytes); err != nil {
		return res, err
	}

	mon := startMonitor(ctx, cl, cfg.poll, filepath.Join(runDir, "probe"))
	start := time.Now()
	leaderURL := cl.leaderURL(ctx)
	errs := make([]error, len(rels))
	var wg sync.WaitGroup
	for i, rel := range rels {
		wg.Go(func() {
			if cfg.uploadOnly {
				errs[i] = cl.upload(ctx, leaderURL, rel)
				return
			}
			args := []string{"publish", "--app", "com.example.bench", "--version", fmt.Sprintf("1.0.%d", i+1), rel}
			if i == 0 {
				args = append(args, "--channel", "production")
			}
			if _, err := cl.cliAt(ctx, leaderURL, args...); err != nil {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	res.publish = time.Since(start)
	mon.mark("publish answered")
	if err := errors.Join(errs...); err != nil {
		res.err = firstLine(err.Error())
	} else if cfg.uploadOnly {
		// Nothing to replicate; watch raft a little longer.
		time.Sleep(2 * time.Second)
	} else {
		for i := range rels {
			if err := cl.waitReplicated(ctx, fmt.Sprintf("1.0.%d", i+1), 5*time.Minute); err != nil {
				res.err = "replication: " + err.Error()
				break
			}
		}
	}
	res.replicate = time.Since(start)
	mon.mark("replicated everywhere")
	mon.stop(&res)
	if cfg.keepLogs {
		for _, e := range mon.events {
			fmt.Fprintf(os.Stderr, "  %7.3fs %s\n", e.at.Sub(start).Seconds(), e.what)
		}
	}
	return res, nil
}

// loadAvg is the machine's 1-minute load average (other work on the
// machine skews every number).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// fsyncBaseline times writing n bytes to a new file and fsyncing it.
func fsyncBaseline(dir string, n int64) (time.Duration, error) {
	p := filepath.Join(dir, "fsync-baseline")
	buf := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(buf)
	start := time.Now()
	f, err := os.Create(p)
	if err != nil {
		return 0, err
	}
	for left := n; left > 0; left -= int64(len(buf)) {
		if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
			f.Close()
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	d := time.Since(start)
	f.Close()
	return d, os.Remove(p)
}
