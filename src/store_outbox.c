// SPDX-License-Identifier: MIT
/*
 * store_outbox.c: the outbox table, in outbox.db on a durable connection
 * of its own (synchronous=FULL, guarded by outbox_lock): its schema, the
 * migrations of older versions' rows and columns, and the row operations
 * outbox.c runs. What is sent, and when, is outbox.c's.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"

/*
 * The outbox has a file of its own (outbox.db), so that pending writes
 * survive whatever happens to cache.db: a schema change or a corrupt file
 * is rebuilt from the API, which cannot give back a write not yet sent.
 * Older versions kept the table in cache.db; store_open() moves its rows.
 */
static const char outbox_schema[] =
	"CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY"
	" AUTOINCREMENT, created INTEGER NOT NULL, path TEXT NOT NULL,"
	" kind TEXT NOT NULL, method TEXT NOT NULL, api_path TEXT NOT NULL,"
	" body BLOB, target INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
	" next_try INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
	" object TEXT NOT NULL DEFAULT '',"
	" after_created INTEGER NOT NULL DEFAULT 0,"
	" after_id INTEGER NOT NULL DEFAULT 0);";

/*
 * The columns of the outbox before the ordering key (object) was added:
 * an old table in cache.db has these, and an old outbox.db gains the newer
 * columns with their defaults: object '' (unknown: see store_outbox_next();
 * outbox.c names it from kind and target where it can), after_* 0 (the
 * newest message then cached is unknown: see outbox_row.after_created).
 */
#define OUTBOX_OLD_COLS "seq, created, path, kind, method, api_path, body," \
			" target, state, attempts, next_try, last_error"

/* An outbox.db of an older version gains the column named col. */
static int outbox_add_column(sqlite3 *db, const char *col, const char *def)
{
	sqlite3_stmt *s = NULL;
	char *q;
	int has = 0, r = 0;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('outbox')"
				   " WHERE name = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(s, 1, col, -1, SQLITE_STATIC);
	has = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	if (has)
		return 0;
	q = sqlite3_mprintf("ALTER TABLE outbox ADD COLUMN %s %s", col, def);
	if (!q)
		return -ENOMEM;
	if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK)
		r = -EIO;
	sqlite3_free(q);
	return r;
}

/* Brings an outbox.db of an older version to the current columns. */
static int outbox_add_columns(sqlite3 *db)
{
	int r = outbox_add_column(db, "object", "TEXT NOT NULL DEFAULT ''");

	r = r ? r : outbox_add_column(db, "after_created",
				      "INTEGER NOT NULL DEFAULT 0");
	return r ? r : outbox_add_column(db, "after_id",
					 "INTEGER NOT NULL DEFAULT 0");
}

