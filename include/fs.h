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

#endif
