/* SPDX-License-Identifier: MIT */
/*
 * commit: what the bytes written to a file of the tree mean to the API.
 *
 * DESIGN.md §4 as code: each writable node kind has a parser and validator
 * that turn the new content into the minimal API call(s), which go through
 * the outbox. Invalid content (bad JSON, a read-only or unknown field, a
 * wrong type) is refused with -EINVAL before anything is stored or sent,
 * with an error line naming the field and the reason.
 */
#ifndef DRIFTFS_COMMIT_H
#define DRIFTFS_COMMIT_H

#include <stddef.h>

#include "buf.h"
#include "driftfs.h"
#include "store.h"
#include "tree.h"

/*
 * Commits data as the new content of node n (found at path). Returns 0
 * when accepted (sent, or queued after a transient failure), -EINVAL when
 * invalid, the mapped errno of an API refusal, -EACCES/-EPERM for a node
 * that cannot be written.
 */
int commit_write(struct driftfs *d, const struct tnode *n, const char *path,
		 const char *data, size_t len);
/* Deletes the object behind n (unlink/rmdir). */
int commit_delete(struct driftfs *d, const struct tnode *n, const char *path);

/* After the API accepted row: bring the cache up to date at once. */
void commit_applied(struct driftfs *d, const struct outbox_row *row,
		    const struct buf *response);
/*
 * For a row that may have landed (its request left, no answer came):
 * 1 if the API shows it did, 0 if it shows it did not, -errno if that
 * cannot be told now.
 */
int commit_landed(struct driftfs *d, const struct outbox_row *row);

#endif
