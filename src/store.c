// SPDX-License-Identifier: MIT
/*
 * store.c: the connection pool and the transactions of the SQLite cache
 * (store.h). Each connection carries its prepared statements; a thread
 * that begins a transaction keeps its connection until commit or rollback.
 * The schema and open are in store_schema.c, the SQL of the queries in
 * store_read.c and of the writers in store_write.c, the outbox in
 * store_outbox.c, attachment files in store_blob.c.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"

/*
 * Blob files of the attachment rows this thread's transaction deletes.
 * They go once it commits (a rollback keeps the rows, and so the files).
 */
static __thread struct doomed {
	int64_t *v;
	size_t n, alloc;
} doomed;

void store_doomed_add(int64_t id)
{
	if (doomed.n == doomed.alloc) {
		size_t na = doomed.alloc ? doomed.alloc * 2 : 16;
		int64_t *p = realloc(doomed.v, na * sizeof(*p));

		if (!p)
			return;	/* the file stays: swept after a crash only */
		doomed.v = p;
		doomed.alloc = na;
	}
	doomed.v[doomed.n++] = id;
}

static void doomed_drop(void)
{
	free(doomed.v);
	memset(&doomed, 0, sizeof(doomed));
}

/* The connection pinned by store_begin() on this thread, if any. */
__thread struct db *store_pinned;

/* Finalizes every statement the connection prepared; store_prep makes
 * them again on first use. Only by the thread that has d off the idle
 * list (or is closing it). */
static void db_drop_statements(struct db *d)
{
	for (int i = 0; i < Q__COUNT; i++) {
		sqlite3_finalize(d->q[i]);
		sqlite3_finalize(d->blob[i]);
		d->q[i] = d->blob[i] = NULL;
	}
	for (int i = 0; i < W__COUNT; i++) {
		sqlite3_finalize(d->w[i]);
		d->w[i] = NULL;
	}
	for (int i = 0; i < STORE_SEARCH_STMTS; i++) {
		sqlite3_finalize(d->search[i]);
		d->search[i] = NULL;
	}
	store_search_db_release(d);
}

void store_db_close(struct db *d)
{
	if (!d)
		return;
	db_drop_statements(d);
	sqlite3_close(d->sql);
	free(d);
}

int store_sql_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return -EACCES;
	case SQLITE_TOOBIG:
		return -EFBIG;
	default:
		return -EIO;
	}
}

/*
 * How long a connection waits for another's write lock: 10 s, or
 * DRIFTFS_TEST_BUSY_MS (for the tests: a short wait shows a lock held too
 * long without a test that waits 10 s). It is read in every build, on
 * purpose: the tests run the binary that ships. That is harmless: it only
 * moves a timeout within 1 ms..600 s, it comes from the environment of the
 * user who runs the daemon (who can already do anything to this cache),
 * and a wrong value gives EBUSY sooner or a longer wait, never a wrong
 * answer or lost data (the sync retries next pass, writes wait in the
 * outbox).
 */
static int busy_timeout_ms(void)
{
	const char *v = getenv("DRIFTFS_TEST_BUSY_MS");
	long ms = v && *v ? strtol(v, NULL, 10) : 0;

	return ms > 0 && ms <= 600000 ? (int)ms : STORE_BUSY_MS;
}

/* Opens a connection; *rcp gets SQLite's code when that fails. */
struct db *store_db_open_rc(const char *path, int *rcp)
{
	struct db *d = calloc(1, sizeof(*d));
	int rc;

