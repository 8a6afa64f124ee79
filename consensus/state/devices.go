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
