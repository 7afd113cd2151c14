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
 * the orgId of the users GET /users/list returns), else from the org the
 * credentials file records (driftctl login writes it). Offline with neither
 * (DRIFT_TOKEN), the one cache there is serves; with several, the open is
 * refused, naming them.
 *
 * A cache from before this layout (cache.db right in <host>/, no org
 * recorded) is moved into the directory of the org its users belong to, or
 * of the token's org when it holds no users yet; one holding users of two
 * orgs cannot be split and is refused. Nothing is deleted.
 *
 * Called once at startup, before any worker thread; not thread-safe.
 */
#ifndef DRIFTFS_ACCOUNT_H
#define DRIFTFS_ACCOUNT_H

#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "http.h"
#include "store.h"

struct account {
	char *host_dir;		/* <cache_dir>/<host>: the API host's caches */
	char *dir;		/* the cache of the org (owned) */
	int64_t org;		/* 0 = unknown */
	int verified;		/* the API named the org just now */
};

/*
 * Finds the org (asking the API through h unless cfg->offline; a may be
 * NULL offline) and its cache directory. With create, directories are made
 * (0700) and a cache from before is moved into place; without (driftctl
 * status), nothing on disk changes. Returns 0, or -errno after logging
 * what to do: -EEXIST when no cache can be chosen without mixing orgs,
 * -EBUSY when an older driftfs still serves the cache to be moved.
 */
int account_open(struct account *acc, const struct config *cfg,
		 struct http *h, struct auth *a, int create);

/*
 * Checks the opened cache against acc->org and records the org in it when
 * it has none. A cache of another org is refused (-EEXIST, logged with both
 * orgs and what to run). With acc->org unknown, takes the cache's own.
 */
int account_check_store(struct account *acc, struct store *st);

void account_release(struct account *acc);

#endif
