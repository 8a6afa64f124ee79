package consensus

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"mirrord/consensus/state"
)

// Snapshot format, version 1:
//
//	"MIRRORD-SNAPSHOT" (16 bytes) | version byte (1)
//	then records: [RecordType byte][uvarint length][JSON payload]
//
// Records come app by app in sorted order: the App record, then its
// channels (by name), releases (by version), device overrides (by
// device id), fleet counters and stats history. A single Meta record ends the snapshot; a stream that
// ends without it is truncated and rejected. JSON payloads are decoded
// strictly. testdata/snapshot-v1.bin pins the format.
const (
	snapshotMagic   = "MIRRORD-SNAPSHOT"
	snapshotVersion = 1
	// maxRecordSize bounds one record so a corrupt length cannot make
	// Restore allocate without limit. It must hold the largest record a
	// command can create: a release, whose record is smaller than its
	// ReleaseCreate entry (at most MaxCommandBytes).
	maxRecordSize = 64 << 20
)

// recordType tags a snapshot record. Numbers are never reused; a
// retired type stays here as a documented constant.
type recordType uint8

const (
	recordApp            recordType = 1  // state.App
	recordChannel        recordType = 2  // channelRecord
	recordRelease        recordType = 3  // state.Release
	recordDeviceOverride recordType = 4  // deviceRecord
	recordMeta           recordType = 5  // metaRecord, always last
	recordNode           recordType = 6  // state.NodeInfo
	recordAdminToken     recordType = 7  // tokenRecord
	recordJoinToken      recordType = 8  // tokenRecord
	recordStats          recordType = 9  // statsRecord
	recordReadToken      recordType = 10 // tokenRecord
	recordHistory        recordType = 11 // historyRecord
	recordHistoryAt      recordType = 12 // historyAtRecord
	recordFeatures       recordType = 13 // featuresRecord
	recordNamedToken     recordType = 14 // state.Token
	recordAudit          recordType = 15 // state.AuditEntry, in log order
)

// tokenRecord is an admin or read-only token (At = created) or a join
// token (At = expires), by digest.
type tokenRecord struct {
	Digest string `json:"digest"`
	At     int64  `json:"at"`
}

type channelRecord struct {
	App     string        `json:"app"`
	Channel state.Channel `json:"channel"`
}

type deviceRecord struct {
	App      string `json:"app"`
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel"`
	Version  string `json:"version,omitempty"`
}

type metaRecord struct {
	Index          uint64           `json:"index"`
	NextChannelIDs map[string]int64 `json:"next_channel_ids"`
}

// WriteSnapshot writes s to w in the snapshot format. The output is
// deterministic: equal states give equal bytes.
func WriteSnapshot(w io.Writer, s *state.State) error {
	if err := writeSnapshot(w, s); err != nil {
		return fmt.Errorf("consensus: write snapshot: %w", err)
	}
	return nil
}

func writeSnapshot(w io.Writer, s *state.State) error {
	bw := bufio.NewWriter(w)
	sw := &snapshotWriter{w: bw}
	sw.raw([]byte(snapshotMagic))
	sw.raw([]byte{snapshotVersion})
	meta := metaRecord{Index: s.Index, NextChannelIDs: map[string]int64{}}
	for _, id := range s.AppIDs() {
		a := s.Apps[id]
		meta.NextChannelIDs[id] = a.NextChannelID
		sw.record(recordApp, a.App)
		for _, name := range a.ChannelNames() {
			sw.record(recordChannel, channelRecord{App: id, Channel: *a.Channels[name]})
		}
		for _, v := range slices.Sorted(maps.Keys(a.Releases)) {
			sw.record(recordRelease, a.Releases[v])
		}
		for _, dev := range slices.Sorted(maps.Keys(a.Devices)) {
			o := a.Devices[dev]
			sw.record(recordDeviceOverride, deviceRecord{
				App: id, DeviceID: dev, Channel: o.Channel, Version: o.Version,
			})
		}
		for _, v := range slices.Sorted(maps.Keys(a.Stats)) {
			for _, n := range slices.Sorted(maps.Keys(a.Stats[v])) {
				sw.record(recordStats, statsRecord{App: id, Version: v, Node: n, Counters: a.Stats[v][n]})
			}
		}
		sw.writeHistory(a)
	}
	if c := s.Cluster; c != nil {
		for _, id := range slices.Sorted(maps.Keys(c.Nodes)) {
			sw.record(recordNode, c.Nodes[id])
		}
		for _, d := range slices.Sorted(maps.Keys(c.AdminTokens)) {
			sw.record(recordAdminToken, tokenRecord{Digest: d, At: c.AdminTokens[d]})
		}
		for _, d := range slices.Sorted(maps.Keys(c.JoinTokens)) {
			sw.record(recordJoinToken, tokenRecord{Digest: d, At: c.JoinTokens[d]})
		}
		for _, d := range slices.Sorted(maps.Keys(c.ReadTokens)) {
			sw.record(recordReadToken, tokenRecord{Digest: d, At: c.ReadTokens[d]})
		}
		sw.writeFeatures(c)
		sw.writeTokens(c)
	}
	sw.record(recordMeta, meta)
	if sw.err != nil {
		return sw.err
	}
	return bw.Flush()
}

