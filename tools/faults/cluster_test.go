package faults

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cluster is three voters on 127.0.0.1 with fixed ports, so that a
// restarted node is found where the cluster state says it is.
type cluster struct {
	bin   string
	token string // the admin token, the same on every node
	nodes []*node
	// small is the node whose data directory is a small tmpfs, for the
	// full-disk scenario. The admin loop never publishes through it, so
	// that its short GC grace cannot race a publish's uploads.
	small *node
	// smallDiskErr says why small has no tmpfs (not root, mount failed);
	// nil when it has one.
	smallDiskErr error
}

// nodeConfig is every node's config file. Snapshots come early so that
// one exists to corrupt; raft-wal preallocates its segments, so they are
// kept small enough for the small node's disk; zips are copied to every
// node as configs/cluster-voter.yaml does.
const nodeConfig = `version: 1
raft:
  snapshot_threshold: 16
  snapshot_interval: 2s
  wal_segment_size: 4MiB
stats:
  max_bytes: 4MiB
  segment_bytes: 1MiB
replication:
  zips: eager
`

// smallNodeConfig is added for the small node: blocks no release
// references are collectable 10s after their upload, so that
// `mirrord gc` can free a full disk within the scenario.
const smallNodeConfig = `  gc_grace: 10s
`

// startCluster starts n1, which bootstraps the cluster, then n2 and n3,
// which join it. Every process is killed and the tmpfs unmounted when
// the test ends, also when it fails.
func startCluster(t *testing.T, bin string, p plan) *cluster {
	t.Helper()
	base := os.Getenv("MIRRORD_FAULTS_DIR") // keep logs and data for a look afterwards
	if base == "" {
		base = t.TempDir()
	}
	ports := freePorts(t, 6)
	c := &cluster{bin: bin}
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprintf("n%d", i+1))
		n := &node{
			name: fmt.Sprintf("n%d", i+1), bin: bin,
			data:    filepath.Join(dir, "data"),
			http:    fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			p2p:     fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[2*i+1]),
			config:  filepath.Join(dir, "mirrord.yaml"),
			logPath: filepath.Join(dir, "mirrord.log"),
		}
		n.url = "http://" + n.http
		if err := os.MkdirAll(n.data, 0o700); err != nil {
			t.Fatal(err)
		}
		cfg := nodeConfig
		if i == 2 {
			c.small = n
			cfg += smallNodeConfig
			c.smallDiskErr = mountSmallDisk(t, n.data, p.smallDisk)
		}
		if err := os.WriteFile(n.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, n)
	}
	// Registered after the mount: cleanups run last-in first-out, so
	// the processes are gone before the tmpfs is unmounted.
	t.Cleanup(c.shutdown)

	first := c.nodes[0]
	if err := first.start(); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(filepath.Join(first.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))
	for _, n := range c.nodes[1:] {
		out, err := c.cli(first, "cluster", "token")
		if err != nil {
			t.Fatal(err)
		}
		join := strings.Fields(out)[0]
		if err := n.start("--join", first.url, "--join-token", join); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.waitLeader(nil, 30*time.Second); err != nil {
		t.Fatalf("new cluster: %v", err)
	}
	return c
}

// shutdown kills every process (cleanup).
func (c *cluster) shutdown() {
	for _, n := range c.nodes {
		_ = n.kill()
	}
}

// cli runs the mirrord binary against node n with the admin token and
// returns its stdout; a failure's error holds its stderr.
func (c *cluster) cli(n *node, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--server", n.url, "--token", c.token)...)
	cmd.Env = childEnv()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("mirrord %s on %s: %w: %s", args[0], n.name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func (c *cluster) byPeer(id string) *node {
	for _, n := range c.nodes {
		if id != "" && n.peerID == id {
			return n
		}
	}
	return nil
}

func (c *cluster) upNodes() []*node {
	var up []*node
	for _, n := range c.nodes {
		if n.isUp() {
			up = append(up, n)
		}
	}
	return up
}

// leaderSeenBy returns the node n names as the leader, nil if none.
func (c *cluster) leaderSeenBy(n *node) *node {
	r, err := n.readyz()
	if err != nil {
		return nil
	}
	return c.byPeer(r.Leader)
}

// leader returns the leader every up node names, nil while they do not
// agree or name none.
func (c *cluster) leader() *node {
	var l *node
	for _, n := range c.upNodes() {
		s := c.leaderSeenBy(n)
		if s == nil || (l != nil && s != l) {
			return nil
		}
		l = s
	}
	return l
}

// waitLeader waits until every up node names the same leader, which is
// up and is not old, and returns it with the time it took.
func (c *cluster) waitLeader(old *node, timeout time.Duration) (*node, time.Duration, error) {
	start := time.Now()
	var l *node
	err := waitFor(timeout, 20*time.Millisecond, func() bool {
		l = c.leader()
		return l != nil && l != old && l.isUp()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("no leader the up nodes agree on within %v", timeout)
	}
	return l, time.Since(start), nil
}

// waitNewLeader measures a failover: the time until a node that is up
// first names a leader, other than old, that is up.
func (c *cluster) waitNewLeader(old *node, timeout time.Duration) (*node, time.Duration, error) {
	start := time.Now()
	var l *node
	err := waitFor(timeout, 10*time.Millisecond, func() bool {
		for _, n := range c.upNodes() {
			if s := c.leaderSeenBy(n); s != nil && s != old && s.isUp() {
				l = s
				return true
			}
		}
		return false
	})
	if err != nil {
		return nil, 0, fmt.Errorf("no new leader within %v", timeout)
	}
	return l, time.Since(start), nil
}

// follower returns an up node that is not the leader, preferring ones
// not in avoid.
func (c *cluster) follower(avoid ...*node) *node {
	l := c.leader()
	var fallback *node
	for _, n := range c.upNodes() {
		if n == l {
			continue
		}
		if !slices.Contains(avoid, n) {
			return n
		}
		fallback = n
	}
	return fallback
}

// heal thaws and starts every node that is not running and waits until
// all agree on a leader.
func (c *cluster) heal(timeout time.Duration) error {
	for _, n := range c.nodes {
		if n.crashed() {
			n.forget()
		}
		if err := n.thaw(); err != nil {
			return err
		}
		if !n.running() {
			if err := n.start(); err != nil {
				return err
			}
		}
	}
	_, _, err := c.waitLeader(nil, timeout)
	return err
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 now, below
// the kernel's ephemeral range: a node keeps its ports across restarts,
// and while it is down the kernel must not hand one of them to an
// outgoing connection (the harness opens thousands), which would make
// the restart fail with "address in use".
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	low := 32768 // Linux's default start of net.ipv4.ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for try := 0; len(ports) < n && try < 1000; try++ {
		port := 10000 + rand.IntN(max(low-10000, 1))
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln)
		ports = append(ports, port)
	}
	if len(ports) < n {
		t.Fatalf("found only %d free ports below %d", len(ports), low)
	}
	return ports
}

// mountSmallDisk mounts a tmpfs of size bytes on dir (root only) and
// unmounts it when the test ends.
func mountSmallDisk(t *testing.T, dir string, size int64) error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root")
	}
	opts := fmt.Sprintf("size=%d,mode=0700", size)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mount -t tmpfs -o %s: %w", opts, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds a file there: detach the mount
			// now; the kernel frees it when the last user is gone.
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
	return nil
}
