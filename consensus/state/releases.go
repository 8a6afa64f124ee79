package state

// CreateRelease returns a new state at index with r added to its app.
// The app must exist and the version must be new. When channel is not
// empty, the channel is created if missing (Capgo defaults; the app's
// first channel becomes public) and pointed at the new release, and its
// previous version goes onto its History.
func (s *State) CreateRelease(index uint64, r Release, channel string) (*State, error) {
	if err := validateRelease(&r); err != nil {
		return nil, err
	}
	t, err := s.editApp(r.App)
	if err != nil {
		return nil, err
	}
	if _, ok := t.app.Releases[r.Version]; ok {
		return nil, conflict("release %q of app %q already exists",
			r.Version, r.App)
	}
	if len(r.Manifest) == 0 {
		// Keep the nil form so that a snapshot round trip (which
		// omits empty manifests) yields an identical state.
		r.Manifest = nil
	}
	t.releases()[r.Version] = &r
	if channel != "" {
		c := t.channelForWrite(channel, r.CreatedAt, nil)
		c.setVersion(r.Version)
		t.putChannel(c)
	}
	return s.commit(index, t), nil
}

func validateRelease(r *Release) error {
	switch {
	case r.App == "":
		return invalid("release app is empty")
	case r.Version == "":
		return invalid("release version is empty")
	case r.Version == Builtin:
		return invalid("release version %q is reserved", Builtin)
	case r.ZipCID == "":
		return invalid("release %q has no zip cid", r.Version)
	case r.ZipSize < 0:
		return invalid("release %q has a negative zip size", r.Version)
	}
	for i, f := range r.Manifest {
		if f.FileName == "" || f.CID == "" || f.Size < 0 {
			return invalid("release %q: manifest entry %d is incomplete",
				r.Version, i)
		}
	}
	return nil
}

// DeleteRelease returns a new state at index without the release. It is
// a conflict while a channel serves the release; the version is also
// removed from every channel's History so that a rollback never lands on
// a deleted release.
func (s *State) DeleteRelease(index uint64, app, version string) (*State, error) {
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	if _, ok := t.app.Releases[version]; !ok {
		return nil, notFound("release %q of app %q not found", version, app)
	}
	for _, name := range t.app.ChannelNames() {
		c := t.app.Channels[name]
		if c.Version == version {
			return nil, conflict("release %q is in use by channel %q",
				version, name)
		}
		if c.Rollout.Live() && c.Rollout.Version == version {
			return nil, conflict("release %q is being rolled out on channel %q; abort the rollout first",
				version, name)
		}
	}
	for id, o := range t.app.Devices {
		if o.Version == version {
			return nil, conflict("release %q is pinned for device %q (and maybe others); unpin it first",
				version, id)
		}
	}
	for _, name := range t.app.ChannelNames() {
		old := t.app.Channels[name]
		if !contains(old.History, version) {
			continue
		}
		c := old.clone()
		c.History = removeAll(c.History, version)
		t.putChannel(c)
	}
	delete(t.releases(), version)
	t.dropStats(version)
	t.dropHistory(version)
	return s.commit(index, t), nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// removeAll returns list without any v, or nil when nothing remains.
// list must be owned by the caller.
func removeAll(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
