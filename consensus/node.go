package consensus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"

	"mirrord/consensus/state"
)

// Config configures a Node. Zero durations and thresholds mean raft's
// defaults (see raft.DefaultConfig), except that a zero
// LeaderLeaseTimeout means HeartbeatTimeout and a defaulted
// ElectionTimeout is raised to HeartbeatTimeout when needed.
type Config struct {
	// NodeID is the raft server id; it must be stable across restarts.
	NodeID string
	// Dir holds the raft log (Dir/wal) and snapshots (Dir/snapshots).
	Dir string
	// Bootstrap makes a node without existing raft state form a new
	// single-voter cluster. It is ignored when state exists.
	Bootstrap bool

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold is how many log entries since the last snapshot
	// trigger a new one; SnapshotInterval is how often that is checked.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// TrailingLogs is how many log entries are kept after a snapshot;
	// a follower further behind than that catches up from the snapshot.
	TrailingLogs uint64
	// WALSegmentSize is the size of a raft log segment file; 0 means
	// raft-wal's default (64 MiB). Log entries before a snapshot are
	// only dropped a whole segment at a time, so a follower far behind
	// catches up from the snapshot only once segments have rolled.
	WALSegmentSize int

	// Logger receives consensus and raft logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the settings mirrord runs with. The heartbeat
// and election timeouts are half of raft's defaults so that a new leader
// is elected well within the 1 s failover budget; NodeID and Dir must
// still be set.
//
// The leader lease is as long as the heartbeat timeout (raft allows no
// more): a leader that has not heard from a quorum for that long steps
// down. A shorter lease buys nothing here, since followers wait the
// heartbeat timeout before they elect anyone, and it made leaders step
// down on the heartbeat delays of 250 to 480 ms measured on a loaded
// 2-core node while a release replicates (docs/BENCHMARKS.md, "Publish
// and raft"); the election that followed cost the cluster its leader
// for most of a second.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:  500 * time.Millisecond,
		ElectionTimeout:   500 * time.Millisecond,
		CommitTimeout:     50 * time.Millisecond,
		SnapshotThreshold: 8192,
		SnapshotInterval:  2 * time.Minute,
		TrailingLogs:      10240,
	}
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return errors.New("consensus: config: node id is empty")
	case c.Dir == "":
		return errors.New("consensus: config: dir is empty")
	case c.HeartbeatTimeout < 0, c.ElectionTimeout < 0,
		c.LeaderLeaseTimeout < 0, c.CommitTimeout < 0,
		c.SnapshotInterval < 0:
		return errors.New("consensus: config: negative duration")
	}
	if err := raft.ValidateConfig(c.raftConfig()); err != nil {
		return fmt.Errorf("consensus: config: %w", err)
	}
	return nil
}

// raftConfig returns the raft configuration for c, without a logger.
func (c Config) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(c.NodeID)
	if c.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = c.HeartbeatTimeout
	}
	if c.ElectionTimeout > 0 {
		rc.ElectionTimeout = c.ElectionTimeout
	} else if rc.ElectionTimeout < rc.HeartbeatTimeout {
		rc.ElectionTimeout = rc.HeartbeatTimeout
	}
	if c.LeaderLeaseTimeout > 0 {
		rc.LeaderLeaseTimeout = c.LeaderLeaseTimeout
	} else {
		rc.LeaderLeaseTimeout = rc.HeartbeatTimeout
	}
	if c.CommitTimeout > 0 {
		rc.CommitTimeout = c.CommitTimeout
	}
	if c.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = c.SnapshotThreshold
	}
	if c.SnapshotInterval > 0 {
		rc.SnapshotInterval = c.SnapshotInterval
	}
	if c.TrailingLogs > 0 {
		rc.TrailingLogs = c.TrailingLogs
	}
	return rc
}

// Stores lets a caller supply raft's stores instead of the on-disk
// ones (tests use raft.NewInmemStore). Log and Stable must be both set
// or both nil. Stores passed in are not closed by Node.Close.
type Stores struct {
	Log       raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
}

// snapshotRetain is how many snapshots the file store keeps.
const snapshotRetain = 3

// MaxCommandBytes bounds one encoded command (the data of one raft log
// entry). raft-wal cannot store a larger entry, and a leader that fails
// to store an entry steps down, so Apply refuses such a command up front
// instead of costing the cluster an election. The margin leaves room for
// raft's own fields of the entry.
const MaxCommandBytes = segment.MaxEntrySize - 64<<10

