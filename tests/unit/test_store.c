// SPDX-License-Identifier: MIT
/* test_store.c: unit tests of the outbox's ordering and of the attachment
 * files (store.h). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
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
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
