// SPDX-License-Identifier: MIT
/*
 * test_store.c: unit tests of the SQLite cache (store.h) against temporary
 * caches: the pool and transactions, the schema check and rebuild, the
 * cross-process lock, the writers and readers, the outbox table and the
 * attachment files.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "unit.h"

static char tmpdir[64]; /* this run's scratch directory (mkdtemp) */

/* Adds a POST row with this ordering key; returns its seq. */
static int64_t add(struct store *st, const char *object, int64_t target)
{
	struct outbox_row r;

	memset(&r, 0, sizeof(r));
	r.path = "p";
	r.kind = "k";
	r.method = "POST";
	r.api_path = "/x";
	r.target = target;
	r.object = (char *)object;
	if (store_outbox_add(st, &r))
		return -1;
	return r.seq;
}

/* The seq of the row the worker would send at now, or 0. */
static int64_t next(struct store *st, int64_t now)
{
	struct outbox_row r;
	int64_t seq;

	if (store_outbox_next(st, now, &r))
		return 0;
	seq = r.seq;
	store_outbox_row_release(&r);
	return seq;
}

/*
 * Writes with one key keep their order; a contact and a conversation with
 * the same id are different objects, and one does not hold up the other.
 */
static void test_order_by_object(void)
{
	char dir[128];
	struct store *st;
	int64_t a, b, c;

	snprintf(dir, sizeof(dir), "%s/order", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	st = store_open(dir);
	REQUIRE(st);
	a = add(st, "contact:5", 5);
	b = add(st, "conversation:5", 5);
	c = add(st, "contact:5", 5);
	REQUIRE(a > 0 && b > a && c > b);
	CHECK(!store_outbox_behind(st, a, "contact:5"));
	CHECK(!store_outbox_behind(st, b, "conversation:5"));
	CHECK(store_outbox_behind(st, c, "contact:5"));
	CHECK_EQ_INT(next(st, 1), a);
	/* a waits for a retry: b may go, c may not. */
	REQUIRE(!store_outbox_update(st, a, "pending", 1, 1000, "503"));
	CHECK_EQ_INT(next(st, 1), b);
	REQUIRE(!store_outbox_delete(st, b));
	CHECK_EQ_INT(next(st, 1), 0);
	CHECK_EQ_INT(next(st, 1000), a);
	REQUIRE(!store_outbox_delete(st, a));
	CHECK_EQ_INT(next(st, 1), c);
	store_close(st);
}

/*
 * An outbox.db of a version without the object column: its rows stay, and
 * with no key they are ordered against every row, old and new.
 */
static void test_rows_of_an_older_version(void)
{
	char dir[128], path[160];
	struct outbox_row r;
	struct store *st;
	sqlite3 *db;
	int64_t n;

	snprintf(dir, sizeof(dir), "%s/old", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	snprintf(path, sizeof(path), "%s/outbox.db", dir);
	REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
	REQUIRE(sqlite3_exec(db,
			     "CREATE TABLE outbox(seq INTEGER PRIMARY KEY"
			     " AUTOINCREMENT, created INTEGER NOT NULL, path"
			     " TEXT NOT NULL, kind TEXT NOT NULL, method TEXT"
			     " NOT NULL, api_path TEXT NOT NULL, body BLOB,"
			     " target INTEGER NOT NULL DEFAULT 0, state TEXT"
			     " NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
			     " next_try INTEGER NOT NULL DEFAULT 0, last_error"
			     " TEXT);"
			     "INSERT INTO outbox(created, path, kind, method,"
			     " api_path, target, state) VALUES(1, 'a',"
			     " 'account_patch', 'PATCH', '/accounts/update', 0,"
			     " 'pending');",
			     NULL, NULL, NULL) == SQLITE_OK);
	sqlite3_close(db);
	st = store_open(dir);
	REQUIRE(st);
	REQUIRE(!store_outbox_get(st, 1, &r));
	CHECK_EQ_STR(r.kind, "account_patch");
	CHECK_EQ_STR(r.object, "");
	store_outbox_row_release(&r);
	n = add(st, "account:77", 77);
	CHECK(n > 1);
	CHECK(store_outbox_behind(st, n, "account:77"));
	REQUIRE(!store_outbox_update(st, 1, "pending", 1, 1000, "503"));
	CHECK_EQ_INT(next(st, 1), 0);
	CHECK_EQ_INT(next(st, 1000), 1);
	store_close(st);
}

/* A download: writes the bytes ctx names. */
static int fill_with(void *ctx, int fd, int64_t *size)
{
	const char *bytes = ctx;
	size_t n = strlen(bytes);

	if (write(fd, bytes, n) != (ssize_t)n)
		return -EIO;
	*size = (int64_t)n;
	return 0;
}

/* Stores conversation conv with message msg (none if 0) and, if att, its
 * attachment att (its file in sg). */
static int put_conv(struct store *st, int64_t conv, int64_t msg, int64_t att,
		    struct store_staged *sg)
{
	struct api_conversation c = { .id = conv, .updated = 1 };
	struct api_attachment a = { .id = att, .file_name = "f" };
	struct api_message m = { .id = msg, .conversation_id = conv };
	struct buf transcript = BUF_INIT;
	int changed, r;

	r = store_begin(st);
	if (r)
		return r;
	r = store_clear_messages(st, conv);
	if (!r && msg)
		r = store_put_message(st, &m);
	if (!r && msg && att)
		r = store_put_attachment(st, conv, msg, 1, &a, 3);
	if (!r)
		r = store_put_conversation(st, &c, &transcript, &changed);
	if (r) {
		store_rollback(st);
		store_staged_release(sg);
		return r;
	}
	return store_commit_staged(st, sg);
}

/* The bytes of attachment id as the store reads them, or "" (none). */
static void att_bytes(struct store *st, int64_t id, char *out, size_t len)
{
	int fd = store_attachment_open(st, id);
	ssize_t n = 0;

	if (fd >= 0) {
		n = pread(fd, out, len - 1, 0);
		close(fd);
	}
	out[n > 0 ? n : 0] = '\0';
}

/* How many files dir/blobs holds, temp files included. */
static int blob_count(const char *dir)
{
	char p[256];
	DIR *d;
	struct dirent *e;
	int n = 0;

	snprintf(p, sizeof(p), "%s/blobs", dir);
	d = opendir(p);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' || e->d_name[1] == 't')
			n++;
	closedir(d);
	return n;
}

/*
 * The unlink of a deleted row's file (after its commit, "no row" checked)
 * meets the download of the same attachment by another conversation. The
 * interleaving, one step after the other: B downloads X; A's commit deletes
 * the row of X and unlinks its file; B commits its row of X. B's row must
 * have B's file. It had none (EIO on every read) when the file was renamed
 * into place at download time, before A's check.
 */
static void test_unlink_after_commit_spares_a_new_file(void)
{
	struct store_staged old = { 0 }, dl = { 0 };
	char dir[128], got[16];
	struct store *st;
	int64_t size;

	snprintf(dir, sizeof(dir), "%s/race", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	st = store_open(dir);
	REQUIRE(st);
	REQUIRE(!store_attachment_blob(st, &old, 7, fill_with, "old", &size));
	REQUIRE(!put_conv(st, 100, 1, 7, &old));
	att_bytes(st, 7, got, sizeof(got));
	CHECK_EQ_STR(got, "old");

	REQUIRE(!store_attachment_blob(st, &dl, 7, fill_with, "new", &size));
	CHECK_EQ_INT(put_conv(st, 100, 0, 0, NULL), 0);	/* A: X's row goes */
	CHECK_EQ_INT(put_conv(st, 200, 2, 7, &dl), 0);	/* B: X's row comes */
	att_bytes(st, 7, got, sizeof(got));
	CHECK_EQ_STR(got, "new");
	CHECK_EQ_INT(blob_count(dir), 1);
	store_close(st);
}

/*
 * A downloaded file leaves nothing behind unless its row commits: not when
 * the conversation is not stored after all, nor when the transaction that
 * commits lacks its row.
 */
static void test_staged_files_need_their_rows(void)
{
	struct store_staged a = { 0 }, b = { 0 };
	char dir[128];
	struct store *st;
	int64_t size;

	snprintf(dir, sizeof(dir), "%s/staged", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	st = store_open(dir);
	REQUIRE(st);
	REQUIRE(!store_attachment_blob(st, &a, 8, fill_with, "a", &size));
	REQUIRE(!store_attachment_blob(st, &a, 9, fill_with, "b", &size));
	CHECK_EQ_INT(blob_count(dir), 2);	/* two temp files */
	store_staged_release(&a);
	CHECK_EQ_INT(blob_count(dir), 0);
	REQUIRE(!store_attachment_blob(st, &b, 8, fill_with, "a", &size));
	CHECK_EQ_INT(put_conv(st, 300, 3, 0, &b), 0);	/* no row for 8 */
	CHECK_EQ_INT(blob_count(dir), 0);
	CHECK_EQ_INT(store_attachment_open(st, 8), -ENOENT);
	store_close(st);
}

static int count_row(void *ctx, const struct outbox_row *r)
{
	int64_t *seen = ctx;

	(void)r;
	(*seen)++;
	return 0;
}

/*
 * store_outbox_each() visits every row (it stopped after the first, so
 * .driftfs/outbox listed one row however many were queued); after_* and a
 * named object are kept; a named object is never renamed.
 */
static void test_each_row_and_new_columns(void)
{
	char dir[128];
	struct outbox_row r;
	struct store *st;
	int64_t seen = 0, a;

	snprintf(dir, sizeof(dir), "%s/each", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	st = store_open(dir);
	REQUIRE(st);
	memset(&r, 0, sizeof(r));
	r.path = "p";
	r.kind = "message";
	r.method = "POST";
	r.api_path = "/x";
	r.target = 9;
	r.object = "";
	r.after_created = 1234;
	r.after_id = 56;
	REQUIRE(!store_outbox_add(st, &r));
	a = r.seq;
	add(st, "contact:5", 5);
	add(st, "contact:6", 6);
	REQUIRE(!store_outbox_each(st, count_row, &seen));
	CHECK_EQ_INT(seen, 3);
	REQUIRE(!store_outbox_set_object(st, a, "conversation:9"));
	REQUIRE(!store_outbox_set_object(st, a, "other:1"));
	REQUIRE(!store_outbox_get(st, a, &r));
	CHECK_EQ_STR(r.object, "conversation:9");
	CHECK_EQ_INT(r.after_created, 1234);
	CHECK_EQ_INT(r.after_id, 56);
	store_outbox_row_release(&r);
	store_close(st);
}

/* Opens a store in a new directory tmpdir/name (its path in dir). */
static struct store *open_new(const char *name, char *dir, size_t len)
{
	snprintf(dir, len, "%s/%s", tmpdir, name);
	if (mkdir(dir, 0700))
		return NULL;
	return store_open(dir);
}

/* A struct buf over a string (the store only reads it). */
static struct buf str_buf(const char *s)
{
	struct buf b = BUF_INIT;

	b.data = (char *)s;
	b.len = strlen(s);
	return b;
}

static int put_user(struct store *st, int64_t id, const char *email,
		    const char *json, int64_t gen, int *changed)
{
	struct api_user u = { .id = id, .mtime = 5, .email = (char *)email,
			      .name = "Ann", .json = str_buf(json) };

	return store_put_user(st, &u, gen, changed);
}

/* Whether the stored bytes behind q(arg, sarg) are want. */
static void check_blob(struct store *st, enum store_query q, int64_t arg,
		       const char *sarg, const char *want)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(store_blob(st, q, arg, sarg, &b), 0);
	CHECK_EQ_MEM(b.data ? b.data : "", b.len, want, strlen(want));
	buf_release(&b);
}

static int collect_ids(void *ctx, const struct store_row *r)
{
	int64_t *ids = ctx;

	if (ids[0] < 15)
		ids[++ids[0]] = r->id;
	return 0;
}

/*
 * Each writer, then the reader that serves its rows: the entry names are
 * the encoded ones, *changed says whether the bytes changed, the prune
 * keeps what its generation saw.
 */
static void test_writers_then_readers(void)
{
	struct api_contact c = { .id = 21, .created = 7, .email = "c@x.io",
				 .json = str_buf("{\"c\":1}"),
				 .tags = str_buf("vip\n") };
	struct api_conversation cv = { .id = 31, .contact_id = 21,
				       .updated = 40, .status = "open",
				       .json = str_buf("{\"cv\":1}") };
	struct api_message m1 = { .id = 2, .conversation_id = 31,
				  .created = 30, .json = str_buf("m1") };
	struct api_message m2 = { .id = 3, .conversation_id = 31,
				  .created = 20, .json = str_buf("m2") };
	struct api_object acc = { .key = "acc-1", .mtime = 9,
				  .json = str_buf("{\"a\":1}") };
	struct buf transcript = str_buf("T");
	int64_t ids[16] = { 0 }, counts[STORE_COUNTS], orgs[4];
	struct store_row row;
	struct buf b = BUF_INIT;
	char dir[128];
	struct store *st;
	int changed = -1, deleted = -1;
	size_t found = 0;

	st = open_new("rw", dir, sizeof(dir));
	REQUIRE(st);
	CHECK_EQ_INT(put_user(st, 11, "a@x.io", "{\"orgId\":42}", 1, &changed),
		     0);
	CHECK_EQ_INT(changed, 1);
	CHECK_EQ_INT(put_user(st, 11, "a@x.io", "{\"orgId\":42}", 1, &changed),
		     0);
	CHECK_EQ_INT(changed, 0);
	CHECK_EQ_INT(store_one(st, Q_USER_BY_EMAIL, 0, "a@x.io.json", &row),
		     0);
	CHECK_EQ_INT(row.id, 11);
	CHECK_EQ_INT(row.size, strlen("{\"orgId\":42}"));
	CHECK_EQ_INT(store_one(st, Q_USER_NAME, 11, NULL, &row), 0);
	CHECK_EQ_STR(row.name, "Ann");
	check_blob(st, Q_USER, 11, NULL, "{\"orgId\":42}");
	CHECK_EQ_INT(store_user_orgs(st, orgs, 4, &found), 0);
	CHECK_EQ_INT(found, 1);
	CHECK_EQ_INT(orgs[0], 42);

	CHECK_EQ_INT(store_put_contact(st, &c, &changed), 0);
	CHECK_EQ_INT(changed, 1);
	CHECK_EQ_INT(store_one(st, Q_CONTACT_BY_EMAIL, 0, "c@x.io", &row), 0);
	CHECK_EQ_INT(row.id, 21);
	check_blob(st, Q_CONTACT_TAGS, 21, NULL, "vip\n");

	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_clear_messages(st, 31), 0);
	CHECK_EQ_INT(store_put_message(st, &m1), 0);
	CHECK_EQ_INT(store_put_message(st, &m2), 0);
	CHECK_EQ_INT(store_put_conversation(st, &cv, &transcript, &changed),
		     0);
	CHECK_EQ_INT(changed, 1);
	REQUIRE(!store_commit(st));
	/* Oldest first, whatever the ids say. */
	CHECK_EQ_INT(store_each(st, Q_MESSAGES, 31, NULL, collect_ids, ids),
		     0);
	CHECK_EQ_INT(ids[0], 2);
	CHECK_EQ_INT(ids[1], 3);
	CHECK_EQ_INT(ids[2], 2);
	CHECK_EQ_INT(store_one(st, Q_CONV, 31, NULL, &row), 0);
	CHECK_EQ_STR(row.text, "open");
	CHECK_EQ_INT(row.id2, 21);
	check_blob(st, Q_TRANSCRIPT, 31, NULL, "T");
	CHECK_EQ_INT(store_conversation_synced(st, 31), 40);
	CHECK_EQ_INT(store_conversation_synced(st, 32), 0);

	CHECK_EQ_INT(store_put_account(st, &acc, 1, &changed), 0);
	CHECK_EQ_INT(store_one(st, Q_ACCOUNT_BY_NAME, 0, "acc-1.json", &row),
		     0);
	CHECK_EQ_INT(row.id, store_account_hash("acc-1"));
	CHECK_EQ_STR(row.text, "acc-1");

	CHECK_EQ_INT(store_meta_set_i64(st, "w", 1234), 0);
	CHECK_EQ_INT(store_meta_i64(st, "w"), 1234);
	CHECK_EQ_INT(store_meta_get(st, "none", &b), -ENOENT);
	buf_release(&b);

	CHECK_EQ_INT(store_counts(st, counts), 0);
	CHECK_EQ_INT(counts[0], 1);	/* contacts */
	CHECK_EQ_INT(counts[1], 1);	/* users */
	CHECK_EQ_INT(counts[2], 1);	/* conversations */
	CHECK_EQ_INT(counts[3], 2);	/* messages */
	CHECK_EQ_INT(counts[6], 1);	/* accounts */
	CHECK_EQ_INT(counts[7], 0);	/* outbox */

	/* Generation 2 saw user 11 (kept) but not user 12. */
	CHECK_EQ_INT(put_user(st, 12, "b@x.io", "{}", 1, &changed), 0);
	CHECK_EQ_INT(store_keep_user(st, 11, 2), 0);
	CHECK_EQ_INT(store_prune(st, ST_USERS, 2, &deleted), 0);
	CHECK_EQ_INT(deleted, 1);
	CHECK_EQ_INT(store_one(st, Q_USER, 11, NULL, &row), 0);
	CHECK_EQ_INT(store_one(st, Q_USER, 12, NULL, &row), -ENOENT);

	CHECK_EQ_INT(store_delete_contact(st, 21), 0);
	CHECK_EQ_INT(store_one(st, Q_CONTACT, 21, NULL, &row), -ENOENT);
	store_close(st);
}

static int count_rows(void *ctx, const struct store_row *r)
{
	(void)r;
	(*(int *)ctx)++;
	return 0;
}

/* Q_CONTACTS_AFTER gives STORE_CONTACT_BATCH ids, the round sync.c takes. */
static void test_contact_batch(void)
{
	struct api_contact c = { .json = str_buf("{}"), .tags = str_buf("") };
	char dir[128];
	struct store *st;
	int changed, n = 0, r = 0;

	st = open_new("batch", dir, sizeof(dir));
	REQUIRE(st);
	REQUIRE(!store_begin(st));
	for (c.id = 1; c.id <= STORE_CONTACT_BATCH + 50 && !r; c.id++)
		r = store_put_contact(st, &c, &changed);
	REQUIRE(!store_commit(st));
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(store_each(st, Q_CONTACTS_AFTER, 0, NULL, count_rows, &n),
		     0);
	CHECK_EQ_INT(n, STORE_CONTACT_BATCH);
	n = 0;
	CHECK_EQ_INT(store_each(st, Q_CONTACTS_AFTER, STORE_CONTACT_BATCH,
				NULL, count_rows, &n), 0);
	CHECK_EQ_INT(n, 50);
	store_close(st);
}

struct other {
	struct store *st;
	int read;		/* store_one(Q_USER, 1) */
	int wrote;		/* store_meta_set() */
};

/* Another thread: what it reads and whether it can write meanwhile. */
static void *other_thread(void *arg)
{
	struct other *o = arg;
	struct store_row row;

	o->read = store_one(o->st, Q_USER, 1, NULL, &row);
	o->wrote = store_meta_set(o->st, "k", "v", 1);
	return NULL;
}

/*
 * A transaction is the thread's: it reads its own rows, another thread
 * does not see them and cannot write until it ends (a short busy timeout
 * here), and a rollback leaves nothing.
 */
static void test_transactions(void)
{
	struct other o = { 0 };
	struct store_row row;
	pthread_t t;
	char dir[128];
	struct store *st;
	int changed;

	setenv("DRIFTFS_TEST_BUSY_MS", "100", 1);
	st = open_new("tx", dir, sizeof(dir));
	REQUIRE(st);
	o.st = st;
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_begin(st), -EBUSY);
	CHECK_EQ_INT(put_user(st, 1, NULL, "{}", 1, &changed), 0);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), 0);
	unit_quiet(1);	/* the busy write is logged */
	REQUIRE(!pthread_create(&t, NULL, other_thread, &o));
	pthread_join(t, NULL);
	unit_quiet(0);
	CHECK_EQ_INT(o.read, -ENOENT);
	CHECK_EQ_INT(o.wrote, -EBUSY);
	store_rollback(st);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), -ENOENT);
	CHECK_EQ_INT(store_commit(st), -EINVAL);

	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(put_user(st, 1, NULL, "{}", 1, &changed), 0);
	CHECK_EQ_INT(store_commit(st), 0);
	REQUIRE(!pthread_create(&t, NULL, other_thread, &o));
	pthread_join(t, NULL);
	CHECK_EQ_INT(o.read, 0);
	CHECK_EQ_INT(o.wrote, 0);
	store_close(st);
	unsetenv("DRIFTFS_TEST_BUSY_MS");
}

