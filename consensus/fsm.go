package consensus

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"mirrord/consensus/state"
)

var _ raft.FSM = (*FSM)(nil)

// FSM is mirrord's raft state machine. raft calls Apply, Snapshot and
// Restore from one goroutine; State and Subscribe are safe from any
// goroutine.
type FSM struct {
	logger *slog.Logger
	state  atomic.Pointer[state.State]

	// applyMu orders raft's applies and restores with the replay of the
	// local log that Node.Open runs before a leader is known (see
	// Node.replay): both may deliver the same entry, and the second one
	// must see the first one's state.
	applyMu sync.Mutex
	// preload, when set, is the decoded state of the snapshot that raft
	// is about to restore at start (Open has already read and checked
	// it), so Restore need not decode it twice.
	preload *state.State

	mu   sync.Mutex
	subs map[*subscription]struct{}
}

// NewFSM returns an FSM holding an empty state. A nil logger discards.
func NewFSM(logger *slog.Logger) *FSM {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &FSM{logger: logger, subs: map[*subscription]struct{}{}}
	f.state.Store(state.Empty())
	return f
}

// State returns the current state. It never blocks; the value is
// immutable and must not be modified.
func (f *FSM) State() *state.State { return f.state.Load() }

// applyFunc applies one decoded command to s at index and returns the
// new state, or a business error.
type applyFunc func(s *state.State, index uint64, cmd any) (*state.State, error)

// applyTable dispatches each known CommandType to its applyX. Every
// type in decoders must have an entry (checked by a test).
var applyTable = map[CommandType]applyFunc{
	TypeAppCreate:       applyAppCreate,
	TypeReleaseCreate:   applyReleaseCreate,
	TypeReleaseDelete:   applyReleaseDelete,
	TypeChannelSet:      applyChannelSet,
	TypeChannelRollback: applyChannelRollback,
	TypeChannelDelete:   applyChannelDelete,
	TypeDeviceSet:       applyDeviceSet,
	TypeDeviceUnset:     applyDeviceUnset,
	TypeNodeSet:         applyNodeSet,
	TypeNodeDelete:      applyNodeDelete,
	TypeAdminTokenAdd:   applyAdminTokenAdd,
	TypeJoinTokenAdd:    applyJoinTokenAdd,
	TypeRolloutStart:    applyRolloutStart,
	TypeRolloutUpdate:   applyRolloutUpdate,
	TypeRolloutControl:  applyRolloutControl,
	TypeRolloutHalt:     applyRolloutHalt,
	TypeDevicesSet:      applyDevicesSet,
	TypeStatsReport:     applyStatsReport,
	TypeReadTokenAdd:    applyReadTokenAdd,
	TypeReadTokenDelete: applyReadTokenDelete,
	TypeAppDelete:       applyAppDelete,
	TypeStatsReportAt:   applyStatsReportAt,
	TypeNodeFeatures:    applyNodeFeatures,
	TypeTokenCreate:     applyTokenCreate,
	TypeTokenRevoke:     applyTokenRevoke,
	TypeTokenRotate:     applyTokenRotate,
	TypeAuditAppend:     applyAuditAppend,
}

// Apply implements raft.FSM. On success it returns the new *state.State
// (the state right after this entry); a business error is returned as a
// *Error value and leaves the content unchanged. Both advance the
// state's Index to the entry's index. Entries that are not commands
// return nil, and so do entries at or below the state's Index: the node
// replayed them from its own log before raft delivered them (committed
// entries never change, so applying one twice could only double-count).
// An entry that cannot be decoded panics: skipping it would let this
// node diverge from the others.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	cur := f.state.Load()
	if l.Index <= cur.Index {
		return nil
	}
	typ, cmd, err := Decode(l.Data)
	if err != nil {
		if errors.Is(err, ErrUnknownCommand) && typ&IgnoreUnknown != 0 {
			f.logger.Warn("skipping unknown command",
				"type", uint8(typ), "index", l.Index)
			f.publish(cur.WithIndex(l.Index))
			return nil
		}
		panic(fmt.Sprintf("consensus: committed entry %d cannot be "+
			"applied: %v", l.Index, err))
	}
	next, err := applyTable[typ&^IgnoreUnknown](cur, l.Index, cmd)
	if err != nil {
		var be *Error
		if !errors.As(err, &be) {
			// The state methods only return *Error; anything else is a
			// programming error that would make replicas disagree.
			panic(fmt.Sprintf("consensus: entry %d (%s): unexpected "+
				"error: %v", l.Index, typ, err))
		}
		f.logger.Debug("command rejected", "type", typ.String(),
			"index", l.Index, "code", be.Code, "error", be.Msg)
		f.publish(cur.WithIndex(l.Index))
		return be
	}
	f.publish(next)
	return next
}

func applyAppCreate(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(AppCreate)
	return s.CreateApp(index, state.App{
		ID:        c.ID,
		PublicKey: c.PublicKey,
		KeyID:     c.KeyID,
		CreatedAt: c.CreatedAt,
	})
}

func applyAppDelete(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(AppDelete)
	return s.DeleteApp(index, c.ID, c.Force)
}

func applyReleaseCreate(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ReleaseCreate)
	return s.CreateRelease(index, c.Release, c.Channel)
}

func applyReleaseDelete(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ReleaseDelete)
	return s.DeleteRelease(index, c.App, c.Version)
}

