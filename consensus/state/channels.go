package state

// ChannelPatch lists the settable fields of a channel. A nil field is
// left unchanged (or at its Capgo default when the channel is created).
//
// It is the one definition of channel settings: its json names are the
// body of the admin API's PUT .../channels/{channel} and the fields of
// the raft command consensus.ChannelSet (which embeds it); its flag and
// help tags are the flags of `mirrord channel set`. A new channel
// setting is a field here plus its effect in applyTo and the resolver.
type ChannelPatch struct {
	// Version is a release version of the app or Builtin.
	Version            *string "json:\"version,omitempty\" flag:\"version\" help:\"release `version` devices on this channel get, or `builtin`\""
	Public             *bool   `json:"public,omitempty" flag:"public" help:"default channel for devices that name none"`
	IOS                *bool   `json:"ios,omitempty" flag:"ios" help:"serve iOS devices"`
	Android            *bool   `json:"android,omitempty" flag:"android" help:"serve Android devices"`
	Electron           *bool   `json:"electron,omitempty" flag:"electron" help:"serve Electron apps"`
	AllowEmulator      *bool   `json:"allow_emulator,omitempty" flag:"allow-emulator" help:"serve emulators"`
	AllowDevice        *bool   `json:"allow_device,omitempty" flag:"allow-device" help:"serve physical devices"`
	AllowDev           *bool   `json:"allow_dev,omitempty" flag:"allow-dev" help:"serve development builds"`
	AllowProd          *bool   `json:"allow_prod,omitempty" flag:"allow-prod" help:"serve production builds"`
	AllowDeviceSelfSet *bool   `json:"allow_device_self_set,omitempty" flag:"allow-device-self-set" help:"let devices pick this channel (setChannel)"`
	// DisableAutoUpdate is one of the Disable* constants.
	DisableAutoUpdate            *string "json:\"disable_auto_update,omitempty\" flag:\"disable-auto-update\" help:\"block updates across `kind`: major|minor|patch|version_number|none\""
	DisableAutoUpdateUnderNative *bool   `json:"disable_auto_update_under_native,omitempty" flag:"disable-auto-update-under-native" help:"never offer a bundle older than the native version"`
}

// ValidDisableAutoUpdate reports whether v is one of the Disable*
// constants.
func ValidDisableAutoUpdate(v string) bool {
	switch v {
	case DisableMajor, DisableMinor, DisablePatch, DisableVersionNumber,
		DisableNone:
		return true
	}
	return false
}

// SetChannel returns a new state at index where channel name of app has
// the patch applied. A missing channel is created with Capgo's defaults,
// the next channel id and createdAt; the app's first channel becomes
// public unless the patch sets Public to false. Changing Version pushes
// the previous one onto History. When the channel ends up public, every
// other public channel of the app that shares an enabled platform with
// it becomes non-public, so that each platform has at most one public
// channel.
func (s *State) SetChannel(index uint64, app, name string, createdAt int64, p ChannelPatch) (*State, error) {
	if name == "" {
		return nil, invalid("channel name is empty")
	}
	if p.DisableAutoUpdate != nil && !ValidDisableAutoUpdate(*p.DisableAutoUpdate) {
		return nil, invalid("disable_auto_update %q is not one of "+
			"major, minor, patch, version_number, none", *p.DisableAutoUpdate)
	}
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	if p.Version != nil {
		if err := t.checkVersion(*p.Version); err != nil {
			return nil, err
		}
	}
	c := t.channelForWrite(name, createdAt, p.Public)
	p.applyTo(c)
	t.putChannel(c)
	t.enforcePublic(c)
	return s.commit(index, t), nil
}

// checkVersion accepts Builtin or an existing release of the app.
func (t *appTxn) checkVersion(v string) error {
	if v == "" {
		return invalid("channel version is empty (use %q)", Builtin)
	}
	if v == Builtin {
		return nil
	}
	if _, ok := t.app.Releases[v]; !ok {
		return notFound("release %q of app %q not found", v, t.app.App.ID)
	}
	return nil
}