/*
 * The descriptors this process has open on dir/cache.db (and with wal, on
 * its WAL only: one per open connection; SQLite may keep a closed
 * connection's descriptor of the file itself for the next one).
 */
static int cache_fds(const char *dir, int wal)
{
	char want[PATH_MAX + 16], real[PATH_MAX], link[64], target[PATH_MAX];
	struct dirent *e;
	DIR *fds;
	size_t n;
	int count = 0;

	if (!realpath(dir, real))
		return -1;
	fds = opendir("/proc/self/fd");
	if (!fds)
		return -1;
	snprintf(want, sizeof(want), "%s/cache.db%s", real, wal ? "-wal" : "");
	n = strlen(want);
	while ((e = readdir(fds))) {
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = 0;
		if (!strncmp(target, want, n) &&
		    (!target[n] || (!wal && !strcmp(target + n, "-wal"))))
			count++;
	}
	closedir(fds);
	return count;
}

/* What the readers of a burst share: how many hold a connection now. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int in, n;
};

struct holder {
	struct store *st;
	struct gate *g;
	int r;
};

/* Keeps a pooled connection until every holder keeps one (or 10 s went
 * by: a reader that failed before its row must not hang the suite). */
static int hold_row(void *ctx, const struct store_row *r)
{
	struct holder *h = ctx;
	struct gate *g = h->g;
	struct timespec until;

	(void)r;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&g->lock);
	g->in++;
	pthread_cond_broadcast(&g->cond);
	while (g->in < g->n &&
	       pthread_cond_timedwait(&g->cond, &g->lock, &until) == 0)
		;
	pthread_mutex_unlock(&g->lock);
	return 1;
}

