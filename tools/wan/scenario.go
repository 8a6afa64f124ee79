//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// options is a scenario: the WAN's shape and the release's size.
type options struct {
	Bin       string          // the mirrord binary
	Dir       string          // data directories and logs
	PoPs      int             // 1 to 8
	RTTs      []time.Duration // hub-PoP round trips, cycled over the PoPs
	Jitter    time.Duration   // per direction
	Loss      float64         // per direction
	Rate      float64         // bits per second per direction, 0 unlimited
	Size      int64           // bytes of the first release
	Partition time.Duration   // how long the last PoP is cut off
	Wait      time.Duration   // bound of each wait (replication, catch-up, failover)
}

// popResult is one PoP's row.
type popResult struct {
	Name  string
	RTT   time.Duration
	Ready time.Duration // from the publish's acknowledgement; 0 if never
}

// result is everything the scenario measured.
type result struct {
	BaselineRTT    time.Duration
	Baseline       time.Duration // one plain TCP copy of Size bytes hub -> PoP
	Publish        time.Duration // the mirrord publish command
	PoPs           []popResult
	ReleaseBytes   int64 // the release's distinct objects (zip and manifest files)
	HubEgress      int64 // IP bytes on the hub's links to PoPs during replication
	DupBlocks      int64 // duplicate blocks bitswap received, all PoPs
	LinkLoss       int64 // packets the links dropped on purpose during replication
	PartitionPoP   string
	PartitionCheck tally
	// PartitionPublish: a release was published during the cut.
	PartitionPublish bool
	CatchUp          time.Duration // heal to the cut PoP holding the release published meanwhile; 0 if never
	KilledLeader     string
	KillChecks       tally
	NewLeader        time.Duration // 0 if none within Wait
	Notes            []string
}

// wan is a running scenario.
type wan struct {
	o     options
	net   *network
	ctl   *endpoint
	hub   *mnode
	pops  []*mnode
	token string
}

// spec is the shape of a link with the given round trip.
func (o options) spec(rtt time.Duration) linkSpec {
	return linkSpec{Delay: rtt / 2, Jitter: o.Jitter, Loss: o.Loss, Rate: o.Rate, Queue: max(rtt, 50*time.Millisecond)}
}

// build makes the namespaces and links: the hub to each PoP at the
// PoP's RTT, PoP to PoP at the mean of their RTTs (as if routed through
// the hub's region), the controller (devices, admin) to every node
// unshaped.
func (s *wan) build() error {
	w := s.net
	var err error
	if s.ctl, err = w.addController(); err != nil {
		return err
	}
	hubEP, err := w.addNamespace("hub")
	if err != nil {
		return err
	}
	eps := []*endpoint{hubEP}
	rtts := []time.Duration{0}
	for i := range s.o.PoPs {
		ep, err := w.addNamespace(fmt.Sprintf("pop%d", i+1))
		if err != nil {
			return err
		}
		eps = append(eps, ep)
		rtts = append(rtts, s.o.RTTs[i%len(s.o.RTTs)])
	}
	for i, a := range eps {
		w.connect(s.ctl, a, linkSpec{})
		w.connect(a, s.ctl, linkSpec{})
		for j, b := range eps {
			if i != j {
				rtt := rtts[i] + rtts[j]
				if i != 0 && j != 0 {
					rtt /= 2
				}
				w.connect(a, b, s.o.spec(rtt))
			}
		}
	}
	w.start()
	for i, ep := range eps {
		n, err := newNode(ep, s.o.Bin, s.o.Dir)
		if err != nil {
			return err
		}
		if i == 0 {
			s.hub = n
		} else {
			s.pops = append(s.pops, n)
		}
	}
	return nil
}

// cli runs the mirrord CLI against the hub with the admin token.
func (s *wan) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.o.Bin, append(args, "--server", s.hub.url, "--token", s.token)...)
	cmd.Env = childEnv()
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return string(out), fmt.Errorf("mirrord %s: %w", args[0], err)
	}
	return string(out), nil
}

// startCluster starts the hub, creates the app and joins the PoPs.
func (s *wan) startCluster(ctx context.Context) error {
	if err := s.hub.start(ctx); err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(s.hub.dir, "data", "admin.token"))
	if err != nil {
		return err
	}
	s.token = strings.TrimSpace(string(tok))
	if _, err := s.cli(ctx, "app", "create", appID); err != nil {
		return err
	}
	for _, p := range s.pops {
		out, err := s.cli(ctx, "cluster", "token")
		if err != nil {
			return err
		}
		if err := p.start(ctx, "--join", s.hub.url, "--join-token", strings.Fields(out)[0]); err != nil {
			return err
		}
	}
	return nil
}

// publish publishes a release of size bytes and returns how long the
// CLI took.
func (s *wan) publish(ctx context.Context, version string, size int64) (time.Duration, error) {
	dir, err := bundleDir(s.o.Dir, version, size)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = s.cli(ctx, "publish", "--app", appID, "--version", version, "--channel", channel, dir)
	return time.Since(start), err
}

// hubEgress sums the bytes and purposeful drops of the hub's links to
// the PoPs.
func (s *wan) hubEgress() (bytes, dropped int64) {
	for _, p := range s.pops {
		st := s.net.link(s.hub.ep, p.ep).stats()
		bytes += st.Bytes
		dropped += st.Lost + st.QueueDrops
	}
	return bytes, dropped
}

func (s *wan) alive() []*mnode {
	return slices.DeleteFunc(append([]*mnode{s.hub}, s.pops...), func(n *mnode) bool { return !n.alive() })
}

func (s *wan) byPeer(id string) *mnode {
	for _, n := range append([]*mnode{s.hub}, s.pops...) {
		if id != "" && n.peerID == id {
			return n
		}
	}
	return nil
}

func (s *wan) shutdown() {
	for _, n := range append([]*mnode{s.hub}, s.pops...) {
		if n != nil {
			n.kill()
		}
	}
	s.net.close()
}

// releaseBytes sums the sizes of a release's distinct objects: what each
// PoP has to receive.
func (s *wan) releaseBytes(ctx context.Context, version string) (int64, error) {
	out, err := s.cli(ctx, "release", "list", appID, "--json")
	if err != nil {
		return 0, err
	}
	var rels []struct {
		Version  string `json:"version"`
		ZipCID   string `json:"zip_cid"`
		ZipSize  int64  `json:"zip_size"`
		Manifest []struct {
			CID  string `json:"cid"`
			Size int64  `json:"size"`
		} `json:"manifest"`
	}
	if err := json.Unmarshal([]byte(out), &rels); err != nil {
		return 0, fmt.Errorf("release list: %w", err)
	}
	for _, rel := range rels {
		if rel.Version != version {
			continue
		}
		seen := map[string]bool{rel.ZipCID: true}
		total := rel.ZipSize
		for _, m := range rel.Manifest {
			if !seen[m.CID] {
				seen[m.CID] = true
				total += m.Size
			}
		}
		return total, nil
	}
	return 0, fmt.Errorf("release %s not listed", version)
}
