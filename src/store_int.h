/* SPDX-License-Identifier: MIT */
/*
 * store_int.h: what the files of the store share and nothing else sees:
 * struct store and struct db, the statements a connection prepares, and
 * the functions that cross from one store_*.c to another. The contract for
 * callers is include/store.h. Unless said otherwise these run on any
 * thread, take no lock, and return 0 or -errno.
 */
#ifndef DRIFTFS_STORE_INT_H
#define DRIFTFS_STORE_INT_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store.h"

/*
 * How long a connection waits for another's SQLite write lock, in ms: the
 * cache's (unless DRIFTFS_TEST_BUSY_MS says otherwise, store.c) and the
 * outbox's (store_outbox.c).
 */
#define STORE_BUSY_MS 10000

/* Writer statements, prepared once per connection like the queries. */
enum wstmt {
	W_BEGIN,
	W_COMMIT,
	W_ROLLBACK,
	W_USER,
	W_USER_OLD,
	W_CONTACT,
	W_CONTACT_OLD,
	W_CONV,
	W_CONV_OLD,
	W_CONV_SYNCED,
	W_MSG_CLEAR,
	W_ATT_DOOMED,
	W_ATT_CLEAR,
	W_MSG,
	W_ATT,
	W_ATT_HAS,
	W_PLAYBOOK,
	W_PLAYBOOK_OLD,
	W_ACCOUNT,
	W_ACCOUNT_OLD,
	W_PRUNE_USERS,
	W_PRUNE_PLAYBOOKS,
	W_PRUNE_ACCOUNTS,
	W_KEEP_USER,
	W_CONTACT_DEL,
	W_USER_DEL,
	W_CONV_DEL,
	W_CONV_UNLINK,
	W_ATT_OF_CONV,
	W_ATT_DEL_CONV,
	W_CONV_IDS_AFTER,
	W_CONV_IDS_OF,
	W_MSG_IDS,
	W_CONTACT_IDS_AFTER,
	W_META_GET,
	W_META_SET,
	W_COUNTS,
	W__COUNT
};

/* The SQL of each wstmt (store_write.c), prepared by store_wprep(). */
extern const char *const store_wsql[W__COUNT];

/* Statements of the search index (store_search.c), per connection. */
#define STORE_SEARCH_STMTS 28

struct checker;
struct search_tokenizer;

/* One connection and its statements; owned by the pool or by one thread. */
struct db {
	sqlite3 *sql;
	sqlite3_stmt *q[Q__COUNT];
	sqlite3_stmt *blob[Q__COUNT];
	sqlite3_stmt *w[W__COUNT];
	sqlite3_stmt *search[STORE_SEARCH_STMTS];	/* store_search.c's */
	/* store_search_query.c's, made on first use, released with the
	 * statements (store_search_db_release): the tokenizer on sql, and
	 * the in-memory checking tables a query leaves (messages,
	 * contacts, tags), small and empty. */
	struct search_tokenizer *search_tk;
	struct checker *search_chk[3];
	struct db *next;	/* in the idle list */
	int64_t idle_since;	/* clock_mono_ms() when last given back */
	int lean;		/* idle, its page cache given back */
};

struct store {
	char *path;		/* cache.db */
	char *outbox_path;	/* outbox.db */
	pthread_mutex_t lock;	/* guards idle */
	struct db *idle;	/* connections not in use */
	int pool_idle_ms;	/* see store_db_put; under lock */
	int pool_keep;		/* idle connections kept however long idle */
	pthread_mutex_t outbox_lock;	/* guards outbox_db */
	sqlite3 *outbox_db;	/* synchronous=FULL, for the outbox only */
	/* store_open() succeeded (see store_cache_untouched) */
	int opened;
	char *blob_dir;		/* attachments' bytes, one file each */
	int untouched;		/* cache.db as a clean close left it */
	int rebuilt;		/* cache.db was damaged and started again */
	/* DIR/cache.lock, flock()ed (store_cache_lock) */
	int lock_fd;
	int alone;		/* no other process had the cache open */
	int crashed;		/* alone, and found marks of a crash */
	char *mark;		/* DIR/cache.open-*: ours, gone at close */
	/*
	 * Guards the blob files against a check-then-act of another thread:
	 * held across "rename the staged files + COMMIT their rows" and
	 * across "no row? + unlink" of a deleted row's file (store_commit).
	 * Lock order: a transaction's SQLite write lock, then blob_lock;
	 * nobody waits for the write lock while holding blob_lock.
	 */
	pthread_mutex_t blob_lock;
	/* The search index is complete (store_search.c): its writers skip
	 * the build's marks. Set once, atomically; never cleared. */
	int search_ready;
	/* The index's bytes and when they were read (clock_mono_ms, 0:
	 * never), for the status (store_search_progress). Atomics. */
	int64_t search_bytes;
	int64_t search_bytes_ms;
};

/* store.c: connections, the pool, statements, transactions. */

