/* SPDX-License-Identifier: MIT */
/*
 * driftfs: the pieces of one running mount, wired together by main.c.
 *
 * Lock order, for every module, outermost first. A thread holding a lock
 * may take only locks further down this list; each module's header (or
 * *_int.h) says which of its functions take which. Locks at the same
 * number are never held together.
 *
 *  1. A handle's lock (fs_int.h: struct handle.lock), held across the
 *     commit at close()/fsync(), so everything commit and the outbox take
 *     nests inside it.
 *  2. The outbox's send_lock (outbox.c), held across one row's request,
 *     its landed check and the hooks (outbox.h): commit's refetches
 *     (HTTP, store writes), the fs versions and node table locks.
 *  3. The sync's pass_lock (sync_int.h), held across a whole pass.
 *  4. The account gate's gate_lock (account.h), held across its
 *     token_info request and its store read.
 *  5. SQLite's write lock on cache.db: from store_begin() to its commit,
 *     or one writer statement.
 *  6. The sync's state lock s->lock (sync_int.h), taken inside a store
 *     write (sync_written_since in sync_list, sync_conversation and
 *     sync_save_contact; the fetches in flight, sync_fetch_overtaken, in
 *     all three and a user's save) and never held across one.
 *  7. The store's blob lock (store_int.h), taken by a transaction that
 *     holds the write lock, while it places its files.
 *  8. The store's outbox lock, then outbox.db's SQLite write lock
 *     (store_outbox.c); never held with the pool lock (12).
 *  9. The token source's lock (auth.c), held across a refresh's HTTP
 *     exchange, then the credentials file's flock.
 * 10. The fs node table lock (fs_int.h: struct fs.lock). The first error
 *     event a FUSE request logs (log_error_event(), naming the request's
 *     path) takes it, unless the thread holds it already, so it comes
 *     after each lock held where such an error can be logged. Under it: the
 *     store's pool lock (a scratch alias's attributes), log and stats.
 * 11. The fs versions lock (fs_int.h: bllock); never held with 10.
 * 12. The store's pool lock (store_int.h), held only to take or return a
 *     connection.
 * 13. HTTP: the governor's lock, the handle pool's lock, the endpoint
 *     names' lock (http_int.h, http_endpoint.c); each a leaf.
 * 14. The log ring's lock (log.c) and the stats lock (stats.c): leaves.
 *
 * Leaves of the FUSE side, held for a few statements with no other lock
 * taken under them: the notifier's queue lock (qlock; the notifier takes
 * it and the node table lock one at a time, never together), the handle
 * list's (hlock), the listings' (llock), the rendered slots' (rlock).
 * Leaves elsewhere: the outbox's own lock (stop, kick; never held with
 * send_lock), a worker pool's lock (sync_int.h), driftctl's progress lock,
 * the search index build's stop lock (search.c), the readiness lock of
 * driftfs's main (READY=1 against STOPPING=1), the lock of the search
 * results kept a moment (tree_search.c; never held over a query).
 *
 * Across processes (flock): the account move's .migrate lock, then
 * sync.lock (driftctl sync), then cache.lock (store_lock.c, shared by
 * every process with the cache open; taken exclusively only at open and
 * close, by a process alone with the cache). The mount note's and the
 * report-calls file's locks are leaves.
 */
#ifndef DRIFTFS_DRIFTFS_H
#define DRIFTFS_DRIFTFS_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define DRIFTFS_NAME "driftfs"
/* FUSE's worker threads at most (driftfs's main); with the sync's conns
 * workers and its other threads, the readers of the cache at once. */
#define DRIFTFS_FUSE_THREADS 16
/* The threads beside those that may read the cache at once: the sync
 * thread, the outbox worker, the kicker. */
#define DRIFTFS_OTHER_THREADS 3

struct store;
struct http;
struct sync;
struct fs;
struct outbox;
struct account;

struct driftfs {
	struct config cfg;
	struct store *store;
	struct http *http;
	struct sync *sync;
	struct outbox *outbox;
	struct fs *fs;		/* the FUSE side; NULL in driftctl */
	uid_t uid;		/* owner shown on every node */
	gid_t gid;
	int64_t started_ms;	/* wall clock at start */
	int read_only;		/* mounted -o ro: nothing can be written */
	/* The org gate (account.h): no data goes to or from the API until
	 * account_gate() says the token is the cache's org. NULL: no gate. */
	struct account *account;
};

#endif