// applyTo sets every non-nil field of p on c, which the caller owns.
func (p *ChannelPatch) applyTo(c *Channel) {
	if p.Version != nil {
		c.setVersion(*p.Version)
	}
	setBool(&c.Public, p.Public)
	setBool(&c.IOS, p.IOS)
	setBool(&c.Android, p.Android)
	setBool(&c.Electron, p.Electron)
	setBool(&c.AllowEmulator, p.AllowEmulator)
	setBool(&c.AllowDevice, p.AllowDevice)
	setBool(&c.AllowDev, p.AllowDev)
	setBool(&c.AllowProd, p.AllowProd)
	setBool(&c.AllowDeviceSelfSet, p.AllowDeviceSelfSet)
	if p.DisableAutoUpdate != nil {
		c.DisableAutoUpdate = *p.DisableAutoUpdate
	}
	setBool(&c.DisableAutoUpdateUnderNative, p.DisableAutoUpdateUnderNative)
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

// channelForWrite returns a private copy of channel name, creating it
// with defaults when missing. A created channel gets the next channel id
// and createdAt, and is public if it is the app's first channel and
// public is not explicitly false. It is not stored until putChannel.
func (t *appTxn) channelForWrite(name string, createdAt int64, public *bool) *Channel {
	if old, ok := t.app.Channels[name]; ok {
		return old.clone()
	}
	c := NewChannel(name)
	c.ID = t.allocChannelID()
	c.CreatedAt = createdAt
	c.Public = len(t.app.Channels) == 0 && (public == nil || *public)
	return &c
}

// enforcePublic makes every other public channel that shares an enabled
// platform with c non-public, if c is public.
func (t *appTxn) enforcePublic(c *Channel) {
	if !c.Public {
		return
	}
	for _, name := range t.app.ChannelNames() {
		o := t.app.Channels[name]
		if name == c.Name || !o.Public || !sharePlatform(c, o) {
			continue
		}
		d := o.clone()
		d.Public = false
		t.putChannel(d)
	}
}

func sharePlatform(a, b *Channel) bool {
	return (a.IOS && b.IOS) || (a.Android && b.Android) ||
		(a.Electron && b.Electron)
}

// RollbackChannel returns a new state at index where the channel serves
// the last version of its History, which is removed from History (the
// version rolled back from is dropped, not pushed). It is a conflict if
// History is empty.
func (s *State) RollbackChannel(index uint64, app, name string) (*State, error) {
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	old, ok := t.app.Channels[name]
	if !ok {
		return nil, notFound("channel %q of app %q not found", name, app)
	}
	if len(old.History) == 0 {
		return nil, conflict("channel %q of app %q has no previous release "+
			"to roll back to", name, app)
	}
	prev := old.History[len(old.History)-1]
	// DeleteRelease keeps History clean, so this only guards against a
	// state restored from an inconsistent snapshot.
	if err := t.checkVersion(prev); err != nil {
		return nil, err
	}
	c := old.clone()
	c.History = c.History[:len(c.History)-1]
	if len(c.History) == 0 {
		c.History = nil
	}
	c.Version = prev
	t.putChannel(c)
	return s.commit(index, t), nil
}

// DeleteChannel returns a new state at index without the channel. Device
// overrides that point at it are deleted too: those devices fall back to
// the public channel of their platform, as devices without an override
// do. Deleting a public channel does not make another channel public.
func (s *State) DeleteChannel(index uint64, app, name string) (*State, error) {
	t, err := s.editApp(app)
	if err != nil {
		return nil, err
	}
	if _, ok := t.app.Channels[name]; !ok {
		return nil, notFound("channel %q of app %q not found", name, app)
	}
	delete(t.channels(), name)
	for id, o := range t.app.Devices {
		if o.Channel == name {
			delete(t.devices(), id)
		}
	}
	return s.commit(index, t), nil
}
