package adminapi

import (
	"context"
	"net/http"
	"strings"

	"mirrord/consensus"
	"mirrord/consensus/state"
)

// BulkDevicesRequest is the body of POST /admin/v1/apps/{app}/devices:
// rows of device -> channel and/or pinned release, or removals. Every
// row is checked before the first is written; then the rows go into
// raft entries of state.MaxDeviceBatch rows, in order, each all or
// nothing. With ?dry_run=true the rows are only checked.
//
// A request is bounded by limits.max_admin_body_bytes; `mirrord device
// import` sends a file of any size as requests of one entry each, all
// checked (dry run) before the first is sent for real.
type BulkDevicesRequest struct {
	Devices []state.DeviceEntry `json:"devices"`
	// FirstRow is the number of the first row in errors and answers
	// (default 1), so that a client sending a file in parts gets errors
	// numbered as in the whole file.
	FirstRow int `json:"first_row,omitempty"`
}

// BulkDevicesAnswer tells what happened to the rows of a request.
type BulkDevicesAnswer struct {
	// Checked is the number of rows checked (all of them, or the error
	// answer names the first bad row).
	Checked int `json:"checked"`
	// Applied is the number of rows written, Batches the raft entries
	// they took; both 0 for a dry run.
	Applied int  `json:"applied"`
	Batches int  `json:"batches"`
	DryRun  bool `json:"dry_run,omitempty"`
}

// BulkDevices checks every row of req, then (unless dryRun) writes them
// in raft entries of state.MaxDeviceBatch rows.
func (a *API) BulkDevices(ctx context.Context, appID string, req BulkDevicesRequest, dryRun bool) (_ BulkDevicesAnswer, err error) {
	defer classifyErr(&err)
	app, err := a.app(appID)
	if err != nil {
		return BulkDevicesAnswer{}, err
	}
	if len(req.Devices) == 0 {
		return BulkDevicesAnswer{}, bad("devices is empty")
	}
	first := req.FirstRow
	if first == 0 {
		first = 1
	}
	if first < 1 {
		return BulkDevicesAnswer{}, bad("first_row %d: want 1 or more", req.FirstRow)
	}
	for i, d := range req.Devices {
		if err := checkDeviceRow(app, d); err != nil {
			row := first + i
			e := newError(http.StatusBadRequest, "invalid", "row %d (device %q): %s", row, d.DeviceID, err)
			e.Row = row
			return BulkDevicesAnswer{}, e
		}
	}
	out := BulkDevicesAnswer{Checked: len(req.Devices), DryRun: dryRun}
	if dryRun {
		return out, nil
	}
	return a.applyDevices(ctx, app.App.ID, req.Devices, first, out)
}

// applyDevices writes checked rows, numbered from first, in batches.
func (a *API) applyDevices(ctx context.Context, app string, rows []state.DeviceEntry, first int, out BulkDevicesAnswer) (BulkDevicesAnswer, error) {
	for start := 0; start < len(rows); start += state.MaxDeviceBatch {
		end := min(start+state.MaxDeviceBatch, len(rows))
		if err := a.apply(ctx, consensus.DevicesSet{App: app, Devices: rows[start:end]}); err != nil {
			if out.Applied > 0 {
				return BulkDevicesAnswer{}, newError(http.StatusConflict, "partial",
					"rows %d-%d were applied in %d raft entries, rows %d-%d were not: %v (sending the same rows again is safe: a row sets the same override again)",
					first, first+out.Applied-1, out.Batches, first+out.Applied, first+len(rows)-1, err)
			}
			return BulkDevicesAnswer{}, err
		}
		out.Applied = end
		out.Batches++
	}
	return out, nil
}

func (a *API) httpBulkDevices(r *http.Request) (int, any, error) {
	if _, err := a.pathApp(r); err != nil {
		return 0, nil, err
	}
	dry, err := boolQuery(r, "dry_run", false)
	if err != nil {
		return 0, nil, err
	}
	var req BulkDevicesRequest
	if err := a.decode(r, &req); err != nil {
		return 0, nil, err
	}
	out, err := a.BulkDevices(r.Context(), r.PathValue("app"), req, dry)
	return http.StatusOK, out, err
}

// checkDeviceRow gives early, row-numbered errors for a bulk import.
func checkDeviceRow(app *state.AppState, d state.DeviceEntry) error {
	id := strings.TrimSpace(d.DeviceID)
	switch {
	case id == "":
		return errString("empty device id")
	case len(id) > 64:
		return errString("device id longer than 64 characters")
	case d.Remove:
		return nil
	case d.Channel == "" && d.Version == "":
		return errString("give a channel, a version, or both")
	case d.Channel != "" && app.Channels[d.Channel] == nil:
		return errString("channel " + d.Channel + " not found")
	case d.Version != "" && d.Version != state.Builtin && app.Releases[d.Version] == nil:
		return errString("release " + d.Version + " not found")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }
