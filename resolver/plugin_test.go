package resolver

import (
	"testing"

	"mirrord/consensus/state"
)

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
		v, ok := state.ParseSemver(tt.plugin)
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
