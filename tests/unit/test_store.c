// SPDX-License-Identifier: MIT
/* test_store.c: unit tests of the outbox's ordering (store.h). */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
	UNIT_RUN(test_each_row_and_new_columns);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
