package state

import "fmt"

// CreateApp returns a new state at index with app registered. It fails
// with a conflict if the app exists and with an invalid error if its id
// is empty. Validating the public key is the proposer's job.
func (s *State) CreateApp(index uint64, app App) (*State, error) {
	if app.ID == "" {
		return nil, invalid("app id is empty")
	}
	if s.App(app.ID) != nil {
		return nil, conflict("app %q already exists", app.ID)
	}
	t := &appTxn{app: &AppState{
		App:           app,
		Channels:      map[string]*Channel{},
		Releases:      map[string]*Release{},
		Devices:       map[string]DeviceOverride{},
		NextChannelID: 1,
	}, ownChannels: true, ownReleases: true, ownDevices: true}
	return s.commit(index, t), nil
}

// DeleteApp returns a new state at index without the app and everything
// that belongs to it: channels, releases (their blocks become garbage
// for GC), rollouts, device overrides and fleet counters. A live
// rollout (active or paused) always refuses it, because devices are
// being moved by it; releases or channels refuse it unless force is
// set, so that an app in use is not removed by a slip.
func (s *State) DeleteApp(index uint64, id string, force bool) (*State, error) {
	a := s.App(id)
	if a == nil {
		return nil, notFound("app %q not found", id)
	}
	for _, name := range a.ChannelNames() {
		if r := a.Channels[name].Rollout; r.Live() {
			return nil, conflict("app %q has a %s rollout of %s on channel %q; abort or promote it first",
				id, r.State, r.Version, name)
		}
	}
	if !force && (len(a.Releases) > 0 || len(a.Channels) > 0) {
		return nil, conflict("app %q still has %s and %s; delete with force to remove them with the app",
			id, plural(len(a.Releases), "release"), plural(len(a.Channels), "channel"))
	}
	apps := cloneMap(s.apps())
	delete(apps, id)
	return &State{Index: index, Apps: apps, Cluster: s.cluster()}, nil
}

// plural returns "1 release", "2 releases".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