// defaultApplyTimeout bounds how long Apply waits to enqueue a command
// when ctx has no deadline.
const defaultApplyTimeout = 10 * time.Second

// Node is one raft member (voter or non-voter) holding the replicated
// state. Its methods are safe for concurrent use.
type Node struct {
	cfg      Config
	logger   *slog.Logger
	raft     *raft.Raft
	fsm      *FSM
	closers  []io.Closer
	hadState bool
	stable   raft.StableStore

	// mark is the applied mark read at Open; contact (Unix ms) the last
	// time this node knew a leader. See restart.go.
	mark       appliedMark
	contact    atomic.Int64
	markCancel context.CancelFunc
	markDone   chan struct{}
	durable    *durableMark
	// warnings are problems Open recovered from (a corrupt snapshot, a
	// log cut short), shown in Stats until the process ends.
	warnings []string

	closeOnce sync.Once
	closeErr  error
}

// Open starts a node whose raft log and stable store are a raft-wal in
// cfg.Dir/wal and whose snapshots are files in cfg.Dir/snapshots. The
// transport is owned by the caller, who closes it after Node.Close.
func Open(cfg Config, trans raft.Transport) (*Node, error) {
	return OpenWith(cfg, trans, Stores{})
}

// OpenWith is Open with caller-supplied stores; nil stores are opened
// under cfg.Dir as in Open.
func OpenWith(cfg Config, trans raft.Transport, st Stores) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if trans == nil {
		return nil, errors.New("consensus: open: nil transport")
	}
	if (st.Log == nil) != (st.Stable == nil) {
		return nil, errors.New("consensus: open: log and stable stores " +
			"must be both set or both nil")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "consensus", "node_id", cfg.NodeID)
	hlog := newHCLogger(logger)

	n := &Node{cfg: cfg, logger: logger, fsm: NewFSM(logger.With("sub", "fsm"))}
	ownSnapshots := st.Snapshots == nil
	closers, err := openDiskStores(cfg, hlog, &st)
	n.closers = append(n.closers, closers...)
	if err != nil {
		n.closeStores()
		return nil, err
	}
	if err := n.start(cfg, trans, st, ownSnapshots, hlog); err != nil {
		n.closeStores()
		return nil, err
	}
	return n, nil
}

// closeStores closes what Open opened, after a failed Open.
func (n *Node) closeStores() {
	for _, c := range n.closers {
		_ = c.Close()
	}
}

// start is the part of Open after the stores are open: check the
// snapshots, bootstrap or start raft, replay the committed log.
func (n *Node) start(cfg Config, trans raft.Transport, st Stores, ownSnapshots bool, hlog hclog.Logger) error {
	logger := n.logger
	n.stable = st.Stable

	rc := cfg.raftConfig()
	rc.Logger = hlog.Named("raft")
	has, err := raft.HasExistingState(st.Log, st.Stable, st.Snapshots)
	if err != nil {
		return fmt.Errorf("consensus: open: %w", err)
	}
	n.hadState = has
	if n.mark, err = readMark(st.Stable); err != nil {
		return err
	}
	n.contact.Store(n.mark.Contact)
	n.durable = newDurableMark(n.mark.Index)
	var snap snapshotCheck
	if has && ownSnapshots {
		if snap, err = checkSnapshots(st.Snapshots, st.Log, cfg.Dir); err != nil {
			return err
		}
		for _, b := range snap.bad {
			logger.Error("UNUSABLE RAFT SNAPSHOT: the state is rebuilt from an older snapshot and the log", "problem", b)
			n.warnings = append(n.warnings, "unusable snapshot: "+b)
		}
		n.fsm.preload = snap.state
	} else if has {
		if metas, err := st.Snapshots.List(); err == nil && len(metas) > 0 {
			snap.index = metas[0].Index
		}
	}
	last, err := st.Log.LastIndex()
	if err != nil {
		return fmt.Errorf("consensus: open: read log: %w", err)
	}
	upto := n.mark.Index
	if upto > max(last, snap.index) {
		msg := fmt.Sprintf("the raft log ends at index %d but entries up to %d were applied before "+
			"this start: the log was cut short (a full disk or a damaged file?); the missing entries "+
			"come back from the leader", last, upto)
		logger.Error("RAFT LOG CUT SHORT", "detail", msg)
		n.warnings = append(n.warnings, msg)
		upto = max(last, snap.index)
	}
	if cfg.Bootstrap {
		if !has {
			boot := raft.Configuration{Servers: []raft.Server{{
				Suffrage: raft.Voter,
				ID:       rc.LocalID,
				Address:  trans.LocalAddr(),
			}}}
			if err := raft.BootstrapCluster(rc, st.Log, st.Stable,
				st.Snapshots, trans, boot); err != nil {
				return fmt.Errorf("consensus: bootstrap: %w", err)
			}
			logger.Info("bootstrapped a new cluster",
				"address", string(trans.LocalAddr()))
		}
	}
	r, err := raft.NewRaft(rc, n.fsm, st.Log, st.Stable, st.Snapshots, trans)
	n.fsm.applyMu.Lock()
	n.fsm.preload = nil // only for the restore inside NewRaft
	n.fsm.applyMu.Unlock()
	if err != nil {
		return fmt.Errorf("consensus: start raft: %w", err)
	}
	n.raft = r
	// Raft runs now, but without a leader it applies nothing beyond the
	// snapshot: replay what this node knows to be committed.
	replayed, err := n.replay(st.Log, snap.index, upto)
	if err != nil {
		logger.Error("cannot replay the local raft log; serving the state restored so far until a leader sends the rest",
			"error", err, "state_index", n.fsm.State().Index)
		n.warnings = append(n.warnings, err.Error())
	}
	ch, unsub := n.fsm.Subscribe()
	mctx, mcancel := context.WithCancel(context.Background())
	n.markCancel, n.markDone = func() { mcancel(); unsub() }, make(chan struct{})
	go n.runMark(mctx, ch)
	logger.Info("raft started", "address", string(trans.LocalAddr()),
		"state_index", n.fsm.State().Index, "snapshot_index", snap.index,
		"replayed_entries", replayed, "log_last_index", last)
	return nil
}

