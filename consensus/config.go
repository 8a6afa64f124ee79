package consensus

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/segment"
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