func applyChannelSet(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ChannelSet)
	return s.SetChannel(index, c.App, c.Name, c.CreatedAt, c.ChannelPatch)
}

func applyChannelRollback(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ChannelRollback)
	return s.RollbackChannel(index, c.App, c.Name)
}

func applyChannelDelete(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ChannelDelete)
	return s.DeleteChannel(index, c.App, c.Name)
}

func applyDeviceSet(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(DeviceSet)
	return s.SetDevice(index, c.App, c.DeviceID, c.Channel)
}

func applyDeviceUnset(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(DeviceUnset)
	return s.UnsetDevice(index, c.App, c.DeviceID)
}

func applyNodeSet(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.SetNode(index, cmd.(NodeSet).Node)
}

func applyNodeDelete(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.DeleteNode(index, cmd.(NodeDelete).ID)
}

func applyAdminTokenAdd(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(AdminTokenAdd)
	return s.AddAdminToken(index, c.Digest, c.CreatedAt)
}

func applyReadTokenAdd(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(ReadTokenAdd)
	return s.AddReadToken(index, c.Digest, c.CreatedAt)
}

func applyReadTokenDelete(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.DeleteReadToken(index, cmd.(ReadTokenDelete).Digest)
}

func applyTokenCreate(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.CreateToken(index, cmd.(TokenCreate).Token)
}

func applyTokenRevoke(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.RevokeToken(index, cmd.(TokenRevoke).Name)
}

func applyTokenRotate(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(TokenRotate)
	return s.RotateToken(index, c.Name, c.Digest, c.At)
}

func applyAuditAppend(s *state.State, index uint64, cmd any) (*state.State, error) {
	return s.AppendAudit(index, cmd.(AuditAppend).Entries)
}

func applyJoinTokenAdd(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(JoinTokenAdd)
	return s.AddJoinToken(index, c.Digest, c.CreatedAt, c.ExpiresAt)
}

func applyRolloutStart(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(RolloutStart)
	return s.StartRollout(index, c.App, c.Channel, c.Version, c.BasisPoints, c.Policy, c.Baseline, c.At)
}

func applyRolloutUpdate(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(RolloutUpdate)
	return s.UpdateRollout(index, c.App, c.Channel, state.RolloutUpdate{
		BasisPoints: c.BasisPoints, Policy: c.Policy, ClearPolicy: c.ClearPolicy,
	}, c.At)
}

func applyRolloutControl(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(RolloutControl)
	return s.ControlRollout(index, c.App, c.Channel, c.Action, c.Baseline, c.At)
}

func applyRolloutHalt(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(RolloutHalt)
	return s.HaltRollout(index, c.App, c.Channel, c.RolloutID, c.Halt)
}

func applyDevicesSet(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(DevicesSet)
	return s.SetDevices(index, c.App, c.Devices)
}

// applyStatsReport never fails: entries it cannot use are skipped.
func applyStatsReport(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(StatsReport)
	next, ok := s.ReportStats(index, c.Node, c.Releases)
	if !ok {
		return s.WithIndex(index), nil
	}
	return next, nil
}

// applyStatsReportAt never fails: entries it cannot use are skipped.
func applyStatsReportAt(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(StatsReportAt)
	next, ok := s.ReportStatsAt(index, c.Node, c.At, c.Releases)
	if !ok {
		return s.WithIndex(index), nil
	}
	return next, nil
}

func applyNodeFeatures(s *state.State, index uint64, cmd any) (*state.State, error) {
	c := cmd.(NodeFeatures)
	return s.SetNodeFeatures(index, c.Node, c.Features)
}

// Snapshot implements raft.FSM. It only captures the current immutable
// state; Persist writes it while Apply goes on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state.Load()}, nil
}

// Restore implements raft.FSM. It decodes a whole new state from the
// snapshot, then swaps it in; on error the current state is kept.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	s := f.preload
	f.preload = nil
	if s == nil {
		var err error
		if s, err = ReadSnapshot(rc); err != nil {
			return err
		}
	}
	f.publish(s)
	f.logger.Info("restored state from snapshot", "index", s.Index,
		"apps", len(s.Apps))
	return nil
}

type fsmSnapshot struct{ state *state.State }

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := WriteSnapshot(sink, s.state); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// subscriptionBuffer is how many index notifications a subscriber may
// fall behind before the oldest are dropped.
const subscriptionBuffer = 16

type subscription struct{ ch chan uint64 }

// Subscribe returns a channel that receives the state index after each
// applied entry and restore, and a cancel function that closes it. The
// channel is buffered and never blocks the FSM: when the subscriber
// falls behind, the oldest notifications are dropped, so a receiver
// should read State() rather than count notifications. The last index
// sent is always the newest.
func (f *FSM) Subscribe() (<-chan uint64, func()) {
	sub := &subscription{ch: make(chan uint64, subscriptionBuffer)}
	f.mu.Lock()
	f.subs[sub] = struct{}{}
	f.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, sub)
			close(sub.ch)
			f.mu.Unlock()
		})
	}
}

// publish makes s the current state and notifies subscribers.
func (f *FSM) publish(s *state.State) {
	f.state.Store(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		select {
		case sub.ch <- s.Index:
			continue
		default:
		}
		// Full: drop the oldest. Only publish sends, under f.mu, so
		// after one receive there is room.
		select {
		case <-sub.ch:
		default:
		}
		select {
		case sub.ch <- s.Index:
		default:
		}
	}
}
