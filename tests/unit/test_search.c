// SPDX-License-Identifier: MIT
/*
 * test_search.c: unit tests of the search index (search.h, store_search.c)
 * against temporary caches: the lenient query rewrite, the writers keeping
 * the index in step with the rows (a refetch, an edit, a removal), the
 * results and snippets, the background build of an older cache, and the
 * rebuild of an index found inconsistent.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "search.h"
#include "store.h"
#include "unit.h"

static char tmpdir[64];

static struct buf str_buf(const char *s)
{
	struct buf b = BUF_INIT;

	buf_adds(&b, s);
	return b;
}

static void test_query_prepare(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "refund invoice", "refund invoice" },
		{ "\"refund invoice\"", "\"refund invoice\"" },
		{ "refund NOT paypal", "refund NOT paypal" },
		{ "invoic*", "invoic*" },
		{ "NEAR(refund invoice, 5)", "NEAR(refund invoice, 5)" },
		{ "ada@example.com", "\"ada@example.com\"" },
		{ "#4711", "\"#4711\"" },
		{ "a/b", "\"a/b\"" },
		{ "e-mail*", "\"e-mail\"*" },
		{ "say\"x", "say\"x" },
		{ "(a OR b) c", "(a OR b) c" },
		{ "tab\there", "tab here" },
	};
	char why[SEARCH_WHY_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf out = BUF_INIT;

		unit_ctx = cases[i].in;
		CHECK_EQ_INT(search_query_prepare(cases[i].in, &out, why,
						  sizeof(why)),
			     0);
		CHECK_EQ_STR(out.data ? out.data : "", cases[i].out);
		buf_release(&out);
	}
	unit_ctx = NULL;
	{
		struct buf out = BUF_INIT;

		CHECK_EQ_INT(search_query_prepare("   ", &out, why, sizeof(why)),
			     -EINVAL);
		CHECK(strstr(why, "empty") != NULL);
		buf_release(&out);
	}
}

static struct store *open_new(const char *name, char *dir, size_t len)
{
	snprintf(dir, len, "%s/%s", tmpdir, name);
	if (mkdir(dir, 0700))
		return NULL;
	return store_open(dir);
}

/* Stores conversation conv with messages (id, body) in one transaction,
 * as the sync does. */
static int put_conv(struct store *st, int64_t conv, const char *tags,
		    const int64_t *ids, const char *const *bodies, size_t n)
{
	struct api_conversation c = { .id = conv, .updated = 1,
				      .status = "open" };
	struct buf t = str_buf("T");
	char json[512];
	int changed, r;

	snprintf(json, sizeof(json), "{\"conversationTags\":[%s]}",
		 tags ? tags : "");
	c.json = str_buf(json);
	r = store_begin(st);
	r = r ? r : store_clear_messages(st, conv);
	for (size_t i = 0; i < n && !r; i++) {
		struct api_message m = { .id = ids[i], .conversation_id = conv,
					 .created = 1000 * (int64_t)ids[i] };

		snprintf(json, sizeof(json),
			 "{\"author\":{\"id\":1,\"type\":\"user\"},"
			 "\"body\":\"%s\"}",
			 bodies[i]);
		m.json = str_buf(json);
		r = store_put_message(st, &m);
		buf_release(&m.json);
	}
	r = r ? r : store_put_conversation(st, &c, &t, &changed);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
	buf_release(&c.json);
	buf_release(&t);
	return r;
}

static size_t nconvs(struct store *st, const char *q)
{
	struct search_result res;
	size_t n;

	if (search_run(st, q, SEARCH_CONVS, 0, &res, NULL, 0))
		return (size_t)-1;
	n = res.nconvs;
	search_result_release(&res);
	return n;
}

