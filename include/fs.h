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
 *
 * The code is src/fs/ (one file a concept; see src/fs/fs_int.h for what
 * they share, the threads, and the lock order); which nodes a change
 * touches is the tree's (tree.h, tree_touch_*).
 */
#ifndef DRIFTFS_FS_H
#define DRIFTFS_FS_H

#include <stddef.h>

#include "driftfs.h"
#include "sync.h"

struct fuse_session;
struct fuse_lowlevel_ops;

/*
 * Main's thread. fs_new returns NULL (errno set) when out of memory; d
 * must outlive the struct fs. fs_free (NULL accepted) stops the notifier
 * if fs_stop has not, and frees every node, handle, scratch file and
 * queued change left; no FUSE worker may run then.
 */
struct fs *fs_new(struct driftfs *d);
void fs_free(struct fs *f);
/* The handlers for fuse_session_new(); their userdata is the struct fs.
 * They run on FUSE worker threads (src/fs/fs_int.h, Threads). */
const struct fuse_lowlevel_ops *fs_ops(void);
/* Starts the notifier once the session exists (before the loop): 0 or
 * -errno. fs_stop joins it (after the loop; a no-op if not started). */
int fs_start(struct fs *f, struct fuse_session *se);
void fs_stop(struct fs *f);
/* The session runs one thread (-s), set before fs_start: neither a ctl
 * command nor a close() waits for the notifier then, whose invalidations
 * may wait on a kernel lock held by a request queued behind it
 * (fs_notifier_drain). */
void fs_set_single_thread(struct fs *f, int single);
/*
 * The sync change callback (ctx is the struct fs), on whichever thread
 * stored the change (the sync thread, its workers, a FUSE thread's
 * on-demand fetch, the outbox worker's refetch; several at once):
 * queues a copy of the n changes for the notifier and returns at once
 * (takes only the queue lock; a change it has no memory for is dropped).
 */
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
