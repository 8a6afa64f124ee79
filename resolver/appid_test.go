package resolver

import (
	"regexp"
	"testing"
)

// FuzzIsReverseDomain checks isReverseDomain against Capgo's rule as a
// regular expression.
func FuzzIsReverseDomain(f *testing.F) {
	re := regexp.MustCompile(`(?i)^[a-z0-9]+(\.[\w-]+)+$`)
	for _, s := range []string{"com.example.app", "com", "com.", ".com", "a..b", "a.b-c_d", "a-b.c", "A.B", "a.é", "a.b.", "1.2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isReverseDomain(s), re.MatchString(s); got != want {
			t.Fatalf("%q: %v, the rule says %v", s, got, want)
		}
	})
}
