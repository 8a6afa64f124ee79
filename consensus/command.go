package consensus

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"mirrord/consensus/state"
)

// CommandType is the first byte of every raft log entry written by
// mirrord. The enum is append-only: a number is never reused or
// renumbered, and a command whose meaning changes (including a new JSON
// field) gets a new number.
type CommandType uint8

// IgnoreUnknown is a flag bit of CommandType. A node that does not know
// a command type skips the entry when the bit is set and panics when it
// is not. Set it on commands that older nodes may safely ignore (for
// example purely advisory ones) before a rolling upgrade.
const IgnoreUnknown CommandType = 0x80

// Command types. 0 is reserved so that a zeroed entry never decodes.
const (
	TypeAppCreate       CommandType = 1
	TypeReleaseCreate   CommandType = 2
	TypeReleaseDelete   CommandType = 3
	TypeChannelSet      CommandType = 4
	TypeChannelRollback CommandType = 5
	TypeChannelDelete   CommandType = 6
	TypeDeviceSet       CommandType = 7
	TypeDeviceUnset     CommandType = 8
	TypeNodeSet         CommandType = 9
	TypeNodeDelete      CommandType = 10
	TypeAdminTokenAdd   CommandType = 11
	TypeJoinTokenAdd    CommandType = 12
	TypeRolloutStart    CommandType = 13
	TypeRolloutUpdate   CommandType = 14
	TypeRolloutControl  CommandType = 15
	TypeRolloutHalt     CommandType = 16
	TypeDevicesSet      CommandType = 17
	TypeStatsReport     CommandType = 18
	TypeReadTokenAdd    CommandType = 19
	TypeReadTokenDelete CommandType = 20
	TypeAppDelete       CommandType = 21
	TypeStatsReportAt   CommandType = 22
	TypeNodeFeatures    CommandType = 23 // always written with IgnoreUnknown
	// Named tokens and the audit log (24-27) are written with
	// IgnoreUnknown: a build older than them skips them during a
	// rolling upgrade (and keeps its tokens as they were) rather than
	// stopping.
	TypeTokenCreate CommandType = 24
	TypeTokenRevoke CommandType = 25
	TypeTokenRotate CommandType = 26
	TypeAuditAppend CommandType = 27
)

// String returns the command's name, for logs.
func (t CommandType) String() string {
	name, ok := commandNames[t&^IgnoreUnknown]
	if !ok {
		name = fmt.Sprintf("CommandType(%d)", uint8(t&^IgnoreUnknown))
	}
	if t&IgnoreUnknown != 0 {
		name += "|IgnoreUnknown"
	}
	return name
}

var commandNames = map[CommandType]string{
	TypeAppCreate:       "AppCreate",
	TypeReleaseCreate:   "ReleaseCreate",
	TypeReleaseDelete:   "ReleaseDelete",
	TypeChannelSet:      "ChannelSet",
	TypeChannelRollback: "ChannelRollback",
	TypeChannelDelete:   "ChannelDelete",
	TypeDeviceSet:       "DeviceSet",
	TypeDeviceUnset:     "DeviceUnset",
	TypeNodeSet:         "NodeSet",
	TypeNodeDelete:      "NodeDelete",
	TypeAdminTokenAdd:   "AdminTokenAdd",
	TypeJoinTokenAdd:    "JoinTokenAdd",
	TypeRolloutStart:    "RolloutStart",
	TypeRolloutUpdate:   "RolloutUpdate",
	TypeRolloutControl:  "RolloutControl",
	TypeRolloutHalt:     "RolloutHalt",
	TypeDevicesSet:      "DevicesSet",
	TypeStatsReport:     "StatsReport",
	TypeReadTokenAdd:    "ReadTokenAdd",
	TypeReadTokenDelete: "ReadTokenDelete",
	TypeAppDelete:       "AppDelete",
	TypeStatsReportAt:   "StatsReportAt",
	TypeNodeFeatures:    "NodeFeatures",
	TypeTokenCreate:     "TokenCreate",
	TypeTokenRevoke:     "TokenRevoke",
	TypeTokenRotate:     "TokenRotate",
	TypeAuditAppend:     "AuditAppend",
}

// Command is implemented by every command struct of this package; the
// method returns the struct's CommandType.
type Command interface {
	CommandType() CommandType
}

