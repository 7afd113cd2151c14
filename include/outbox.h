/* SPDX-License-Identifier: MIT */
/*
 * outbox: delivering accepted writes to the API exactly once.
 *
 * A write is first stored as an outbox row (durably: store.c commits outbox
 * changes with synchronous=FULL), then sent. A row is marked "sending"
 * before its request leaves, and a POST stays in that state after any
 * failure but a 4xx answer (no answer, a cut body, a 5xx from a gateway
 * that gave up after the backend acted): it may or may not have landed, so
 * it is checked against the API before any resend (commit_landed()); a
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

#include "buf.h"
#include "driftfs.h"
#include "store.h"

struct outbox;

struct outbox *outbox_new(struct driftfs *d);
void outbox_free(struct outbox *o);
int outbox_start(struct outbox *o);
void outbox_stop(struct outbox *o);

/*
 * Stores row (sets row->seq), then tries to deliver it now. Returns 0 when
 * the API accepted it (its answer in *response), -EINPROGRESS when it is
 * queued after a transient failure, or the errno of a definite refusal
 * (the row is then gone).
 */
int outbox_submit(struct outbox *o, struct outbox_row *row,
		  struct buf *response);
/* Drops a pending row (unlink of .driftfs/outbox/<n>.json). */
int outbox_cancel(struct outbox *o, int64_t seq);

#endif