type snapshotWriter struct {
	w   *bufio.Writer
	err error
}

func (sw *snapshotWriter) raw(b []byte) {
	if sw.err == nil {
		_, sw.err = sw.w.Write(b)
	}
}

func (sw *snapshotWriter) record(t recordType, v any) {
	if sw.err != nil {
		return
	}
	payload, err := json.Marshal(v)
	if err != nil {
		sw.err = fmt.Errorf("encode record %d: %w", t, err)
		return
	}
	if len(payload) > maxRecordSize {
		// Failing the snapshot keeps the log; writing the record would
		// leave a snapshot that no node can restore.
		sw.err = fmt.Errorf("record %d is %d bytes, more than the %d a snapshot record may hold", t, len(payload), maxRecordSize)
		return
	}
	hdr := binary.AppendUvarint([]byte{byte(t)}, uint64(len(payload)))
	sw.raw(hdr)
	sw.raw(payload)
}

// ReadSnapshot decodes a snapshot written by WriteSnapshot into a fresh
// state. It rejects a bad header, unknown record types, malformed or
// duplicate records, records of unknown apps and truncated input.
func ReadSnapshot(r io.Reader) (*state.State, error) {
	s, err := readSnapshot(r)
	if err != nil {
		return nil, fmt.Errorf("consensus: read snapshot: %w", err)
	}
	return s, nil
}

