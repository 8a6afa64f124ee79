package devicesim

import (
	"strconv"
	"strings"
)

// What differs between plugin builds. Each rule cites what
// capgo-protocol.md says; where it says nothing for a platform or an
// older plugin, the simulator keeps the long-standing behaviour.

// nativeNameSince is the first plugin version known to report the native
// version (version_build) as version_name while the builtin bundle runs:
// the Android Java of 8.51.23 was observed doing so (capgo-protocol.md,
// section 2). The protocol notes say nothing about older Android plugins
// or about iOS, so those keep sending "builtin", as the info object's
// documented meaning and Capgo's backend (which reads "builtin" as
// version_build) expect.
var nativeNameSince = [3]uint64{8, 51, 23}

// versionName is the version_name the device reports for its current
// bundle: the native version instead of "builtin" on Android >= 8.51.23
// (when the device has one), the bundle's name otherwise.
func (d *Device) versionName(current string) string {
	if current != Builtin || d.platform() != "android" || d.VersionBuild == "" {
		return current
	}
	if !versionAtLeast(d.pluginVersion(), nativeNameSince) {
		return current
	}
	return d.VersionBuild
}

// refusesEmptyDecrypted reports whether the device fails a manifest file
// whose decrypted content is empty. Android's
// CryptoCipher.decryptAesFile refuses it ("Empty decrypted data") and
// the whole manifest download fails (capgo-protocol.md, section 4.2,
// observed on 8.51.23; the simulator applies it to every Android plugin
// as the check sits in the decryption every manifest file goes through).
// Nothing is documented for iOS, so an iOS device writes the empty file.
func (d *Device) refusesEmptyDecrypted() bool {
	return d.platform() == "android"
}

// versionAtLeast reports whether v, a plugin version "x.y.z" (a
// pre-release or build suffix ignored), is at least min. A v that is not
// a version is not.
func versionAtLeast(v string, min [3]uint64) bool {
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	var got [3]uint64
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return false
		}
		got[i] = n
	}
	for i := range got {
		if got[i] != min[i] {
			return got[i] > min[i]
		}
	}
	return true
}
