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

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"

	"mirrord/consensus/state"
)

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
	n.stable = st.Stable
	rc := cfg.raftConfig()
	rc.Logger = hlog.Named("raft")
	has, err := raft.HasExistingState(st.Log, st.Stable, st.Snapshots)
	if err != nil {
		return fmt.Errorf("consensus: open: %w", err)
	}
	n.hadState = has
	snapIndex, upto, last, err := n.readLocal(cfg, st, has, ownSnapshots)
	if err != nil {
		return err
	}
	if cfg.Bootstrap && !has {
		if err := n.bootstrap(rc, st, trans); err != nil {
			return err
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
	replayed, err := n.replay(st.Log, snapIndex, upto)
	if err != nil {
		n.logger.Error("cannot replay the local raft log; serving the state restored so far until a leader sends the rest",
			"error", err, "state_index", n.fsm.State().Index)
		n.warnings = append(n.warnings, err.Error())
	}
	ch, unsub := n.fsm.Subscribe()
	mctx, mcancel := context.WithCancel(context.Background())
	n.markCancel, n.markDone = func() { mcancel(); unsub() }, make(chan struct{})
	go n.runMark(mctx, ch)
	n.logger.Info("raft started", "address", string(trans.LocalAddr()),
		"state_index", n.fsm.State().Index, "snapshot_index", snapIndex,
		"replayed_entries", replayed, "log_last_index", last)
	return nil
}

// readLocal reads what this node knew before the start: its applied
// mark, its usable snapshots (preloaded into the FSM) and its log's
// end. upto is the last entry known committed that the log still
// holds; a log cut short below the mark becomes a warning.
func (n *Node) readLocal(cfg Config, st Stores, has, ownSnapshots bool) (snapIndex, upto, last uint64, err error) {
	if n.mark, err = readMark(st.Stable); err != nil {
		return 0, 0, 0, err
	}
	n.contact.Store(n.mark.Contact)
	n.durable = newDurableMark(n.mark.Index)
	if has && ownSnapshots {
		snap, err := checkSnapshots(st.Snapshots, st.Log, cfg.Dir)
		if err != nil {
			return 0, 0, 0, err
		}
		for _, b := range snap.bad {
			n.logger.Error("UNUSABLE RAFT SNAPSHOT: the state is rebuilt from an older snapshot and the log", "problem", b)
			n.warnings = append(n.warnings, "unusable snapshot: "+b)
		}
		n.fsm.preload = snap.state
		snapIndex = snap.index
	} else if has {
		if metas, err := st.Snapshots.List(); err == nil && len(metas) > 0 {
			snapIndex = metas[0].Index
		}
	}
	if last, err = st.Log.LastIndex(); err != nil {
		return 0, 0, 0, fmt.Errorf("consensus: open: read log: %w", err)
	}
	upto = n.mark.Index
	if upto > max(last, snapIndex) {
		msg := fmt.Sprintf("the raft log ends at index %d but entries up to %d were applied before "+
			"this start: the log was cut short (a full disk or a damaged file?); the missing entries "+
			"come back from the leader", last, upto)
		n.logger.Error("RAFT LOG CUT SHORT", "detail", msg)
		n.warnings = append(n.warnings, msg)
		upto = max(last, snapIndex)
	}
	return snapIndex, upto, last, nil
}

// bootstrap makes this node, without raft state, a new single-voter
// cluster.
func (n *Node) bootstrap(rc *raft.Config, st Stores, trans raft.Transport) error {
	boot := raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter,
		ID:       rc.LocalID,
		Address:  trans.LocalAddr(),
	}}}
	if err := raft.BootstrapCluster(rc, st.Log, st.Stable, st.Snapshots, trans, boot); err != nil {
		return fmt.Errorf("consensus: bootstrap: %w", err)
	}
	n.logger.Info("bootstrapped a new cluster", "address", string(trans.LocalAddr()))
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
