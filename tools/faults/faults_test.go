package faults

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	// healTimeout bounds bringing every node back and agreeing on a
	// leader after a scenario.
	healTimeout = 60 * time.Second
	// durabilityTimeout bounds the wait for every acknowledged release
	// to be listed and servable on every node.
	durabilityTimeout = 60 * time.Second
)

// TestFaults runs the scenarios of issue 10 against a real cluster and
// prints the table; it fails when a promise is broken. MIRRORD_FAULTS=
// long runs the long form (give it -timeout 60m); MIRRORD_FAULTS_REPORT=
// FILE also writes the table to FILE; MIRRORD_FAULTS_DIR=DIR keeps the
// nodes' data and logs in DIR.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("the fault harness runs a cluster of real processes for minutes")
	}
	p, err := planFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, p, buildMirrord(t))
	healed := true
	for _, sc := range scenarios(p) {
		if healed = h.run(sc); !healed {
			break // the cluster did not heal: later rows would mean nothing
		}
	}
	if healed && p.checkOld >= 0 {
		h.checkEverything()
	}
	h.report()
}

// harness holds the cluster, the releases and the rows so far.
type harness struct {
	t       *testing.T
	p       plan
	c       *cluster
	ledger  *ledger
	seed    [32]byte
	results []*result
	// wrongSeen holds the objects (node/CID) already reported served
	// with wrong bytes after healing.
	wrongSeen map[string]bool
	// checkedUpTo counts the acknowledged releases whose bytes were
	// checked after a scenario (see toFetch); rng samples older ones.
	checkedUpTo int
	rng         *mrand.Rand
	// damaged are releases whose stored bytes the scenario damaged:
	// the check after it downloads them whatever the sample.
	damaged []*release
}

// newHarness starts the cluster, creates the app and publishes its
// first release, so that devices are offered something from the start.
func newHarness(t *testing.T, p plan, bin string) *harness {
	var seed [32]byte
	_, _ = rand.Read(seed[:])
	t.Logf("fault harness, %s form; release bytes seeded with %s", p.name, hex.EncodeToString(seed[:8]))
	start := time.Now()
	c := startCluster(t, bin, p)
	h := &harness{t: t, p: p, c: c, ledger: newLedger(filepath.Join(t.TempDir(), "releases"), p, seed), seed: seed,
		wrongSeen: map[string]bool{}, rng: mrand.New(mrand.NewChaCha8(seed))}
	if _, err := c.cli(c.nodes[0], "app", "create", appID); err != nil {
		t.Fatal(err)
	}
	first := &publisher{c: c, ledger: h.ledger, scenario: "setup"}
	if _, err := first.publishOnce(c.nodes[1]); err != nil {
		t.Fatal(err)
	}
	// The load starts once every node offers the first release: from
	// then on, an answer such as no_channel would mean that a node's
	// state went back.
	hc := &http.Client{Timeout: checkTimeout}
	for _, n := range c.nodes {
		if err := waitFor(30*time.Second, 20*time.Millisecond, func() bool {
			ans, err := postCheck(hc, n, "5a4cd1a6-0b6f-4bd9-9a4e-6c6f3c1f2a00", "builtin")
			return err == nil && ans.Version != ""
		}); err != nil {
			t.Fatalf("%s does not offer the first release within 30s", n.name)
		}
	}
	t.Logf("cluster of 3 up in %v; small node %s: %s", time.Since(start).Round(time.Millisecond), c.small.name, smallDiskNote(c))
	return h
}

func smallDiskNote(c *cluster) string {
	if c.smallDiskErr != nil {
		return "no tmpfs (" + c.smallDiskErr.Error() + ")"
	}
	return "data on a tmpfs"
}

// scenario is one row of the table.
type scenario struct {
	name string
	// skip returns why the scenario cannot run here, "" if it can.
	skip func(h *harness) string
	// fault injects the fault while the load runs.
	fault func(x *phase)
	round int
}

// run runs one scenario: device load and admin loop start, the fault is
// injected, the load runs for at least the plan's load phase, then the
// cluster is healed and every acknowledged release checked on every
// node. It returns false when the cluster could not be healed.
func (h *harness) run(sc scenario) bool {
	res := &result{scenario: sc.name}
	h.results = append(h.results, res)
	if sc.skip != nil {
		if why := sc.skip(h); why != "" {
			res.skipped = why
			return true
		}
	}
	start := time.Now()
	tally := &tally{}
	stop := make(chan struct{})
	waitDevices := newFleet(h.c, h.ledger, h.p, tally, h.seed).run(stop)
	pub := &publisher{c: h.c, ledger: h.ledger, scenario: sc.name, every: h.p.publishEvery, max: h.p.maxPublishes}
	waitPublisher := pub.run(stop)

	x := &phase{h: h, c: h.c, p: h.p, res: res, tally: tally, pub: pub, round: sc.round}
	sc.fault(x)
	x.holdUntil(start.Add(h.p.loadPhase))
	close(stop)
	waitDevices()
	pt := waitPublisher()

	for _, n := range h.c.nodes {
		if n.crashed() {
			x.broken("%s exited on its own:\n%s", n.name, n.logTail(20))
		}
	}
	healed := true
	if err := h.c.heal(healTimeout); err != nil {
		x.broken("the cluster did not heal: %v", err)
		healed = false
	}
	var d durability
	if healed {
		d = h.checkDurability(durabilityTimeout, h.toFetch())
	}
	res.fill(tally, pt, d)
	res.notes = append(res.notes, fmt.Sprintf("%s; %s (%s in all)", pt, d, time.Since(start).Round(time.Second)))
	h.t.Logf("%s: %d broken promise(s), %s", sc.name, len(res.broken), time.Since(start).Round(time.Second))
	return healed
}

// checkEverything adds a row for the download of every acknowledged
// release from every node, when the rows before checked only a sample.
func (h *harness) checkEverything() {
	start := time.Now()
	d := h.checkDurability(durabilityTimeout, nil)
	res := &result{scenario: "end of run: every acknowledged release, every node", noLoad: true}
	res.fill(&tally{}, publishTally{}, d)
	res.notes = append(res.notes, fmt.Sprintf("%s (%s)", d, time.Since(start).Round(time.Second)))
	h.results = append(h.results, res)
}

// report logs the table (and writes it to MIRRORD_FAULTS_REPORT) and
// fails the test for every broken promise.
func (h *harness) report() {
	table := formatTable(h.results)
	h.t.Log("\n" + table + formatDetails(h.results))
	if path := os.Getenv("MIRRORD_FAULTS_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(table), 0o644); err != nil {
			h.t.Error(err)
		}
	}
	for _, r := range h.results {
		for _, b := range r.broken {
			h.t.Errorf("%s: %s", r.scenario, b)
		}
	}
}
