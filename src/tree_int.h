/* SPDX-License-Identifier: MIT */
/*
 * tree_int: what tree.c, tree_file.c and tree_dir.c share, and nothing
 * another module may use (include/tree.h is the contract). No locks of its
 * own: the functions that query take the store's, and return 0 or -errno.
 */
#ifndef DRIFTFS_TREE_INT_H
#define DRIFTFS_TREE_INT_H

#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "driftfs.h"
#include "store.h"
#include "tree.h"

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The by-status directories' names, T_STATUS_OPEN onward: as macros for
 * the static tables (tree.c's paths, tree_dir.c's entries), and as one
 * array (in tree.c) for the code. */
#define STATUS_NAME_OPEN "open"
#define STATUS_NAME_CLOSED "closed"
#define STATUS_NAME_PENDING "pending"
#define STATUS_NAME_BULK "bulk_sent"
extern const char *const tree_status_names[T_STATUS_BULK - T_STATUS_OPEN + 1];

/* tree.c: a kind's mode bits and link count. */
mode_t tree_kind_mode(int kind);
unsigned tree_kind_nlink(int kind);

/*
 * tree_file.c: a link node's target into out, and the time it shows into
 * *mtime (that of the object it points to); -ENOENT when that is gone.
 */
int tree_link_target(struct driftfs *d, const struct tnode *n, struct buf *out,
		     int64_t *mtime);
/* .driftfs/outbox/<seq>.json's bytes for row, appended to out. */
int tree_render_outbox_row(const struct outbox_row *row, struct buf *out);

#endif
