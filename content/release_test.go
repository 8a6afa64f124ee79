package content

import (
	"errors"
	"testing"
)

// TestCheckName: manifest names follow CleanPath's rules, must already
// be clean, and appear once.
func TestCheckName(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"index.html", true}, {"js/app.js", true}, {"..foo", true},
		{"", false}, {".", false}, {"../x", false}, {"a/../b", false}, {"a//b", false}, {"./a", false},
		{"/abs", false}, {`a\b`, false}, {"c:x", false}, {"1:x", false}, {"a\x00b", false},
		{"index.html", false}, // twice
	} {
		err := checkName(tc.name, seen)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrReleaseRefused)) {
			t.Errorf("checkName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
