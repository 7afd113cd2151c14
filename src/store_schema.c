// SPDX-License-Identifier: MIT
/*
 * store_schema.c: cache.db's schema, its check and its repair, and
 * store_open()/store_close() that run them: a file of another schema
 * version or a damaged one is started again empty (the sync refills it from
 * the API). Not here: the outbox.db table and its migrations
 * (store_outbox.c), the cross-process lock (store_lock.c).
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"

#define SCHEMA_VERSION "4"

/*
 * The schema. Each object keeps its canonical rendering (json) beside the
 * few columns the tree needs to list and look it up; *_name columns hold
 * encoded entry names so a lookup by name is an index probe, even for names
 * cut short and hashed by names_encode(). gen marks the rows a full listing
 * saw, for pruning what the API no longer returns.
 */
static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB);"
	"CREATE TABLE IF NOT EXISTS contacts(id INTEGER PRIMARY KEY,"
	" created_at INTEGER NOT NULL, email TEXT, email_name TEXT,"
	" external_id TEXT, ext_name TEXT, name TEXT,"
	" json BLOB NOT NULL, tags BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS contacts_email ON"
	" contacts(email_name, created_at, id);"
	"CREATE INDEX IF NOT EXISTS contacts_ext ON"
	" contacts(ext_name, created_at, id);"
	"CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY,"
	" mtime INTEGER NOT NULL, email TEXT, email_name TEXT, name TEXT,"
	" bot INTEGER NOT NULL, json BLOB NOT NULL, gen INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS users_email ON users(email_name, id);"
	"CREATE TABLE IF NOT EXISTS conversations(id INTEGER PRIMARY KEY,"
	" contact_id INTEGER NOT NULL, status TEXT NOT NULL,"
	" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" json BLOB NOT NULL, transcript BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS conv_contact ON conversations(contact_id);"
	"CREATE INDEX IF NOT EXISTS conv_status ON conversations(status, id);"
	"CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY,"
	" conversation_id INTEGER NOT NULL, created_at INTEGER NOT NULL,"
	" json BLOB NOT NULL);"
	"CREATE INDEX IF NOT EXISTS msg_conv ON"
	" messages(conversation_id, created_at, id);"
	"CREATE TABLE IF NOT EXISTS attachments(id INTEGER PRIMARY KEY,"
	" conversation_id INTEGER NOT NULL, message_id INTEGER NOT NULL,"
	" name TEXT NOT NULL, file_name TEXT, mime TEXT,"
	" mtime INTEGER NOT NULL, size INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS att_conv ON"
	" attachments(conversation_id, name);"
	"CREATE TABLE IF NOT EXISTS playbooks(id INTEGER PRIMARY KEY,"
	" mtime INTEGER NOT NULL, json BLOB NOT NULL, gen INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS accounts(key TEXT PRIMARY KEY,"
	" ino_id INTEGER NOT NULL, name TEXT NOT NULL, mtime INTEGER NOT NULL,"
	" json BLOB NOT NULL, gen INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS accounts_name ON accounts(name);";

/* Tables of older schema versions; the cache is rebuilt from the API. */
static const char drop_all[] =
	"DROP TABLE IF EXISTS contacts; DROP TABLE IF EXISTS users;"
	"DROP TABLE IF EXISTS conversations; DROP TABLE IF EXISTS messages;"
	"DROP TABLE IF EXISTS attachments; DROP TABLE IF EXISTS playbooks;"
	"DROP TABLE IF EXISTS accounts; DROP TABLE IF EXISTS outbox;"
	"DELETE FROM meta;";