func readSnapshot(r io.Reader) (*state.State, error) {
	br := bufio.NewReader(r)
	hdr := make([]byte, len(snapshotMagic)+1)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("read header: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return nil, errors.New("not a mirrord snapshot")
	}
	if v := hdr[len(snapshotMagic)]; v != snapshotVersion {
		return nil, fmt.Errorf("unsupported snapshot version %d", v)
	}
	sr := &snapshotReader{s: state.Empty()}
	for n := 0; ; n++ {
		tb, err := br.ReadByte()
		if err == io.EOF {
			if !sr.metaSeen {
				return nil, errors.New("snapshot truncated: no meta record")
			}
			return sr.s, nil
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		if sr.metaSeen {
			return nil, fmt.Errorf("record %d: data after meta record", n)
		}
		size, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("record %d: length: %w", n, noEOF(err))
		}
		if size > maxRecordSize {
			return nil, fmt.Errorf("record %d: length %d too large", n, size)
		}
		// Read through a LimitReader so memory grows with the data
		// actually present, not with the claimed length.
		payload, err := io.ReadAll(io.LimitReader(br, int64(size)))
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", n, err)
		}
		if uint64(len(payload)) != size {
			return nil, fmt.Errorf("record %d: %w", n, io.ErrUnexpectedEOF)
		}
		if err := sr.apply(recordType(tb), payload); err != nil {
			return nil, fmt.Errorf("record %d (type %d): %w", n, tb, err)
		}
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// snapshotReader builds a state from records. The state is private to
// the reader until it is returned, so it is filled in place.
type snapshotReader struct {
	s        *state.State
	metaSeen bool
}

// apply adds the record of type t to the state being read; each type has
// its own readX.
func (sr *snapshotReader) apply(t recordType, payload []byte) error {
	switch t {
	case recordApp:
		return sr.readApp(payload)
	case recordChannel:
		return sr.readChannel(payload)
	case recordRelease:
		return sr.readRelease(payload)
	case recordDeviceOverride:
		return sr.readDeviceOverride(payload)
	case recordStats:
		return sr.readStats(payload)
	case recordHistory:
		return sr.readHistory(payload)
	case recordHistoryAt:
		return sr.readHistoryAt(payload)
	case recordFeatures:
		return sr.readFeatures(payload)
	case recordNode:
		return sr.readNode(payload)
	case recordNamedToken:
		return sr.readNamedToken(payload)
	case recordAudit:
		return sr.readAudit(payload)
	case recordAdminToken, recordJoinToken, recordReadToken:
		return sr.readToken(t, payload)
	case recordMeta:
		return sr.readMeta(payload)
	default:
		return errors.New("unknown record type")
	}
}

// readApp adds an app record.
func (sr *snapshotReader) readApp(payload []byte) error {
	var app state.App
	if err := decodeStrict(payload, &app); err != nil {
		return err
	}
	if app.ID == "" {
		return errors.New("app with empty id")
	}
	if sr.s.Apps[app.ID] != nil {
		return fmt.Errorf("duplicate app %q", app.ID)
	}
	sr.s.Apps[app.ID] = &state.AppState{
		App:      app,
		Channels: map[string]*state.Channel{},
		Releases: map[string]*state.Release{},
		Devices:  map[string]state.DeviceOverride{},
	}
	return nil
}

// readChannel adds a channel record.
func (sr *snapshotReader) readChannel(payload []byte) error {
	var rec channelRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	a, err := sr.app(rec.App)
	if err != nil {
		return err
	}
	c := rec.Channel
	if c.Name == "" {
		return errors.New("channel with empty name")
	}
	if a.Channels[c.Name] != nil {
		return fmt.Errorf("duplicate channel %q", c.Name)
	}
	if len(c.History) == 0 {
		c.History = nil
	}
	a.Channels[c.Name] = &c
	return nil
}

// readRelease adds a release record.
func (sr *snapshotReader) readRelease(payload []byte) error {
	var r state.Release
	if err := decodeStrict(payload, &r); err != nil {
		return err
	}
	a, err := sr.app(r.App)
	if err != nil {
		return err
	}
	if r.Version == "" {
		return errors.New("release with empty version")
	}
	if a.Releases[r.Version] != nil {
		return fmt.Errorf("duplicate release %q", r.Version)
	}
	if len(r.Manifest) == 0 {
		r.Manifest = nil
	}
	a.Releases[r.Version] = &r
	return nil
}

// readDeviceOverride adds a device override record.
func (sr *snapshotReader) readDeviceOverride(payload []byte) error {
	var rec deviceRecord
	if err := decodeStrict(payload, &rec); err != nil {
		return err
	}
	a, err := sr.app(rec.App)
	if err != nil {
		return err
	}
	if rec.DeviceID == "" {
		return errors.New("device override with empty id")
	}
	if _, ok := a.Devices[rec.DeviceID]; ok {
		return fmt.Errorf("duplicate device %q", rec.DeviceID)
	}
	a.Devices[rec.DeviceID] = state.DeviceOverride{Channel: rec.Channel, Version: rec.Version}
	return nil
}

// readNode adds a cluster node record.
func (sr *snapshotReader) readNode(payload []byte) error {
	var n state.NodeInfo
	if err := decodeStrict(payload, &n); err != nil {
		return err
	}
	c := sr.clusterForWrite()
	if n.ID == "" {
		return errors.New("node with empty id")
	}
	if _, dup := c.Nodes[n.ID]; dup {
		return fmt.Errorf("duplicate node %q", n.ID)
	}
	if c.Nodes == nil {
		c.Nodes = map[string]state.NodeInfo{}
	}
	c.Nodes[n.ID] = n
	return nil
}

// readToken adds a token record of type t (admin, join or read).
func (sr *snapshotReader) readToken(t recordType, payload []byte) error {
	var tr tokenRecord
	if err := decodeStrict(payload, &tr); err != nil {
		return err
	}
	if !state.ValidDigest(tr.Digest) {
		return errors.New("token record with a bad digest")
	}
	c := sr.clusterForWrite()
	m := &c.AdminTokens
	switch t {
	case recordJoinToken:
		m = &c.JoinTokens
	case recordReadToken:
		m = &c.ReadTokens
	}
	if *m == nil {
		*m = map[string]int64{}
	}
	if _, dup := (*m)[tr.Digest]; dup {
		return errors.New("duplicate token record")
	}
	(*m)[tr.Digest] = tr.At
	return nil
}

// readMeta adds the meta record (index, next channel ids).
func (sr *snapshotReader) readMeta(payload []byte) error {
	var m metaRecord
	if err := decodeStrict(payload, &m); err != nil {
		return err
	}
	for id, next := range m.NextChannelIDs {
		a, err := sr.app(id)
		if err != nil {
			return err
		}
		a.NextChannelID = next
	}
	sr.s.Index = m.Index
	sr.metaSeen = true
	return nil
}

func (sr *snapshotReader) clusterForWrite() *state.Cluster {
	if sr.s.Cluster == nil {
		sr.s.Cluster = &state.Cluster{}
	}
	return sr.s.Cluster
}

func (sr *snapshotReader) app(id string) (*state.AppState, error) {
	a := sr.s.Apps[id]
	if a == nil {
		return nil, fmt.Errorf("record for unknown app %q", id)
	}
	return a, nil
}

// decodeStrict decodes one JSON value, rejecting unknown fields and
// trailing data.
func decodeStrict(payload []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(payload))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
