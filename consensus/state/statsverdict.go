package state

// Verdict rules for device stats events (docs/security.md, "Device
// statistics"). A node counts an event toward a release's counters, and
// so toward its rollout's halt policy, only if the device checked in on
// this node for that release, and each device counts at most once per
// kind of outcome. The rules are here, without I/O, so that node/fleet
// (which keeps the per-device marks) and resolver/httpapi (which files
// the events in the stats log by verdict) agree on them.

// DeviceMarks are what a node remembers of one device for one release:
// the kinds of outcome it already counted for it. A device that is
// remembered at all checked in for the release on this node.
type DeviceMarks uint8

// Marks of the outcomes counted for a device.
const (
	MarkDownload DeviceMarks = 1 << iota // a download_complete was counted
	MarkInstall                          // a set was counted
	MarkFailure                          // a failure was counted
)

// AllMarks are the bits DeviceMarks uses.
const AllMarks = MarkDownload | MarkInstall | MarkFailure

// EventVerdict is what became of one stats event.
type EventVerdict uint8

const (
	// VerdictNotCounted: an event of a device that checked in for the
	// release, of an action the counters do not keep (such as
	// app_moved_to_foreground). Stored with the counted events.
	VerdictNotCounted EventVerdict = iota
	// VerdictCounted: added to the release's counters.
	VerdictCounted
	// VerdictDuplicate: the device already counted this kind of outcome
	// for the release; stored as ignored.
	VerdictDuplicate
	// VerdictUnverified: the device did not check in for the release on
	// this node (or the version is not a release); never counted,
	// stored as ignored.
	VerdictUnverified
)

// String names the verdict; Duplicate and Unverified are also the
// stats log markers of those events.
func (v EventVerdict) String() string {
	switch v {
	case VerdictCounted:
		return "counted"
	case VerdictDuplicate:
		return IgnoredDuplicate
	case VerdictUnverified:
		return IgnoredUnverified
	}
	return "not_counted"
}

// Stats log markers of events a node kept but did not count because of
// their device.
const (
	IgnoredUnverified = "unverified_device"
	IgnoredDuplicate  = "duplicate_outcome"
)

// OutcomeMark is the mark an action counts under, 0 for an action the
// counters do not keep.
func OutcomeMark(action string) DeviceMarks {
	switch {
	case action == "set":
		return MarkInstall
	case action == "download_complete":
		return MarkDownload
	case IsFailure(action):
		return MarkFailure
	}
	return 0
}

// JudgeEvent decides about one event of a device for a release: seen
// says whether the device checked in for the release on this node, and
// marks are what it already counted. It returns the verdict and the
// marks to keep.
//
// Each kind of outcome counts once per device: ten update_fail count as
// one failure. Installs and failures are separate kinds, as the failure
// rate (failures / (installs + failures)) always took them: a device
// that installs a release and then fails to start it (set, then
// update_fail on the next launch, the usual sign of a bad bundle) adds
// one install and one failure, and so does a device whose first
// download failed and whose retry installed. The first failure action
// of a device is the one counted by name.
func JudgeEvent(seen bool, marks DeviceMarks, action string) (EventVerdict, DeviceMarks) {
	if !seen {
		return VerdictUnverified, marks
	}
	m := OutcomeMark(action)
	switch {
	case m == 0:
		return VerdictNotCounted, marks
	case marks&m != 0:
		return VerdictDuplicate, marks
	}
	return VerdictCounted, marks | m
}
