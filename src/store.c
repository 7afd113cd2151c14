// SPDX-License-Identifier: MIT
/* store.c: the SQLite cache (see store.h). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "names.h"

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

/* Tables of older schema versions; the cache is rebuilt from the API. */
static const char drop_all[] =
	"DROP TABLE IF EXISTS contacts; DROP TABLE IF EXISTS users;"
	"DROP TABLE IF EXISTS conversations; DROP TABLE IF EXISTS messages;"
	"DROP TABLE IF EXISTS attachments; DROP TABLE IF EXISTS playbooks;"
	"DROP TABLE IF EXISTS accounts; DROP TABLE IF EXISTS outbox;"
	"DELETE FROM meta;";

/* Column order of every query: id, id2, mtime, size, name, text. */
static const char *const query_sql[Q__COUNT] = {
	[Q_CONTACTS] = "SELECT id, 0, created_at FROM contacts ORDER BY id",
	[Q_CONTACTS_AFTER] = "SELECT id FROM contacts WHERE id > ?1"
			     " ORDER BY id LIMIT 200",
	[Q_CONTACT_CONVS] = "SELECT id, contact_id, updated_at FROM"
			    " conversations WHERE contact_id = ?1 ORDER BY id",
	[Q_EMAIL_NAMES] = "SELECT id, 0, created_at, 0, email_name,"
			  " min(created_at * 1) FROM contacts"
			  " WHERE email_name IS NOT NULL GROUP BY email_name",
	[Q_EXTID_NAMES] = "SELECT id, 0, created_at, 0, ext_name,"
			  " min(created_at * 1) FROM contacts"
			  " WHERE ext_name IS NOT NULL GROUP BY ext_name",
	[Q_USERS] = "SELECT id, 0, mtime, length(json) FROM users ORDER BY id",
	[Q_USER_EMAIL_NAMES] = "SELECT min(id), 0, mtime, 0, email_name FROM"
			       " users WHERE email_name IS NOT NULL"
			       " GROUP BY email_name",
	[Q_CONVS] = "SELECT id, contact_id, updated_at FROM conversations"
		    " ORDER BY id",
	[Q_CONVS_BY_STATUS] = "SELECT id, 0, updated_at FROM conversations"
			      " WHERE status = ?2 ORDER BY id",
	[Q_MESSAGES] = "SELECT id, conversation_id, created_at, length(json)"
		       " FROM messages WHERE conversation_id = ?1"
		       " ORDER BY created_at, id",
	[Q_ATTACHMENTS] = "SELECT id, conversation_id, mtime, size,"
			  " name FROM attachments WHERE conversation_id = ?1"
			  " ORDER BY id",
	[Q_PLAYBOOKS] = "SELECT id, 0, mtime, length(json) FROM playbooks"
			" ORDER BY id",
	[Q_ACCOUNTS] = "SELECT ino_id, 0, mtime, length(json), name, key FROM"
		       " accounts ORDER BY key",
	[Q_STATUS_COUNTS] = "SELECT count(*), 0, max(updated_at), 0, status"
			    " FROM conversations GROUP BY status",
	[Q_CONTACT] = "SELECT id, 0, created_at, length(json) FROM contacts"
		      " WHERE id = ?1",
	[Q_CONTACT_TAGS] = "SELECT id, 0, created_at, length(tags) FROM"
			   " contacts WHERE id = ?1",
	[Q_CONTACT_NAME] = "SELECT id, 0, created_at, 0, coalesce(name, email)"
			   " FROM contacts WHERE id = ?1",
	[Q_CONTACT_BY_EMAIL] = "SELECT id, 0, created_at FROM contacts WHERE"
			       " email_name = ?2 ORDER BY created_at, id"
			       " LIMIT 1",
	[Q_CONTACT_BY_EXTID] = "SELECT id, 0, created_at FROM contacts WHERE"
			       " ext_name = ?2 ORDER BY created_at, id LIMIT 1",
	[Q_USER] = "SELECT id, 0, mtime, length(json) FROM users WHERE id = ?1",
	[Q_USER_BY_EMAIL] = "SELECT id, 0, mtime, length(json) FROM users"
			    " WHERE email_name = ?2 ORDER BY id LIMIT 1",
	[Q_USER_NAME] = "SELECT id, bot, mtime, 0, name FROM users WHERE id = ?1",
	[Q_CONV] = "SELECT id, contact_id, updated_at, length(json), NULL,"
		   " status FROM conversations WHERE id = ?1",
	[Q_TRANSCRIPT] = "SELECT id, contact_id, updated_at, length(transcript)"
			 " FROM conversations WHERE id = ?1",
	[Q_MESSAGE] = "SELECT id, conversation_id, created_at, length(json)"
		      " FROM messages WHERE id = ?1",
	[Q_ATTACHMENT] = "SELECT id, conversation_id, mtime, size, name"
			 " FROM attachments WHERE id = ?1",
	[Q_PLAYBOOK] = "SELECT id, 0, mtime, length(json) FROM playbooks"
		       " WHERE id = ?1",
	[Q_ACCOUNT_BY_NAME] = "SELECT ino_id, 0, mtime, length(json), name,"
			      " key FROM accounts WHERE name = ?2",
	[Q_COUNTS] = NULL,
};

/* The blob column of each single-row query, for store_blob(). */
static const char *const blob_sql[Q__COUNT] = {
	[Q_CONTACT] = "SELECT json FROM contacts WHERE id = ?1",
	[Q_CONTACT_TAGS] = "SELECT tags FROM contacts WHERE id = ?1",
	[Q_USER] = "SELECT json FROM users WHERE id = ?1",
	[Q_USER_BY_EMAIL] = "SELECT json FROM users WHERE email_name = ?2"
			    " ORDER BY id LIMIT 1",
	[Q_CONV] = "SELECT json FROM conversations WHERE id = ?1",
	[Q_TRANSCRIPT] = "SELECT transcript FROM conversations WHERE id = ?1",
	[Q_MESSAGE] = "SELECT json FROM messages WHERE id = ?1",
	[Q_PLAYBOOK] = "SELECT json FROM playbooks WHERE id = ?1",
	[Q_ACCOUNT_BY_NAME] = "SELECT json FROM accounts WHERE name = ?2",
};

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
	W_META_GET,
	W_META_SET,
	W_COUNTS,
	W__COUNT
};