static void *holder_thread(void *arg)
{
	struct holder *h = arg;

	h->r = store_each(h->st, Q_USER, 1, NULL, hold_row, h);
	return NULL;
}

/* n threads read at once, each on a connection of its own. */
static void burst(struct store *st, int n)
{
	struct gate g = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
			  0, n };
	struct holder h[8];
	pthread_t t[8];

	REQUIRE(n <= 8);
	for (int i = 0; i < n; i++) {
		h[i] = (struct holder){ .st = st, .g = &g };
		REQUIRE(!pthread_create(&t[i], NULL, holder_thread, &h[i]));
	}
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ_INT(h[i].r, 1);
	}
	CHECK_EQ_INT(g.in, n);
}

/*
 * A burst of readers opens one connection each; once they have been idle
 * for the pool's idle time, the next give-back closes all but two, so a
 * burst (grep -r, a first sync) leaves no lasting connections. A pool
 * reserved at the daemon's concurrency opens its connections at once and
 * keeps them: a burst within it adds no descriptor (the soak's "fd growth
 * 0" over a mount's life).
 */
static void test_pool_after_a_burst(void)
{
	struct store_row row;
	char dir[128];
	struct store *st;
	int64_t before, stmts;
	int changed, all, peak;

	st = open_new("pool", dir, sizeof(dir));
	REQUIRE(st);
	REQUIRE(!put_user(st, 1, NULL, "{}", 1, &changed));
	burst(st, 6);
	CHECK_EQ_INT(cache_fds(dir, 1), 6);
	peak = cache_fds(dir, 0);
	/* Not idle long enough: a give-back closes nothing. */
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), 0);
	CHECK_EQ_INT(cache_fds(dir, 1), 6);
	store_set_pool_idle(st, 0);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), 0);
	CHECK_EQ_INT(cache_fds(dir, 1), 2);
	/* A new burst may grow it again, reusing the descriptors SQLite
	 * kept, and not past the first burst's peak. (Not to the count
	 * before it: whether a closing connection's file descriptor is
	 * kept for reuse or closed depends on which others hold locks at
	 * that moment, so the count in between varies by one.) */
	burst(st, 6);
	CHECK(cache_fds(dir, 0) <= peak);
	store_close(st);

	st = open_new("reserved", dir, sizeof(dir));
	REQUIRE(st);
	REQUIRE(!put_user(st, 1, NULL, "{}", 1, &changed));
	/* SQLite's heap as a whole is bounded (its page caches recycle
	 * pages past the limit), whatever the number of connections. */
	CHECK(sqlite3_soft_heap_limit64(-1) == STORE_HEAP_SOFT_LIMIT);
	CHECK_EQ_INT(store_pool_reserve(st, 6), 0);
	CHECK_EQ_INT(cache_fds(dir, 1), 6);
	all = cache_fds(dir, 0);
	burst(st, 6);
	before = store_pool_cache_bytes(st);
	CHECK(before > 0);
	stmts = store_pool_stmt_bytes(st);
	CHECK(stmts > 0);
	store_set_pool_idle(st, 0);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), 0);
	CHECK_EQ_INT(cache_fds(dir, 0), all);
	CHECK_EQ_INT(cache_fds(dir, 1), 6);
	/* Kept, and idle that long: their page caches are given back (what
	 * stays is each pager's own bookkeeping: 204240 -> 39168 bytes). */
	CHECK(store_pool_cache_bytes(st) * 4 < before);
	/* And their prepared statements: over hours each of the daemon's 23
	 * came to hold every statement it ever ran, 5 MiB in all in a soak,
	 * past the soft limit, which frees only pages. What stays is FTS5's
	 * own statements for its shadow tables, a few KiB a connection
	 * (42080 -> 13544 bytes here, six connections). */
	CHECK(store_pool_stmt_bytes(st) * 2 < stmts);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), 0);
	store_close(st);
}

