package httpapi

import (
	"hash/maphash"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// RateLimit bounds the stats events one source (client address) may
// send: Rate events a second on average, Burst at once. A zero Rate
// turns the limit off.
type RateLimit struct {
	Rate  float64
	Burst int
}

// limiterSlots is the size of the limiter's table: sources hash into
// it (with a per-process key, so addresses cannot be chosen to land on
// another's slot), and sources sharing a slot share its budget. The
// table never grows: 16384 slots of 16 bytes, 256 KiB, however many
// sources send.
const limiterSlots = 1 << 14

// limiter is a token bucket per slot.
type limiter struct {
	rate  float64
	burst float64
	seed  maphash.Seed
	now   func() time.Time

	mu    sync.Mutex
	slots []bucket
}

type bucket struct {
	tokens float64
	last   int64 // unix ns of the last refill; 0: never used (full)
}

// newLimiter returns nil when the limit is off.
func newLimiter(l RateLimit, now func() time.Time) *limiter {
	if l.Rate <= 0 {
		return nil
	}
	burst := max(float64(l.Burst), l.Rate, maxBatchEvents)
	if now == nil {
		now = time.Now
	}
	return &limiter{rate: l.Rate, burst: burst, seed: maphash.MakeSeed(), now: now, slots: make([]bucket, limiterSlots)}
}

// maxBatchEvents is the largest batch the plugin sends: a burst below
// it would refuse a real device's batch forever.
const maxBatchEvents = 200

// take takes n events from the source's budget. It returns 0 when
// they may pass, else how long until they would (at least a second).
// With n = 0 it only looks: it refuses a source without budget for one
// event, and takes nothing.
func (l *limiter) take(src netip.Addr, n int) time.Duration {
	i := maphash.Comparable(l.seed, src) % limiterSlots
	now := l.now().UnixNano()
	need := min(float64(max(n, 1)), l.burst)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &l.slots[i]
	if b.last == 0 {
		b.tokens = l.burst
	} else if dt := now - b.last; dt > 0 {
		b.tokens = min(l.burst, b.tokens+float64(dt)/1e9*l.rate)
	}
	b.last = now
	if b.tokens >= need {
		if n > 0 {
			b.tokens -= need
		}
		return 0
	}
	wait := (need - b.tokens) / l.rate
	return time.Duration(max(1, math.Ceil(wait))) * time.Second
}

// source is the address a request's budget is kept for: the client's
// IP, an IPv6 client's /64 (one host or home gets one budget). The
// device API does not read X-Forwarded-For: anyone could set it. Behind
// a proxy every device shares the proxy's address (docs/security.md).
func source(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// retryAfterSeconds formats a Retry-After value.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}