static const char *const wsql[W__COUNT] = {
	[W_BEGIN] = "BEGIN IMMEDIATE",
	[W_COMMIT] = "COMMIT",
	[W_ROLLBACK] = "ROLLBACK",
	[W_USER] = "INSERT OR REPLACE INTO users(id, mtime, email, email_name,"
		   " name, bot, json, gen) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
	[W_USER_OLD] = "SELECT json FROM users WHERE id = ?1",
	[W_CONTACT] = "INSERT OR REPLACE INTO contacts(id, created_at, email,"
		      " email_name, external_id, ext_name, name, json, tags)"
		      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
	[W_CONTACT_OLD] = "SELECT json FROM contacts WHERE id = ?1",
	[W_CONV] = "INSERT OR REPLACE INTO conversations(id, contact_id,"
		   " status, created_at, updated_at, json, transcript)"
		   " VALUES(?1,?2,?3,?4,?5,?6,?7)",
	[W_CONV_OLD] = "SELECT json, transcript FROM conversations"
		       " WHERE id = ?1",
	[W_CONV_SYNCED] = "SELECT updated_at FROM conversations WHERE id = ?1",
	[W_MSG_CLEAR] = "DELETE FROM messages WHERE conversation_id = ?1",
	[W_ATT_DOOMED] = "SELECT id FROM attachments WHERE conversation_id = ?1"
			 " AND message_id NOT IN (SELECT id FROM messages"
			 " WHERE conversation_id = ?1)",
	[W_ATT_CLEAR] = "DELETE FROM attachments WHERE conversation_id = ?1"
			" AND message_id NOT IN (SELECT id FROM messages"
			" WHERE conversation_id = ?1)",
	[W_MSG] = "INSERT OR REPLACE INTO messages(id, conversation_id,"
		  " created_at, json) VALUES(?1,?2,?3,?4)",
	[W_ATT] = "INSERT OR REPLACE INTO attachments(id, conversation_id,"
		  " message_id, name, file_name, mime, mtime, size)"
		  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
	[W_ATT_HAS] = "SELECT 1 FROM attachments WHERE id = ?1",
	[W_PLAYBOOK] = "INSERT OR REPLACE INTO playbooks(id, mtime, json, gen)"
		       " VALUES(?1,?2,?3,?4)",
	[W_PLAYBOOK_OLD] = "SELECT json FROM playbooks WHERE id = ?1",
	[W_ACCOUNT] = "INSERT OR REPLACE INTO accounts(key, ino_id, name,"
		      " mtime, json, gen) VALUES(?1,?2,?3,?4,?5,?6)",
	[W_ACCOUNT_OLD] = "SELECT json FROM accounts WHERE key = ?1",
	[W_PRUNE_USERS] = "DELETE FROM users WHERE gen != ?1",
	[W_PRUNE_PLAYBOOKS] = "DELETE FROM playbooks WHERE gen != ?1",
	[W_PRUNE_ACCOUNTS] = "DELETE FROM accounts WHERE gen != ?1",
	[W_KEEP_USER] = "UPDATE users SET gen = ?2 WHERE id = ?1",
	[W_CONTACT_DEL] = "DELETE FROM contacts WHERE id = ?1",
	[W_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[W_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1,?2)",
	[W_COUNTS] = "SELECT (SELECT count(*) FROM contacts),"
		     " (SELECT count(*) FROM users),"
		     " (SELECT count(*) FROM conversations),"
		     " (SELECT count(*) FROM messages),"
		     " (SELECT count(*) FROM attachments),"
		     " (SELECT count(*) FROM playbooks),"
		     " (SELECT count(*) FROM accounts)",
};

/* One connection and its statements; owned by the pool or by one thread. */
struct db {
	sqlite3 *sql;
	sqlite3_stmt *q[Q__COUNT];
	sqlite3_stmt *blob[Q__COUNT];
	sqlite3_stmt *w[W__COUNT];
	struct db *next;	/* in the idle list */
};

struct store {
	char *path;		/* cache.db */
	char *outbox_path;	/* outbox.db */
	pthread_mutex_t lock;	/* guards idle */
	struct db *idle;	/* connections not in use */
	pthread_mutex_t outbox_lock;	/* guards outbox_db */
	sqlite3 *outbox_db;	/* synchronous=FULL, for the outbox only */
	int opened;		/* store_open() succeeded (see cache_untouched) */
	char *blob_dir;		/* attachments' bytes, one file each */
	int untouched;		/* cache.db as a clean close left it */
	int rebuilt;		/* cache.db was damaged and started again */
	int lock_fd;		/* DIR/cache.lock, flock()ed (cache_lock) */
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
};

static int attachment_row(struct store *st, int64_t id);
static int attachment_read(struct store *st, int64_t id, struct buf *out);

/*
 * Blob files of the attachment rows this thread's transaction deletes.
 * They go once it commits (a rollback keeps the rows, and so the files).
 */
static __thread struct doomed {
	int64_t *v;
	size_t n, alloc;
} doomed;

static void doomed_add(int64_t id)
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

static void blob_path(const struct store *st, int64_t id, char *out,
		      size_t len)
{
	snprintf(out, len, "%s/%lld", st->blob_dir, (long long)id);
}

/* The connection pinned by store_begin() on this thread, if any. */
static __thread struct db *pinned;

static void db_close(struct db *d)
{
	if (!d)
		return;
	for (int i = 0; i < Q__COUNT; i++) {
		sqlite3_finalize(d->q[i]);
		sqlite3_finalize(d->blob[i]);
	}
	for (int i = 0; i < W__COUNT; i++)
		sqlite3_finalize(d->w[i]);
	sqlite3_close(d->sql);
	free(d);
}

static int sql_errno(int rc)
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

	return ms > 0 && ms <= 600000 ? (int)ms : 10000;
}

