package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// monitor follows raft during one round: leaders and terms from the
// nodes' metrics, warnings and election timeouts from their logs, and
// the fsync probe.
type monitor struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	leaders   []string // distinct successive leader ids seen by the polls
	terms     map[uint64]bool
	silence   time.Duration
	failed    int
	failedMax time.Duration
	stepDowns int
	timeouts  int
	probeMax  time.Duration
	events    []event
}

type event struct {
	at   time.Time
	what string
}

func (m *monitor) mark(what string) {
	m.mu.Lock()
	m.events = append(m.events, event{time.Now(), what})
	m.mu.Unlock()
}

func startMonitor(ctx context.Context, cl *cluster, every time.Duration, probeFile string) *monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{cancel: cancel, terms: map[uint64]bool{}}
	for i, p := range cl.procs {
		p.watch(func(line string) {
			if ctx.Err() != nil {
				return
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			if msg := eventRe.FindStringSubmatch(line); msg != nil {
				m.events = append(m.events, event{time.Now(), strings.TrimSpace(fmt.Sprintf("n%d %s %s", i, msg[1], msg[2]))})
			}
			switch {
			case strings.Contains(line, `msg="failed to contact quorum of nodes, stepping down"`):
				m.stepDowns++
			case strings.Contains(line, `msg="heartbeat timeout reached, starting election"`):
				m.timeouts++
			}
			if s := failedRe.FindStringSubmatch(line); s != nil {
				m.failed++
				if d, err := time.ParseDuration(s[1]); err == nil {
					m.failedMax = max(m.failedMax, d)
				}
			}
		})
	}
	for _, p := range cl.procs {
		m.wg.Go(func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				if v, err := scrape(ctx, p.url); err == nil {
					m.mu.Lock()
					m.terms[uint64(v["term"])] = true
					if v["leader"] == 1 && (len(m.leaders) == 0 || m.leaders[len(m.leaders)-1] != p.id) {
						m.leaders = append(m.leaders, p.id)
					}
					if v["leader"] == 0 && v["contact"] > 0 && !isInf(v["contact"]) {
						m.silence = max(m.silence, time.Duration(v["contact"]*float64(time.Second)))
					}
					m.mu.Unlock()
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	m.wg.Go(func() { m.probe(ctx, probeFile) })
	return m
}

func isInf(f float64) bool { return f > 1e300 }

// probe fsyncs a small write every 20 ms, as raft's WAL does per entry,
// and keeps the slowest.
func (m *monitor) probe(ctx context.Context, path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 4096)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		start := time.Now()
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err == nil {
			_ = f.Sync()
		}
		d := time.Since(start)
		m.mu.Lock()
		m.probeMax = max(m.probeMax, d)
		m.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *monitor) stop(r *result) {
	m.cancel()
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	r.leaderChanges = max(len(m.leaders)-1, 0)
	r.termChanges = max(len(m.terms)-1, 0)
	r.maxSilence = m.silence
	r.failedContact, r.failedContactMax = m.failed, m.failedMax
	r.stepDowns, r.electionTimeouts = m.stepDowns, m.timeouts
	r.fsyncProbeMax = m.probeMax
}

var metricsClient = &http.Client{Timeout: 5 * time.Second}

// scrape reads a node's raft gauges from /metrics: term, leader (1 if
// this node leads), contact (seconds since the leader was last heard).
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: HTTP %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		key := ""
		switch {
		case strings.HasPrefix(line, "mirrord_raft_term "):
			key = "term"
		case strings.HasPrefix(line, `mirrord_raft_state{state="leader"} `):
			key = "leader"
		case strings.HasPrefix(line, "mirrord_raft_last_contact_seconds "):
			key = "contact"
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			out[key] = v
		}
	}
	if len(out) < 3 {
		return out, errors.New("metrics: raft gauges missing")
	}
	return out, sc.Err()
}

var (
	failedRe = regexp.MustCompile(`msg="failed to contact" .*server-id=\S+ time=(\S+)`)
	// eventRe picks the raft log lines the timeline shows.
	eventRe = regexp.MustCompile(`msg="((?:failed to contact|heartbeat timeout|entering|election won|content: )[^"]*)"(?: .*(?:time|term|took)=(\S+))?`)
)
