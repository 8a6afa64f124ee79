package resolver

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"
)

// MaxBasisPoints is 100% in basis points.
const MaxBasisPoints = 10000

// CohortSlot places a device on a rollout's 0..9999 line: the first 8
// bytes of SHA-256(rolloutID, 0, lower-cased device id), big-endian,
// modulo 10000. It depends on nothing else, so every node computes the
// same slot, and a device keeps it for the life of the rollout. A new
// rollout id reshuffles devices, so the same devices are not always
// first.
func CohortSlot(deviceID, rolloutID string) int {
	h := sha256.New()
	h.Write([]byte(rolloutID))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(deviceID)))
	var sum [sha256.Size]byte
	return int(binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) % MaxBasisPoints)
}

// InCohort reports whether a device is in a rollout at basisPoints
// (0..10000). It is sticky (a pure function of its arguments) and
// monotone: raising basisPoints only adds devices, because a device is
// in exactly when its slot is below the percentage.
func InCohort(deviceID, rolloutID string, basisPoints int) bool {
	return CohortSlot(deviceID, rolloutID) < basisPoints
}