// AppCreate registers an app. It is a conflict if the app exists. The
// proposer validates PublicKey and derives KeyID, and sets CreatedAt
// (unix milliseconds).
type AppCreate struct {
	ID        string `json:"id"`
	PublicKey string `json:"public_key,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	CreatedAt int64  `json:"created_at"`
}

// AppDelete removes an app with its channels, releases, rollouts,
// device overrides and fleet counters. It is a conflict while a rollout
// of the app is live, and, unless Force is set, while the app has
// releases or channels. See state.State.DeleteApp.
type AppDelete struct {
	ID    string `json:"id"`
	Force bool   `json:"force,omitempty"`
}

// ReleaseCreate adds Release to the app Release.App, which must exist;
// the version must be new. When Channel is set, that channel is created
// if missing (the app's first channel becomes public) and pointed at the
// release. The proposer sets Release.CreatedAt, which is also the
// created channel's CreatedAt.
type ReleaseCreate struct {
	Release state.Release `json:"release"`
	Channel string        `json:"channel,omitempty"`
}

// ReleaseDelete deletes a release. It is a conflict while a channel
// serves it; it is removed from every channel's History.
type ReleaseDelete struct {
	App     string `json:"app"`
	Version string `json:"version"`
}

// ChannelSet creates or updates a channel. Nil fields are left unchanged
// (or at Capgo's defaults on creation). See state.State.SetChannel for
// the rules, including the one public channel per platform. CreatedAt
// (unix milliseconds, set by the proposer) is used only on creation.
// The settings are state.ChannelPatch, embedded: their JSON fields sit
// beside app, name and created_at.
type ChannelSet struct {
	App       string `json:"app"`
	Name      string `json:"name"`
	CreatedAt int64  `json:"created_at"`
	state.ChannelPatch
}

// ChannelRollback points a channel back at the last version of its
// History. It is a conflict when History is empty.
type ChannelRollback struct {
	App  string `json:"app"`
	Name string `json:"name"`
}

// ChannelDelete deletes a channel and every device override that points
// at it.
type ChannelDelete struct {
	App  string `json:"app"`
	Name string `json:"name"`
}

// DeviceSet pins a device (id lower-cased) to an existing channel.
type DeviceSet struct {
	App      string `json:"app"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
}

// DeviceUnset removes a device's override; not found if it has none.
type DeviceUnset struct {
	App      string `json:"app"`
	DeviceID string `json:"device_id"`
}

// NodeSet records a cluster node (its peer id, multiaddrs and HTTP
// URL). JoinedAt (unix ms, set by the proposer) is kept from the old
// record when zero.
type NodeSet struct {
	Node state.NodeInfo `json:"node"`
}

// NodeDelete forgets a node that left the cluster.
type NodeDelete struct {
	ID string `json:"id"`
}

// AdminTokenAdd authorizes an admin token on every node. Only its
// SHA-256 digest (lowercase hex) is replicated.
type AdminTokenAdd struct {
	Digest    string `json:"digest"`
	CreatedAt int64  `json:"created_at"`
}

// JoinTokenAdd creates a join token (by digest) valid until ExpiresAt;
// CreatedAt is the proposer's clock, used to drop expired tokens.
type JoinTokenAdd struct {
	Digest    string `json:"digest"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"`
}

// RolloutStart starts a rollout of Version on a channel to BasisPoints
// (0..10000) of its devices. Baseline is the release's cluster-wide
// tally at the proposer, At its clock (unix ms).
type RolloutStart struct {
	App         string            `json:"app"`
	Channel     string            `json:"channel"`
	Version     string            `json:"version"`
	BasisPoints int               `json:"basis_points"`
	Policy      *state.HaltPolicy `json:"policy,omitempty"`
	Baseline    state.Tally       `json:"baseline"`
	At          int64             `json:"at"`
}

// RolloutUpdate changes the percentage or the halt policy of a live
// rollout; nil fields stay.
type RolloutUpdate struct {
	App         string            `json:"app"`
	Channel     string            `json:"channel"`
	BasisPoints *int              `json:"basis_points,omitempty"`
	Policy      *state.HaltPolicy `json:"policy,omitempty"`
	ClearPolicy bool              `json:"clear_policy,omitempty"`
	At          int64             `json:"at"`
}

// RolloutControl is an operator action on a live rollout: pause, resume,
// promote or abort. Baseline (resume only) restarts the policy's count.
type RolloutControl struct {
	App      string      `json:"app"`
	Channel  string      `json:"channel"`
	Action   string      `json:"action"`
	Baseline state.Tally `json:"baseline"`
	At       int64       `json:"at"`
}

// RolloutHalt is the leader's automatic halt of rollout RolloutID; it is
// a conflict when that rollout is no longer the channel's active one.
type RolloutHalt struct {
	App       string     `json:"app"`
	Channel   string     `json:"channel"`
	RolloutID string     `json:"rollout_id"`
	Halt      state.Halt `json:"halt"`
}

// DevicesSet sets or removes the overrides of many devices at once (at
// most state.MaxDeviceBatch), all or nothing.
type DevicesSet struct {
	App     string              `json:"app"`
	Devices []state.DeviceEntry `json:"devices"`
}