	*rcp = SQLITE_NOMEM;
	if (!d)
		return NULL;
	rc = sqlite3_open_v2(path, &d->sql,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		log_err("cache %s: %s", path,
			d->sql ? sqlite3_errmsg(d->sql) : "cannot open");
		store_db_close(d);
		*rcp = rc;
		errno = -store_sql_errno(rc);
		return NULL;
	}
	sqlite3_busy_timeout(d->sql, busy_timeout_ms());
	/*
	 * secure_delete: a deleted row's bytes are overwritten with zeros,
	 * not left in a free page (what Drift erased must leave the file;
	 * store_checkpoint() then moves the zeroed pages out of the WAL).
	 * It is per connection, so every connection sets it.
	 *
	 * No mmap: every page of the file a traversal touches would count in
	 * the daemon's RSS (a 300k-message cache mapped 170 MiB). Reads copy
	 * from the kernel's page cache into a small page cache per
	 * connection instead; warm reads seldom get here (keep_cache).
	 */
	rc = sqlite3_exec(d->sql,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA secure_delete=ON;"
			  "PRAGMA trusted_schema=OFF; PRAGMA temp_store=MEMORY;"
			  "PRAGMA mmap_size=0; PRAGMA cache_size=-512;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_err("cache %s: %s", path, sqlite3_errmsg(d->sql));
		*rcp = rc;
		errno = -store_sql_errno(rc);
		store_db_close(d);
		return NULL;
	}
	/* Search needs FTS5's tokenizer (store_search_query.c). */
	if (store_search_register(d))
		log_warn("cache %s: no FTS5 tokenizer: search fails", path);
	*rcp = SQLITE_OK;
	return d;
}

struct db *store_db_open(const char *path)
{
	int rc;

	return store_db_open_rc(path, &rc);
}

struct db *store_db_get(struct store *st)
{
	struct db *d;

	if (store_pinned)
		return store_pinned;
	pthread_mutex_lock(&st->lock);
	d = st->idle;
	if (d) {
		st->idle = d->next;
		d->lean = 0;
	}
	pthread_mutex_unlock(&st->lock);
	return d ? d : store_db_open(st->path);
}

/*
 * The pool grows to the peak number of threads that read at once (FUSE's
 * workers, the sync's), each connection holding two descriptors (the file
 * and its WAL) and a page cache of up to 512 KiB. The daemon's sync
 * thread opens one for each thread that may read at once
 * (store_pool_reserve), so a mount's descriptors start where they stay;
 * only a reader nested in another's callback goes past. A connection idle for
 * pool_idle_ms beyond the first pool_keep is closed (one of those kept gives
 * its page cache back instead), so a burst of readers
 * (grep -r, a first sync) leaves no lasting page caches. SQLite keeps
 * the file's descriptor of a closed connection open while other
 * connections hold the file (closing it would drop their fcntl locks) and
 * reuses it for the next connection: descriptors never exceed the peak.
 * The idle list is LIFO, so the connections past pool_keep are the ones
 * idle longest, and hot ones keep their prepared statements.
 */
void store_set_pool_idle(struct store *st, int ms)
{
	pthread_mutex_lock(&st->lock);
	st->pool_idle_ms = ms;
	pthread_mutex_unlock(&st->lock);
}

int store_pool_reserve(struct store *st, int n)
{
	struct db *opened = NULL;
	int idle = 0, r = 0;

	if (n < 1)
		n = 1;	/* never the last connection: it would end the WAL */
	pthread_mutex_lock(&st->lock);
	st->pool_keep = n;
	for (struct db *e = st->idle; e; e = e->next)
		idle++;
	pthread_mutex_unlock(&st->lock);
	/* Opened outside the lock: each open reads the schema. */
	for (; idle < n; idle++) {
		struct db *d = store_db_open(st->path);

		if (!d) {
			r = -errno;
			break;
		}
		d->next = opened;
		opened = d;
	}
	while (opened) {
		struct db *d = opened;

		opened = d->next;
		store_db_put(st, d);
	}
	return r;
}