/* Whether the file holds tables of another schema version. */
static int schema_outdated(struct db *d)
{
	sqlite3_stmt *s = NULL;
	int outdated = 0;

	if (sqlite3_prepare_v2(d->sql,
			       "SELECT value FROM meta WHERE key = 'schema'",
			       -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return 0;	/* no meta table: a new file */
	}
	if (sqlite3_step(s) == SQLITE_ROW)
		outdated = strcmp((const char *)sqlite3_column_text(s, 0) ?: "",
				  SCHEMA_VERSION) != 0;
	sqlite3_finalize(s);
	if (outdated)
		log_info("cache: schema changed; rebuilding it from the API");
	return outdated;
}

/* Creates path 0600 from its first byte, if missing. */
int store_create_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		int e = errno;

		log_err("cache %s: %s", path, strerror(e));
		return -e;
	}
	fchmod(fd, 0600);
	close(fd);
	return 0;
}

/*
 * Whether cache.db is damaged: unreadable as a database, or failing
 * SQLite's quick_check (b-tree structure and page use, O(size) but without
 * the index cross-checks of integrity_check). why gets the first complaint.
 */
static int cache_corrupt(struct db *d, char *why, size_t len)
{
	sqlite3_stmt *s = NULL;
	int rc, bad = 0;

	rc = sqlite3_prepare_v2(d->sql, "PRAGMA quick_check(1)", -1, &s,
				NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(s, 0);

		if (t && strcmp(t, "ok")) {
			snprintf(why, len, "%s", t);
			bad = 1;
		}
	} else if ((rc & 0xff) == SQLITE_CORRUPT ||
		   (rc & 0xff) == SQLITE_NOTADB) {
		snprintf(why, len, "%s", sqlite3_errmsg(d->sql));
		bad = 1;
	}
	sqlite3_finalize(s);
	return bad;
}

/* Removes cache.db and its WAL files, to start it again empty. */
static void cache_remove(const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[4096];

	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		if (unlink(p) && errno != ENOENT)
			log_err("cache %s: %s", p, strerror(errno));
	}
}

/*
 * Opens cache.db, checks it, and rebuilds it empty if it is damaged (the
 * sync fills it again from the API). The outbox must be open: rows of an
 * old-style outbox in cache.db are moved out first.
 */
static struct db *cache_open(struct store *st)
{
	char why[512];
	struct db *d;
	int r, rc, moved, untouched;

	r = store_create_private(st->path);
	if (r) {
		errno = -r;
		return NULL;
	}
	/* Another process has it open, checked (store_cache_lock): removing it
	 * under that process would lose what it writes. */
	if (!st->alone)
		return store_db_open(st->path);
	untouched = store_cache_untouched(st);
	st->untouched = untouched;
	d = store_db_open_rc(st->path, &rc);
	/* Only damage is repaired; a full disk or a permission is not. */
	if (!d && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
		return NULL;
	if (d && (untouched || !cache_corrupt(d, why, sizeof(why)))) {
		if (store_outbox_migrate(st) < 0) {
			errno = EIO;
			store_db_close(d);
			return NULL;
		}
		return d;
	}
	if (!d)
		snprintf(why, sizeof(why), "%s", sqlite3_errstr(rc));
	store_db_close(d);
	/* Salvage what can still be read of an old-style outbox. */
	moved = store_outbox_migrate(st);
	log_err("cache %s is damaged (%s): rebuilding it from the API;"
		" pending writes are kept in %s%s", st->path, why,
		st->outbox_path,
		moved < 0 ? " (an old outbox table in the damaged file could"
			    " not be read)" : "");
	log_error_event("cache %s is damaged (%s): rebuilt from the API",
			st->path, why);
	cache_remove(st->path);
	st->rebuilt = 1;
	r = store_create_private(st->path);
	if (r) {
		errno = -r;
		return NULL;
	}
	return store_db_open(st->path);
}

struct store *store_open(const char *dir)
{
	struct store *st = calloc(1, sizeof(*st));
	struct db *d = NULL;
	int r;