/* Opens outbox.db on the durable connection and creates its table. */
int store_outbox_open(struct store *st)
{
	int r = store_create_private(st->outbox_path);

	if (r)
		return r;
	if (sqlite3_open_v2(st->outbox_path, &st->outbox_db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(st->outbox_db, STORE_BUSY_MS) != SQLITE_OK ||
	    sqlite3_exec(st->outbox_db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "PRAGMA secure_delete=ON; PRAGMA trusted_schema=OFF;",
			 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(st->outbox_db, outbox_schema, NULL, NULL,
			 NULL) != SQLITE_OK ||
	    outbox_add_columns(st->outbox_db)) {
		log_err("cache %s: cannot open the outbox: %s", st->outbox_path,
			st->outbox_db ? sqlite3_errmsg(st->outbox_db)
				      : "out of memory");
		return -EIO;
	}
	return 0;
}

/*
 * Moves the rows of an outbox table in cache.db (older versions, or a
 * corrupt file about to be rebuilt) into outbox.db, keeping their numbers.
 * INSERT OR IGNORE makes a repeat after a crash harmless: no row is sent
 * before this has run. Returns the rows moved, or -errno.
 */
int store_outbox_migrate(struct store *st)
{
	sqlite3_stmt *s = NULL;
	char *q = sqlite3_mprintf("ATTACH %Q AS old", st->path);
	int n = 0, r = 0, has = 0;

	if (!q)
		return -ENOMEM;
	if (sqlite3_exec(st->outbox_db, q, NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_free(q);
		return -EIO;
	}
	sqlite3_free(q);
	if (sqlite3_prepare_v2(st->outbox_db,
			       "SELECT 1 FROM old.sqlite_master WHERE"
			       " type = 'table' AND name = 'outbox'",
			       -1, &s, NULL) == SQLITE_OK)
		has = sqlite3_step(s) == SQLITE_ROW;
	else
		r = -EIO;
	sqlite3_finalize(s);
	if (has) {
		if (sqlite3_exec(st->outbox_db,
				 "BEGIN; INSERT OR IGNORE INTO main.outbox("
				 OUTBOX_OLD_COLS ") SELECT " OUTBOX_OLD_COLS
				 " FROM old.outbox;",
				 NULL, NULL, NULL) != SQLITE_OK) {
			r = -EIO;
		} else {
			n = sqlite3_changes(st->outbox_db);
			if (sqlite3_exec(st->outbox_db, "COMMIT", NULL, NULL,
					 NULL) != SQLITE_OK)
				r = -EIO;
		}
		if (r) {
			log_err("cache %s: moving the outbox: %s", st->path,
				sqlite3_errmsg(st->outbox_db));
			sqlite3_exec(st->outbox_db, "ROLLBACK", NULL, NULL,
				     NULL);
		} else if (sqlite3_exec(st->outbox_db, "DROP TABLE old.outbox",
					NULL, NULL, NULL) != SQLITE_OK) {
			/* Harmless: the next open moves them again, ignored. */
			log_warn("cache %s: %s", st->path,
				 sqlite3_errmsg(st->outbox_db));
		}
	}
	sqlite3_exec(st->outbox_db, "DETACH old", NULL, NULL, NULL);
	if (n > 0)
		log_info("cache: moved %d pending write%s to %s", n,
			 n == 1 ? "" : "s", st->outbox_path);
	return r ? r : n;
}

int store_outbox_count(struct store *st, int64_t *n)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	pthread_mutex_lock(&st->outbox_lock);
	if (sqlite3_prepare_v2(st->outbox_db, "SELECT count(*) FROM outbox",
			       -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW) {
		*n = sqlite3_column_int64(s, 0);
		r = 0;
	}
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->outbox_lock);
	return r;
}

void store_outbox_row_release(struct outbox_row *r)
{
	free(r->path);
	free(r->kind);
	free(r->method);
	free(r->api_path);
	free(r->state);
	free(r->last_error);
	free(r->object);
	buf_release(&r->body);
	memset(r, 0, sizeof(*r));
}

static char *col_dup(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);

	return t ? strdup(t) : NULL;
}

#define OUTBOX_COLS OUTBOX_OLD_COLS ", object, after_created, after_id"

static int outbox_fill(sqlite3_stmt *s, struct outbox_row *r)
{
	memset(r, 0, sizeof(*r));
	r->seq = sqlite3_column_int64(s, 0);
	r->created = sqlite3_column_int64(s, 1);
	r->path = col_dup(s, 2);
	r->kind = col_dup(s, 3);
	r->method = col_dup(s, 4);
	r->api_path = col_dup(s, 5);
	r->target = sqlite3_column_int64(s, 7);
	r->state = col_dup(s, 8);
	r->attempts = sqlite3_column_int64(s, 9);
	r->next_try = sqlite3_column_int64(s, 10);
	r->last_error = col_dup(s, 11);
	r->object = col_dup(s, 12);
	r->after_created = sqlite3_column_int64(s, 13);
	r->after_id = sqlite3_column_int64(s, 14);
	if (!r->path || !r->kind || !r->method || !r->api_path || !r->state ||
	    !r->object ||
	    buf_add(&r->body, sqlite3_column_blob(s, 6),
		    (size_t)sqlite3_column_bytes(s, 6))) {
		store_outbox_row_release(r);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Runs one outbox statement on the durable connection. Outbox traffic is a
 * few rows per user action, so statements are prepared each time.
 */
static int outbox_exec(struct store *st, const char *sql,
		       int (*bind)(sqlite3_stmt *s, const void *arg),
		       const void *arg, struct outbox_row *out, int64_t *rowid)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	pthread_mutex_lock(&st->outbox_lock);
	rc = sqlite3_prepare_v2(st->outbox_db, sql, -1, &s, NULL);
	if (rc == SQLITE_OK && bind)
		bind(s, arg);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && out)
		r = outbox_fill(s, out);
	else if (rc == SQLITE_DONE && out)
		r = -ENOENT;
	else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		log_error_event("cache: outbox: %s",
				sqlite3_errmsg(st->outbox_db));
		r = store_sql_errno(rc);
	}
	if (!r && rowid)
		*rowid = sqlite3_last_insert_rowid(st->outbox_db);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->outbox_lock);
	return r;
}