void store_db_put(struct store *st, struct db *d)
{
	struct db *stale = NULL, *drain = NULL, **pp;
	int64_t now;
	int kept = 0;

	if (!d || d == store_pinned)
		return;
	now = clock_mono_ms();
	pthread_mutex_lock(&st->lock);
	d->idle_since = now;
	d->next = st->idle;
	st->idle = d;
	/* Unlinked under the lock, closed or drained outside it: they are
	 * nobody's meanwhile (sqlite3_close finalizes statements and may
	 * touch the file; a drain frees pages). */
	for (pp = &st->idle; *pp;) {
		struct db *e = *pp;
		int idle = now - e->idle_since >= st->pool_idle_ms;

		if (idle && kept >= st->pool_keep) {
			*pp = e->next;
			e->next = stale;
			stale = e;
			continue;
		}
		kept++;
		if (idle && !e->lean) {
			*pp = e->next;
			e->next = drain;
			drain = e;
			continue;
		}
		pp = &e->next;
	}
	pthread_mutex_unlock(&st->lock);
	while (stale) {
		struct db *e = stale;

		stale = e->next;
		store_db_close(e);
	}
	if (!drain)
		return;
	/* A kept connection idle that long gives its page cache back: the
	 * pages it read stay in the kernel's page cache, and a mount that
	 * reads in bursts (a reserved connection for each thread) would
	 * otherwise hold up to cache_size of them per connection for good,
	 * growing with the cache file. Its prepared statements go too: each
	 * connection prepares a statement the first time it runs one, so
	 * over hours every kept connection (23 in the daemon) came to hold
	 * every statement any thread ever ran on it, some 10 KiB each for
	 * the FTS5 ones, beyond SQLite's soft heap limit (which frees only
	 * cached pages) and growing for as long as a soak ran (BENCHMARKS,
	 * the soak's RSS). Preparing one again costs microseconds. Put
	 * back at the tail, where the longest idle are. */
	for (struct db *e = drain; e; e = e->next) {
		db_drop_statements(e);
		sqlite3_db_release_memory(e->sql);
		e->lean = 1;
	}
	pthread_mutex_lock(&st->lock);
	for (pp = &st->idle; *pp; pp = &(*pp)->next)
		;
	*pp = drain;
	pthread_mutex_unlock(&st->lock);
}

static int64_t pool_status_sum(struct store *st, int op)
{
	int64_t sum = 0;

	pthread_mutex_lock(&st->lock);
	for (struct db *e = st->idle; e; e = e->next) {
		int cur = 0, hi = 0;

		if (sqlite3_db_status(e->sql, op, &cur, &hi, 0) == SQLITE_OK)
			sum += cur;
	}
	pthread_mutex_unlock(&st->lock);
	return sum;
}

int64_t store_pool_cache_bytes(struct store *st)
{
	return pool_status_sum(st, SQLITE_DBSTATUS_CACHE_USED);
}

int64_t store_pool_stmt_bytes(struct store *st)
{
	return pool_status_sum(st, SQLITE_DBSTATUS_STMT_USED);
}