/* Runs sql on dir/file with a connection of its own. */
static int sql_on(const char *dir, const char *file, const char *sql)
{
	char path[192];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int exists(const char *dir, const char *file)
{
	char path[192];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return !access(path, F_OK);
}

/*
 * A damaged cache.db, or one of another schema version, starts again
 * empty; the pending writes in outbox.db stay.
 */
static void test_schema_check_and_rebuild(void)
{
	char dir[128], path[192], junk[8192];
	struct outbox_row r;
	struct store_row row;
	struct store *st;
	int changed, fd;

	st = open_new("rebuild", dir, sizeof(dir));
	REQUIRE(st);
	REQUIRE(!put_user(st, 1, NULL, "{}", 1, &changed));
	REQUIRE(add(st, "contact:5", 5) == 1);
	store_close(st);

	/* Another schema version. */
	REQUIRE(!sql_on(dir, "cache.db",
			"UPDATE meta SET value = '0' WHERE key = 'schema'"));
	unit_quiet(1);	/* the rebuild is logged */
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), -ENOENT);
	CHECK_EQ_INT(store_outbox_get(st, 1, &r), 0);
	store_outbox_row_release(&r);
	REQUIRE(!put_user(st, 1, NULL, "{}", 1, &changed));
	store_close(st);

	/* Damaged: not a database at all. */
	memset(junk, 'x', sizeof(junk));
	snprintf(path, sizeof(path), "%s/cache.db", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	REQUIRE(fd >= 0);
	CHECK(write(fd, junk, sizeof(junk)) == (ssize_t)sizeof(junk));
	close(fd);
	unit_quiet(1);
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	CHECK_EQ_INT(store_one(st, Q_USER, 1, NULL, &row), -ENOENT);
	CHECK_EQ_INT(store_outbox_get(st, 1, &r), 0);
	CHECK_EQ_STR(r.object, "contact:5");
	store_outbox_row_release(&r);
	CHECK_EQ_INT(put_user(st, 1, NULL, "{}", 1, &changed), 0);
	store_close(st);
}

