package state

import "strings"

// NormalizeDeviceID returns the form device ids are stored and looked up
// in: lower case, as Capgo does.
func NormalizeDeviceID(id string) string { return strings.ToLower(id) }

// SetDevice returns a new state at index where the device (id
// normalized by NormalizeDeviceID) is pinned to an existing channel.
func (s *State) SetDevice(index uint64, app, deviceID, channel string) (*State, error) {
	id := NormalizeDeviceID(deviceID)
	if id == "" {
		return nil, invalid("device id is empty")
	}
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	if _, ok := t.app.Channels[channel]; !ok {
		return nil, notFound("channel %q of app %q not found", channel, app)
	}
	t.devices()[id] = DeviceOverride{Channel: channel}
	return s.commit(index, t), nil
}

// UnsetDevice returns a new state at index without the device's
// override, or a not-found error if it has none.
func (s *State) UnsetDevice(index uint64, app, deviceID string) (*State, error) {
	id := NormalizeDeviceID(deviceID)
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	if _, ok := t.app.Devices[id]; !ok {
		return nil, notFound("device %q of app %q has no override", id, app)
	}
	delete(t.devices(), id)
	return s.commit(index, t), nil
}

// DeviceEntry is one row of a bulk device change: a channel, a pinned
// release, or both. Remove deletes the device's override instead (and a
// missing override is not an error).
type DeviceEntry struct {
	DeviceID string `json:"device_id"`
	Channel  string `json:"channel,omitempty"`
	Version  string `json:"version,omitempty"`
	Remove   bool   `json:"remove,omitempty"`
}

// MaxDeviceBatch bounds one bulk device change, so that one raft entry
// stays small; clients split larger imports.
const MaxDeviceBatch = 10000

// SetDevices returns a new state at index with every entry applied, or
// an error naming the first bad entry (then nothing changes). An entry
// sets the device's override to its channel and pinned version (either
// may be empty, not both); the channel and the release must exist.
func (s *State) SetDevices(index uint64, app string, entries []DeviceEntry) (*State, error) {
	if len(entries) == 0 {
		return nil, invalid("no devices given")
	}
	if len(entries) > MaxDeviceBatch {
		return nil, invalid("%d devices in one change; at most %d", len(entries), MaxDeviceBatch)
	}
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	for i, e := range entries {
		if err := t.checkDeviceEntry(e); err != nil {
			return nil, invalid("device %d (%q): %s", i+1, e.DeviceID, err.Msg)
		}
	}
	devs := t.devices()
	for _, e := range entries {
		id := NormalizeDeviceID(e.DeviceID)
		if e.Remove {
			delete(devs, id)
			continue
		}
		devs[id] = DeviceOverride{Channel: e.Channel, Version: e.Version}
	}
	return s.commit(index, t), nil
}

func (t *appTxn) checkDeviceEntry(e DeviceEntry) *Error {
	switch {
	case NormalizeDeviceID(e.DeviceID) == "":
		return invalid("device id is empty")
	case len(e.DeviceID) > 256:
		return invalid("device id is longer than 256 bytes")
	case e.Remove:
		return nil
	case e.Channel == "" && e.Version == "":
		return invalid("neither a channel nor a version")
	}
	if e.Channel != "" {
		if _, ok := t.app.Channels[e.Channel]; !ok {
			return notFound("channel %q of app %q not found", e.Channel, t.app.App.ID)
		}
	}
	if e.Version != "" {
		if e.Version == Builtin {
			return nil
		}
		if _, ok := t.app.Releases[e.Version]; !ok {
			return notFound("release %q of app %q not found", e.Version, t.app.App.ID)
		}
	}
	return nil
}
