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

/*
 * tree_search.c: search/<query>/ (DESIGN.md §3.1), answered from the
 * index alone (search.h), never the network. The query is the name of
 * the T_SEARCH_QUERY node (and of the nodes under it), decoded.
 * tree_search_lookup: a name in search/ or under a query (-EINVAL, with
 * a line in .driftfs/errors, for an invalid query); tree_search_list: a
 * query's directories; tree_search_link: a result's link target and its
 * object's time; tree_search_hits: hits.txt's bytes, appended to out.
 */
int tree_search_lookup(struct driftfs *d, const struct tnode *dir,
		       const char *name, struct tnode *child,
		       struct tattr *attr);
int tree_search_list(struct driftfs *d, const struct tnode *dir,
		     tree_list_cb cb, void *ctx);
int tree_search_link(struct driftfs *d, const struct tnode *n,
		     struct buf *out, int64_t *mtime);
int tree_search_hits(struct driftfs *d, const struct tnode *n,
		     struct buf *out);

#endif
