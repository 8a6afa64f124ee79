package state

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