/* An outbox table in cache.db (older versions) moves into outbox.db. */
static void test_old_outbox_moves(void)
{
	char dir[128];
	struct outbox_row r;
	struct store *st;

	snprintf(dir, sizeof(dir), "%s/moved", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	REQUIRE(!sql_on(dir, "cache.db",
			"CREATE TABLE outbox(seq INTEGER PRIMARY KEY"
			" AUTOINCREMENT, created INTEGER NOT NULL, path"
			" TEXT NOT NULL, kind TEXT NOT NULL, method TEXT"
			" NOT NULL, api_path TEXT NOT NULL, body BLOB,"
			" target INTEGER NOT NULL DEFAULT 0, state TEXT"
			" NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
			" next_try INTEGER NOT NULL DEFAULT 0, last_error"
			" TEXT);"
			"INSERT INTO outbox(seq, created, path, kind, method,"
			" api_path, target, state) VALUES(7, 1, 'a', 'tags',"
			" 'POST', '/x', 3, 'pending');"));
	unit_quiet(1);	/* the move is logged */
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	CHECK_EQ_INT(store_outbox_get(st, 7, &r), 0);
	CHECK_EQ_STR(r.kind, "tags");
	CHECK_EQ_INT(r.target, 3);
	store_outbox_row_release(&r);
	store_close(st);
	/* Gone from cache.db: the table there could not be created again. */
	CHECK_EQ_INT(sql_on(dir, "cache.db", "CREATE TABLE outbox(x)"), 0);
}

/*
 * cache.db.clean is written by the last process to close, and only when
 * no process died with the cache open (a mark left); an open consumes it
 * and removes the dead marks.
 */
static void test_clean_close_record(void)
{
	char dir[128], mark[192];
	struct store *a, *b;
	int fd;

	a = open_new("clean", dir, sizeof(dir));
	REQUIRE(a);
	b = store_open(dir);	/* a second "process": another flock */
	REQUIRE(b);
	store_close(b);
	CHECK(!exists(dir, "cache.db.clean"));	/* a still has it open */
	store_close(a);
	CHECK(exists(dir, "cache.db.clean"));

	a = store_open(dir);
	REQUIRE(a);
	CHECK(!exists(dir, "cache.db.clean"));
	snprintf(mark, sizeof(mark), "%s/cache.open-dead01", dir);
	fd = open(mark, O_WRONLY | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	store_close(a);
	CHECK(!exists(dir, "cache.db.clean"));	/* a crash's trace */
	CHECK(!exists(dir, "cache.open-dead01"));	/* and it is read */
	a = store_open(dir);
	REQUIRE(a);
	store_close(a);
	CHECK(exists(dir, "cache.db.clean"));
}

static int touch(const char *dir, const char *file)
{
	char path[192];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * After a run that did not close cleanly, blobs/ is tidied: files without
 * a row and temp files go; a row whose file is gone goes, and its
 * conversation is fetched again (updated_at 0, the walk restarted). After
 * a clean close nothing is swept.
 */
static void test_blob_sweep(void)
{
	struct store_staged sg = { 0 };
	struct store_row row;
	char dir[128], path[192], got[16];
	struct store *st;
	int64_t size;

	st = open_new("sweep", dir, sizeof(dir));
	REQUIRE(st);
	REQUIRE(!store_attachment_blob(st, &sg, 7, fill_with, "seven", &size));
	CHECK_EQ_INT(size, 5);
	REQUIRE(!put_conv(st, 100, 1, 7, &sg));
	REQUIRE(!store_attachment_blob(st, &sg, 9, fill_with, "nine", &size));
	REQUIRE(!put_conv(st, 200, 2, 9, &sg));
	CHECK(store_has_attachment(st, 7));
	REQUIRE(!store_meta_set_i64(st, "conv_watermark", 5));
	store_close(st);

	/* A clean close: the next open trusts the files. */
	REQUIRE(!touch(dir, "blobs/998"));
	st = store_open(dir);
	REQUIRE(st);
	CHECK(exists(dir, "blobs/998"));
	store_close(st);

	/* As a crash leaves it. */
	REQUIRE(!touch(dir, "blobs/.tmp-abcdef"));
	snprintf(path, sizeof(path), "%s/blobs/7", dir);
	REQUIRE(!unlink(path));
	snprintf(path, sizeof(path), "%s/cache.db.clean", dir);
	REQUIRE(!unlink(path));
	unit_quiet(1);	/* the missing file is logged */
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	CHECK(!exists(dir, "blobs/998"));
	CHECK(!exists(dir, "blobs/.tmp-abcdef"));
	CHECK(!store_has_attachment(st, 7));
	CHECK_EQ_INT(store_one(st, Q_ATTACHMENT, 7, NULL, &row), -ENOENT);
	CHECK_EQ_INT(store_one(st, Q_CONV, 100, NULL, &row), 0);
	CHECK_EQ_INT(row.mtime, 0);
	CHECK_EQ_INT(store_meta_i64(st, "conv_watermark"), 0);
	CHECK(store_has_attachment(st, 9));
	att_bytes(st, 9, got, sizeof(got));
	CHECK_EQ_STR(got, "nine");
	check_blob(st, Q_ATTACHMENT, 9, NULL, "nine");
	store_close(st);
}

/* A landed message moves the later rows of its object forward only. */
static void test_outbox_advance(void)
{
	static const int64_t after[] = { 0, 5, 0, 100 };
	static const char *const obj[] = { "conversation:9", "conversation:9",
					   "conversation:8", "conversation:9" };
	int64_t seq[4];
	char dir[128];
	struct outbox_row r;
	struct store *st;

	st = open_new("advance", dir, sizeof(dir));
	REQUIRE(st);
	for (int i = 0; i < 4; i++) {
		memset(&r, 0, sizeof(r));
		r.path = "p";
		r.kind = "message";
		r.method = "POST";
		r.api_path = "/x";
		r.object = (char *)obj[i];
		r.after_created = after[i];
		r.after_id = 1;
		REQUIRE(!store_outbox_add(st, &r));
		seq[i] = r.seq;
	}
	REQUIRE(!store_outbox_advance(st, seq[0], "conversation:9", 50, 3));
	for (int i = 0; i < 4; i++) {
		static const int64_t want[] = { 0, 50, 0, 100 };

		REQUIRE(!store_outbox_get(st, seq[i], &r));
		CHECK_EQ_INT(r.after_created, want[i]);
		CHECK_EQ_INT(r.after_id, i == 1 ? 3 : 1);
		store_outbox_row_release(&r);
	}
	store_close(st);
}

/* Whether file dir/name holds the bytes of marker (0 for no file). */
static int file_holds(const char *dir, const char *name, const char *marker)
{
	char p[256];
	size_t n = 0, m = strlen(marker);
	char *data = NULL;
	FILE *f;
	int found = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "rb");
	if (!f)
		return 0;
	for (;;) {
		char *q = realloc(data, n + 65536);
		size_t got;

		if (!q)
			break;
		data = q;
		got = fread(data + n, 1, 65536, f);
		n += got;
		if (!got)
			break;
	}
	fclose(f);
	for (size_t i = 0; data && i + m <= n && !found; i++)
		found = !memcmp(data + i, marker, m);
	free(data);
	return found;
}

/* Stores contact id whose json and name hold marker. */
static int put_marked_contact(struct store *st, int64_t id, const char *marker)
{
	struct api_contact c = { .id = id, .created = 1 };
	int changed, r;

	c.name = (char *)marker;
	buf_init(&c.json, 0);
	buf_init(&c.tags, 0);
	r = buf_printf(&c.json, "{\"name\":\"%s\"}", marker);
	r = r ? r : store_begin(st);
	r = r ? r : store_put_contact(st, &c, &changed);
	r = r ? r : store_commit(st);
	buf_release(&c.json);
	return r;
}

/*
 * What is forgotten leaves the files: secure_delete zeroes the deleted
 * rows (on every connection, the pool's new ones included), and
 * store_checkpoint() moves the zeroed pages out of the WAL and truncates
 * it. A conversation goes with its messages, attachment rows and files.
 * The id lists walk in id order from a cursor.
 */
static void test_forget_leaves_no_bytes(void)
{
	static const char marker[] = "qXv-erase-me-7731";
	struct store_staged sg = { 0 };
	struct api_message msg = { .id = 11, .conversation_id = 300 };
	struct api_conversation c = { .id = 300, .contact_id = 5, .updated = 2 };
	struct buf transcript = BUF_INIT;
	int64_t *ids = NULL, size;
	size_t n = 0;
	char dir[128];
	struct store *st;
	int changed, found;

	snprintf(dir, sizeof(dir), "%s/erase", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	st = store_open(dir);
	REQUIRE(st);
	REQUIRE(!put_conv(st, 100, 1, 0, NULL));
	REQUIRE(!put_conv(st, 200, 2, 0, NULL));
	REQUIRE(!put_marked_contact(st, 5, marker));
	REQUIRE(!store_attachment_blob(st, &sg, 9, fill_with, "secret", &size));
	buf_init(&msg.json, 0);
	REQUIRE(!buf_printf(&msg.json, "{\"body\":\"%s\"}", marker));
	REQUIRE(!buf_printf(&transcript, "%s\n", marker));
	REQUIRE(!store_begin(st));
	REQUIRE(!store_put_message(st, &msg));
	REQUIRE(!store_put_attachment(st, 300, 11, 1,
				      &(struct api_attachment){ .id = 9,
								.file_name = "f" },
				      6));
	REQUIRE(!store_put_conversation(st, &c, &transcript, &changed));
	REQUIRE(!store_commit_staged(st, &sg));
	buf_release(&msg.json);
	buf_release(&transcript);

	/* The lists, by id, from a cursor. */
	CHECK_EQ_INT(store_conversation_ids(st, 100, 1, &ids, &n), 0);
	CHECK(n == 1 && ids[0] == 200);
	free(ids);
	CHECK_EQ_INT(store_conversation_ids(st, 0, 0, &ids, &n), 0);
	CHECK(n == 3 && ids[0] == 100 && ids[2] == 300);
	free(ids);
	CHECK_EQ_INT(store_contact_conversation_ids(st, 5, &ids, &n), 0);
	CHECK(n == 1 && ids[0] == 300);
	free(ids);
	CHECK_EQ_INT(store_message_ids(st, 300, &ids, &n), 0);
	CHECK(n == 1 && ids[0] == 11);
	free(ids);
	CHECK_EQ_INT(store_contact_ids(st, 0, 0, &ids, &n), 0);
	CHECK(n == 1 && ids[0] == 5);
	free(ids);

	/* The test can fail: the bytes are in the files now. */
	CHECK_EQ_INT(store_checkpoint(st), 0);
	CHECK(file_holds(dir, "cache.db", marker));
	CHECK_EQ_INT(blob_count(dir), 1);

	/* Outside a transaction it refuses (its files go with the commit). */
	CHECK_EQ_INT(store_forget_conversation(st, 300, &found), -EINVAL);
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_forget_conversation(st, 300, &found), 0);
	CHECK_EQ_INT(found, 1);
	CHECK_EQ_INT(store_checkpoint(st), -EBUSY);	/* in a transaction */
	REQUIRE(!store_commit(st));
	CHECK_EQ_INT(store_delete_contact(st, 5), 0);
	CHECK_EQ_INT(blob_count(dir), 0);
	CHECK_EQ_INT(store_message_ids(st, 300, &ids, &n), 0);
	CHECK(n == 0 && !ids);
	CHECK_EQ_INT(store_conversation_ids(st, 0, 0, &ids, &n), 0);
	CHECK(n == 2);
	free(ids);

	CHECK_EQ_INT(store_checkpoint(st), 0);
	CHECK(!file_holds(dir, "cache.db", marker));
	CHECK(!file_holds(dir, "cache.db-wal", marker));
	/* A forgotten id that was never there: no row, no error. */
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_forget_conversation(st, 999, &found), 0);
	CHECK_EQ_INT(found, 0);
	store_rollback(st);
	store_close(st);
}

int main(void)
{
	char cmd[100];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_store.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_order_by_object);
	UNIT_RUN(test_rows_of_an_older_version);
	UNIT_RUN(test_unlink_after_commit_spares_a_new_file);
	UNIT_RUN(test_staged_files_need_their_rows);
	UNIT_RUN(test_each_row_and_new_columns);
	UNIT_RUN(test_writers_then_readers);
	UNIT_RUN(test_contact_batch);
	UNIT_RUN(test_transactions);
	UNIT_RUN(test_pool_after_a_burst);
	UNIT_RUN(test_schema_check_and_rebuild);
	UNIT_RUN(test_old_outbox_moves);
	UNIT_RUN(test_clean_close_record);
	UNIT_RUN(test_blob_sweep);
	UNIT_RUN(test_outbox_advance);
	UNIT_RUN(test_forget_leaves_no_bytes);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