// StatsReport carries a node's cumulative counters for the releases whose
// counts changed since its last report.
type StatsReport struct {
	Node     string                  `json:"node"`
	Releases []state.ReleaseCounters `json:"releases"`
}

// StatsReportAt is StatsReport with the proposer's clock: At (unix ms)
// places the counts each entry adds over the node's previous counters in
// the release's hourly history (state.Bucket). Fleets propose it since
// the history exists; StatsReport entries already in logs still apply as
// before, counters only.
type StatsReportAt struct {
	Node     string                  `json:"node"`
	At       int64                   `json:"at"`
	Releases []state.ReleaseCounters `json:"releases"`
}

// NodeFeatures announces what a node's build supports (for example
// state.FeatureStatsHistory). It carries IgnoreUnknown: a build that
// does not know it skips it, which is right, since such a build supports
// none of the features it names. Proposers read the features to choose
// which commands every node can apply.
type NodeFeatures struct {
	Node     string   `json:"node"`
	Features []string `json:"features"`
}

// ReadTokenAdd authorizes a read-only operator token on every node: it
// may read the admin API but not change anything. Only its SHA-256
// digest (lowercase hex) is replicated; CreatedAt is the proposer's
// clock (unix ms).
type ReadTokenAdd struct {
	Digest    string `json:"digest"`
	CreatedAt int64  `json:"created_at"`
}

// ReadTokenDelete revokes a read-only token by digest; not found if
// there is no such token.
type ReadTokenDelete struct {
	Digest string `json:"digest"`
}

// TokenCreate adds a named operator token (state.State.CreateToken);
// only the digest of its secret is replicated. The proposer sets
// CreatedAt and CreatedBy.
type TokenCreate struct {
	Token state.Token `json:"token"`
}

// TokenRevoke removes the operator token Name, named or legacy.
type TokenRevoke struct {
	Name string `json:"name"`
}

// TokenRotate replaces the secret of the token Name by the one whose
// digest is Digest; At is the proposer's clock (unix ms).
type TokenRotate struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	At     int64  `json:"at"`
}

// AuditAppend appends entries to the audit log (state.MaxAudit kept).
type AuditAppend struct {
	Entries []state.AuditEntry `json:"entries"`
}

// CommandType implements Command; the IgnoreUnknown bit is part of it.
func (TokenCreate) CommandType() CommandType { return TypeTokenCreate | IgnoreUnknown }

// CommandType implements Command; the IgnoreUnknown bit is part of it.
func (TokenRevoke) CommandType() CommandType { return TypeTokenRevoke | IgnoreUnknown }

// CommandType implements Command; the IgnoreUnknown bit is part of it.
func (TokenRotate) CommandType() CommandType { return TypeTokenRotate | IgnoreUnknown }

// CommandType implements Command; the IgnoreUnknown bit is part of it.
func (AuditAppend) CommandType() CommandType { return TypeAuditAppend | IgnoreUnknown }

// CommandType implements Command.
func (ReadTokenAdd) CommandType() CommandType { return TypeReadTokenAdd }

// CommandType implements Command.
func (ReadTokenDelete) CommandType() CommandType { return TypeReadTokenDelete }

// CommandType implements Command.
func (RolloutStart) CommandType() CommandType { return TypeRolloutStart }

// CommandType implements Command.
func (RolloutUpdate) CommandType() CommandType { return TypeRolloutUpdate }

// CommandType implements Command.
func (RolloutControl) CommandType() CommandType { return TypeRolloutControl }

// CommandType implements Command.
func (RolloutHalt) CommandType() CommandType { return TypeRolloutHalt }

// CommandType implements Command.
func (DevicesSet) CommandType() CommandType { return TypeDevicesSet }

// CommandType implements Command.
func (StatsReport) CommandType() CommandType { return TypeStatsReport }

// CommandType implements Command.
func (StatsReportAt) CommandType() CommandType { return TypeStatsReportAt }

// CommandType implements Command; the IgnoreUnknown bit is part of it.
func (NodeFeatures) CommandType() CommandType { return TypeNodeFeatures | IgnoreUnknown }

// CommandType implements Command.
func (NodeSet) CommandType() CommandType { return TypeNodeSet }

// CommandType implements Command.
func (NodeDelete) CommandType() CommandType { return TypeNodeDelete }

// CommandType implements Command.
func (AdminTokenAdd) CommandType() CommandType { return TypeAdminTokenAdd }

// CommandType implements Command.
func (JoinTokenAdd) CommandType() CommandType { return TypeJoinTokenAdd }

// CommandType implements Command.
func (AppCreate) CommandType() CommandType { return TypeAppCreate }

