package state

import "sort"

// Builtin is the version name of the web assets shipped inside the native
// app. A channel pointing at Builtin (or at no release) reverts devices to
// them.
const Builtin = "builtin"

// DisableAutoUpdate values, as in Capgo's channel settings.
const (
	DisableMajor         = "major"
	DisableMinor         = "minor"
	DisablePatch         = "patch"
	DisableVersionNumber = "version_number"
	DisableNone          = "none"
)

// State is one immutable version of the replicated metadata. Index is the
// raft log index of the last command applied to it.
type State struct {
	Index uint64               `json:"index"`
	Apps  map[string]*AppState `json:"apps"`
	// Cluster is the membership metadata; nil until the first cluster
	// command. It is immutable once published, like everything else.
	Cluster *Cluster `json:"cluster,omitempty"`
}

// AppState is everything known about one app.
type AppState struct {
	App      App                       `json:"app"`
	Channels map[string]*Channel       `json:"channels"`
	Releases map[string]*Release       `json:"releases"`
	Devices  map[string]DeviceOverride `json:"devices"`
	// Stats holds each node's cumulative counters per release: version
	// -> node id -> counters. Only releases of the app are counted.
	Stats map[string]map[string]Counters `json:"stats,omitempty"`
	// History holds each release's cluster-wide counts per hour, oldest
	// first: version -> buckets (see Bucket). HistoryAt is the newest
	// report time (unix ms) seen for the app; retention counts from it.
	History   map[string][]Bucket `json:"history,omitempty"`
	HistoryAt int64               `json:"history_at,omitempty"`
	// NextChannelID numbers channels in creation order (Capgo's channel
	// list needs a numeric id).
	NextChannelID int64 `json:"next_channel_id"`
}

// App is an application registered with mirrord.
type App struct {
	ID string `json:"id"`
	// PublicKey is the Capgo v2 RSA public key (PKCS#1 PEM), if the app's
	// bundles are encrypted. KeyID is the first 20 characters of its PEM
	// body, as the plugin sends it in key_id.
	PublicKey string `json:"public_key,omitempty"`
	KeyID     string `json:"key_id,omitempty"`
	CreatedAt int64  `json:"created_at"` // unix milliseconds, set by the proposer
}

// Release is one published bundle version of an app. Its bytes live in
// the blockstore; the release only names them by CID.
type Release struct {
	App     string `json:"app"`
	Version string `json:"version"`
	// ZipCID names the zip as served to devices (encrypted when
	// SessionKey is set); ZipSize is its length in bytes.
	ZipCID  string `json:"zip_cid"`
	ZipSize int64  `json:"zip_size"`
	// Checksum is served as is: lowercase hex SHA-256 of the plain zip, or
	// its 512-hex RSA form when encrypted.
	Checksum string `json:"checksum"`
	// SessionKey is "" for a plain release, else base64(IV):base64(key).
	SessionKey string `json:"session_key,omitempty"`
	// KeyID is the key_id of the public key that decrypts the release, ""
	// when plain.
	KeyID     string         `json:"key_id,omitempty"`
	Manifest  []ManifestFile `json:"manifest,omitempty"`
	MinNative string         `json:"min_native,omitempty"`
	CreatedAt int64          `json:"created_at"` // unix milliseconds
}

// Encrypted reports whether the release is Capgo-v2 encrypted.
func (r *Release) Encrypted() bool { return r.SessionKey != "" }

// CIDs lists every object CID the release references (zip first).
func (r *Release) CIDs() []string {
	out := make([]string, 0, 1+len(r.Manifest))
	if r.ZipCID != "" {
		out = append(out, r.ZipCID)
	}
	for _, f := range r.Manifest {
		out = append(out, f.CID)
	}
	return out
}

