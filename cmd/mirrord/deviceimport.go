package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"mirrord/consensus/state"
	"mirrord/node/adminapi"
)

func init() {
	register(command{name: "device import", args: "APP_ID FILE.csv", help: "Set many device overrides from a CSV file: device_id,channel[,version] per line\n(a header line naming those columns is allowed; '#' starts a comment). With --remove, the\nfile lists device ids whose overrides are removed. Every row is checked before anything is\nwritten; then the file is applied in parts of 10,000 rows, one raft entry each. If a part\nfails, the rows applied so far are named, and running the same file again is safe.", setup: withOptions(cmdDeviceImport)})
}

type deviceImportOptions struct {
	clientOptions
	remove bool
}

func (o *deviceImportOptions) bind(fs *flag.FlagSet) {
	o.clientOptions.bind(fs)
	fs.BoolVar(&o.remove, "remove", false, "remove the listed devices' overrides instead")
}

// Device imports go to the node in parts of at most importPartRows rows
// (one raft entry each) and importPartBytes of JSON, which fits the
// smallest limits.max_admin_body_bytes a node accepts.
const (
	importPartRows  = state.MaxDeviceBatch
	importPartBytes = 1<<20 - 16<<10
)

// importParts splits rows into [start, end) ranges of at most maxRows
// rows and about maxBytes of JSON each.
func importParts(rows []state.DeviceEntry, maxRows, maxBytes int) [][2]int {
	var parts [][2]int
	start, size := 0, 0
	for i, r := range rows {
		b, _ := json.Marshal(r)
		n := len(b) + 1
		if i > start && (i-start == maxRows || size+n > maxBytes) {
			parts = append(parts, [2]int{start, i})
			start, size = i, 0
		}
		size += n
	}
	if start < len(rows) {
		parts = append(parts, [2]int{start, len(rows)})
	}
	return parts
}

// testHookImportPart, when set (by tests), runs after each part of a
// device import is applied, with the part's index.
var testHookImportPart func(part int)

// cmdDeviceImport sends a CSV file of any size in parts: first every
// part as a dry run, so a bad row anywhere stops the import before
// anything is written, then every part for real, each one raft entry
// (all or nothing). A failure after some parts leaves those applied and
// says which rows they were; running the same file again is safe.
func cmdDeviceImport(ctx context.Context, env *cmdEnv, o *deviceImportOptions) error {
	if err := env.needArgs(2, "APP_ID FILE.csv"); err != nil {
		return err
	}
	file := env.args[1]
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, lines, err := readDeviceCSV(f, o.remove)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	parts := importParts(rows, importPartRows, importPartBytes)
	send := func(p [2]int, dryRun bool) (adminapi.BulkDevicesAnswer, error) {
		// first_row is always set: a node too old to know it refuses
		// the body instead of taking the dry run for a real import.
		req := adminapi.BulkDevicesRequest{Devices: rows[p[0]:p[1]], FirstRow: p[0] + 1}
		ans, err := c.BulkDevices(ctx, env.args[0], req, dryRun)
		var ae *adminapi.Error
		if errors.As(err, &ae) && ae.Row > 0 && ae.Row <= len(lines) {
			err = fmt.Errorf("line %d: %w", lines[ae.Row-1], err)
		}
		return ans, err
	}
	rowsLines := func(from, to int) string { // 0-based, inclusive
		return fmt.Sprintf("rows %d-%d (lines %d-%d)", from+1, to+1, lines[from], lines[to])
	}
	fmt.Fprintf(env.stderr, "checking %d rows of %s...\n", len(rows), file)
	for _, p := range parts {
		if _, err := send(p, true); err != nil {
			return fmt.Errorf("%s: %w (nothing was written)", file, err)
		}
	}
	out := adminapi.BulkDevicesAnswer{Checked: len(rows)}
	for i, p := range parts {
		ans, err := send(p, false)
		if err != nil {
			if out.Applied == 0 {
				return fmt.Errorf("%s: %w (nothing was written)", file, err)
			}
			return fmt.Errorf("%s: %s were applied in %d raft entries, %s were not: %w\n"+
				"running the same file again is safe: applied rows set the same overrides again",
				file, rowsLines(0, p[0]-1), out.Batches, rowsLines(p[0], len(rows)-1), err)
		}
		out.Applied += ans.Applied
		out.Batches += ans.Batches
		fmt.Fprintf(env.stderr, "applied %s: part %d of %d\n", rowsLines(p[0], p[1]-1), i+1, len(parts))
		if testHookImportPart != nil {
			testHookImportPart(i)
		}
	}
	if o.json {
		return printJSON(env.stdout, out)
	}
	verb := "set"
	if o.remove {
		verb = "removed"
	}
	fmt.Fprintf(env.stdout, "%s %d device override(s) of %s in %d raft entr(ies)\n", verb, out.Applied, env.args[0], out.Batches)
	return nil
}

// readDeviceCSV parses device_id,channel[,version] rows (or bare ids
// with remove) and returns them with the line each starts on. Line
// numbers count from 1.
func readDeviceCSV(r io.Reader, remove bool) ([]state.DeviceEntry, []int, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	var out []state.DeviceEntry
	var lines []int
	for first := true; ; first = false {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		line, _ := cr.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if first && strings.EqualFold(rec[0], "device_id") {
			continue // header
		}
		if len(rec) > 3 {
			return nil, nil, fmt.Errorf("line %d: %d columns; want device_id,channel[,version]", line, len(rec))
		}
		e := state.DeviceEntry{DeviceID: rec[0], Remove: remove}
		if rec[0] == "" {
			return nil, nil, fmt.Errorf("line %d: empty device id", line)
		}
		if !remove {
			if len(rec) > 1 {
				e.Channel = rec[1]
			}
			if len(rec) > 2 {
				e.Version = rec[2]
			}
			if e.Channel == "" && e.Version == "" {
				return nil, nil, fmt.Errorf("line %d: device %s has neither a channel nor a version", line, rec[0])
			}
		}
		out = append(out, e)
		lines = append(lines, line)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no device rows")
	}
	return out, lines, nil
}