static int bind_add(sqlite3_stmt *s, const void *arg)
{
	const struct outbox_row *r = arg;

	sqlite3_bind_int64(s, 1, r->created);
	store_bind_text(s, 2, r->path);
	store_bind_text(s, 3, r->kind);
	store_bind_text(s, 4, r->method);
	store_bind_text(s, 5, r->api_path);
	store_bind_buf(s, 6, &r->body);
	sqlite3_bind_int64(s, 7, r->target);
	store_bind_text(s, 8, r->object ? r->object : "");
	sqlite3_bind_int64(s, 9, r->after_created);
	sqlite3_bind_int64(s, 10, r->after_id);
	return 0;
}

int store_outbox_add(struct store *st, struct outbox_row *r)
{
	return outbox_exec(st,
			   "INSERT INTO outbox(created, path, kind, method,"
			   " api_path, body, target, object, after_created,"
			   " after_id, state)"
			   " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,'pending')",
			   bind_add, r, NULL, &r->seq);
}

static int bind_seq(sqlite3_stmt *s, const void *arg)
{
	return sqlite3_bind_int64(s, 1, *(const int64_t *)arg);
}

int store_outbox_get(struct store *st, int64_t seq, struct outbox_row *out)
{
	return outbox_exec(st, "SELECT " OUTBOX_COLS " FROM outbox WHERE"
			       " seq = ?1",
			   bind_seq, &seq, out, NULL);
}

/*
 * Writes with one object key go out in the order they were made (DESIGN
 * §4). A row whose key is '' (queued by a version that kept none) is
 * ordered against every other row: its object is unknown, so any older row
 * may be about it, and it may be about any newer one.
 */
#define OUTBOX_SAME_OBJECT(p, o) \
	"(" p ".object = " o " OR " p ".object = '' OR " o " = '')"

int store_outbox_next(struct store *st, int64_t now, struct outbox_row *out)
{
	return outbox_exec(st, "SELECT " OUTBOX_COLS " FROM outbox o WHERE"
			       " next_try <= ?1 AND NOT EXISTS (SELECT 1 FROM"
			       " outbox p WHERE p.seq < o.seq AND "
			       OUTBOX_SAME_OBJECT("p", "o.object")
			       ") ORDER BY seq LIMIT 1",
			   bind_seq, &now, out, NULL);
}

struct behind_args {
	int64_t seq;
	const char *object;
};

static int bind_behind(sqlite3_stmt *s, const void *arg)
{
	const struct behind_args *a = arg;

	sqlite3_bind_int64(s, 1, a->seq);
	store_bind_text(s, 2, a->object ? a->object : "");
	return 0;
}

