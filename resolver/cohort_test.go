package resolver

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func randomDeviceID(r *rand.Rand) string {
	return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", r.Uint32(), r.Uint32()&0xffff,
		r.Uint32()&0xfff, r.Uint32()&0xfff, r.Uint64()&0xffffffffffff)
}

// TestCohortUniform: at 100,000 random device ids every percentage gets
// within 1 percentage point of its target.
func TestCohortUniform(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, 100000)
	for i := range ids {
		ids[i] = randomDeviceID(r)
	}
	for _, bp := range []int{0, 1, 100, 1000, 2500, 5000, 9000, 9999, 10000} {
		for _, rollout := range []string{"r1", "com.example.app/production/7"} {
			in := 0
			for _, id := range ids {
				if InCohort(id, rollout, bp) {
					in++
				}
			}
			got := float64(in) / float64(len(ids)) * 100
			want := float64(bp) / 100
			if got < want-1 || got > want+1 {
				t.Errorf("rollout %q at %d bp: %.2f%% of devices, want %.2f%% ± 1", rollout, bp, got, want)
			}
		}
	}
}

// TestCohortStickyAndMonotone checks the two invariants on random
// inputs: the same inputs give the same answer, and a device in the
// cohort at p is in it at every q >= p.
func TestCohortStickyAndMonotone(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		id, rollout := randomDeviceID(r), fmt.Sprint("rollout-", r.IntN(50))
		p, q := r.IntN(MaxBasisPoints+1), r.IntN(MaxBasisPoints+1)
		if p > q {
			p, q = q, p
		}
		if InCohort(id, rollout, p) != InCohort(id, rollout, p) {
			t.Fatal("not sticky")
		}
		if InCohort(id, rollout, p) && !InCohort(id, rollout, q) {
			t.Fatalf("%s in %s at %d bp but not at %d", id, rollout, p, q)
		}
		if InCohort(strings.ToUpper(id), rollout, p) != InCohort(id, rollout, p) {
			t.Fatal("device id case changes the cohort")
		}
	}
}

// TestCohortSlotGolden pins the hash so that an upgrade never moves
// devices between cohorts. The values were computed independently with
// Python's hashlib: int.from_bytes(sha256(rollout+b"\0"+device.lower())[:8], "big") % 10000.
func TestCohortSlotGolden(t *testing.T) {
	for _, tc := range []struct {
		device, rollout string
		slot            int
	}{
		{"00000000-0000-4000-8000-000000000001", "r1", 5664},
		{"8F0C1D2E-3B4A-4C5D-9E6F-000000000042", "com.example.app/production/7", 475},
		{"device", "r2", 7074},
	} {
		if got := CohortSlot(tc.device, tc.rollout); got != tc.slot {
			t.Errorf("CohortSlot(%q, %q) = %d, want %d", tc.device, tc.rollout, got, tc.slot)
		}
	}
}

func FuzzCohort(f *testing.F) {
	f.Add("00000000-0000-4000-8000-000000000001", "r1", 1000, 2000)
	f.Add("ÄBC-Ünï", "app/ch/1.0.0#1", 5000, 5000)
	f.Fuzz(func(t *testing.T, id, rollout string, p, q int) {
		s := CohortSlot(id, rollout)
		if s < 0 || s >= MaxBasisPoints {
			t.Fatalf("slot %d out of range", s)
		}
		// The allocation-free hashing equals the plain definition.
		sum := sha256.Sum256([]byte(rollout + "\x00" + strings.ToLower(id)))
		if want := int(binary.BigEndian.Uint64(sum[:8]) % MaxBasisPoints); s != want {
			t.Fatalf("CohortSlot(%q, %q) = %d, want %d", id, rollout, s, want)
		}
		if p < 0 || q < 0 || p > q {
			return
		}
		if InCohort(id, rollout, p) && !InCohort(id, rollout, q) {
			t.Fatal("not monotone")
		}
	})
}