/* Opens a connection; *rcp gets SQLite's code when that fails. */
static struct db *db_open_rc(const char *path, int *rcp)
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
		db_close(d);
		*rcp = rc;
		errno = -sql_errno(rc);
		return NULL;
	}
	sqlite3_busy_timeout(d->sql, busy_timeout_ms());
	/*
	 * No mmap: every page of the file a traversal touches would count in
	 * the daemon's RSS (a 300k-message cache mapped 170 MiB). Reads copy
	 * from the kernel's page cache into a small page cache per
	 * connection instead; warm reads seldom get here (keep_cache).
	 */
	rc = sqlite3_exec(d->sql,
			  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
			  "PRAGMA trusted_schema=OFF; PRAGMA temp_store=MEMORY;"
			  "PRAGMA mmap_size=0; PRAGMA cache_size=-512;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_err("cache %s: %s", path, sqlite3_errmsg(d->sql));
		*rcp = rc;
		errno = -sql_errno(rc);
		db_close(d);
		return NULL;
	}
	*rcp = SQLITE_OK;
	return d;
}

static struct db *db_open(const char *path)
{
	int rc;

	return db_open_rc(path, &rc);
}

static struct db *db_get(struct store *st)
{
	struct db *d;

	if (pinned)
		return pinned;
	pthread_mutex_lock(&st->lock);
	d = st->idle;
	if (d)
		st->idle = d->next;
	pthread_mutex_unlock(&st->lock);
	return d ? d : db_open(st->path);
}

static void db_put(struct store *st, struct db *d)
{
	if (!d || d == pinned)
		return;
	pthread_mutex_lock(&st->lock);
	d->next = st->idle;
	st->idle = d;
	pthread_mutex_unlock(&st->lock);
}

static sqlite3_stmt *prep(struct db *d, sqlite3_stmt **slot, const char *sql)
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

