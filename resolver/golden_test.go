package resolver

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mirrord/consensus/state"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected outputs in testdata/*.txt")

// TestGolden runs the scenario scripts in testdata/*.txt. Each script
// is a sequence of directives separated by blank lines; lines starting
// with "#" are comments:
//
//	command args...
//	input lines (optional, usually JSON)
//	----
//	expected output
//
// Commands build one app's state and query it:
//
//	app [id=ID] [key_id=K]  start a new empty app ("app nil": no app)
//	channel NAME            create or edit a channel: input JSON is merged
//	                        onto it (new channels get Capgo's defaults)
//	release VERSION         create or edit a plain release with a zip
//	device ID [CHANNEL]     set (or, without CHANNEL, remove) an override
//	request                 set the base request (input JSON)
//	resolve                 Resolve with input JSON merged onto the base
//	channel-set|channel-get|channel-list|channel-delete
//	                        the channel_self answers, same input rule
//
// Run `go test ./resolver -rewrite` to regenerate the outputs, then
// review the diff.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt scripts")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) { runScript(t, path) })
	}
}

// script is the state a scenario script builds up.
type script struct {
	app  *state.AppState
	base Request
}

func runScript(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if n := len(lines); n > 0 && lines[n-1] == "" {
		lines = lines[:n-1]
	}
	var (
		out bytes.Buffer
		s   script
	)
	for i := 0; i < len(lines); {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			i++
			continue
		}
		at := fmt.Sprintf("%s:%d", path, i+1)
		header := line
		i++
		var input []string
		for i < len(lines) && lines[i] != "----" {
			input = append(input, lines[i])
			i++
		}
		if i == len(lines) {
			t.Fatalf("%s: %q has no ---- line", at, header)
		}
		i++
		var expected []string
		for i < len(lines) && strings.TrimSpace(lines[i]) != "" {
			expected = append(expected, lines[i])
			i++
		}
		actual, err := s.run(header, strings.Join(input, "\n"))
		if err != nil {
			t.Fatalf("%s: %s: %v", at, header, err)
		}
		out.WriteString(header + "\n")
		for _, l := range input {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n" + actual + "\n")
		if want := strings.Join(expected, "\n"); !*rewrite && want != actual {
			t.Errorf("%s: %s\ngot:  %s\nwant: %s", at, header, actual, want)
		}
	}
	if *rewrite {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// run executes one directive and returns its output.
func (s *script) run(header, input string) (string, error) {
	fields := strings.Fields(header)
	cmd, args := fields[0], fields[1:]
	switch cmd {
	case "app":
		if len(args) == 1 && args[0] == "nil" {
			s.app = nil
			return "ok", nil
		}
		s.app = &state.AppState{
			App:      state.App{ID: testAppID},
			Channels: map[string]*state.Channel{},
			Releases: map[string]*state.Release{},
			Devices:  map[string]state.DeviceOverride{},
		}
		for _, a := range args {
			k, v, _ := strings.Cut(a, "=")
			switch k {
			case "id":
				s.app.App.ID = v
			case "key_id":
				s.app.App.KeyID = v
			default:
				return "", fmt.Errorf("unknown app argument %q", a)
			}
		}
		return "ok", nil

	case "channel":
		if err := s.needApp(args, 1); err != nil {
			return "", err
		}
		c := s.app.Channels[args[0]]
		if c == nil {
			nc := state.NewChannel(args[0])
			s.app.NextChannelID++
			nc.ID = s.app.NextChannelID
			c = &nc
			s.app.Channels[args[0]] = c
		}
		return "ok", merge(input, c)

	case "release":
		if err := s.needApp(args, 1); err != nil {
			return "", err
		}
		r := s.app.Releases[args[0]]
		if r == nil {
			r = testRelease(args[0])
			r.App = s.app.App.ID
			s.app.Releases[args[0]] = r
		}
		return "ok", merge(input, r)

	case "device":
		if s.app == nil || len(args) < 1 || len(args) > 2 {
			return "", fmt.Errorf("usage: device ID [CHANNEL], after app")
		}
		if len(args) == 1 {
			delete(s.app.Devices, args[0])
		} else {
			s.app.Devices[args[0]] = state.DeviceOverride{Channel: args[1]}
		}
		return "ok", nil

	case "request":
		s.base = Request{}
		return "ok", merge(input, &s.base)

	case "resolve", "channel-set", "channel-get", "channel-list", "channel-delete":
		req := s.base
		if req.KeyID != nil {
			k := *req.KeyID
			req.KeyID = &k
		}
		if err := merge(input, &req); err != nil {
			return "", err
		}
		switch cmd {
		case "resolve":
			return renderDecision(Resolve(s.app, req)), nil
		case "channel-set":
			return renderAnswer(ChannelSet(s.app, req)), nil
		case "channel-get":
			return renderAnswer(ChannelGet(s.app, req)), nil
		case "channel-list":
			return renderAnswer(ChannelList(s.app, req)), nil
		default:
			return renderAnswer(ChannelDelete(s.app, req)), nil
		}
	}
	return "", fmt.Errorf("unknown command %q", cmd)
}

func (s *script) needApp(args []string, n int) error {
	if s.app == nil {
		return fmt.Errorf("no app: use the app command first")
	}
	if len(args) != n {
		return fmt.Errorf("want %d argument(s), got %d", n, len(args))
	}
	return nil
}

// merge decodes the JSON input (if any) onto v, refusing unknown keys.
func merge(input string, v any) error {
	if strings.TrimSpace(input) == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(input))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// renderDecision writes a Decision as one line of JSON, naming the
// release by its version.
func renderDecision(d Decision) string {
	view := struct {
		Error   string `json:"error,omitempty"`
		Message string `json:"message,omitempty"`
		Kind    string `json:"kind,omitempty"`
		Version string `json:"version,omitempty"`
		Old     string `json:"old,omitempty"`
		Major   bool   `json:"major,omitempty"`
		Release string `json:"release,omitempty"`
		Channel string `json:"channel,omitempty"`
		Revert  bool   `json:"revert,omitempty"`
	}{
		Error: d.Error, Message: d.Message, Kind: d.Kind, Version: d.Version, Old: d.Old,
		Major: d.Major, Channel: d.Channel, Revert: d.Revert,
	}
	if d.Release != nil {
		view.Release = d.Release.Version
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(view); err != nil {
		return "marshal error: " + err.Error()
	}
	return strings.TrimSuffix(b.String(), "\n")
}