static void test_writers_and_queries(void)
{
	static const int64_t ids[] = { 11, 12 };
	static const char *const v1[] = {
		"<p>Le Café &amp; refund</p>", "invoice <b>4711</b>"
	};
	static const char *const v2[] = { "<p>Le Café &amp; refund</p>",
					  "edited away" };
	struct search_result res;
	struct api_contact k = { .id = 5, .email = "zq@example.org",
				 .name = "Zebulon Q" };
	char dir[128], why[SEARCH_WHY_MAX] = "";
	struct store *st = open_new("rw", dir, sizeof(dir));
	int64_t done, total, ib, tb;
	int ready, changed;

	REQUIRE(st);
	k.json = str_buf("{\"attributes\":{\"phone\":\"555-123-4567\"}}");
	REQUIRE(!put_conv(st, 100, "{\"name\":\"billing\"}", ids, v1, 2));
	CHECK_EQ_INT(nconvs(st, "cafe"), 1);
	CHECK_EQ_INT(nconvs(st, "CAFÉ"), 1);
	CHECK_EQ_INT(nconvs(st, "4711"), 1);
	CHECK_EQ_INT(nconvs(st, "billing"), 1);
	CHECK_EQ_INT(nconvs(st, "\"le cafe\""), 1);
	CHECK_EQ_INT(nconvs(st, "refund NOT cafe"), 0);

	/* Hits: the snippet is the rendered text, one line. */
	REQUIRE(!search_run(st, "refund", SEARCH_HITS, 0, &res, why,
			    sizeof(why)));
	REQUIRE(res.nhits == 1);
	CHECK_EQ_INT(res.hits[0].msg, 11);
	CHECK_EQ_INT(res.hits[0].conv, 100);
	CHECK_EQ_STR(res.hits[0].snippet, "Le Café & refund");
	CHECK_EQ_STR(res.hits[0].name, "User 1");
	search_result_release(&res);

	/* A refetch that changes nothing, then an edit and a removal. */
	REQUIRE(!put_conv(st, 100, "{\"name\":\"billing\"}", ids, v1, 2));
	CHECK_EQ_INT(nconvs(st, "4711"), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_dirty"), 0);
	REQUIRE(!put_conv(st, 100, NULL, ids, v2, 2));
	CHECK_EQ_INT(nconvs(st, "4711"), 0);
	CHECK_EQ_INT(nconvs(st, "edited"), 1);
	CHECK_EQ_INT(nconvs(st, "billing"), 0);
	REQUIRE(!put_conv(st, 100, NULL, ids, v2, 1));
	CHECK_EQ_INT(nconvs(st, "edited"), 0);
	CHECK(store_meta_i64(st, "search_dirty") != 0);
	CHECK_EQ_INT(store_search_purge(st), 1);
	CHECK_EQ_INT(store_search_purge(st), 0);

	/* Contacts. */
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_put_contact(st, &k, &changed), 0);
	REQUIRE(!store_commit(st));
	REQUIRE(!search_run(st, "zq@example.org", SEARCH_CONTACTS, 0, &res,
			    why, sizeof(why)));
	CHECK(res.ncontacts == 1 && res.contacts[0] == 5);
	search_result_release(&res);
	REQUIRE(!search_run(st, "555-123-4567", SEARCH_CONTACTS, 0, &res,
			    why, sizeof(why)));
	CHECK_EQ_INT(res.ncontacts, 1);
	search_result_release(&res);
	CHECK_EQ_INT(store_delete_contact(st, 5), 0);
	REQUIRE(!search_run(st, "zebulon", SEARCH_CONTACTS, 0, &res, why,
			    sizeof(why)));
	CHECK_EQ_INT(res.ncontacts, 0);
	search_result_release(&res);

	/* An invalid query says why. */
	CHECK_EQ_INT(search_run(st, "\"open", SEARCH_CONVS, 0, &res, why,
				sizeof(why)),
		     -EINVAL);
	CHECK(strstr(why, "unterminated") != NULL);

	/* The conversation goes: so does its text. */
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_forget_conversation(st, 100, &changed), 0);
	REQUIRE(!store_commit(st));
	CHECK_EQ_INT(nconvs(st, "cafe"), 0);
	CHECK_EQ_INT(store_search_progress(st, &done, &total, &ready, &ib, &tb),
		     0);
	CHECK_EQ_INT(ready, 1);
	CHECK_EQ_INT(tb, 0);
	CHECK(ib > 0);
	buf_release(&k.json);
	store_close(st);
}

static void exec_sql(const char *dir, const char *sql)
{
	char path[256];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/cache.db", dir);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_build_and_rebuild(void)
{
	static const int64_t ids[] = { 21, 22, 23 };
	static const char *const bodies[] = { "alpha one", "beta two",
					      "gamma three" };
	char dir[128];
	struct store *st = open_new("build", dir, sizeof(dir));
	int64_t done, total, ib, tb;
	int ready, steps = 0, r;

	REQUIRE(st);
	REQUIRE(!put_conv(st, 200, NULL, ids, bodies, 3));
	store_close(st);
	/* As a version without search left it. */
	exec_sql(dir, "DROP TABLE search_msg; DROP TABLE search_conv;"
		      "DROP TABLE search_contact;"
		      "DELETE FROM meta WHERE key LIKE 'search%';");
	st = store_open(dir);
	REQUIRE(st);
	CHECK_EQ_INT(store_search_progress(st, &done, &total, &ready, &ib, &tb),
		     0);
	CHECK(!ready && done == 0 && total == 3);
	CHECK_EQ_INT(nconvs(st, "beta"), 0);
	/* A writer meanwhile: a row above the mark waits for the build. */
	REQUIRE(!put_conv(st, 200, NULL, ids, bodies, 3));
	while ((r = store_search_build_step(st, 1)) == 1 && steps < 50)
		steps++;
	CHECK_EQ_INT(r, 0);
	CHECK(steps >= 3);
	CHECK_EQ_INT(nconvs(st, "beta"), 1);
	CHECK_EQ_INT(nconvs(st, "gamma"), 1);
	store_close(st);

	/* An index that lost rows (FTS5 says so when a removal finds
	 * nothing to remove): the sync still stores, and the index is
	 * rebuilt at the next open. */
	exec_sql(dir, "INSERT INTO search_msg(search_msg)"
		      " VALUES('delete-all')");
	st = store_open(dir);
	REQUIRE(st);
	unit_quiet(1);
	r = put_conv(st, 200, NULL, ids + 1, bodies + 1, 2);
	unit_quiet(0);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 1);
	store_close(st);
	unit_quiet(1);
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	while (store_search_build_step(st, 100) == 1)
		;
	CHECK_EQ_INT(nconvs(st, "alpha"), 0);
	CHECK_EQ_INT(nconvs(st, "beta"), 1);
	CHECK_EQ_INT(nconvs(st, "gamma"), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	store_close(st);
}

int main(void)
{
	char cmd[100];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_search.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_query_prepare);
	UNIT_RUN(test_writers_and_queries);
	UNIT_RUN(test_build_and_rebuild);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd))
		perror("rm");
	return r;
}