// CommandType implements Command.
func (AppDelete) CommandType() CommandType { return TypeAppDelete }

// CommandType implements Command.
func (ReleaseCreate) CommandType() CommandType { return TypeReleaseCreate }

// CommandType implements Command.
func (ReleaseDelete) CommandType() CommandType { return TypeReleaseDelete }

// CommandType implements Command.
func (ChannelSet) CommandType() CommandType { return TypeChannelSet }

// CommandType implements Command.
func (ChannelRollback) CommandType() CommandType { return TypeChannelRollback }

// CommandType implements Command.
func (ChannelDelete) CommandType() CommandType { return TypeChannelDelete }

// CommandType implements Command.
func (DeviceSet) CommandType() CommandType { return TypeDeviceSet }

// CommandType implements Command.
func (DeviceUnset) CommandType() CommandType { return TypeDeviceUnset }

// decoders maps each known type (without IgnoreUnknown) to a strict
// JSON decoder returning the command struct by value.
var decoders = map[CommandType]func([]byte) (any, error){
	TypeAppCreate:       decodeAs[AppCreate],
	TypeReleaseCreate:   decodeAs[ReleaseCreate],
	TypeReleaseDelete:   decodeAs[ReleaseDelete],
	TypeChannelSet:      decodeAs[ChannelSet],
	TypeChannelRollback: decodeAs[ChannelRollback],
	TypeChannelDelete:   decodeAs[ChannelDelete],
	TypeDeviceSet:       decodeAs[DeviceSet],
	TypeDeviceUnset:     decodeAs[DeviceUnset],
	TypeNodeSet:         decodeAs[NodeSet],
	TypeNodeDelete:      decodeAs[NodeDelete],
	TypeAdminTokenAdd:   decodeAs[AdminTokenAdd],
	TypeJoinTokenAdd:    decodeAs[JoinTokenAdd],
	TypeRolloutStart:    decodeAs[RolloutStart],
	TypeRolloutUpdate:   decodeAs[RolloutUpdate],
	TypeRolloutControl:  decodeAs[RolloutControl],
	TypeRolloutHalt:     decodeAs[RolloutHalt],
	TypeDevicesSet:      decodeAs[DevicesSet],
	TypeStatsReport:     decodeAs[StatsReport],
	TypeReadTokenAdd:    decodeAs[ReadTokenAdd],
	TypeReadTokenDelete: decodeAs[ReadTokenDelete],
	TypeAppDelete:       decodeAs[AppDelete],
	TypeStatsReportAt:   decodeAs[StatsReportAt],
	TypeNodeFeatures:    decodeAs[NodeFeatures],
	TypeTokenCreate:     decodeAs[TokenCreate],
	TypeTokenRevoke:     decodeAs[TokenRevoke],
	TypeTokenRotate:     decodeAs[TokenRotate],
	TypeAuditAppend:     decodeAs[AuditAppend],
}

// Encode returns the log entry for cmd: its type byte followed by its
// JSON encoding. cmd may be a command struct or a pointer to one.
func Encode(cmd Command) ([]byte, error) {
	if v := reflect.ValueOf(cmd); cmd == nil ||
		(v.Kind() == reflect.Pointer && v.IsNil()) {
		return nil, errors.New("consensus: encode: nil command")
	}
	t := cmd.CommandType()
	if _, ok := decoders[t&^IgnoreUnknown]; !ok {
		return nil, fmt.Errorf("consensus: encode %T: %w", cmd, ErrUnknownCommand)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("consensus: encode %s: %w", t, err)
	}
	return append([]byte{byte(t)}, payload...), nil
}

// Decode parses a log entry written by Encode. It returns the raw type
// byte (IgnoreUnknown included) and the command struct by value. A type
// this build does not know yields ErrUnknownCommand together with the
// type, so the caller can honour IgnoreUnknown. Decoding is strict:
// unknown JSON fields and trailing data are errors, because a node that
// silently dropped a field would diverge from one that applied it.
func Decode(b []byte) (CommandType, any, error) {
	if len(b) == 0 {
		return 0, nil, errors.New("consensus: decode: empty entry")
	}
	t := CommandType(b[0])
	dec, ok := decoders[t&^IgnoreUnknown]
	if !ok {
		return t, nil, fmt.Errorf("consensus: decode: %w %d", ErrUnknownCommand, uint8(t))
	}
	cmd, err := dec(b[1:])
	if err != nil {
		return t, nil, fmt.Errorf("consensus: decode %s: %w", t, err)
	}
	return t, cmd, nil
}

func decodeAs[T any](payload []byte) (any, error) {
	var v T
	if err := decodeStrict(payload, &v); err != nil {
		return nil, err
	}
	return v, nil
}