static sqlite3_stmt *wprep(struct db *d, enum wstmt w)
{
	return prep(d, &d->w[w], wsql[w]);
}

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
static int create_private(const char *path)
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
static int outbox_open(struct store *st)
{
	int r = create_private(st->outbox_path);

	if (r)
		return r;
	if (sqlite3_open_v2(st->outbox_path, &st->outbox_db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(st->outbox_db, 10000) != SQLITE_OK ||
	    sqlite3_exec(st->outbox_db,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "PRAGMA trusted_schema=OFF;",
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
static int outbox_migrate(struct store *st)
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

/* "size mtime inode" of path: what cache.clean records. */
static int stamp_of(const char *path, char *out, size_t len)
{
	struct stat sb;

	if (stat(path, &sb))
		return -errno;
	snprintf(out, len, "%lld %lld.%09ld %llu\n", (long long)sb.st_size,
		 (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
		 (unsigned long long)sb.st_ino);
	return 0;
}

/*
 * Whether cache.db is as the last clean store_close() left it: its size,
 * mtime and inode are those recorded in cache.db.clean then. Nothing has
 * written to it since (not a crash of ours, not another program), so the
 * O(size) check can be skipped: on a big cache it is most of a warm
 * mount's time. The record is removed here, so a crash of this run forces
 * the check next time.
 */
static int cache_untouched(const struct store *st)
{
	char *clean = NULL, want[128], have[128] = "";
	ssize_t n = -1;
	int fd;

	if (asprintf(&clean, "%s.clean", st->path) < 0)
		return 0;
	fd = open(clean, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, have, sizeof(have) - 1);
		close(fd);
		unlink(clean);
	}
	free(clean);
	if (n <= 0 || st->crashed ||
	    stamp_of(st->path, want, sizeof(want)))
		return 0;
	have[n] = '\0';
	return !strcmp(have, want);
}

/* Records cache.db as this clean close leaves it (see cache_untouched). */
static void cache_mark_clean(const struct store *st)
{
	char *clean = NULL, *tmp = NULL, stamp[128];
	int fd;

	if (stamp_of(st->path, stamp, sizeof(stamp)) ||
	    asprintf(&clean, "%s.clean", st->path) < 0) {
		return;
	}
	if (asprintf(&tmp, "%s.tmp", clean) < 0) {
		free(clean);
		return;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd >= 0) {
		int ok = write(fd, stamp, strlen(stamp)) == (ssize_t)strlen(stamp);

		if (close(fd) || !ok || rename(tmp, clean))
			unlink(tmp);
	}
	free(tmp);
	free(clean);
}

/*
 * Removes the marks of processes that did not close cleanly (called alone:
 * no live process has one); returns how many there were.
 */
static int cache_dead_marks(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return 1;	/* cannot tell: not clean */
	while ((e = readdir(dp)))
		if (!strncmp(e->d_name, "cache.open-", 11)) {
			unlinkat(dirfd(dp), e->d_name, 0);
			n++;
		}
	closedir(dp);
	return n;
}

/*
 * Every process that has the cache open (the mount, driftctl, several
 * mounts of one cache) holds flock(DIR/cache.lock, LOCK_SH) until it closes
 * it. Only a process that gets LOCK_EX at open is alone with the cache:
 * only it may trust cache.db.clean, check and rebuild cache.db, and sweep
 * blobs/, for what another process has in flight (a temp file, a file
 * renamed before its row commits) looks exactly like what a crash leaves.
 * It keeps LOCK_EX until its open is done (cache_share), so a process that
 * comes meanwhile waits for the sweep to end.
 *
 * Each process also leaves a mark, DIR/cache.open-XXXXXX, that its clean
 * close removes. A mark without its process is the trace of a crash (a
 * kill -9 of a mount while driftctl ran): then cache.db.clean is not
 * trusted at open, nor written at close. Returns 0 or -errno.
 */
static int cache_lock(struct store *st, const char *dir)
{
	char *path = NULL;
	int fd, tries = 0;

	if (asprintf(&path, "%s/cache.lock", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;

		log_err("cache %s: %s", path, strerror(e));
		free(path);
		return -e;
	}
	free(path);
	st->lock_fd = fd;
	/*
	 * Try alone; else wait for a shared lock, which waits out another
	 * process's exclusive open or close, and try once more (it may have
	 * been the last). A failed LOCK_NB conversion drops the lock held
	 * (Linux removes it first), so the shared one is taken again.
	 */
	for (;;) {
		if (!flock(fd, LOCK_EX | LOCK_NB)) {
			st->alone = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (tries++ && !flock(fd, LOCK_SH))
			break;
		if (flock(fd, LOCK_SH) && errno != EINTR)
			return -errno;
	}
	if (st->alone)
		st->crashed = cache_dead_marks(dir);
	if (asprintf(&st->mark, "%s/cache.open-XXXXXX", dir) < 0) {
		st->mark = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(st->mark, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		log_err("cache %s: %s", st->mark, strerror(e));
		free(st->mark);
		st->mark = NULL;
		return -e;
	}
	close(fd);
	return 0;
}

/* The alone process's open is done: others may come now. */
static void cache_share(struct store *st)
{
	if (st->alone)
		flock(st->lock_fd, LOCK_SH);
}

/*
 * At close, every connection closed: cache.db.clean is written only by a
 * process that is alone now and finds no mark of a crashed one.
 */
static void cache_unlock(struct store *st)
{
	char *dir = st->mark ? strdup(st->mark) : NULL;
	char *slash = dir ? strrchr(dir, '/') : NULL;

	if (st->mark)
		unlink(st->mark);
	if (slash && st->opened && !flock(st->lock_fd, LOCK_EX | LOCK_NB)) {
		*slash = '\0';
		if (!cache_dead_marks(dir)) {
			cache_mark_clean(st);
		} else {
			char *clean = NULL;

			/* One written before the crash says too much. */
			if (asprintf(&clean, "%s.clean", st->path) >= 0) {
				unlink(clean);
				free(clean);
			}
		}
	}
	free(dir);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->mark);
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

	r = create_private(st->path);
	if (r) {
		errno = -r;
		return NULL;
	}
	/* Another process has it open, checked (cache_lock): removing it
	 * under that process would lose what it writes. */
	if (!st->alone)
		return db_open(st->path);
	untouched = cache_untouched(st);
	st->untouched = untouched;
	d = db_open_rc(st->path, &rc);
	/* Only damage is repaired; a full disk or a permission is not. */
	if (!d && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
		return NULL;
	if (d && (untouched || !cache_corrupt(d, why, sizeof(why)))) {
		if (outbox_migrate(st) < 0) {
			errno = EIO;
			db_close(d);
			return NULL;
		}
		return d;
	}
	if (!d)
		snprintf(why, sizeof(why), "%s", sqlite3_errstr(rc));
	db_close(d);
	/* Salvage what can still be read of an old-style outbox. */
	moved = outbox_migrate(st);
	log_err("cache %s is damaged (%s): rebuilding it from the API;"
		" pending writes are kept in %s%s", st->path, why,
		st->outbox_path,
		moved < 0 ? " (an old outbox table in the damaged file could"
			    " not be read)" : "");
	log_error_event("cache %s is damaged (%s): rebuilt from the API",
			st->path, why);
	cache_remove(st->path);
	st->rebuilt = 1;
	r = create_private(st->path);
	if (r) {
		errno = -r;
		return NULL;
	}
	return db_open(st->path);
}

/* Removes every file of the blob directory (the cache starts again). */
static void blobs_clear(struct store *st)
{
	DIR *dir = opendir(st->blob_dir);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
}

/*
 * After a run that did not close cleanly: temp files of downloads cut
 * short go, so do files whose row never committed (or whose row went and
 * the file not yet). A row whose file is missing (deleted by hand) goes
 * too, and the conversation walk starts over, so that its conversation
 * is fetched again with the attachment.
 */
static int blobs_sweep(struct store *st, struct db *d)
{
	DIR *dir = opendir(st->blob_dir);
	sqlite3_stmt *s = NULL;
	struct dirent *e;
	int lost = 0, rc;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		char *end;
		long long id;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		id = strtoll(e->d_name, &end, 10);
		if (*end || id <= 0) {
			unlinkat(dirfd(dir), e->d_name, 0);
			continue;
		}
		s = wprep(d, W_ATT_HAS);
		if (!s)
			break;
		sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_DONE)
			unlinkat(dirfd(dir), e->d_name, 0);
	}
	closedir(dir);
	if (sqlite3_prepare_v2(d->sql, "SELECT id FROM attachments", -1, &s,
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return -EIO;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		char p[4096];

		blob_path(st, sqlite3_column_int64(s, 0), p, sizeof(p));
		if (access(p, F_OK))
			lost++;
	}
	sqlite3_finalize(s);
	if (!lost)
		return 0;
	log_warn("cache: %d attachment files are missing; their"
		 " conversations are fetched again", lost);
	/* The walk stops at the watermark: start it over, and make each
	 * such conversation look changed. */
	return sqlite3_exec(d->sql,
			    "BEGIN IMMEDIATE;"
			    "UPDATE conversations SET updated_at = 0 WHERE id IN"
			    " (SELECT conversation_id FROM attachments a WHERE"
			    " NOT blob_exists(a.id));"
			    "DELETE FROM attachments WHERE NOT blob_exists(id);"
			    "DELETE FROM meta WHERE key = 'conv_watermark';"
			    "COMMIT;",
			    NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* SQL blob_exists(id): whether the attachment's file is there. */
static void sql_blob_exists(sqlite3_context *cx, int argc, sqlite3_value **v)
{
	const struct store *st = sqlite3_user_data(cx);
	char p[4096];

	(void)argc;
	blob_path(st, sqlite3_value_int64(v[0]), p, sizeof(p));
	sqlite3_result_int(cx, !access(p, F_OK));
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
	r = cache_lock(st, dir);
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
	r = outbox_open(st);
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
		    SQLITE_OK) {
			log_err("cache %s: %s", st->path,
				sqlite3_errmsg(d->sql));
			errno = EIO;
			goto fail;
		}
		st->rebuilt = 1;
	}
	if (sqlite3_exec(d->sql, schema, NULL, NULL, NULL) != SQLITE_OK) {
		log_err("cache %s: %s", st->path, sqlite3_errmsg(d->sql));
		errno = -sql_errno(sqlite3_errcode(d->sql)) ?: EIO;
		goto fail;
	}
	/* Files of another cache (rebuilt, or of an older schema) go; after
	 * a crash, what it left half done is tidied (blobs_sweep). Only when
	 * alone: another process's downloads in flight look the same. */
	if (st->alone && st->rebuilt)
		blobs_clear(st);
	else if (st->alone && !st->untouched &&
		 (sqlite3_create_function(d->sql, "blob_exists", 1,
					  SQLITE_UTF8, st, sql_blob_exists,
					  NULL, NULL) != SQLITE_OK ||
		  blobs_sweep(st, d)))
		log_warn("cache %s: tidying %s failed: %s", st->path,
			 st->blob_dir, sqlite3_errmsg(d->sql));
	db_put(st, d);
	d = NULL;
	if (store_meta_set(st, "schema", SCHEMA_VERSION, 1)) {
		errno = EIO;
		goto fail;
	}
	st->opened = 1;
	cache_share(st);
	return st;
fail:
	{
		int e = errno;

		db_close(d);
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
		db_close(d);
	}
	/* Every connection is closed: the file is as the next run finds it
	 * (if no other process changes it: cache_unlock). */
	cache_unlock(st);
	pthread_mutex_destroy(&st->lock);
	pthread_mutex_destroy(&st->blob_lock);
	free(st->path);
	free(st->outbox_path);
	free(st->blob_dir);
	free(st);
}

static void bind_args(sqlite3_stmt *s, int64_t arg, const char *sarg)
{
	if (sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_text(s, 2, sarg ? sarg : "", -1, SQLITE_STATIC);
}

static void fill_row(sqlite3_stmt *s, struct store_row *r)
{
	int n = sqlite3_column_count(s);

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	if (n > 1)
		r->id2 = sqlite3_column_int64(s, 1);
	if (n > 2)
		r->mtime = sqlite3_column_int64(s, 2);
	if (n > 3)
		r->size = sqlite3_column_int64(s, 3);
	if (n > 4)
		r->name = (const char *)sqlite3_column_text(s, 4);
	if (n > 5)
		r->text = (const char *)sqlite3_column_text(s, 5);
}

int store_each(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, int (*cb)(void *ctx, const struct store_row *r),
	       void *ctx)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int rc, r = 0;

	if (!d)
		return -errno;
	s = prep(d, &d->q[q], query_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_row row;

		fill_row(s, &row);
		r = cb(ctx, &row);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = sql_errno(rc);
	sqlite3_reset(s);
out:
	db_put(st, d);
	return r;
}

/*
 * The strings of this thread's last store_one() row. They belong to the
 * thread, not to the pooled connection the row came from (another thread
 * can take that connection the moment it is returned), and are freed when
 * the thread ends.
 */
struct row_strings {
	char *name, *text;
};

static pthread_key_t row_key;
static pthread_once_t row_once = PTHREAD_ONCE_INIT;

static void row_strings_free(void *p)
{
	struct row_strings *rs = p;

	free(rs->name);
	free(rs->text);
	free(rs);
}

static void row_key_create(void)
{
	pthread_key_create(&row_key, row_strings_free);
}

static struct row_strings *row_strings(void)
{
	struct row_strings *rs;

	pthread_once(&row_once, row_key_create);
	rs = pthread_getspecific(row_key);
	if (!rs) {
		rs = calloc(1, sizeof(*rs));
		if (rs && pthread_setspecific(row_key, rs)) {
			free(rs);
			rs = NULL;
		}
	}
	return rs;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int store_one(struct store *st, enum store_query q, int64_t arg,
	      const char *sarg, struct store_row *row)
{
	struct db *d;
	sqlite3_stmt *s;
	int rc, r = 0;

	/* A caller may read the row even when there is none (tree_getattr
	 * takes the mtime before it looks at the result). */
	memset(row, 0, sizeof(*row));
	d = db_get(st);
	if (!d)
		return -errno;
	s = prep(d, &d->q[q], query_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct row_strings *keep = row_strings();

		fill_row(s, row);
		/* Copy the strings: the statement, and the connection, go back
		 * to the pool, where another thread may take them at once. */
		if (keep) {
			free(keep->name);
			free(keep->text);
			keep->name = dup_or_null(row->name);
			keep->text = dup_or_null(row->text);
		}
		if (!keep || (row->name && !keep->name) ||
		    (row->text && !keep->text)) {
			memset(row, 0, sizeof(*row));
			r = -ENOMEM;
		} else {
			row->name = keep->name;
			row->text = keep->text;
		}
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
	}
	sqlite3_reset(s);
out:
	db_put(st, d);
	return r;
}

int store_blob(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, struct buf *out)
{
	struct db *d;
	sqlite3_stmt *s;
	int rc, r = 0;

	if (q == Q_ATTACHMENT)
		return attachment_read(st, arg, out);
	if (!blob_sql[q])
		return -EINVAL;
	d = db_get(st);
	if (!d)
		return -errno;
	s = prep(d, &d->blob[q], blob_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = buf_add(out, sqlite3_column_blob(s, 0),
			    (size_t)sqlite3_column_bytes(s, 0));
	else
		r = rc == SQLITE_DONE ? -ENOENT : sql_errno(rc);
	sqlite3_reset(s);
out:
	db_put(st, d);
	return r;
}

static int outbox_count(struct store *st, int64_t *n)
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

int store_counts(struct store *st, int64_t counts[8])
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r = -EIO;

	if (!d)
		return -errno;
	s = wprep(d, W_COUNTS);
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		for (int i = 0; i < 7; i++)
			counts[i] = sqlite3_column_int64(s, i);
		r = 0;
	}
	if (s)
		sqlite3_reset(s);
	db_put(st, d);
	if (!r)
		r = outbox_count(st, &counts[7]);
	return r;
}

/* Steps a writer statement to completion. */
static int step_done(struct db *d, sqlite3_stmt *s)
{
	int rc;

	if (!s)
		return -EIO;
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		/* In .driftfs/errors too: a full disk must be named there. */
		log_error_event("cache: %s", sqlite3_errmsg(d->sql));
		return sql_errno(rc);
	}
	return 0;
}

int store_begin(struct store *st)
{
	struct db *d;
	int r;

	if (pinned)
		return -EBUSY;
	d = db_get(st);
	if (!d)
		return -errno;
	pinned = d;
	r = step_done(d, wprep(d, W_BEGIN));
	if (r) {
		pinned = NULL;
		db_put(st, d);
	}
	return r;
}

/* Whether the attachments table has a row for id, on connection d. */
static int attachment_row_on(struct db *d, int64_t id)
{
	sqlite3_stmt *s = wprep(d, W_ATT_HAS);
	int has = 0;

	if (s) {
		sqlite3_bind_int64(s, 1, id);
		has = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_reset(s);
	}
	return has;
}

/*
 * Renames the staged files into place and syncs the directory, so the
 * names are on disk before the rows that the COMMIT after this stores.
 * A placed file's tmp is NULL. Called with blob_lock held.
 */
static int staged_place(struct store *st, struct store_staged *sg)
{
	char p[4096];
	int dfd, r = 0;

	for (size_t i = 0; sg && i < sg->n && !r; i++) {
		blob_path(st, sg->v[i].id, p, sizeof(p));
		if (rename(sg->v[i].tmp, p)) {
			r = -errno;
			log_error_event("cache: naming the file of attachment"
					" %lld: %s", (long long)sg->v[i].id,
					strerror(-r));
			break;
		}
		free(sg->v[i].tmp);
		sg->v[i].tmp = NULL;
	}
	if (r || !sg || !sg->n)
		return r;
	dfd = open(st->blob_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd))
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	if (r)
		log_error_event("cache: writing %s: %s", st->blob_dir,
				strerror(-r));
	return r;
}

int store_commit_staged(struct store *st, struct store_staged *sg)
{
	struct db *d = pinned;
	int r, locked = (sg && sg->n) || doomed.n;
	char p[4096];

	if (!d)
		return -EINVAL;
	/* See struct store: nobody else places or unlinks a blob file
	 * between our rename and the COMMIT of its row, or between our
	 * "no row" and the unlink. */
	if (locked)
		pthread_mutex_lock(&st->blob_lock);
	r = staged_place(st, sg);
	if (!r)
		r = step_done(d, wprep(d, W_COMMIT));
	if (r) {
		step_done(d, wprep(d, W_ROLLBACK));
		log_err("cache: commit failed, changes rolled back");
	}
	pinned = NULL;
	/* A placed file whose row did not commit would stay without one
	 * (until a sweep after a crash): it goes now, unless a row of
	 * another transaction names it. */
	for (size_t i = 0; sg && i < sg->n; i++) {
		if (sg->v[i].tmp || attachment_row_on(d, sg->v[i].id))
			continue;
		blob_path(st, sg->v[i].id, p, sizeof(p));
		unlink(p);
	}
	/* Deleted rows' files, unless another conversation stored the
	 * attachment again meanwhile (a row it commits under blob_lock). */
	for (size_t i = 0; !r && i < doomed.n; i++) {
		if (attachment_row_on(d, doomed.v[i]))
			continue;
		blob_path(st, doomed.v[i], p, sizeof(p));
		unlink(p);
	}
	if (locked)
		pthread_mutex_unlock(&st->blob_lock);
	db_put(st, d);
	doomed_drop();
	store_staged_release(sg);
	return r;
}

int store_commit(struct store *st)
{
	return store_commit_staged(st, NULL);
}

void store_rollback(struct store *st)
{
	struct db *d = pinned;

	doomed_drop();
	if (!d)
		return;
	step_done(d, wprep(d, W_ROLLBACK));
	pinned = NULL;
	db_put(st, d);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, i);
}

static void bind_buf(sqlite3_stmt *s, int i, const struct buf *b)
{
	sqlite3_bind_blob(s, i, b->data ? b->data : "", (int)b->len,
			  SQLITE_TRANSIENT);
}

/* Whether the single blob the old-row statement returns equals b. */
static int differs(struct db *d, enum wstmt w, int64_t id, const char *key,
		   const struct buf *b)
{
	sqlite3_stmt *s = wprep(d, w);
	int diff = 1;

	if (!s)
		return 1;
	if (key)
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW)
		diff = (size_t)sqlite3_column_bytes(s, 0) != b->len ||
		       memcmp(sqlite3_column_blob(s, 0) ?: "", b->data ? b->data : "",
			      b->len);
	sqlite3_reset(s);
	return diff;
}

/* Encodes an API string as an entry name, with a suffix; NULL for NULL. */
static char *entry_name(const char *s, const char *suffix)
{
	char tmp[NAMES_MAX + 1];
	size_t sl = strlen(suffix), n;
	char *out;

	if (!s)
		return NULL;
	n = names_encode(s, strlen(s), NAMES_MAX - sl, tmp);
	out = malloc(n + sl + 1);
	if (out) {
		memcpy(out, tmp, n);
		memcpy(out + n, suffix, sl + 1);
	}
	return out;
}

int store_put_user(struct store *st, const struct api_user *u, int64_t gen,
		   int *changed)
{
	struct db *d = db_get(st);
	char *en = entry_name(u->email, ".json");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		free(en);
		return -errno;
	}
	*changed = differs(d, W_USER_OLD, u->id, NULL, &u->json);
	s = wprep(d, W_USER);
	if (s) {
		sqlite3_bind_int64(s, 1, u->id);
		sqlite3_bind_int64(s, 2, u->mtime);
		bind_text(s, 3, u->email);
		bind_text(s, 4, en);
		bind_text(s, 5, u->name);
		sqlite3_bind_int(s, 6, u->bot);
		bind_buf(s, 7, &u->json);
		sqlite3_bind_int64(s, 8, gen);
	}
	r = step_done(d, s);
	db_put(st, d);
	free(en);
	return r;
}

int store_put_contact(struct store *st, const struct api_contact *c,
		      int *changed)
{
	struct db *d = db_get(st);
	char *en = entry_name(c->email, ""), *xn = entry_name(c->external_id, "");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		r = -errno;
		goto out;
	}
	*changed = differs(d, W_CONTACT_OLD, c->id, NULL, &c->json);
	s = wprep(d, W_CONTACT);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		sqlite3_bind_int64(s, 2, c->created);
		bind_text(s, 3, c->email);
		bind_text(s, 4, en);
		bind_text(s, 5, c->external_id);
		bind_text(s, 6, xn);
		bind_text(s, 7, c->name);
		bind_buf(s, 8, &c->json);
		bind_buf(s, 9, &c->tags);
	}
	r = step_done(d, s);
	db_put(st, d);
out:
	free(en);
	free(xn);
	return r;
}

