//go:build linux

package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
)

// endpoint is one place on the WAN: a node's network namespace with its
// TUN device, or the controller (this process's own namespace).
type endpoint struct {
	name string
	ns   string // "" for the controller
	dev  string
	ip   netip.Addr
	tun  *os.File
}

// network joins endpoints' TUN devices through links in this process:
// every packet a device emits is read here, passed to the link from its
// source to its destination, and written to the destination's device.
type network struct {
	prefix string // of namespace and device names, unique per run
	subnet [3]byte
	eps    []*endpoint
	links  map[[2]int]*link
	done   chan struct{}
	wg     sync.WaitGroup
}

// newNetwork makes a network with no endpoints; names and the subnet
// come from the process id so that two runs do not collide.
func newNetwork() *network {
	pid := os.Getpid()
	return &network{
		prefix: fmt.Sprintf("mw%d", pid%100000),
		subnet: [3]byte{10, 213, byte(pid % 250)},
		links:  map[[2]int]*link{},
		done:   make(chan struct{}),
	}
}

func (w *network) addr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{w.subnet[0], w.subnet[1], w.subnet[2], byte(i)})
}

// addController adds this process's namespace as an endpoint (.254).
func (w *network) addController() (*endpoint, error) {
	ep := &endpoint{name: "ctl", dev: w.prefix + "c", ip: w.addr(254)}
	tun, err := openTun(ep.dev)
	if err != nil {
		return nil, err
	}
	ep.tun = tun
	w.eps = append(w.eps, ep)
	return ep, upTun("", ep.dev, ep.ip.String())
}

// addNamespace creates a network namespace whose only way out is a TUN
// device into this network, with the next address.
func (w *network) addNamespace(name string) (*endpoint, error) {
	i := len(w.eps)
	ep := &endpoint{name: name, ns: fmt.Sprintf("%sn%d", w.prefix, i), dev: fmt.Sprintf("%st%d", w.prefix, i), ip: w.addr(i + 1)}
	if err := ipCmd("netns", "add", ep.ns); err != nil {
		return nil, err
	}
	w.eps = append(w.eps, ep) // close removes the namespace from here on
	tun, err := openTun(ep.dev)
	if err != nil {
		return nil, err
	}
	ep.tun = tun
	// The device keeps its file when it moves to the namespace.
	if err := ipCmd("link", "set", ep.dev, "netns", ep.ns); err != nil {
		return nil, err
	}
	return ep, upTun(ep.ns, ep.dev, ep.ip.String())
}

// connect sets the link from a to b (one direction).
func (w *network) connect(a, b *endpoint, spec linkSpec) {
	ia, ib := w.index(a), w.index(b)
	l := newLink(spec, func(p []byte) error { _, err := b.tun.Write(p); return err }, uint64(ia*1000+ib+1))
	w.links[[2]int{ia, ib}] = l
}

func (w *network) index(e *endpoint) int {
	for i, x := range w.eps {
		if x == e {
			return i
		}
	}
	panic("unknown endpoint " + e.name)
}

func (w *network) link(a, b *endpoint) *link { return w.links[[2]int{w.index(a), w.index(b)}] }

// start runs one reader per device and one deliverer per link.
func (w *network) start() {
	byIP := map[netip.Addr]int{}
	for i, e := range w.eps {
		byIP[e.ip] = i
	}
	for _, l := range w.links {
		w.wg.Go(func() { l.run(w.done) })
	}
	for i, e := range w.eps {
		w.wg.Go(func() { w.read(i, e, byIP) })
	}
}

// read forwards the packets device e emits until it is closed. Packets
// to no endpoint, or between endpoints without a link, are dropped.
func (w *network) read(src int, e *endpoint, byIP map[netip.Addr]int) {
	buf := make([]byte, 65536)
	for {
		n, err := e.tun.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) {
				return
			}
			select {
			case <-w.done:
				return
			default:
				continue
			}
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue // IPv6 (router solicitations and the like)
		}
		dst, ok := byIP[netip.AddrFrom4([4]byte(buf[16:20]))]
		if !ok {
			continue
		}
		if l := w.links[[2]int{src, dst}]; l != nil {
			l.send(append([]byte(nil), buf[:n]...))
		}
	}
}

// setDown cuts (or restores) both directions between a and b.
func (w *network) setDown(a, b *endpoint, down bool) {
	for _, l := range []*link{w.link(a, b), w.link(b, a)} {
		if l != nil {
			l.down.Store(down)
		}
	}
}

// close stops forwarding, closes the devices and deletes the namespaces.
func (w *network) close() {
	close(w.done)
	for _, e := range w.eps {
		if e.tun != nil {
			e.tun.Close()
		}
	}
	w.wg.Wait()
	for _, e := range w.eps {
		if e.ns != "" {
			_ = ipCmd("netns", "del", e.ns)
		}
	}
}