// openDiskStores fills the nil stores of st with the on-disk ones under
// cfg.Dir and returns what must be closed (also on error).
func openDiskStores(cfg Config, hlog hclog.Logger, st *Stores) ([]io.Closer, error) {
	var closers []io.Closer
	if st.Log == nil {
		walDir := filepath.Join(cfg.Dir, "wal")
		if err := os.MkdirAll(walDir, 0o700); err != nil {
			return closers, fmt.Errorf("consensus: open: %w", err)
		}
		// raft-wal v0.4.0's Close does not close its meta store, whose
		// bolt file lock would then make a later Open in this process
		// wait forever; so the node owns the meta store and closes it
		// after the WAL.
		meta := &metadb.BoltMetaDB{}
		segSize := raftwal.WithSegmentSize(64 << 20) // raft-wal's default
		if cfg.WALSegmentSize > 0 {
			segSize = raftwal.WithSegmentSize(cfg.WALSegmentSize)
		}
		wal, err := raftwal.Open(walDir, raftwal.WithLogger(hlog.Named("wal")),
			raftwal.WithMetaStore(meta), segSize)
		if err != nil {
			_ = meta.Close()
			return closers, fmt.Errorf("consensus: open wal %s: %w", walDir, err)
		}
		closers = append(closers, wal, meta)
		st.Log, st.Stable = wal, wal
	}
	if st.Snapshots == nil {
		// The file store adds the "snapshots" path element itself.
		snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir,
			snapshotRetain, hlog.Named("snapshots"))
		if err != nil {
			return closers, fmt.Errorf("consensus: open snapshot store: %w", err)
		}
		st.Snapshots = snaps
	}
	return closers, nil
}

// HadState reports whether raft found existing state when the node was
// opened (so it is already a member of some cluster).
func (n *Node) HadState() bool { return n.hadState }

// State returns the current local state without locking or touching
// raft; it is the view devices are served from, even without a leader.
func (n *Node) State() *state.State { return n.fsm.State() }

// Subscribe returns notifications of the state index after each
// applied entry; see FSM.Subscribe.
func (n *Node) Subscribe() (<-chan uint64, func()) { return n.fsm.Subscribe() }

// Raft returns the underlying raft instance for cluster management.
func (n *Node) Raft() *raft.Raft { return n.raft }