// ManifestFile is one delta-manifest entry: FileName is the path the
// device writes (with a ".br" suffix when Brotli-compressed), FileHash the
// hash the device checks (plain hex SHA-256 or its RSA form), CID and
// Size name the stored (possibly compressed and encrypted) bytes.
type ManifestFile struct {
	FileName string `json:"file_name"`
	FileHash string `json:"file_hash"`
	CID      string `json:"cid"`
	Size     int64  `json:"size"`
}

// Channel is a release channel of an app with Capgo's gates.
type Channel struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	// Version is the release devices on this channel get; "" or Builtin
	// means the builtin bundle.
	Version string `json:"version"`
	// History holds earlier values of Version, oldest first, for rollback.
	History []string `json:"history,omitempty"`

	Public             bool   `json:"public"`
	IOS                bool   `json:"ios"`
	Android            bool   `json:"android"`
	Electron           bool   `json:"electron"`
	AllowEmulator      bool   `json:"allow_emulator"`
	AllowDevice        bool   `json:"allow_device"`
	AllowDev           bool   `json:"allow_dev"`
	AllowProd          bool   `json:"allow_prod"`
	AllowDeviceSelfSet bool   `json:"allow_device_self_set"`
	DisableAutoUpdate  string `json:"disable_auto_update"`
	// DisableAutoUpdateUnderNative blocks bundles older than the native
	// version_build.
	DisableAutoUpdateUnderNative bool  `json:"disable_auto_update_under_native"`
	CreatedAt                    int64 `json:"created_at"`
	// Rollout is the channel's current or last rollout, nil if none. It
	// is never modified in place: changes store a new value.
	Rollout *Rollout `json:"rollout,omitempty"`
	// RolloutSeq counts the rollouts started on the channel.
	RolloutSeq int64 `json:"rollout_seq,omitempty"`
}

// NewChannel returns a channel with Capgo's defaults.
func NewChannel(name string) Channel {
	return Channel{
		Name:                         name,
		IOS:                          true,
		Android:                      true,
		Electron:                     true,
		AllowEmulator:                true,
		AllowDevice:                  true,
		AllowDev:                     true,
		AllowProd:                    true,
		DisableAutoUpdate:            DisableMajor,
		DisableAutoUpdateUnderNative: true,
	}
}

// PlatformEnabled reports the channel's flag for a device platform.
func (c *Channel) PlatformEnabled(platform string) bool {
	switch platform {
	case "ios":
		return c.IOS
	case "android":
		return c.Android
	case "electron":
		return c.Electron
	}
	return false
}

// DeviceOverride pins a device to a channel, set by an operator or by an
// old plugin's channel_self POST, and optionally (operators only) to a
// release: the device then gets Version whatever its channel serves or
// rolls out, under the gates of Channel (or, when Channel is empty, of
// the channel it would get without an override).
type DeviceOverride struct {
	Channel string `json:"channel"`
	Version string `json:"version,omitempty"`
}

// Empty returns an empty state.
func Empty() *State { return &State{Apps: map[string]*AppState{}} }

// App returns the app's state or nil.
func (s *State) App(id string) *AppState {
	if s == nil {
		return nil
	}
	return s.Apps[id]
}

// AppIDs returns the app ids in sorted order.
func (s *State) AppIDs() []string {
	ids := make([]string, 0, len(s.Apps))
	for id := range s.Apps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// ChannelNames returns the app's channel names in sorted order.
func (a *AppState) ChannelNames() []string {
	names := make([]string, 0, len(a.Channels))
	for n := range a.Channels {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReleaseVersions returns the app's release versions sorted by creation
// time, then version.
func (a *AppState) ReleaseVersions() []string {
	vs := make([]string, 0, len(a.Releases))
	for v := range a.Releases {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool {
		ri, rj := a.Releases[vs[i]], a.Releases[vs[j]]
		if ri.CreatedAt != rj.CreatedAt {
			return ri.CreatedAt < rj.CreatedAt
		}
		return vs[i] < vs[j]
	})
	return vs
}
