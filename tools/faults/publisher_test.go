package faults

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// publishTally counts the admin loop's publish attempts in a scenario.
type publishTally struct {
	attempts, acked int
	// refused counts answers saying there is no quorum (HTTP 503),
	// diskFull those saying the node has no room, unreachable the nodes
	// that did not answer, other the rest.
	refused, diskFull, unreachable, other int
	firstOther                            string
	// badAnswers are acknowledged publishes whose answer did not
	// describe the bundle published: a broken promise.
	badAnswers []string
}

func (p publishTally) String() string {
	s := fmt.Sprintf("publishes %d/%d acked", p.acked, p.attempts)
	if p.refused > 0 {
		s += fmt.Sprintf(", %d refused with 503", p.refused)
	}
	if p.diskFull > 0 {
		s += fmt.Sprintf(", %d refused for lack of disk space", p.diskFull)
	}
	if p.unreachable > 0 {
		s += fmt.Sprintf(", %d unreachable", p.unreachable)
	}
	if p.other > 0 {
		s += fmt.Sprintf(", %d failed otherwise (%s)", p.other, clip(p.firstOther, 120))
	}
	return s
}

// publisher is the admin loop: it publishes new releases through the
// up nodes in turn with the mirrord CLI, pointing the channel at each.
type publisher struct {
	c        *cluster
	ledger   *ledger
	scenario string
	every    time.Duration
	max      int

	mu    sync.Mutex
	tally publishTally
}

// run publishes until stop is closed or max attempts were made. An
// attempt under way when stop closes is finished, so that its outcome
// is known. The returned function waits for the loop and returns the
// tally.
func (p *publisher) run(stop <-chan struct{}) func() publishTally {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(p.every)
		defer tick.Stop()
		turn := 0
		for range p.max {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			n := p.target(&turn)
			if n == nil {
				continue // nothing up: nobody to publish through
			}
			p.publishOnce(n)
		}
	}()
	return func() publishTally {
		<-done
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.tally
	}
}

// target returns the next up node the loop publishes through; never
// the small node (see cluster.small).
func (p *publisher) target(turn *int) *node {
	for range p.c.nodes {
		n := p.c.nodes[*turn%len(p.c.nodes)]
		*turn++
		if n != p.c.small && n.isUp() {
			return n
		}
	}
	return nil
}

// publishOnce publishes the next release through n and records the
// outcome. It returns the release when it was acknowledged.
func (p *publisher) publishOnce(n *node) (*release, error) {
	r, err := p.ledger.prepare()
	if err != nil {
		return nil, err
	}
	out, err := p.c.cli(n, "publish", "--app", appID, "--version", r.version, "--channel", channel, "--json", r.dir)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tally.attempts++
	switch {
	case err == nil:
		if err := p.ledger.ack(r, []byte(out), n.name, p.scenario); err != nil {
			p.tally.badAnswers = append(p.tally.badAnswers, err.Error())
			return nil, err
		}
		p.tally.acked++
		return r, nil
	case strings.Contains(err.Error(), "admin writes are unavailable"):
		// The admin API's 503 answer without a leader.
		p.tally.refused++
	case strings.Contains(err.Error(), "no space left") || strings.Contains(err.Error(), "disk"):
		p.tally.diskFull++
	case strings.Contains(err.Error(), "cannot reach mirrord"):
		p.tally.unreachable++
	default:
		p.tally.other++
		if p.tally.firstOther == "" {
			p.tally.firstOther = err.Error()
		}
	}
	return nil, err
}

// clip shortens s to at most n bytes for a table cell.
func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
