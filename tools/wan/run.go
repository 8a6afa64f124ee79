//go:build linux

package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// run builds the WAN, runs every step and returns what it measured. A
// step that fails ends the run with what was measured so far.
func run(ctx context.Context, o options) (*result, error) {
	s := &wan{o: o, net: newNetwork()}
	defer s.shutdown()
	if err := s.build(); err != nil {
		return nil, fmt.Errorf("build the WAN: %w", err)
	}
	r := &result{}
	steps := []func(context.Context, *result) error{s.baseline, s.startAll, s.replicate, s.partition, s.killLeader}
	for _, step := range steps {
		if ctx.Err() != nil {
			return r, fmt.Errorf("interrupted: %w", ctx.Err())
		}
		if err := step(ctx, r); err != nil {
			return r, err
		}
	}
	return r, nil
}

// baseline copies the release's bytes over the slowest hub-PoP link
// with one plain TCP connection, before anything else uses the links.
func (s *wan) baseline(ctx context.Context, r *result) error {
	slow := 0
	for i := range s.pops {
		if s.o.RTTs[i%len(s.o.RTTs)] > s.o.RTTs[slow%len(s.o.RTTs)] {
			slow = i
		}
	}
	r.BaselineRTT = s.o.RTTs[slow%len(s.o.RTTs)]
	ctx, cancel := context.WithTimeout(ctx, s.o.Wait)
	defer cancel()
	d, err := tcpCopy(ctx, s.hub.ep, s.pops[slow].ep, s.o.Size)
	if err != nil {
		return fmt.Errorf("plain TCP copy: %w", err)
	}
	r.Baseline = d
	return nil
}

func (s *wan) startAll(ctx context.Context, _ *result) error {
	return s.startCluster(ctx)
}

// replicate publishes the release on the hub and measures, per PoP, the
// time from the publish's acknowledgement until it holds every byte.
func (s *wan) replicate(ctx context.Context, r *result) error {
	egress0, drops0 := s.hubEgress()
	d, err := s.publish(ctx, "1.0.1", s.o.Size)
	if err != nil {
		return err
	}
	acked := time.Now()
	r.Publish = d
	var wg sync.WaitGroup
	r.PoPs = make([]popResult, len(s.pops))
	for i, p := range s.pops {
		r.PoPs[i] = popResult{Name: p.ep.name, RTT: s.o.RTTs[i%len(s.o.RTTs)]}
		wg.Go(func() {
			if waitFor(ctx, s.o.Wait, 50*time.Millisecond, func() bool { return p.ready(s.token, appID, "1.0.1") }) == nil {
				r.PoPs[i].Ready = time.Since(acked)
			}
		})
	}
	wg.Wait()
	egress, drops := s.hubEgress()
	r.HubEgress, r.LinkLoss = egress-egress0, drops-drops0
	r.ReleaseBytes, err = s.releaseBytes(ctx, "1.0.1")
	if err != nil {
		r.Notes = append(r.Notes, "release size: "+err.Error())
	}
	for _, p := range s.pops {
		v, _ := strconv.ParseFloat(p.metric(s.token, "mirrord_bitswap_duplicate_blocks_total"), 64)
		r.DupBlocks += int64(v)
	}
	for _, p := range r.PoPs {
		if p.Ready == 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s did not hold release 1.0.1 within %v", p.Name, s.o.Wait))
		}
	}
	return nil
}

// partition cuts the last PoP off from every other node (devices still
// reach it), publishes a small release meanwhile when the hub keeps a
// quorum without that PoP (it is a non-voter from the third PoP on:
// voters are the first three nodes), checks the PoP keeps answering
// devices, heals and measures its catch-up: the time until it has
// applied what the hub had applied at the heal and holds the release.
func (s *wan) partition(ctx context.Context, r *result) error {
	cut := s.pops[len(s.pops)-1]
	r.PartitionPoP = cut.ep.name
	for _, n := range append([]*mnode{s.hub}, s.pops...) {
		if n != cut {
			s.net.setDown(cut.ep, n.ep, true)
		}
	}
	published := make(chan error, 1)
	r.PartitionPublish = len(s.pops) >= 3
	if r.PartitionPublish {
		go func() {
			_, err := s.publish(ctx, "1.0.2", 256<<10)
			published <- err
		}()
	} else {
		published <- nil
		r.Notes = append(r.Notes, "no release published during the cut: the cut PoP is a voter and the hub alone has no quorum")
	}
	r.PartitionCheck = checkWhile(ctx, func() []*mnode { return []*mnode{cut} }, s.o.Partition, s.o.Partition, func() bool { return true })
	if err := <-published; err != nil {
		r.Notes = append(r.Notes, "publish during the partition: "+err.Error())
	}
	for _, n := range append([]*mnode{s.hub}, s.pops...) {
		s.net.setDown(cut.ep, n.ep, false)
	}
	healed := time.Now()
	want := s.hub.state().StateIndex
	err := waitFor(ctx, s.o.Wait, 20*time.Millisecond, func() bool {
		st := cut.state()
		if st.Leader == "" || st.StateIndex < want {
			return false
		}
		return !r.PartitionPublish || cut.ready(s.token, appID, "1.0.2")
	})
	if err == nil {
		r.CatchUp = time.Since(healed)
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("%s did not catch up within %v of the heal", cut.ep.name, s.o.Wait))
	}
	return nil
}

// killLeader kills the leader and checks devices on every other node
// until one of them names a new leader (or Wait passes, at least 3 s).
func (s *wan) killLeader(ctx context.Context, r *result) error {
	var leader *mnode
	agreed := func() bool {
		leader = s.byPeer(s.hub.leader())
		for _, n := range s.pops {
			if leader == nil || s.byPeer(n.leader()) != leader {
				return false
			}
		}
		return true
	}
	if err := waitFor(ctx, s.o.Wait, 50*time.Millisecond, agreed); err != nil {
		return fmt.Errorf("no leader every node names before the kill: %w", err)
	}
	r.KilledLeader = leader.ep.name
	leader.kill()
	killed := time.Now()
	var newLeader time.Duration
	found := func() bool {
		if newLeader > 0 {
			return true
		}
		for _, n := range s.alive() {
			if l := s.byPeer(n.leader()); l != nil && l != leader {
				newLeader = time.Since(killed)
				return true
			}
		}
		return false
	}
	// Voters are the first three nodes; with two, the survivor alone
	// cannot elect a leader: devices are then checked for 5 s.
	voters, most := min(3, 1+len(s.pops)), s.o.Wait
	if voters < 3 {
		most = min(most, 5*time.Second)
	}
	r.KillChecks = checkWhile(ctx, s.alive, 3*time.Second, most, found)
	r.NewLeader = newLeader
	if newLeader == 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("no new leader within %v (%d voters, one killed)", most, voters))
	}
	return nil
}
