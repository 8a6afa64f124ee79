package main

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// linkSpec is what a directed link does to the packets it carries, as
// netem and a token bucket would: a one-way delay with jitter, random
// loss, a rate limit with a bounded queue.
type linkSpec struct {
	Delay  time.Duration // one way
	Jitter time.Duration // uniform in [-Jitter, +Jitter], never reordering
	Loss   float64       // probability a packet is dropped
	Rate   float64       // bits per second; 0 is unlimited
	// Queue bounds the time a packet may wait for the rate limit; a
	// packet that would wait longer is dropped (a tail-drop queue).
	Queue time.Duration
}

// packet is one IP packet with the time it is due at the far end.
type packet struct {
	b   []byte
	due time.Time
}

// linkStats counts a link's packets.
type linkStats struct {
	Bytes, Packets, Lost, QueueDrops, DownDrops int64
}

// link is one direction between two endpoints. send runs in the
// reader of the source's device; run delivers to the destination's.
type link struct {
	spec  linkSpec
	write func([]byte) error

	mu       sync.Mutex
	nextFree time.Time // when the rate limiter is free again
	lastDue  time.Time // deliveries never overtake each other
	rng      *rand.Rand

	down atomic.Bool
	q    chan packet

	bytes, packets, lost, queueDrops, downDrops atomic.Int64
}

func newLink(spec linkSpec, write func([]byte) error, seed uint64) *link {
	return &link{spec: spec, write: write, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), q: make(chan packet, 1<<16)}
}

// send schedules p (which the link now owns) or drops it.
func (l *link) send(p []byte) {
	if l.down.Load() {
		l.downDrops.Add(1)
		return
	}
	now := time.Now()
	l.mu.Lock()
	if l.spec.Loss > 0 && l.rng.Float64() < l.spec.Loss {
		l.mu.Unlock()
		l.lost.Add(1)
		return
	}
	start := now
	if l.nextFree.After(start) {
		start = l.nextFree
	}
	if l.spec.Rate > 0 {
		if l.spec.Queue > 0 && start.Sub(now) > l.spec.Queue {
			l.mu.Unlock()
			l.queueDrops.Add(1)
			return
		}
		start = start.Add(time.Duration(float64(len(p)*8) / l.spec.Rate * float64(time.Second)))
	}
	l.nextFree = start
	due := start.Add(l.spec.Delay)
	if l.spec.Jitter > 0 {
		due = due.Add(time.Duration((l.rng.Float64()*2 - 1) * float64(l.spec.Jitter)))
	}
	if due.Before(l.lastDue) {
		due = l.lastDue
	}
	l.lastDue = due
	l.mu.Unlock()
	select {
	case l.q <- packet{b: p, due: due}:
	default:
		l.queueDrops.Add(1)
	}
}

// run delivers packets when they are due until done is closed.
func (l *link) run(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var p packet
		select {
		case <-done:
			return
		case p = <-l.q:
		}
		if d := time.Until(p.due); d > 0 {
			timer.Reset(d)
			select {
			case <-done:
				return
			case <-timer.C:
			}
		}
		if l.down.Load() {
			l.downDrops.Add(1)
			continue
		}
		if l.write(p.b) == nil {
			l.bytes.Add(int64(len(p.b)))
			l.packets.Add(1)
		}
	}
}

func (l *link) stats() linkStats {
	return linkStats{Bytes: l.bytes.Load(), Packets: l.packets.Load(), Lost: l.lost.Load(),
		QueueDrops: l.queueDrops.Load(), DownDrops: l.downDrops.Load()}
}