int store_put_conversation(struct store *st, const struct api_conversation *c,
			   const struct buf *transcript, int *changed)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	*changed = 1;
	s = wprep(d, W_CONV_OLD);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		if (sqlite3_step(s) == SQLITE_ROW)
			*changed =
				(size_t)sqlite3_column_bytes(s, 0) != c->json.len ||
				memcmp(sqlite3_column_blob(s, 0) ?: "",
				       c->json.data ? c->json.data : "",
				       c->json.len) ||
				(size_t)sqlite3_column_bytes(s, 1) !=
					transcript->len ||
				memcmp(sqlite3_column_blob(s, 1) ?: "",
				       transcript->data ? transcript->data : "",
				       transcript->len);
		sqlite3_reset(s);
	}
	s = wprep(d, W_CONV);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		sqlite3_bind_int64(s, 2, c->contact_id);
		sqlite3_bind_text(s, 3, c->status, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 4, c->created);
		sqlite3_bind_int64(s, 5, c->updated);
		bind_buf(s, 6, &c->json);
		bind_buf(s, 7, transcript);
	}
	r = step_done(d, s);
	/* Attachments of messages that no longer exist go too, and their
	 * files after the commit. */
	s = r ? NULL : wprep(d, W_ATT_DOOMED);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		while (sqlite3_step(s) == SQLITE_ROW)
			doomed_add(sqlite3_column_int64(s, 0));
		sqlite3_reset(s);
	}
	if (!r) {
		s = wprep(d, W_ATT_CLEAR);
		if (s)
			sqlite3_bind_int64(s, 1, c->id);
		r = step_done(d, s);
	}
	db_put(st, d);
	return r;
}

