/* SPDX-License-Identifier: MIT */
/*
 * outbox: delivering accepted writes to the API exactly once.
 *
 * A write is first stored as an outbox row (durably: store_outbox.c commits
 * outbox changes with synchronous=FULL), then sent. A row is marked "sending"
 * before its request leaves, and a POST stays in that state after any
 * failure but a 4xx answer (no answer, a cut body, a 5xx from a gateway
 * that gave up after the backend acted): it may or may not have landed, so
 * it is checked against the API before any resend (the landed hook); a
 * check that fails leaves it "sending". Transient failures are retried by
 * a worker thread with capped backoff, also across unmounts; definite
 * refusals (4xx) are dropped with an error line naming the path, except a
 * 401 met by a row whose close() returned 0 (or by its landed check): the
 * token was refused, not the write, so the row stays and the worker sends
 * nothing for a pause that doubles up to 5 minutes (said once in the error
 * log). Outbox calls get no retries within the call: a row that may have
 * landed waits a grace period before it is sent or checked again, and a
 * row that is checked gets that grace from before its request leaves.
 *
 * Rows with one ordering key (outbox_row.object) are sent in the order
 * they were stored, whatever retries they meet: a close() finding an older
 * row of its object queued leaves its own row queued behind it.
 */
#ifndef DRIFTFS_OUTBOX_H
#define DRIFTFS_OUTBOX_H

#include <stdint.h>

#include "buf.h"
#include "driftfs.h"
#include "store.h"

struct outbox;

/*
 * What the outbox asks of the layers around it, wired by main.c: commit
 * (commit_landed.c) tells what a row means and brings the cache up to date
 * after it; the FUSE side drops the kernel's copies a row changes
 * (src/fs/notify.c) and the versions writers read (src/fs/read_base.c).
 * The outbox includes neither.
 *
 * Threads: the hooks run on the outbox worker, on a FUSE thread inside
 * close()/fsync()/rename() (outbox_submit(), through commit_write(), with
 * that handle's lock held) or unlink() (outbox_cancel()), and at start
 * (object_key). Every hook but object_key runs with send_lock held: none
 * may call outbox_submit() or outbox_cancel() (send_lock is not recursive),
 * and a hook that waits on another thread must not wait on one that may be
 * in outbox_submit(). send_lock comes before every lock the hooks take
 * (the store's, sync's, fs.c's node table and versions locks, http's).
 */
struct outbox_hooks {
	/*
	 * Whether sending row again does no harm whether or not it landed
	 * (commit_idempotent()). Pure: no store, no HTTP, no lock.
	 */
	int (*idempotent)(const struct outbox_row *row);
	/* Whether row deletes something (commit_is_delete()). Pure. */
	int (*is_delete)(const struct outbox_row *row);
	/*
	 * Whether a POST that may have landed is checked with landed()
	 * before it is sent again (commit_checked()). Pure.
	 */
	int (*checked)(const struct outbox_row *row);
	/*
	 * For a row that may have landed: 1 if it did (an answer holding the
	 * found object's id appended to found), 0 if not, -errno if that
	 * cannot be told now (commit_landed() says which). Asks the API
	 * (blocks up to its deadlines) and reads the store's meta table.
	 */
	int (*landed)(void *ctx, const struct outbox_row *row,
		      struct buf *found);
	/*
	 * The API took row (response: its answer, or what landed() found):
	 * brings the cache up to date (commit_applied()): store writes, and
	 * refetches of what the row changed, over HTTP on the calling thread
	 * (with send_lock held: a slow API holds back the next send).
	 */
	void (*applied)(void *ctx, const struct outbox_row *row,
			const struct buf *response);
	/*
	 * The ordering key of a row of kind about target, for rows stored by
	 * a version that kept none (commit_object_key(); malloc'd, NULL when
	 * out of memory). Called by outbox_start() from inside
	 * store_outbox_each(), which holds the store's outbox lock: it must
	 * not use the store. Pure.
	 */
	char *(*object_key)(const char *kind, int64_t target);
	/*
	 * The outbox gained or lost a row (fs_outbox_changed(): its listing
	 * is invalidated). May be NULL. It runs inside close() and unlink()
	 * with send_lock held, so it must be short and must not wait on
	 * the outbox: fs_outbox_changed() takes the fs node table lock
	 * (after send_lock in driftfs.h's order) and asks the kernel to
	 * drop the listing, which does not wait on a FUSE request.
	 */
	void (*changed)(void *ctx);
	/*
	 * A row was delivered (fs_outbox_delivered()), after applied(). May
	 * be NULL.
	 */
	void (*delivered)(void *ctx);
	/*
	 * A row will not land: refused, dropped unchecked or cancelled
	 * (fs_outbox_lost()). May be NULL.
	 */
	void (*lost)(void *ctx);
	/*
	 * The API answered 404 for row: what it was about may be gone from
	 * Drift. Refetches it (commit_gone()), so the cache drops it at
	 * once if so. Runs like applied(): send_lock held, HTTP on the
	 * calling thread. May be NULL.
	 */
	void (*gone)(void *ctx, const struct outbox_row *row);
	void *ctx;		/* passed to the hooks that take one */
};

/*
 * A new outbox for d; hooks is copied (landed, applied, idempotent,
 * is_delete, checked and object_key are required). NULL with errno ENOMEM.
 * outbox_new, outbox_start, outbox_stop and outbox_free belong to the
 * thread that owns the mount (main.c): new before any thread starts, start
 * once the store and the hooks' targets exist (it names legacy rows and
 * starts the worker; 0 or -errno), stop before anything the hooks reach is
 * freed (joins the worker; a no-op if it never started), free after stop
 * (NULL is accepted).
 */
struct outbox *outbox_new(struct driftfs *d, const struct outbox_hooks *hooks);
void outbox_free(struct outbox *o);
int outbox_start(struct outbox *o);
void outbox_stop(struct outbox *o);

/*
 * Stores row (sets row->seq), then tries to deliver it now. Returns 0 when
 * the API accepted it (its answer in *response), -EINPROGRESS when it is
 * queued after a transient failure, or the -errno of a definite refusal
 * (the row is then gone). Called on a FUSE thread through commit_write()
 * (maybe with a handle's lock held: commit.h); takes send_lock.
 */
int outbox_submit(struct outbox *o, struct outbox_row *row,
		  struct buf *response);
/* Drops a pending row (unlink of .driftfs/outbox/<n>.json). */
int outbox_cancel(struct outbox *o, int64_t seq);

#endif
