/* SPDX-License-Identifier: MIT */
/*
 * account: which Drift org a token belongs to, and which cache serves it.
 *
 * A cache holds one org's data: two orgs in one file would mix their
 * listings, and what one org deletes would never leave (the other's sync
 * does not know it). So each org has a directory of its own,
 *
 *   <cache_dir>/<host>/<orgId>/    cache.db, outbox.db, mount, sync.lock
 *
 * under the API host's directory (config_account_dir()), and cache.db
 * records the org (meta "org_id"), checked on every open.
 *
 * The org comes from the API when it answers (POST /app/token_info, else
 * the orgId of the users GET /users/list returns), asked once at start with
 * no retry and a short deadline (ACCOUNT_CHECK_MS), so a network that does
 * not answer holds no start up. Without an answer, the org the credentials
 * file records (driftctl login writes it), else the one cache there is,
 * serves; with several, the open is refused, naming them.
 *
 * A cache picked without the API's word is served UNVERIFIED: the sync and
 * the outbox send nothing and fetch nothing until account_gate() has heard
 * the API name the token's org (asked again at the start of each sync pass
 * and before each outbox send). If it names another org than the cache's,
 * the gate shuts for good on this mount: nothing of that org enters the
 * cache, no write of the cache's org goes out with its token, and the log,
 * .driftfs/errors and .driftfs/status say so, naming both orgs.
 *
 * A cache from before this layout (cache.db right in <host>/, no org
 * recorded) is moved into the directory of the org its users belong to
 * (read from the old file read-only, never through store_open(), which
 * would rebuild an old schema and lose them), or of the token's org when it
 * holds no users and no write waits in its outbox; one holding users of two
 * orgs, or unsent writes of an org nothing names, is refused. Nothing is
 * deleted, and no move replaces a file. Moves hold an flock on
 * <host>/.migrate, so a mount and a driftctl starting together take turns.
 *
 * account_open(), account_check_store() and account_release() run once at
 * startup/teardown, with no worker thread running. account_gate(),
 * account_verified() and account_status_render() may be called from any
 * thread once the store is checked: the gate's state is read atomically,
 * and gate_lock serialises the checks. It is taken inside the sync's pass
 * lock and is held across one token_info request (HTTP and the token
 * source's lock) and a read of the store (its pool lock): driftfs.h's
 * order, 4.
 */
#ifndef DRIFTFS_ACCOUNT_H
#define DRIFTFS_ACCOUNT_H

#include <pthread.h>
#include <stdint.h>

#include "api.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "store.h"

/* Deadline of the one token_info request of a start or a gate check. */
#define ACCOUNT_CHECK_MS 5000

enum account_state {
	ACC_UNVERIFIED,		/* the API has not named the org yet */
	ACC_VERIFIED,		/* it named the cache's org */
	ACC_FOREIGN,		/* it named another: nothing goes through */
};

struct account {
	char *host_dir;		/* <cache_dir>/<host>: the API host's caches */
	char *dir;		/* the cache of the org (owned) */
	int64_t org;		/* 0 = unknown; fixed once the store is open */
	int verified;		/* the API named the org at account_open() */
	struct api_token_info ti; /* its answer then (status 0: not asked) */
	/* The gate (account_gate()); h and auth are borrowed. */
	struct http *h;
	struct auth *auth;
	struct store *st;	/* set by account_check_store() */
	pthread_mutex_t gate_lock;
	int lock_ready;
	int state;		/* enum account_state; __atomic access */
	int64_t api_org;	/* the org the API named; __atomic access */
	int warned;		/* under gate_lock: "not verified" logged */
};

/*
 * Finds the org (asking the API through h unless cfg->offline; a may be
 * NULL offline) and its cache directory. With create, directories are made
 * (0700) and a cache from before is moved into place; without (driftctl
 * status), nothing on disk changes. Returns 0, or -errno after logging
 * what to do: -EEXIST when no cache can be chosen without mixing orgs,
 * -EBUSY when another process (a mount, a driftctl sync) still uses the
 * cache to be moved.
 */
int account_open(struct account *acc, const struct config *cfg,
		 struct http *h, struct auth *a, int create);

/*
 * Checks the opened cache against acc->org and records the org in it when
 * it has none. A cache of another org is refused (-EEXIST, logged with both
 * orgs and what to run). With acc->org unknown, takes the cache's own.
 * Keeps st for the gate.
 */
int account_check_store(struct account *acc, struct store *st);

/*
 * Whether data may go to or come from the API: 0 once the API named the
 * cache's org. Unverified, asks token_info once (ACCOUNT_CHECK_MS, no
 * retry) and returns -ENETDOWN while it cannot tell; -EACCES for good once
 * it named another org (logged once, with both orgs). acc NULL: 0.
 */
int account_gate(struct account *acc);
/* The gate's state without asking anyone (1 = verified; acc NULL: 1). */
int account_verified(struct account *acc);
/* The "org:" line of .driftfs/status. */
int account_status_render(struct account *acc, struct buf *out);

void account_release(struct account *acc);

#endif
