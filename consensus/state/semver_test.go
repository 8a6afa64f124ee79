package state

import (
	"reflect"
	"testing"
)

func TestParseSemver(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical form, "" when invalid
	}{
		{"1.2.3", "1.2.3"},
		{"0.0.0", "0.0.0"},
		{"v1.2.3", "1.2.3"},
		{"1.2.3-beta.1", "1.2.3-beta.1"},
		{"1.2.3-0.3.7", "1.2.3-0.3.7"},
		{"1.2.3-x-y.z--", "1.2.3-x-y.z--"},
		{"1.2.3+build.7", "1.2.3+build.7"},
		{"1.2.3+001", "1.2.3+001"},
		{"1.2.3-rc.1+exp.sha.5114f85", "1.2.3-rc.1+exp.sha.5114f85"},
		{"18446744073709551615.0.0", "18446744073709551615.0.0"},
		{"", ""},
		{"v", ""},
		{"vv1.2.3", ""},
		{"1", ""},
		{"1.2", ""},
		{"1.2.3.4", ""},
		{"01.2.3", ""},
		{"1.02.3", ""},
		{"1.2.03", ""},
		{"1.2.3-", ""},
		{"1.2.3-01", ""},
		{"1.2.3-a..b", ""},
		{"1.2.3+", ""},
		{"1.2.3+a..b", ""},
		{"1.2.3-beta!", ""},
		{"1.2.x", ""},
		{" 1.2.3", ""},
		{"1.2.3 ", ""},
		{"-1.2.3", ""},
		{"18446744073709551616.0.0", ""},
		{"builtin", ""},
		{"unknown", ""},
	}
	for _, tt := range tests {
		got, ok := ParseSemver(tt.in)
		if ok != (tt.want != "") {
			t.Errorf("ParseSemver(%q) ok = %v, want %v", tt.in, ok, tt.want != "")
			continue
		}
		if ok && got.String() != tt.want {
			t.Errorf("ParseSemver(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestCoerceSemver(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical form, "" when invalid
	}{
		{"1", "1.0.0"},
		{"1.2", "1.2.0"},
		{"1.2.3", "1.2.3"},
		{"v1", "1.0.0"},
		{"v1.2", "1.2.0"},
		{"0", "0.0.0"},
		{"10.20", "10.20.0"},
		{"1-beta", "1.0.0-beta"},
		{"1.2-rc.1", "1.2.0-rc.1"},
		{"1.2+42", "1.2.0+42"},
		{"1.2.3-beta.2+b7", "1.2.3-beta.2+b7"},
		{"", ""},
		{"unknown", ""},
		{"builtin", ""},
		{"1.2.3.4", ""},
		{"1..2", ""},
		{"1.", ""},
		{".1", ""},
		{"01", ""},
		{"1.02", ""},
		{"1.2.3-", ""},
		{"abc", ""},
		{"2024.1.15 (42)", ""},
	}
	for _, tt := range tests {
		got, ok := CoerceSemver(tt.in)
		if ok != (tt.want != "") {
			t.Errorf("CoerceSemver(%q) ok = %v, want %v", tt.in, ok, tt.want != "")
			continue
		}
		if ok && got.String() != tt.want {
			t.Errorf("CoerceSemver(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestSemverPrecedence checks the ordering example of semver 2.0.0
// section 11 plus build metadata and large numbers.
func TestSemverPrecedence(t *testing.T) {
	ordered := []string{
		"0.9.0",
		"1.0.0-alpha",
		"1.0.0-alpha.1",
		"1.0.0-alpha.beta",
		"1.0.0-beta",
		"1.0.0-beta.2",
		"1.0.0-beta.11",
		"1.0.0-rc.1",
		"1.0.0",
		"1.0.1",
		"1.1.0",
		"1.10.0",
		"2.0.0-99999999999999999999999",
		"2.0.0-999999999999999999999999",
		"2.0.0",
		"18446744073709551615.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseSemver(ordered[i])
			b, ok := ParseSemver(ordered[j])
			if !ok {
				t.Fatalf("bad fixture %q", ordered[j])
			}
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
			if got := a.Less(b); got != (want < 0) {
				t.Errorf("Less(%s, %s) = %v", ordered[i], ordered[j], got)
			}
		}
	}
	a, _ := ParseSemver("1.0.0+a")
	b, _ := ParseSemver("1.0.0+b")
	if a.Compare(b) != 0 {
		t.Errorf("build metadata must not affect precedence")
	}
	if !reflect.DeepEqual(a.Pre, []string(nil)) || a.Build != "a" {
		t.Errorf("parsed %+v", a)
	}
}

func TestValidVersion(t *testing.T) {
	for v, want := range map[string]bool{
		"1.2.3": true, "1.2.3-beta.1": true, "1.2.3+build.7": true, "0.0.0": true,
		"v1.2.3": false, "1.2": false, "01.2.3": false, "1.2.3-": false, "": false, "1.2.3.4": false,
		"99999999999999999999.0.0": false,
	} {
		if got := ValidVersion(v); got != want {
			t.Errorf("ValidVersion(%q) = %v, want %v", v, got, want)
		}
	}
}