	if (!st || asprintf(&st->path, "%s/cache.db", dir) < 0) {
		free(st);
		errno = ENOMEM;
		return NULL;
	}
	st->lock_fd = -1;
	pthread_mutex_init(&st->lock, NULL);
	pthread_mutex_init(&st->outbox_lock, NULL);
	pthread_mutex_init(&st->blob_lock, NULL);
	r = store_cache_lock(st, dir);
	if (r) {
		errno = -r;
		goto fail;
	}
	if (asprintf(&st->outbox_path, "%s/outbox.db", dir) < 0) {
		st->outbox_path = NULL;
		errno = ENOMEM;
		goto fail;
	}
	if (asprintf(&st->blob_dir, "%s/blobs", dir) < 0) {
		st->blob_dir = NULL;
		errno = ENOMEM;
		goto fail;
	}
	if (mkdir(st->blob_dir, 0700) && errno != EEXIST) {
		log_err("cache %s: %s", st->blob_dir, strerror(errno));
		goto fail;
	}
	r = store_outbox_open(st);
	if (r) {
		errno = -r;
		goto fail;
	}
	d = cache_open(st);
	if (!d)
		goto fail;
	if (schema_outdated(d) && !st->alone) {
		/* Rebuilt under another process (a mount of another version)
		 * its tables would go, and the two would rebuild each other's
		 * cache at every start. */
		log_err("cache %s was written by another version of driftfs, "
			"which has it open: stop it (unmount, or let its "
			"driftctl end) before this version rebuilds it",
			st->path);
		errno = EBUSY;
		goto fail;
	}
	if (schema_outdated(d)) {
		if (sqlite3_exec(d->sql, drop_all, NULL, NULL, NULL) !=
			    SQLITE_OK ||
		    sqlite3_exec(d->sql, store_search_drop, NULL, NULL,
				 NULL) != SQLITE_OK) {
			log_err("cache %s: %s", st->path,
				sqlite3_errmsg(d->sql));
			errno = EIO;
			goto fail;
		}
		st->rebuilt = 1;
	}
	if (sqlite3_exec(d->sql, schema, NULL, NULL, NULL) != SQLITE_OK) {
		log_err("cache %s: %s", st->path, sqlite3_errmsg(d->sql));
		errno = -store_sql_errno(sqlite3_errcode(d->sql)) ?: EIO;
		goto fail;
	}
	/* The search index: created, or built in the background for a
	 * cache of an older version (store_search.c). */
	r = store_search_setup(st, d);
	if (r) {
		errno = -r;
		goto fail;
	}
	/* Files of another cache (rebuilt, or of an older schema) go; after
	 * a crash, what it left half done is tidied (store_blobs_sweep). Only
	 * when alone: another process's downloads in flight look the same. */
	if (st->alone && st->rebuilt)
		store_blobs_clear(st);
	else if (st->alone && !st->untouched &&
		 (sqlite3_create_function(d->sql, "blob_exists", 1, SQLITE_UTF8,
					  st, store_sql_blob_exists, NULL,
					  NULL) != SQLITE_OK ||
		  store_blobs_sweep(st, d)))
		log_warn("cache %s: tidying %s failed: %s", st->path,
			 st->blob_dir, sqlite3_errmsg(d->sql));
	store_db_put(st, d);
	d = NULL;
	if (store_meta_set(st, "schema", SCHEMA_VERSION, 1)) {
		errno = EIO;
		goto fail;
	}
	st->opened = 1;
	store_cache_share(st);
	return st;
fail:
	{
		int e = errno;

		store_db_close(d);
		store_close(st);
		errno = e;
	}
	return NULL;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	sqlite3_close(st->outbox_db);
	pthread_mutex_destroy(&st->outbox_lock);
	while (st->idle) {
		struct db *d = st->idle;

		st->idle = d->next;
		store_db_close(d);
	}
	/* Every connection is closed: the file is as the next run finds it
	 * (if no other process changes it: store_cache_unlock). */
	store_cache_unlock(st);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->blob_lock);
	free(st->path);
	free(st->outbox_path);
	free(st->blob_dir);
	free(st);
}
