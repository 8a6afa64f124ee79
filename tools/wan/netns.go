//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// mtu is every device's MTU: an Ethernet path.
const mtu = 1500

// ipCmd runs `ip args...`.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// openTun creates the TUN device name in the current network namespace
// and returns its file, non-blocking so that Close ends a pending Read.
// The device goes away when the file is closed.
func openTun(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// upTun gives the device dev (in namespace ns, "" for the current one)
// its address in a /24 and brings it up; the /24's route goes through it.
func upTun(ns, dev, addr string) error {
	pre := []string{}
	if ns != "" {
		pre = []string{"-n", ns}
	}
	steps := [][]string{
		{"addr", "add", addr + "/24", "dev", dev},
		{"link", "set", dev, "mtu", fmt.Sprint(mtu), "up"},
	}
	if ns != "" {
		steps = append(steps, []string{"link", "set", "lo", "up"})
	}
	for _, s := range steps {
		if err := ipCmd(append(pre, s...)...); err != nil {
			return err
		}
	}
	return nil
}

// inNetns runs fn on an OS thread that has entered namespace ns; sockets
// fn creates stay in ns. The thread is thrown away afterwards.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listenIn opens a TCP listener on addr inside namespace ns.
func listenIn(ns, addr string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	return ln, err
}

// dialIn opens a TCP connection to addr from inside namespace ns.
func dialIn(ctx context.Context, ns, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// canRun says why this machine cannot build the WAN, nil if it can.
func canRun() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces and TUN devices)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs the ip command (iproute2)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return fmt.Errorf("needs /dev/net/tun: %w", err)
	}
	// The whole set-up a node gets, once: a namespace, a TUN device
	// moved into it and brought up. A container may allow one step and
	// not the next.
	w := newNetwork()
	defer w.close()
	if _, err := w.addNamespace("probe"); err != nil {
		return fmt.Errorf("cannot build a namespace with a TUN device: %w", err)
	}
	return nil
}
