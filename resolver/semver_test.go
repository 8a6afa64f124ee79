package resolver

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

func TestPluginVersionThresholds(t *testing.T) {
	tests := []struct {
		plugin        string
		keepsLocally  bool
		sendsKeyID    bool
		builtinAnswer bool
		shortKeyID    bool // <= 8.40.7
	}{
		{"", false, false, false, false},
		{"garbage", false, false, false, false},
		{"2.3.3", false, false, false, true},
		{"4.99.0", false, false, false, true},
		{"5.33.9", false, false, false, true},
		{"5.34.0", true, false, false, true},
		{"5.50.0", true, false, false, true},
		{"5.50.1", true, true, false, true},
		{"6.2.0-beta.1", false, false, false, true},
		{"6.2.0", false, false, true, true},
		{"6.33.0", false, false, true, true},
		{"6.34.0", true, false, true, true},
		{"6.50.1", true, true, true, true},
		{"7.0.0", false, false, true, true},
		{"7.34.0", true, false, true, true},
		{"7.50.0", true, false, true, true},
		{"7.50.1", true, true, true, true},
		{"8.0.0-rc.1", false, false, true, true},
		{"8.0.0", true, false, true, true},
		{"8.2.0", true, true, true, true},
		{"8.40.7", true, true, true, true},
		{"8.40.8", true, true, true, false},
		{"8.51.23", true, true, true, false},
		{"9.0.0", true, true, true, false},
	}
	short := mustSemver(shortKeyIDMax)
	for _, tt := range tests {
		if got := PluginKeepsChannelLocally(tt.plugin); got != tt.keepsLocally {
			t.Errorf("PluginKeepsChannelLocally(%q) = %v, want %v", tt.plugin, got, tt.keepsLocally)
		}
		v, ok := ParseSemver(tt.plugin)
		if !ok {
			continue
		}
		if got := pluginSendsKeyID(v); got != tt.sendsKeyID {
			t.Errorf("pluginSendsKeyID(%q) = %v, want %v", tt.plugin, got, tt.sendsKeyID)
		}
		if got := atLeast(v, builtinAnswerMin); got != tt.builtinAnswer {
			t.Errorf("atLeast(%q, %s) = %v, want %v", tt.plugin, builtinAnswerMin, got, tt.builtinAnswer)
		}
		if got := v.Compare(short) <= 0; got != tt.shortKeyID {
			t.Errorf("%q <= %s = %v, want %v", tt.plugin, shortKeyIDMax, got, tt.shortKeyID)
		}
	}
}

func TestMustSemverPanicsOnBadConstant(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("mustSemver accepted a bad version")
		}
	}()
	mustSemver("1.x")
}
