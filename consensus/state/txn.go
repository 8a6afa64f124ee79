package state

import (
	"maps"
	"slices"
)

// MaxHistory bounds Channel.History; the oldest entries are dropped
// first.
const MaxHistory = 50

// This file holds the copy-on-write machinery used by the mutation
// methods. The rule they follow: nothing reachable from a *State that
// may have been published is ever written. A change copies the State
// struct and its Apps map, the touched AppState, only the maps of that
// AppState it changes, and only the Channel values it changes (with their
// History slices). Releases are never modified after creation, so their
// pointers are shared between versions.

// WithIndex returns a copy of s that differs only in Index. Commands
// that fail or are skipped still advance the index, so that Index always
// names the last command entry the state has seen.
func (s *State) WithIndex(index uint64) *State {
	return &State{Index: index, Apps: s.apps(), Cluster: s.cluster()}
}

// apps returns s.Apps, tolerating a nil receiver and a nil map.
func (s *State) apps() map[string]*AppState {
	if s == nil || s.Apps == nil {
		return map[string]*AppState{}
	}
	return s.Apps
}

// appTxn is a pending change to one app. app is a private copy of the
// AppState; its maps are still shared with the old state until the
// matching own* method copies them.
type appTxn struct {
	app                                                        *AppState
	ownChannels, ownReleases, ownDevices, ownStats, ownHistory bool
}

// editApp starts a change to app id, or returns a not-found error.
func (s *State) editApp(id string) (*appTxn, error) {
	old := s.App(id)
	if old == nil {
		return nil, notFound("app %q not found", id)
	}
	cp := *old
	return &appTxn{app: &cp}, nil
}

// commit returns the new state: a copy of s whose Apps map holds the
// changed app.
func (s *State) commit(index uint64, t *appTxn) *State {
	apps := cloneMap(s.apps())
	apps[t.app.App.ID] = t.app
	return &State{Index: index, Apps: apps, Cluster: s.cluster()}
}

func (t *appTxn) channels() map[string]*Channel {
	if !t.ownChannels {
		t.app.Channels = cloneMap(t.app.Channels)
		t.ownChannels = true
	}
	return t.app.Channels
}

func (t *appTxn) releases() map[string]*Release {
	if !t.ownReleases {
		t.app.Releases = cloneMap(t.app.Releases)
		t.ownReleases = true
	}
	return t.app.Releases
}

func (t *appTxn) devices() map[string]DeviceOverride {
	if !t.ownDevices {
		t.app.Devices = cloneMap(t.app.Devices)
		t.ownDevices = true
	}
	return t.app.Devices
}

// putChannel stores c, which must be a fresh value owned by the txn.
func (t *appTxn) putChannel(c *Channel) { t.channels()[c.Name] = c }

// allocChannelID returns the next channel id of the app (1, 2, ...).
func (t *appTxn) allocChannelID() int64 {
	if t.app.NextChannelID < 1 {
		t.app.NextChannelID = 1
	}
	id := t.app.NextChannelID
	t.app.NextChannelID++
	return id
}

// clone returns a copy of c that shares nothing mutable with it.
func (c *Channel) clone() *Channel {
	cp := *c
	cp.History = slices.Clone(c.History)
	return &cp
}

// setVersion points c at version, pushing the previous version onto
// History when it differs and is set. c must be owned by the caller.
func (c *Channel) setVersion(version string) {
	if c.Version == version {
		return
	}
	if c.Version != "" {
		c.History = append(c.History, c.Version)
		if n := len(c.History) - MaxHistory; n > 0 {
			c.History = slices.Delete(c.History, 0, n)
		}
	}
	c.Version = version
}

// cloneMap copies m, returning an empty non-nil map for a nil one.
func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m)+1)
	maps.Copy(out, m)
	return out
}