int64_t store_conversation_synced(struct store *st, int64_t id)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int64_t v = 0;

	if (!d)
		return 0;
	s = wprep(d, W_CONV_SYNCED);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	db_put(st, d);
	return v;
}

int store_clear_messages(struct store *st, int64_t conv)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, W_MSG_CLEAR);
	if (s)
		sqlite3_bind_int64(s, 1, conv);
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int store_put_message(struct store *st, const struct api_message *m)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, W_MSG);
	if (s) {
		sqlite3_bind_int64(s, 1, m->id);
		sqlite3_bind_int64(s, 2, m->conversation_id);
		sqlite3_bind_int64(s, 3, m->created);
		bind_buf(s, 4, &m->json);
	}
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

/* Whether the attachments table has a row for id. */
static int attachment_row(struct store *st, int64_t id)
{
	struct db *d = db_get(st);
	int has;

	if (!d)
		return 0;
	has = attachment_row_on(d, id);
	db_put(st, d);
	return has;
}

int store_has_attachment(struct store *st, int64_t id)
{
	char p[4096];

	blob_path(st, id, p, sizeof(p));
	return attachment_row(st, id) && !access(p, F_OK);
}

void store_staged_release(struct store_staged *sg)
{
	if (!sg)
		return;
	for (size_t i = 0; i < sg->n; i++) {
		if (sg->v[i].tmp)
			unlink(sg->v[i].tmp);
		free(sg->v[i].tmp);
	}
	free(sg->v);
	memset(sg, 0, sizeof(*sg));
}