// Apply proposes cmd and waits until it is committed and applied on this
// node (which, on the leader, is after the entry was fsynced here and
// stored by a quorum). On success it returns the *state.State right
// after the command. A business error is returned as a *Error (use
// errors.As, or errors.Is with ErrNotFound, ErrConflict, ErrInvalid). A
// command that encodes to more than MaxCommandBytes fails with
// ErrTooLarge on any node, before anything is proposed. On a follower it
// fails with ErrNotLeader; without any known leader, or
// when quorum or leadership is lost, with ErrUnavailable. If ctx ends
// after the command was enqueued, the command may still commit.
func (n *Node) Apply(ctx context.Context, cmd Command) (any, error) {
	data, err := Encode(cmd)
	if err != nil {
		return nil, err
	}
	op := "apply " + cmd.CommandType().String()
	if len(data) > MaxCommandBytes {
		return nil, fmt.Errorf("consensus: %s: %w: %d bytes, at most %d", op, ErrTooLarge, len(data), MaxCommandBytes)
	}
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return nil, fmt.Errorf("consensus: %s: %w", op, err)
	}
	f := n.raft.Apply(data, timeout)
	if err := n.wait(ctx, op, f); err != nil {
		return nil, err
	}
	resp := f.Response()
	if be, ok := resp.(*Error); ok {
		return nil, be
	}
	// Acknowledge only what a restart of this node alone would serve
	// again (see restart.go): the entry is in the log already, the mark
	// that says it is committed is written right after the apply.
	if s, ok := resp.(*state.State); ok {
		n.WaitDurable(ctx, s.Index)
	}
	return resp, nil
}

// timeoutFrom returns the time left before ctx's deadline, or def.
func timeoutFrom(ctx context.Context, def time.Duration) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dl, ok := ctx.Deadline()
	if !ok {
		return def, nil
	}
	left := time.Until(dl)
	if left <= 0 {
		return 0, context.DeadlineExceeded
	}
	return left, nil
}

// wait blocks until f is done or ctx ends, and maps raft's errors.
func (n *Node) wait(ctx context.Context, op string, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return n.mapErr(op, err)
	case <-ctx.Done():
		return fmt.Errorf("consensus: %s: %w", op, ctx.Err())
	}
}

// mapErr wraps raft's errors in ErrNotLeader or ErrUnavailable.
func (n *Node) mapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		addr, id := n.raft.LeaderWithID()
		if addr == "" {
			return fmt.Errorf("%w (%s): no known leader: %w",
				ErrUnavailable, op, ErrNotLeader)
		}
		return fmt.Errorf("%w (%s): leader is %s at %s",
			ErrNotLeader, op, id, addr)
	case errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrRaftShutdown),
		errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore),
		errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrNotVoter):
		return fmt.Errorf("%w (%s): %w", ErrUnavailable, op, err)
	}
	return fmt.Errorf("consensus: %s: %w", op, err)
}

// Barrier waits until every entry committed before it has been applied
// to the state. It must run on the leader (else ErrNotLeader or
// ErrUnavailable) and writes a log entry, so it is for rare events such
// as a new leader's first catch-up, not for every read.
func (n *Node) Barrier(ctx context.Context) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: barrier: %w", err)
	}
	return n.wait(ctx, "barrier", n.raft.Barrier(timeout))
}

// TransferLeadership hands leadership to another voter and waits until
// raft reports it done. It fails when there is no other voter.
func (n *Node) TransferLeadership(ctx context.Context) error {
	return n.wait(ctx, "transfer leadership", n.raft.LeadershipTransfer())
}

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's transport address and server id, or empty
// strings when no leader is known.
func (n *Node) Leader() (addr, id string) {
	a, i := n.raft.LeaderWithID()
	return string(a), string(i)
}

// WaitForLeader blocks until a leader is known (this node or another)
// or ctx ends.
func (n *Node) WaitForLeader(ctx context.Context) error {
	obsCh := make(chan raft.Observation, 4)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	// The ticker covers a leader elected between the check and the
	// registration of the observer.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus: wait for leader: %w", ctx.Err())
		case <-obsCh:
		case <-tick.C:
		}
	}
}

// WaitForIndex blocks until the local state's Index is at least index
// (for example the Index of a state returned by Apply on the leader) or
// ctx ends.
func (n *Node) WaitForIndex(ctx context.Context, index uint64) error {
	ch, cancel := n.fsm.Subscribe()
	defer cancel()
	for n.fsm.State().Index < index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("consensus: wait for index %d: %w", index, ctx.Err())
		case <-ch:
		}
	}
	return nil
}

// Server is one member of the raft configuration.
type Server struct {
	ID      string `json:"id"`
	Address string `json:"address"`
	Voter   bool   `json:"voter"`
}

