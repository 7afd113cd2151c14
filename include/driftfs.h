/* SPDX-License-Identifier: MIT */
/*
 * driftfs: the pieces of one running mount, wired together by main.c.
 *
 * Lock order (outermost first), for every module: fs node table lock, then
 * sync state lock, then the store's pool lock, then the HTTP governor and
 * pool locks, then the log ring and stats locks. No module calls outward
 * (upward in this list) while holding its own lock. fs.c's notifier takes
 * its queue lock and the node table lock one at a time, never together,
 * and runs no store query while it holds the node table lock (a lookup
 * would wait behind it). The store's blob lock (store.h) is taken by a
 * transaction that holds SQLite's write lock, and nothing waits for that
 * write lock or the pool lock while holding it.
 */
#ifndef DRIFTFS_DRIFTFS_H
#define DRIFTFS_DRIFTFS_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"

#define DRIFTFS_NAME "driftfs"

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