int store_outbox_behind(struct store *st, int64_t seq, const char *object)
{
	struct behind_args args = { seq, object };
	struct outbox_row row;
	int r;

	r = outbox_exec(st, "SELECT " OUTBOX_COLS " FROM outbox p WHERE"
			    " p.seq < ?1 AND " OUTBOX_SAME_OBJECT("p", "?2")
			    " LIMIT 1",
			bind_behind, &args, &row, NULL);
	if (!r)
		store_outbox_row_release(&row);
	return r == 0;
}

struct update_args {
	int64_t seq, attempts, next_try;
	const char *state, *last_error;
};

static int bind_update(sqlite3_stmt *s, const void *arg)
{
	const struct update_args *u = arg;

	sqlite3_bind_int64(s, 1, u->seq);
	store_bind_text(s, 2, u->state);
	sqlite3_bind_int64(s, 3, u->attempts);
	sqlite3_bind_int64(s, 4, u->next_try);
	store_bind_text(s, 5, u->last_error);
	return 0;
}

int store_outbox_update(struct store *st, int64_t seq, const char *state,
			int64_t attempts, int64_t next_try,
			const char *last_error)
{
	struct update_args u = { seq, attempts, next_try, state, last_error };

	return outbox_exec(st, "UPDATE outbox SET state = ?2, attempts = ?3,"
			       " next_try = ?4, last_error = ?5 WHERE seq = ?1",
			   bind_update, &u, NULL, NULL);
}

struct object_args {
	int64_t seq;
	const char *object;
};

static int bind_object(sqlite3_stmt *s, const void *arg)
{
	const struct object_args *a = arg;

	sqlite3_bind_int64(s, 1, a->seq);
	store_bind_text(s, 2, a->object);
	return 0;
}

int store_outbox_set_object(struct store *st, int64_t seq, const char *object)
{
	struct object_args a = { seq, object };

	return outbox_exec(st, "UPDATE outbox SET object = ?2 WHERE seq = ?1"
			       " AND object = ''",
			   bind_object, &a, NULL, NULL);
}

struct advance_args {
	int64_t seq, created, id;
	const char *object;
};

static int bind_advance(sqlite3_stmt *s, const void *arg)
{
	const struct advance_args *a = arg;

	sqlite3_bind_int64(s, 1, a->seq);
	store_bind_text(s, 2, a->object);
	sqlite3_bind_int64(s, 3, a->created);
	sqlite3_bind_int64(s, 4, a->id);
	return 0;
}

int store_outbox_advance(struct store *st, int64_t seq, const char *object,
			 int64_t created, int64_t id)
{
	struct advance_args a = { seq, created, id, object };

	/* Only forward: a row's mark never moves back past what it knew. */
	return outbox_exec(st, "UPDATE outbox SET after_created = ?3,"
			       " after_id = ?4 WHERE object = ?2 AND seq > ?1"
			       " AND object <> '' AND (after_created < ?3 OR"
			       " (after_created = ?3 AND after_id < ?4))",
			   bind_advance, &a, NULL, NULL);
}

int store_outbox_delete(struct store *st, int64_t seq)
{
	return outbox_exec(st, "DELETE FROM outbox WHERE seq = ?1", bind_seq,
			   &seq, NULL, NULL);
}

int store_outbox_each(struct store *st,
		      int (*cb)(void *ctx, const struct outbox_row *r),
		      void *ctx)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	pthread_mutex_lock(&st->outbox_lock);
	rc = sqlite3_prepare_v2(st->outbox_db,
				"SELECT " OUTBOX_COLS " FROM outbox ORDER BY seq",
				-1, &s, NULL);
	/* rc is SQLITE_ROW after each step: the loop goes on while it is. */
	if (rc == SQLITE_OK)
		rc = SQLITE_ROW;
	while (rc == SQLITE_ROW && !r && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct outbox_row row;

		r = outbox_fill(s, &row);
		if (!r)
			r = cb(ctx, &row);
		store_outbox_row_release(&row);
	}
	if (!r && rc != SQLITE_DONE && rc != SQLITE_OK)
		r = store_sql_errno(rc);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->outbox_lock);
	return r;
}
