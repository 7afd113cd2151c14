/* SPDX-License-Identifier: MIT */
/*
 * ctl: the control plane under .driftfs/: the status, stats and errors
 * files, and the commands written to .driftfs/ctl.
 *
 * Called on FUSE threads (a read of one of the files renders it whole into
 * the handle; each complete line written to ctl runs as it is written, and
 * an unterminated last line at flush), with no lock of the FUSE side held.
 * Every function returns 0 or -errno and appends to out, which stays the
 * caller's. The renderers take, each for a few statements, the sync's
 * state lock (with the store's pool lock inside it), the store's pool and
 * outbox locks, the HTTP governor's lock, the log ring's and the stats
 * lock. ctl_command's "sync" blocks its thread until the pass ends (up to
 * CTL_SYNC_WAIT_MS), and "sync PATH" for one fetch.
 */
#ifndef DRIFTFS_CTL_H
#define DRIFTFS_CTL_H

#include "buf.h"
#include "driftfs.h"

/*
 * The time the control files show: the last event that can have changed
 * them (a request, an error, a sync pass starting or ending), so their
 * size and time stay put while nothing happens.
 */
int64_t ctl_mtime(struct driftfs *d);
int ctl_status(struct driftfs *d, struct buf *out);
int ctl_stats(struct driftfs *d, struct buf *out);
int ctl_errors(struct driftfs *d, struct buf *out);

/*
 * How long a "sync" command waits for its pass; driftctl sync, polling a
 * read-only mount it signalled, waits as long.
 */
#define CTL_SYNC_WAIT_MS (10L * 60 * 1000)

/*
 * Runs the commands in text, one a line: "sync" (a full pass, waited for),
 * "sync PATH" (refetch the object behind a tree path), "offline", "online".
 * Returns 0, or the first failure (-EINVAL for an unknown command).
 */
int ctl_command(struct driftfs *d, const char *text, size_t len);

#endif
