package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"mirrord/content"
)

// GC removes blocks that no release references (keeping recent uploads
// for GCGrace).
func (r *Replicator) GC(ctx context.Context) (content.GCResult, error) {
	return r.Collect(ctx, -1)
}

// Collect is GC with another grace period; grace < 0 means GCGrace.
// Grace 0 also removes objects uploaded for a release not created yet
// (a publish running at that moment fails at its release step), not
// those of uploads still running.
func (r *Replicator) Collect(ctx context.Context, grace time.Duration) (content.GCResult, error) {
	if grace < 0 {
		grace = r.cfg.GCGrace
	}
	st := r.cfg.State.State()
	var keep []cid.Cid
	for _, app := range st.Apps {
		for _, rel := range app.Releases {
			for _, s := range rel.CIDs() {
				if c, err := cid.Decode(s); err == nil {
					keep = append(keep, c)
				}
			}
		}
	}
	res, err := r.cfg.Store.GC(ctx, keep, content.GCOptions{Grace: grace})
	if err != nil {
		return res, err
	}
	if res.BlocksRemoved > 0 || res.CacheFilesRemoved > 0 {
		r.log.Info("removed unreferenced blocks", "blocks", res.BlocksRemoved, "bytes", res.BytesFreed, "cache_files", res.CacheFilesRemoved)
	}
	if r.overBudget() {
		d := r.Disk()
		r.log.Warn("block store is over its disk budget or its file system below its free-space margin after GC: uploads are refused until releases are deleted or space is freed",
			"used", d.Used, "budget", d.Budget, "free", d.Free, "min_free", d.MinFree)
	}
	return res, nil
}

// overBudget reports whether the store is past its disk budget or its
// file system has less than the margin free.
func (r *Replicator) overBudget() bool {
	if r.cfg.DiskBudget > 0 {
		if used, err := r.cfg.Store.DiskUsage(); err == nil && used > r.cfg.DiskBudget {
			return true
		}
	}
	sp, err := r.cfg.Store.Space()
	return err == nil && sp.Free < sp.MinFree
}

// ErrOverBudget is returned by CheckBudget when the store is full.
var ErrOverBudget = errors.New("node: block store is over its disk budget")

// ErrLowSpace is returned by CheckBudget when storing would leave less
// than the free-space margin on the store's file system.
var ErrLowSpace = errors.New("node: too little free space on the block store's file system")

// CheckBudget returns ErrOverBudget if storing n more bytes would exceed
// the disk budget, and ErrLowSpace if it would leave less than the
// margin free on the file system (whether or not a budget is set). If
// usage or free space cannot be read it lets the store try.
func (r *Replicator) CheckBudget(n int64) error {
	if r.cfg.DiskBudget > 0 {
		used, err := r.cfg.Store.DiskUsage()
		if err == nil && used+n > r.cfg.DiskBudget {
			return fmt.Errorf("%w: %s used + %s new > budget %s: delete old releases and run `mirrord gc`, or raise replication.disk_budget",
				ErrOverBudget, iec(used), iec(n), iec(r.cfg.DiskBudget))
		}
	}
	what := "storing more"
	if n > 0 {
		what = "storing " + iec(n)
	}
	return r.checkFree(n, what)
}

// checkFree returns ErrLowSpace if storing n more bytes would leave less
// than the margin free; what names the store in the message.
func (r *Replicator) checkFree(n int64, what string) error {
	sp, err := r.cfg.Store.Space()
	if err != nil || sp.Free-n >= sp.MinFree {
		return nil
	}
	return fmt.Errorf("%w: %s free of %s, and %s would leave less than the %s kept free (replication.min_free) for the node's own logs: "+
		"free space on that disk, delete old releases and run `mirrord gc` (--grace 0 also drops uploads no release uses), "+
		"or lower replication.min_free", ErrLowSpace, iec(sp.Free), iec(sp.Size), what, iec(sp.MinFree))
}

// iec formats a byte count for people.
func iec(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/unit, 0
	for (f >= unit || f <= -unit) && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "KMGTP"[i])
}

// DiskStatus is the block store's use of its disk.
type DiskStatus struct {
	Used   int64 `json:"used_bytes"`             // blocks and cache copies
	Budget int64 `json:"budget_bytes,omitempty"` // replication.disk_budget; 0: none
	content.Space
	Error string `json:"error,omitempty"`
}

// Disk reports the block store's use of its disk.
func (r *Replicator) Disk() DiskStatus {
	d := DiskStatus{Budget: r.cfg.DiskBudget}
	var errs []error
	used, err := r.cfg.Store.DiskUsage()
	errs = append(errs, err)
	d.Used = used
	d.Space, err = r.cfg.Store.Space()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		d.Error = err.Error()
	}
	return d
}
