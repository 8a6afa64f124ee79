// Package replication makes every committed release's blocks local to
// the node: a Replicator follows the replicated state, fetches the
// objects each release references over the block store's exchange
// (retrying with backoff), scrubs what it holds, collects unreferenced
// blocks and keeps the store within its disk budget and free-space
// margin. Files: replicator.go (New, Run, scheduling and fetches),
// scrub.go, disk.go (GC, budget, DiskStatus) and progress.go
// (ReleaseProgress for status pages and metrics).
//
// New does no I/O; Run(ctx) blocks until ctx ends and waits for the
// fetches it started.
//
// replication imports content and consensus/state; it must not import
// node/cluster, resolver or cmd/mirrord.
package replication
