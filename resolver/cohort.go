package resolver

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"mirrord/consensus/state"
)

// MaxBasisPoints is 100% in basis points.
const MaxBasisPoints = state.MaxBasisPoints

// CohortSlot places a device on a rollout's 0..9999 line: the first 8
// bytes of SHA-256(rolloutID, 0, lower-cased device id), big-endian,
// modulo 10000. It depends on nothing else, so every node computes the
// same slot, and a device keeps it for the life of the rollout. A new
// rollout id reshuffles devices, so the same devices are not always
// first.
func CohortSlot(deviceID, rolloutID string) int {
	// One contiguous input on the stack for the usual sizes: the check
	// path then hashes without allocating.
	var stack [192]byte
	in := append(stack[:0], rolloutID...)
	in = append(in, 0)
	for i := 0; i < len(deviceID); i++ {
		c := deviceID[i]
		if c >= 0x80 {
			// Non-ASCII: lower-case it as strings.ToLower does.
			in = append(in[:len(rolloutID)+1], strings.ToLower(deviceID)...)
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		in = append(in, c)
	}
	sum := sha256.Sum256(in)
	return int(binary.BigEndian.Uint64(sum[:8]) % MaxBasisPoints)
}

// InCohort reports whether a device is in a rollout at basisPoints
// (0..10000). It is sticky (a pure function of its arguments) and
// monotone: raising basisPoints only adds devices, because a device is
// in exactly when its slot is below the percentage.
func InCohort(deviceID, rolloutID string, basisPoints int) bool {
	return CohortSlot(deviceID, rolloutID) < basisPoints
}
