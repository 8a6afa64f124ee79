package faults

import (
	"fmt"
	"os"
	"time"
)

// plan sizes a run. The short form runs under `go test ./...` (CI); the
// long form (MIRRORD_FAULTS=long) runs every fault several times with
// more load and larger releases.
type plan struct {
	name string
	// rounds is how many times each fault scenario runs.
	rounds int
	// loadPhase is the shortest time the load runs in a scenario; the
	// fault itself may take longer.
	loadPhase time.Duration
	// warmup is the load before a fault is injected.
	warmup time.Duration
	// downFor is how long a killed leader stays down; freezeFor how long
	// a frozen one stays stopped.
	downFor, freezeFor time.Duration

	// Device load: checks per second over all workers, the bound on
	// checks per scenario, and how often an answer is downloaded.
	deviceWorkers   int
	checksPerSecond int
	maxChecks       int
	downloadEvery   int

	// Admin loop: one publish attempt per publishEvery at most, and at
	// most maxPublishes per scenario.
	publishEvery time.Duration
	maxPublishes int

	// Release contents: a random file every release shares and one that
	// changes in every release (random bytes: Brotli cannot shrink them,
	// so the stored bytes are the files themselves).
	sharedBytes, changingBytes int

	// smallDisk is the size of the tmpfs under the small node's data
	// directory; fillObject the size of the objects that fill it.
	smallDisk  int64
	fillObject int

	// checkOld is how many releases acknowledged in earlier scenarios
	// have their bytes downloaded from every node after each scenario
	// (all are checked to be listed); -1 means all. With a sample, a
	// last row checks the bytes of every release.
	checkOld int
}

var (
	shortPlan = plan{
		name: "short", rounds: 1,
		loadPhase: 5 * time.Second, warmup: time.Second,
		downFor: 2 * time.Second, freezeFor: 3 * time.Second,
		deviceWorkers: 4, checksPerSecond: 60, maxChecks: 6000, downloadEvery: 3,
		publishEvery: 400 * time.Millisecond, maxPublishes: 40,
		sharedBytes: 24 << 10, changingBytes: 8 << 10,
		smallDisk: 64 << 20, fillObject: 1 << 20,
		checkOld: -1,
	}
	longPlan = plan{
		name: "long", rounds: 3,
		loadPhase: 30 * time.Second, warmup: 3 * time.Second,
		downFor: 5 * time.Second, freezeFor: 8 * time.Second,
		deviceWorkers: 8, checksPerSecond: 150, maxChecks: 60000, downloadEvery: 2,
		publishEvery: 2 * time.Second, maxPublishes: 100,
		sharedBytes: 512 << 10, changingBytes: 128 << 10,
		// Every object a node serves gets a cache copy: the small disk
		// must hold a long run's releases twice before it is filled.
		smallDisk: 1 << 30, fillObject: 4 << 20,
		checkOld: 20,
	}
)

// planFromEnv picks the plan named by MIRRORD_FAULTS: unset or "short",
// or "long".
func planFromEnv() (plan, error) {
	switch v := os.Getenv("MIRRORD_FAULTS"); v {
	case "", "short":
		return shortPlan, nil
	case "long":
		return longPlan, nil
	default:
		return plan{}, fmt.Errorf("MIRRORD_FAULTS=%q: want short or long", v)
	}
}
