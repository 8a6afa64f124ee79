package resolver

import (
	"mirrord/consensus/state"
)

const (
	testAppID = "com.example.app"
	// testKeyID is the key_id of the test key pair in
	// testdata/capgo (first 20 characters of the PEM body).
	testKeyID = "MIIBCgKCAQEAxiHQEJu8"
)

// newTestApp returns an app with:
//   - production: public, version 1.0.1 (Capgo's channel defaults);
//   - beta: self-settable, version 1.1.0;
//   - private: neither public nor self-settable, version 1.0.2;
//   - plain releases 0.9.0, 1.0.0, 1.0.1, 1.0.2, 1.1.0, 2.0.0 and an
//     encrypted release 1.0.3 (key testKeyID).
func newTestApp() *state.AppState {
	app := &state.AppState{
		App:      state.App{ID: testAppID, KeyID: testKeyID},
		Channels: map[string]*state.Channel{},
		Releases: map[string]*state.Release{},
		Devices:  map[string]state.DeviceOverride{},
	}
	for _, v := range []string{"0.9.0", "1.0.0", "1.0.1", "1.0.2", "1.1.0", "2.0.0"} {
		app.Releases[v] = testRelease(v)
	}
	enc := testRelease("1.0.3")
	enc.SessionKey = "aXYxMjM0NTY3ODkwMTIzNA==:c2Vzc2lvbmtleQ=="
	enc.KeyID = testKeyID
	app.Releases[enc.Version] = enc

	addChannel(app, "production", "1.0.1", func(c *state.Channel) { c.Public = true })
	addChannel(app, "beta", "1.1.0", func(c *state.Channel) { c.AllowDeviceSelfSet = true })
	addChannel(app, "private", "1.0.2", nil)
	return app
}

// testRelease returns a plain release with a zip.
func testRelease(v string) *state.Release {
	return &state.Release{
		App:      testAppID,
		Version:  v,
		ZipCID:   "bafy-" + v,
		ZipSize:  1000,
		Checksum: "00" + v,
	}
}

// addChannel adds a channel with Capgo's defaults and the next id.
func addChannel(app *state.AppState, name, version string, mod func(*state.Channel)) *state.Channel {
	c := state.NewChannel(name)
	app.NextChannelID++
	c.ID = app.NextChannelID
	c.Version = version
	if mod != nil {
		mod(&c)
	}
	app.Channels[name] = &c
	return &c
}

// baseRequest is a production Android device on its builtin bundle of
// native version 1.0.0 with the newest plugin and no public key.
func baseRequest() Request {
	return Request{
		Platform:      "android",
		DeviceID:      devA,
		AppID:         testAppID,
		VersionBuild:  "1.0.0",
		VersionCode:   "10",
		VersionOS:     "14",
		VersionName:   "builtin",
		PluginVersion: "8.51.23",
		IsProd:        true,
	}
}

func strPtr(s string) *string { return &s }
