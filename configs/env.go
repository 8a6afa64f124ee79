package configs

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that sets a config value.
const EnvPrefix = "MIRRORD_"

// envIgnored are MIRRORD_* variables that are not settings although
// their names may look like one: the CLI's own (MIRRORD_SERVER,
// MIRRORD_TOKEN, MIRRORD_CA) and a test knob (MIRRORD_REPORT_INTERVAL, which would
// otherwise read as a misplaced stats.report_interval).
var envIgnored = map[string]bool{
	"MIRRORD_SERVER":          true,
	"MIRRORD_TOKEN":           true,
	"MIRRORD_CA":              true,
	"MIRRORD_REPORT_INTERVAL": true,
}

// envSetting is one value of Config that an environment variable sets.
type envSetting struct {
	name  string // MIRRORD_NODE_HTTP
	key   string // node.http
	index []int  // field path from Config, for reflect.Value.FieldByIndex
}

// envTable lists every setting, keyed by variable name, and the upper
// case names of the sections. It is derived from Config's yaml tags, so
// a new field gets its variable without further code.
var envTable = sync.OnceValues(func() (map[string]envSetting, map[string]bool) {
	settings := map[string]envSetting{}
	sections := map[string]bool{}
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" || f.Type.Kind() != reflect.Struct {
			// Top-level scalars (version) describe the file, not the node.
			continue
		}
		sections[strings.ToUpper(name)] = true
		walkSettings(f.Type, []string{name}, []int{i}, settings)
	}
	return settings, sections
})

// walkSettings adds the fields of struct type t (at key path and field
// index path) to settings; nested structs extend the name.
func walkSettings(t reflect.Type, path []string, index []int, settings map[string]envSetting) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if name == "" {
			continue
		}
		p := append(append([]string(nil), path...), name)
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && !isText(f.Type) {
			walkSettings(f.Type, p, idx, settings)
			continue
		}
		env := EnvPrefix + strings.ToUpper(strings.Join(p, "_"))
		if prev, dup := settings[env]; dup {
			panic(fmt.Sprintf("configs: %s and %s both map to %s", prev.key, strings.Join(p, "."), env))
		}
		settings[env] = envSetting{name: env, key: strings.Join(p, "."), index: idx}
	}
}

// yamlName is the key yaml.v3 uses for f, "" when f is not decoded.
func yamlName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch tag {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return tag
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// isText reports whether a *t parses itself from text (Duration,
// ByteSize).
func isText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshaler) }

// EnvNames returns the names of every setting variable, sorted:
// MIRRORD_<SECTION>_<KEY> in upper case for each key of the file.
func EnvNames() []string {
	settings, _ := envTable()
	names := make([]string, 0, len(settings))
	for n := range settings {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// EnvKey returns the file key ("node.http") that the variable name sets,
// or "" when name is not a setting variable.
func EnvKey(name string) string {
	settings, _ := envTable()
	return settings[name].key
}

// EnvSettings returns the setting variables present in environ (as
// os.Environ gives it), sorted: those ApplyEnv would apply.
func EnvSettings(environ []string) []string {
	settings, _ := envTable()
	var names []string
	seen := map[string]bool{}
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if _, known := settings[name]; ok && known && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// ApplyEnv sets the values named by MIRRORD_<SECTION>_<KEY> variables in
// environ (as os.Environ gives it) over c: MIRRORD_NODE_HTTP sets
// node.http, MIRRORD_REPLICATION_DISK_BUDGET replication.disk_budget.
// Values follow the file's rules: durations like "30s", sizes like
// "64MiB", numbers as YAML reads them; strings are taken literally;
// lists (node.p2p) are comma-separated, and an empty value is an empty
// list. A variable set to "" sets an empty string or list.
//
// A MIRRORD_* variable that looks like a setting but is none is an
// error naming it: its section is known but its key is not
// (MIRRORD_NODE_FOO), or it ends with a known key under a wrong or
// missing section (MIRRORD_DATA, MIRRORD_REPLICATON_DISK_BUDGET).
// MIRRORD_SERVER, MIRRORD_TOKEN, MIRRORD_CA and MIRRORD_REPORT_INTERVAL are not
// settings and are ignored, as is every other MIRRORD_* name. The first
// occurrence of a repeated name wins, as with os.Getenv. ApplyEnv does
// not validate c; all problems are reported together.
func (c *Config) ApplyEnv(environ []string) error {
	settings, _ := envTable()
	root := reflect.ValueOf(c).Elem()
	var errs []error
	seen := map[string]bool{}
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || seen[name] {
			continue
		}
		seen[name] = true
		s, known := settings[name]
		if !known {
			if err := unknownEnv(name); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := setValue(root.FieldByIndex(s.index), value); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", name, s.key, err))
		}
	}
	return errors.Join(errs...)
}

// unknownEnv returns an error when name (not a setting variable) looks
// like one, nil when it is some other MIRRORD_* variable.
func unknownEnv(name string) error {
	if envIgnored[name] {
		return nil
	}
	settings, sections := envTable()
	rest := strings.TrimPrefix(name, EnvPrefix)
	first, tail, _ := strings.Cut(rest, "_")
	if sections[first] {
		if tail == "" {
			return fmt.Errorf("%s: %s is a section, not a setting (set MIRRORD_%s_<KEY>)", name, strings.ToLower(first), first)
		}
		return fmt.Errorf("%s: the %s section has no key %q (settings: %s)", name, strings.ToLower(first), strings.ToLower(tail), sectionVars(first))
	}
	// A known key under a wrong or missing section.
	var guesses []string
	for n := range settings {
		key := strings.TrimPrefix(n, EnvPrefix)
		_, k, _ := strings.Cut(key, "_")
		if k == rest || k == tail {
			guesses = append(guesses, n)
		}
	}
	if len(guesses) == 0 {
		return nil
	}
	sort.Strings(guesses)
	return fmt.Errorf("%s is not a setting; did you mean %s?", name, strings.Join(guesses, " or "))
}

// sectionVars lists the variables of one section (upper-case name).
func sectionVars(section string) string {
	var names []string
	for _, n := range EnvNames() {
		if strings.HasPrefix(n, EnvPrefix+section+"_") {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// setValue parses value into v by the rules of ApplyEnv.
func setValue(v reflect.Value, value string) error {
	if isText(v.Type()) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(value))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(value)
		return nil
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			break
		}
		items := []string{}
		for item := range strings.SplitSeq(value, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
		return nil
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if strings.TrimSpace(value) == "" {
			return fmt.Errorf("empty value (want a %s; unset the variable to keep the file's value)", kindWord(v.Kind()))
		}
		// The YAML decoder resolves the scalar, as in a file.
		n := &yaml.Node{Kind: yaml.ScalarNode, Value: strings.TrimSpace(value)}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return fmt.Errorf("%q is not a %s", value, kindWord(v.Kind()))
		}
		return nil
	}
	return fmt.Errorf("type %s cannot be set from the environment", v.Type())
}

func kindWord(k reflect.Kind) string {
	switch {
	case k == reflect.Bool:
		return "boolean (true or false)"
	case k >= reflect.Int && k <= reflect.Int64:
		return "whole number"
	case k >= reflect.Uint && k <= reflect.Uint64:
		return "non-negative whole number"
	}
	return "number"
}