// NodeStats describes a node for status pages.
type NodeStats struct {
	ID string `json:"id"`
	// State is raft's role: "Leader", "Follower", "Candidate" or
	// "Shutdown".
	State    string `json:"state"`
	Leader   string `json:"leader"`
	LeaderID string `json:"leader_id"`
	Term     uint64 `json:"term"`
	// AppliedIndex is raft's last applied log index; CommitIndex the
	// last known committed one; LastIndex the last one stored locally.
	// StateIndex is the Index of State(): the last command entry the
	// FSM applied. It is behind AppliedIndex when the latest entries
	// were raft-internal, and may briefly be ahead of it because raft
	// records AppliedIndex after the FSM returns.
	AppliedIndex uint64 `json:"applied_index"`
	CommitIndex  uint64 `json:"commit_index"`
	LastIndex    uint64 `json:"last_index"`
	StateIndex   uint64 `json:"state_index"`
	// LastContact is when this follower last heard from the leader;
	// zero on the leader and before first contact.
	LastContact time.Time `json:"last_contact"`
	// Servers is the latest raft configuration, nil if unavailable.
	Servers []Server `json:"servers"`
	// LeaderContact is the last time this node knew a leader (now while
	// it knows one; kept across restarts), zero if it never did. Without
	// a leader, the state served is at least as fresh as that moment
	// but may miss writes made since.
	LeaderContact time.Time `json:"leader_contact"`
	// Warnings are problems this node recovered from when it started
	// (an unusable snapshot, a raft log cut short).
	Warnings []string `json:"warnings,omitempty"`
}

// HasLeader reports whether a leader was known when st was taken.
func (st NodeStats) HasLeader() bool { return st.Leader != "" }

// Staleness is how long ago, at now, the node last knew a leader: zero
// with a leader, -1 when it never knew one.
func (st NodeStats) Staleness(now time.Time) time.Duration {
	switch {
	case st.HasLeader():
		return 0
	case st.LeaderContact.IsZero():
		return -1
	}
	return max(now.Sub(st.LeaderContact), 0)
}

// Stats returns a snapshot of the node's raft status.
func (n *Node) Stats() NodeStats {
	addr, id := n.raft.LeaderWithID()
	st := NodeStats{
		ID:           n.cfg.NodeID,
		State:        n.raft.State().String(),
		Leader:       string(addr),
		LeaderID:     string(id),
		Term:         n.raft.CurrentTerm(),
		AppliedIndex: n.raft.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		LastIndex:    n.raft.LastIndex(),
		StateIndex:   n.fsm.State().Index,
		Warnings:     n.warnings,
	}
	st.LeaderContact = n.leaderContact()
	if !n.IsLeader() {
		st.LastContact = n.raft.LastContact()
	}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			st.Servers = append(st.Servers, Server{
				ID:      string(s.ID),
				Address: string(s.Address),
				Voter:   s.Suffrage == raft.Voter,
			})
		}
	}
	return st
}

// AddVoter adds (or promotes) a voting member. It must run on the
// leader.
func (n *Node) AddVoter(ctx context.Context, id, addr string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: add voter: %w", err)
	}
	f := n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.wait(ctx, "add voter "+id, f)
}

// AddNonvoter adds a member that follows the log without voting. It
// must run on the leader.
func (n *Node) AddNonvoter(ctx context.Context, id, addr string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: add nonvoter: %w", err)
	}
	f := n.raft.AddNonvoter(raft.ServerID(id), raft.ServerAddress(addr), 0, timeout)
	return n.wait(ctx, "add nonvoter "+id, f)
}

// RemoveServer removes a member. It must run on the leader.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	timeout, err := timeoutFrom(ctx, defaultApplyTimeout)
	if err != nil {
		return fmt.Errorf("consensus: remove server: %w", err)
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, timeout)
	return n.wait(ctx, "remove server "+id, f)
}

// Close stops the node: a leader with other voters first hands
// leadership over (so the cluster does not wait for an election
// timeout), then raft shuts down and the stores opened by Open are
// closed. It is idempotent; later calls return the first result. The
// transport is left to the caller.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.IsLeader() && n.otherVoters() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.logger.Warn("leadership transfer before shutdown failed",
					"error", err)
			}
		}
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("consensus: shutdown raft: %w", err))
		}
		// The last mark is written after raft stopped applying and
		// before the stores close.
		n.markCancel()
		<-n.markDone
		for _, c := range n.closers {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("consensus: close store: %w", err))
			}
		}
		n.closeErr = errors.Join(errs...)
		n.logger.Info("raft stopped")
	})
	return n.closeErr
}

// otherVoters reports whether the configuration has a voter besides
// this node.
func (n *Node) otherVoters() bool {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.cfg.NodeID {
			return true
		}
	}
	return false
}
