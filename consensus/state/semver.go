package state

import (
	"strconv"
	"strings"
)

// Semver is a parsed semantic version (semver 2.0.0). Pre holds the
// dot-separated pre-release identifiers and Build the build metadata,
// which takes no part in precedence.
type Semver struct {
	Major, Minor, Patch uint64
	Pre                 []string
	Build               string
}

// ParseSemver parses a full semantic version such as "1.2.3",
// "1.2.3-beta.1" or "1.2.3+build.7". A leading "v" is accepted, as
// Capgo's semver library accepts it. Numeric identifiers must not have
// leading zeros and must fit in 64 bits.
func ParseSemver(s string) (Semver, bool) {
	s = strings.TrimPrefix(s, "v")
	core, pre, build := splitSemver(s)
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return Semver{}, false
	}
	return parseParts(parts, pre, build)
}

// CoerceSemver parses a native version (version_build) the way Capgo
// does before comparing it: a missing minor or patch number counts as 0,
// so "1" is 1.0.0 and "1.2" is 1.2.0. A leading "v", a pre-release and
// build metadata are kept ("v1.2-rc.1" is 1.2.0-rc.1).
func CoerceSemver(s string) (Semver, bool) {
	s = strings.TrimPrefix(s, "v")
	core, pre, build := splitSemver(s)
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return Semver{}, false
	}
	for len(parts) < 3 {
		parts = append(parts, "0")
	}
	return parseParts(parts, pre, build)
}

// splitSemver cuts s into its core, pre-release and build parts. The
// pre-release starts at the first "-" before any "+"; pre and build are
// nil when absent so that an empty "1.0.0-" can be told apart and
// refused.
func splitSemver(s string) (core string, pre, build *string) {
	if i := strings.IndexByte(s, '+'); i >= 0 {
		b := s[i+1:]
		build = &b
		s = s[:i]
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		p := s[i+1:]
		pre = &p
		s = s[:i]
	}
	return s, pre, build
}

func parseParts(parts []string, pre, build *string) (Semver, bool) {
	var v Semver
	nums := [3]*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !isNumericIdent(p) {
			return Semver{}, false
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Semver{}, false
		}
		*nums[i] = n
	}
	if pre != nil {
		ids := strings.Split(*pre, ".")
		for _, id := range ids {
			if !isIdent(id) || (isDigits(id) && !isNumericIdent(id)) {
				return Semver{}, false
			}
		}
		v.Pre = ids
	}
	if build != nil {
		for _, id := range strings.Split(*build, ".") {
			if !isIdent(id) {
				return Semver{}, false
			}
		}
		v.Build = *build
	}
	return v, true
}

// isIdent reports whether s is a non-empty run of [0-9A-Za-z-].
func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// isDigits reports whether s is a non-empty run of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isNumericIdent reports whether s is "0" or digits without a leading
// zero.
func isNumericIdent(s string) bool {
	return isDigits(s) && (s == "0" || s[0] != '0')
}

// String returns the canonical form, without a leading "v".
func (v Semver) String() string {
	var b strings.Builder
	b.WriteString(strconv.FormatUint(v.Major, 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(v.Minor, 10))
	b.WriteByte('.')
	b.WriteString(strconv.FormatUint(v.Patch, 10))
	if len(v.Pre) > 0 {
		b.WriteByte('-')
		b.WriteString(strings.Join(v.Pre, "."))
	}
	if v.Build != "" {
		b.WriteByte('+')
		b.WriteString(v.Build)
	}
	return b.String()
}

// Compare returns -1, 0 or +1 as v has lower, equal or higher precedence
// than w (semver 2.0.0 section 11: build metadata is ignored, a
// pre-release ranks below its release).
func (v Semver) Compare(w Semver) int {
	if c := cmpUint(v.Major, w.Major); c != 0 {
		return c
	}
	if c := cmpUint(v.Minor, w.Minor); c != 0 {
		return c
	}
	if c := cmpUint(v.Patch, w.Patch); c != 0 {
		return c
	}
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		if c := cmpIdent(v.Pre[i], w.Pre[i]); c != 0 {
			return c
		}
	}
	return cmpUint(uint64(len(v.Pre)), uint64(len(w.Pre)))
}

// Less reports whether v has lower precedence than w.
func (v Semver) Less(w Semver) bool { return v.Compare(w) < 0 }

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// cmpIdent orders two pre-release identifiers: numeric ones numerically
// (they have no leading zeros, so a longer one is larger, which avoids
// overflow), numeric below alphanumeric, alphanumeric ones in ASCII
// order.
func cmpIdent(a, b string) int {
	an, bn := isDigits(a), isDigits(b)
	switch {
	case an && bn:
		if c := cmpUint(uint64(len(a)), uint64(len(b))); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case an:
		return -1
	case bn:
		return 1
	}
	return strings.Compare(a, b)
}

// ValidVersion reports whether s is a release version as an operator
// writes one: a full semantic version without the leading "v" that
// ParseSemver tolerates from devices.
func ValidVersion(s string) bool {
	_, ok := ParseSemver(s)
	return ok && !strings.HasPrefix(s, "v")
}
