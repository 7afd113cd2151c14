/* SPDX-License-Identifier: MIT */
/*
 * fs: the FUSE low-level operations over tree.c, and kernel-cache
 * invalidation driven by sync changes.
 *
 * The low-level API is used (not the path-based one) because driftfs needs
 * inode control: stable inode numbers derived from ids, readdirplus with full
 * attributes, and invalidation of exactly the inodes and entries a sync
 * changed, which is what lets entry/attr/page-cache timeouts be long.
 *
 * Directories have no handles where the kernel allows it (no OPENDIR or
 * RELEASEDIR round trips); it then caches every listing, so the outbox's
 * listing is invalidated whenever a row comes or goes (fs_outbox_changed).
 *
 * The node table maps each inode the kernel knows (lookup count > 0) to its
 * tree node. Invalidations are queued and sent by a notifier thread, never
 * from inside a request handler (a lookup holds the directory lock that an
 * entry invalidation needs) and never with the node table locked.
 */
#ifndef DRIFTFS_FS_H
#define DRIFTFS_FS_H

#include <stddef.h>

#include "driftfs.h"
#include "sync.h"

struct fuse_session;
struct fuse_lowlevel_ops;

struct fs *fs_new(struct driftfs *d);
void fs_free(struct fs *f);
const struct fuse_lowlevel_ops *fs_ops(void);
/* Starts the notifier once the session exists (before the loop). */
int fs_start(struct fs *f, struct fuse_session *se);
void fs_stop(struct fs *f);
/* The sync change callback (ctx is the struct fs). */
void fs_on_change(void *ctx, const struct sync_change *c, size_t n);
/*
 * The outbox gained or lost a row: drops the kernel's copy of its listing,
 * at once (an inode invalidation takes no directory lock, so this is safe
 * from a request handler). f may be NULL (driftctl has no mount).
 */
void fs_outbox_changed(struct fs *f);
/*
 * A queued write will not land (the API refused it, or it was cancelled):
 * the versions writers committed while queued stop being their base, so
 * their next save sends all of its changes again. Any thread; takes only
 * the versions' lock.
 */
void fs_outbox_lost(struct fs *f);
/*
 * A queued write landed: the marked versions stop being marked (a later
 * refusal of another write must not drop them). Coarse: a version of a
 * write still queued loses its mark too, and then stays a base even if
 * that write is refused later. Any thread; takes only the versions' lock.
 */
void fs_outbox_delivered(struct fs *f);

#endif