int store_step_ids(sqlite3_stmt *s, int64_t **v, size_t *n, int *rc)
{
	size_t alloc = 0;

	*v = NULL;
	*n = 0;
	while ((*rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (*n == alloc) {
			size_t na = alloc ? alloc * 2 : 64;
			int64_t *p = realloc(*v, na * sizeof(*p));

			if (!p) {
				free(*v);
				*v = NULL;
				*n = 0;
				return -ENOMEM;
			}
			*v = p;
			alloc = na;
		}
		(*v)[(*n)++] = sqlite3_column_int64(s, 0);
	}
	if (*rc != SQLITE_DONE) {
		free(*v);
		*v = NULL;
		*n = 0;
	}
	return 0;
}

sqlite3_stmt *store_prep(struct db *d, sqlite3_stmt **slot, const char *sql)
{
	if (*slot) {
		sqlite3_reset(*slot);
		sqlite3_clear_bindings(*slot);
		return *slot;
	}
	if (sqlite3_prepare_v3(d->sql, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       slot, NULL) != SQLITE_OK) {
		log_err("cache: preparing \"%s\": %s", sql,
			sqlite3_errmsg(d->sql));
		*slot = NULL;
	}
	return *slot;
}

sqlite3_stmt *store_wprep(struct db *d, enum wstmt w)
{
	return store_prep(d, &d->w[w], store_wsql[w]);
}

/* Steps a writer statement to completion. */
int store_step_done(struct db *d, sqlite3_stmt *s)
{
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		/* In .driftfs/errors too: a full disk must be named there. */
		log_error_event("cache: %s", sqlite3_errmsg(d->sql));
		return store_sql_errno(rc);
	}
	return 0;
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

void store_bind_buf(sqlite3_stmt *s, int i, const struct buf *b)
{
	sqlite3_bind_blob(s, i, b->data ? b->data : "", (int)b->len,
			  SQLITE_TRANSIENT);
}

int store_begin(struct store *st)
{
	struct db *d;
	int r;

	if (store_pinned)
		return -EBUSY;
	d = store_db_get(st);
	if (!d)
		return -errno;
	store_pinned = d;
	r = store_step_done(d, store_wprep(d, W_BEGIN));
	if (r) {
		store_pinned = NULL;
		store_db_put(st, d);
	}
	return r;
}

int store_commit_staged(struct store *st, struct store_staged *sg)
{
	struct db *d = store_pinned;
	int r, locked = (sg && sg->n) || doomed.n;
	char p[4096];

	if (!d)
		return -EINVAL;
	/* The search index's part of the transaction commits with it. */
	r = store_search_flush(d);
	/* See struct store: nobody else places or unlinks a blob file
	 * between our rename and the COMMIT of its row, or between our
	 * "no row" and the unlink. */
	if (locked)
		pthread_mutex_lock(&st->blob_lock);
	r = r ? r : store_staged_place(st, sg);
	if (!r)
		r = store_step_done(d, store_wprep(d, W_COMMIT));
	if (r) {
		store_step_done(d, store_wprep(d, W_ROLLBACK));
		store_search_discard();
		log_err("cache: commit failed, changes rolled back");
	}
	store_pinned = NULL;
	/* A placed file whose row did not commit would stay without one
	 * (until a sweep after a crash): it goes now, unless a row of
	 * another transaction names it. */
	for (size_t i = 0; sg && i < sg->n; i++) {
		if (sg->v[i].tmp || store_attachment_row_on(d, sg->v[i].id))
			continue;
		store_blob_path(st, sg->v[i].id, p, sizeof(p));
		unlink(p);
	}
	/* Deleted rows' files, unless another conversation stored the
	 * attachment again meanwhile (a row it commits under blob_lock). */
	for (size_t i = 0; !r && i < doomed.n; i++) {
		if (store_attachment_row_on(d, doomed.v[i]))
			continue;
		store_blob_path(st, doomed.v[i], p, sizeof(p));
		unlink(p);
	}
	if (locked)
		pthread_mutex_unlock(&st->blob_lock);
	store_db_put(st, d);
	doomed_drop();
	store_staged_release(sg);
	return r;
}

int store_commit(struct store *st)
{
	return store_commit_staged(st, NULL);
}

/* One TRUNCATE checkpoint of connection db; 0 when it completed. */
static int checkpoint(sqlite3 *db, const char *what)
{
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_TRUNCATE,
					   &log, &done);

	if (rc == SQLITE_OK)
		return 0;
	/* A reader's snapshot (another process, a listing under way) stops
	 * it short: the next checkpoint gets the rest. */
	log_info("cache: checkpoint of %s: %s", what, sqlite3_errstr(rc));
	return store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
}

int store_checkpoint(struct store *st)
{
	struct db *d;
	int r, r2;

	if (store_pinned)
		return -EBUSY;	/* a checkpoint inside a transaction waits */
	d = store_db_get(st);
	if (!d)
		return -errno;
	r = checkpoint(d->sql, "cache.db");
	store_db_put(st, d);
	pthread_mutex_lock(&st->outbox_lock);
	r2 = st->outbox_db ? checkpoint(st->outbox_db, "outbox.db") : 0;
	pthread_mutex_unlock(&st->outbox_lock);
	return r ? r : r2;
}

void store_rollback(struct store *st)
{
	struct db *d = store_pinned;

	doomed_drop();
	store_search_discard();
	if (!d)
		return;
	store_step_done(d, store_wprep(d, W_ROLLBACK));
	store_pinned = NULL;
	store_db_put(st, d);
}
