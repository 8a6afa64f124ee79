package fleet

import (
	"slices"

	"mirrord/consensus/state"
)

// deviceSet remembers the devices that checked in for one release on
// this node, with the outcomes each already counted (state.DeviceMarks).
// A device is a 64-bit keyed hash of its id (Fleet.hash) whose low
// three bits are replaced by its marks, so each device takes 8 bytes:
// a sorted slice holds most of them and a small map takes the newest
// until it is merged in. At 1 M devices the set holds 8 MiB of entries
// (TestDeviceSetMemory measures it). Two devices share an entry when
// their hashes agree on 61 bits: about 2e-7 for a pair among 1 M
// devices, and ids cannot be crafted to collide without the node's key.
type deviceSet struct {
	sorted []uint64 // hash|marks, ascending by hash
	fresh  map[uint64]state.DeviceMarks
	n      int
}

const (
	markBits = 3
	hashMask = ^uint64(1<<markBits - 1)
	// freshMax is how many new devices wait in the map before a merge
	// into the sorted slice (a merge copies the slice: ~n/4096 copies of
	// n entries for n devices).
	freshMax = 4096
)

// MaxDevicesPerRelease bounds a set: 4 Mi devices, 32 MiB. Devices past
// it are not remembered, so their events count as unverified.
const MaxDevicesPerRelease = 4 << 20

func newDeviceSet() *deviceSet {
	return &deviceSet{fresh: map[uint64]state.DeviceMarks{}}
}

// find returns the index of h in sorted, or -1.
func (s *deviceSet) find(h uint64) int {
	i, ok := slices.BinarySearchFunc(s.sorted, h, func(e, t uint64) int {
		switch e &= hashMask; {
		case e < t:
			return -1
		case e > t:
			return 1
		}
		return 0
	})
	if !ok {
		return -1
	}
	return i
}

// get returns the marks of the device with hash h and whether it is in
// the set.
func (s *deviceSet) get(h uint64) (state.DeviceMarks, bool) {
	h &= hashMask
	if m, ok := s.fresh[h]; ok {
		return m, true
	}
	if i := s.find(h); i >= 0 {
		return state.DeviceMarks(s.sorted[i] &^ hashMask), true
	}
	return 0, false
}

// add puts the device in the set (a check-in); it reports false when
// the set is full.
func (s *deviceSet) add(h uint64) bool {
	h &= hashMask
	if _, ok := s.get(h); ok {
		return true
	}
	if s.n >= MaxDevicesPerRelease {
		return false
	}
	s.fresh[h] = 0
	s.n++
	if len(s.fresh) >= freshMax {
		s.merge()
	}
	return true
}

// mark sets the marks of a device already in the set.
func (s *deviceSet) mark(h uint64, m state.DeviceMarks) {
	h &= hashMask
	if _, ok := s.fresh[h]; ok {
		s.fresh[h] = m
		return
	}
	if i := s.find(h); i >= 0 {
		s.sorted[i] = h | uint64(m&state.AllMarks)
	}
}

// merge moves the fresh devices into the sorted slice: one new slice of
// exactly the needed length, so the set stays at 8 bytes a device.
func (s *deviceSet) merge() {
	if len(s.fresh) == 0 {
		return
	}
	add := make([]uint64, 0, len(s.fresh))
	for h, m := range s.fresh {
		add = append(add, h|uint64(m))
	}
	slices.Sort(add)
	out := make([]uint64, 0, len(s.sorted)+len(add))
	i, j := 0, 0
	for i < len(s.sorted) && j < len(add) {
		if s.sorted[i] < add[j] {
			out = append(out, s.sorted[i])
			i++
		} else {
			out = append(out, add[j])
			j++
		}
	}
	out = append(out, s.sorted[i:]...)
	out = append(out, add[j:]...)
	s.sorted = out
	clear(s.fresh)
}

// len is the number of devices in the set.
func (s *deviceSet) len() int { return s.n }