/* The connection pinned by store_begin() on this thread, if any. */
extern __thread struct db *store_pinned;
/* Notes the file of an attachment row this thread's transaction deletes:
 * it is unlinked once the transaction commits (store_commit_staged). */
void store_doomed_add(int64_t id);
/* SQLite's result code as -errno (0 for OK, ROW and DONE). */
int store_sql_errno(int rc);
/* A new connection to path, with its pragmas; NULL and errno on failure
 * (store_db_open_rc also gives SQLite's code in *rcp).
 * store_db_close accepts NULL. */
struct db *store_db_open_rc(const char *path, int *rcp);
struct db *store_db_open(const char *path);
void store_db_close(struct db *d);
/* The thread's pinned connection, or one from the pool (pool lock taken
 * inside), or a new one; NULL and errno. store_db_put gives it back (a pinned
 * one stays pinned). */
struct db *store_db_get(struct store *st);
void store_db_put(struct store *st, struct db *d);
/* The statement in *slot, reset, prepared on first use; NULL (logged) when
 * it cannot be. store_wprep is store_prep for a wstmt. */
/* Steps s to its end, its rows' first column into *v (malloc'd, the
 * caller's; NULL and 0 after a failure). -ENOMEM, or 0 with SQLite's
 * last code in *rc (SQLITE_DONE when every row was read). */
int store_step_ids(sqlite3_stmt *s, int64_t **v, size_t *n, int *rc);
sqlite3_stmt *store_prep(struct db *d, sqlite3_stmt **slot, const char *sql);
sqlite3_stmt *store_wprep(struct db *d, enum wstmt w);
/* Steps a writer statement to completion (s may be NULL: -EIO). */
int store_step_done(struct db *d, sqlite3_stmt *s);
/* Binds a string (NULL as NULL) or a buffer, copied. */
void store_bind_text(sqlite3_stmt *s, int i, const char *v);
void store_bind_buf(sqlite3_stmt *s, int i, const struct buf *b);

/* store_lock.c: who may check and repair (called by store_open/close).
 * store_cache_lock blocks while another process holds cache.lock exclusively
 * (checking or repairing the cache at its open or close). */

int store_cache_lock(struct store *st, const char *dir);
int store_cache_untouched(const struct store *st);
void store_cache_share(struct store *st);
void store_cache_unlock(struct store *st);

/* store_schema.c */

/* Creates path 0600 from its first byte, if missing. */
int store_create_private(const char *path);

/* store_outbox.c: outbox.db, on st->outbox_db under st->outbox_lock. */

/* Opens outbox.db on the durable connection and creates its table. */
int store_outbox_open(struct store *st);
/* Moves an old-style outbox table of cache.db into outbox.db; returns the
 * rows moved or -errno. */
int store_outbox_migrate(struct store *st);
/* The number of outbox rows; takes outbox_lock. */
int store_outbox_count(struct store *st, int64_t *n);

/* store_blob.c: attachment files in st->blob_dir. */

void store_blob_path(const struct store *st, int64_t id, char *out, size_t len);
/* Whether the attachments table has a row for id, on connection d. */
int store_attachment_row_on(struct db *d, int64_t id);
/* Renames sg's files into place; called by the commit under blob_lock. */
int store_staged_place(struct store *st, struct store_staged *sg);
/* At open, alone with the cache: every file goes (a rebuilt cache), or
 * what a crash left (store_blobs_sweep, which needs the SQL function
 * blob_exists, store_sql_blob_exists, registered on d). */
void store_blobs_clear(struct store *st);
int store_blobs_sweep(struct store *st, struct db *d);
void store_sql_blob_exists(sqlite3_context *cx, int argc, sqlite3_value **v);
/* An attachment's bytes, from its file, appended to out (store_blob). */
int store_attachment_read(struct store *st, int64_t id, struct buf *out);

/*
 * store_search.c: the search index (include/search.h). The writers run on
 * d, the connection of store_write.c's writer, before its statement
 * changes the row (they read the old text), in this thread's transaction;
 * what they change commits with it: store_search_flush() (store_commit,
 * before the COMMIT) finishes their work, store_search_discard()
 * (rollback) forgets it. Outside a transaction each one flushes at once.
 */
extern const char store_search_schema[];
extern const char store_search_drop[];
/* store_search_query.c: what each connection keeps for queries (its
 * tokenizer: made at its open; its checking tables), and their release
 * with its statements. */
int store_search_register(struct db *d);
void store_search_db_release(struct db *d);
int store_search_setup(struct store *st, struct db *d);
int store_search_clear_messages(struct store *st, struct db *d, int64_t conv);
int store_search_put_message(struct store *st, struct db *d,
			     const struct api_message *m);
int store_search_forget_conversation(struct store *st, struct db *d,
				     int64_t conv);
int store_search_put_conversation(struct store *st, struct db *d,
				  const struct api_conversation *c);
int store_search_put_contact(struct store *st, struct db *d,
			     const struct api_contact *c);
int store_search_delete_contact(struct store *st, struct db *d, int64_t id);
int store_search_flush(struct db *d);
void store_search_discard(void);

#endif