int store_attachment_blob(struct store *st, struct store_staged *sg,
			  int64_t id,
			  int (*fill)(void *ctx, int fd, int64_t *size),
			  void *ctx, int64_t *size)
{
	char tmp[4096];
	const char *what = "creating";
	int fd, r;

	*size = 0;
	if (sg->n == sg->alloc) {
		size_t na = sg->alloc ? sg->alloc * 2 : 8;
		struct store_staged_file *v = realloc(sg->v, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sg->v = v;
		sg->alloc = na;
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", st->blob_dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fill(ctx, fd, size);
	if (r) {
		close(fd);
		unlink(tmp);
		return r;	/* the fetch said why */
	}
	/* The bytes are on disk before the name is (store_commit_staged
	 * renames it), and the name before the row: a row never lacks its
	 * file, even after a power loss. */
	what = "writing";
	if (fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r) {
		sg->v[sg->n].id = id;
		sg->v[sg->n].tmp = strdup(tmp);
		if (sg->v[sg->n].tmp)
			sg->n++;
		else
			r = -ENOMEM;
	}
	if (r)
		unlink(tmp);
out:
	if (r)
		log_error_event("cache: %s the file of attachment %lld: %s",
				what, (long long)id, strerror(-r));
	return r;
}

/* An attachment's bytes, from its file; -ENOENT without a row. */
int store_attachment_open(struct store *st, int64_t id)
{
	struct store_row row;
	char p[4096];
	int fd, r;

	r = store_one(st, Q_ATTACHMENT, id, NULL, &row);
	if (r)
		return r;
	blob_path(st, id, p, sizeof(p));
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		log_error_event("cache: the file of attachment %lld: %s",
				(long long)id, strerror(-r));
		return r == -ENOENT ? -EIO : r;
	}
	return fd;
}

static int attachment_read(struct store *st, int64_t id, struct buf *out)
{
	struct stat sb;
	int fd, r;

	fd = store_attachment_open(st, id);
	if (fd < 0)
		return fd;
	r = fstat(fd, &sb) ? -errno : buf_grow(out, (size_t)sb.st_size);
	for (;;) {
		ssize_t n;

		if (r)
			break;
		if (out->alloc - out->len < 2)
			r = buf_grow(out, 65536);
		if (r)
			break;
		n = read(fd, out->data + out->len, out->alloc - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	close(fd);
	return r;
}

int store_put_attachment(struct store *st, int64_t conv, int64_t msg,
			 int64_t mtime, const struct api_attachment *a,
			 int64_t size)
{
	char prefix[32], tmp[NAMES_MAX + 1], name[NAMES_MAX + 1];
	size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "%lld-",
				     (long long)a->id);
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	names_encode(a->file_name, strlen(a->file_name), NAMES_MAX - pl, tmp);
	snprintf(name, sizeof(name), "%s%s", prefix, tmp);
	s = wprep(d, W_ATT);
	if (s) {
		sqlite3_bind_int64(s, 1, a->id);
		sqlite3_bind_int64(s, 2, conv);
		sqlite3_bind_int64(s, 3, msg);
		bind_text(s, 4, name);
		bind_text(s, 5, a->file_name);
		bind_text(s, 6, a->mime);
		sqlite3_bind_int64(s, 7, mtime);
		sqlite3_bind_int64(s, 8, size);
	}
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int store_put_playbook(struct store *st, const struct api_object *o,
		       int64_t gen, int *changed)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	*changed = differs(d, W_PLAYBOOK_OLD, o->id, NULL, &o->json);
	s = wprep(d, W_PLAYBOOK);
	if (s) {
		sqlite3_bind_int64(s, 1, o->id);
		sqlite3_bind_int64(s, 2, o->mtime);
		bind_buf(s, 3, &o->json);
		sqlite3_bind_int64(s, 4, gen);
	}
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int64_t store_account_hash(const char *key)
{
	return (int64_t)(names_hash64(key, strlen(key), 0) >> 9);
}

int store_put_account(struct store *st, const struct api_object *o,
		      int64_t gen, int *changed)
{
	struct db *d = db_get(st);
	char *name = entry_name(o->key, ".json");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		free(name);
		return -errno;
	}
	*changed = differs(d, W_ACCOUNT_OLD, 0, o->key, &o->json);
	s = wprep(d, W_ACCOUNT);
	if (s) {
		bind_text(s, 1, o->key);
		sqlite3_bind_int64(s, 2, store_account_hash(o->key));
		bind_text(s, 3, name);
		sqlite3_bind_int64(s, 4, o->mtime);
		bind_buf(s, 5, &o->json);
		sqlite3_bind_int64(s, 6, gen);
	}
	r = step_done(d, s);
	db_put(st, d);
	free(name);
	return r;
}

int store_delete_contact(struct store *st, int64_t id)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, W_CONTACT_DEL);
	if (s)
		sqlite3_bind_int64(s, 1, id);
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int store_prune(struct store *st, enum store_table t, int64_t gen,
		int *deleted)
{
	static const enum wstmt which[] = { W_PRUNE_USERS, W_PRUNE_PLAYBOOKS,
					    W_PRUNE_ACCOUNTS };
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, which[t]);
	if (s)
		sqlite3_bind_int64(s, 1, gen);
	r = step_done(d, s);
	*deleted = r ? 0 : sqlite3_changes(d->sql);
	db_put(st, d);
	return r;
}

