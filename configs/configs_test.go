package configs

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func TestExamplesLoad(t *testing.T) {
	names, err := fs.Glob(Examples, "*.yaml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	for _, n := range names {
		b, _ := fs.ReadFile(Examples, n)
		if _, err := Parse(n, b); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestSingleNodeIsDefault(t *testing.T) {
	b, _ := fs.ReadFile(Examples, "single-node.yaml")
	c, err := Parse("single-node.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Fatalf("single-node.yaml differs from Default():\n%+v\n%+v", c, Default())
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"version: 1\nnode:\n  dta: x\n", `line 3: unknown key "dta"`},
		{"version: 2\n", "version: 2 is not supported"},
		{"node:\n  http: nope\n", "node.http"},
		{"stats:\n  flush_interval: soon\n", "not a duration"},
		{"limits:\n  max_upload_bytes: lots\n", "not a size"},
		{"version: [\n", "config f.yaml"},
	} {
		_, err := Parse("f.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.yaml") {
			t.Errorf("%q: got %v, want error containing %q and the file name", tc.doc, err, tc.want)
		}
	}
	if c, err := Parse("empty.yaml", nil); err != nil || !reflect.DeepEqual(c, Default()) {
		t.Errorf("empty file: %v %+v", err, c)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "12": 12, "1KiB": 1024, "64MiB": 64 << 20, "2GiB": 2 << 30, "1KB": 1000, "5 MB": 5e6, "7B": 7} {
		if got, err := ParseByteSize(in); err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1.5MiB", "99999999999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("%q: want error", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := fs.ReadFile(Examples, "single-node.yaml")
	f.Add(b)
	f.Add([]byte("version: 1\nnode: {data: x, http: 'a:1'}\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse("fuzz.yaml", doc)
		if err == nil {
			if err := c.Validate(); err != nil {
				t.Fatalf("Parse accepted an invalid config: %v", err)
			}
		}
	})
}