int store_keep_user(struct store *st, int64_t id, int64_t gen)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, W_KEEP_USER);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, gen);
	}
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int store_meta_get(struct store *st, const char *key, struct buf *out)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r = -ENOENT;

	if (!d)
		return -errno;
	s = wprep(d, W_META_GET);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			r = buf_add(out, sqlite3_column_blob(s, 0),
				    (size_t)sqlite3_column_bytes(s, 0));
		sqlite3_reset(s);
	}
	db_put(st, d);
	return r;
}

int store_meta_set(struct store *st, const char *key, const void *val,
		   size_t len)
{
	struct db *d = db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = wprep(d, W_META_SET);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, val ? val : "", (int)len,
				  SQLITE_TRANSIENT);
	}
	r = step_done(d, s);
	db_put(st, d);
	return r;
}

int64_t store_meta_i64(struct store *st, const char *key)
{
	struct buf b = BUF_INIT;
	int64_t v = 0;

	if (!store_meta_get(st, key, &b) && b.data)
		v = strtoll(b.data, NULL, 10);
	buf_release(&b);
	return v;
}

int store_meta_set_i64(struct store *st, const char *key, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

	return store_meta_set(st, key, tmp, (size_t)n);
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
		r = sql_errno(rc);
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
	bind_text(s, 2, r->path);
	bind_text(s, 3, r->kind);
	bind_text(s, 4, r->method);
	bind_text(s, 5, r->api_path);
	bind_buf(s, 6, &r->body);
	sqlite3_bind_int64(s, 7, r->target);
	bind_text(s, 8, r->object ? r->object : "");
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
	bind_text(s, 2, a->object ? a->object : "");
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
	bind_text(s, 2, u->state);
	sqlite3_bind_int64(s, 3, u->attempts);
	sqlite3_bind_int64(s, 4, u->next_try);
	bind_text(s, 5, u->last_error);
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
	bind_text(s, 2, a->object);
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
	bind_text(s, 2, a->object);
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
		r = sql_errno(rc);
	sqlite3_finalize(s);
	pthread_mutex_unlock(&st->outbox_lock);
	return r;
}

int store_user_orgs(struct store *st, int64_t *orgs, size_t n, size_t *found)
{
	/* Rare (once when an old cache is adopted): no pooled statement. */
	static const char sql[] =
		"SELECT DISTINCT json_extract(json, '$.orgId') FROM users"
		" WHERE json_valid(json) AND"
		" json_type(json, '$.orgId') = 'integer' AND"
		" json_extract(json, '$.orgId') > 0 LIMIT ?1";
	struct db *d = db_get(st);
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	*found = 0;
	if (!d)
		return -errno;
	rc = sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = sql_errno(rc);
		goto out;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *found < n)
		orgs[(*found)++] = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = sql_errno(rc);
out:
	sqlite3_finalize(s);
	db_put(st, d);
	return r;
}
