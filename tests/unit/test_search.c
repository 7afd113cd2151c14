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

#include "../../src/store_search_int.h"
#include "api.h"
#include "clock.h"
#include "render.h"
#include "search.h"
#include "search_expr.h"
#include "store.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

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
		{ "\"abc\"*", "\"abc\"*" },
		{ "^\"a b\" c", "^\"a b\" c" },
		{ "a.b\"c d\"", "\"a.b\" \"c d\"" },
		{ "\"a b\"x.y", "\"a b\" \"x.y\"" },
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
		/* Bytes that are not UTF-8 (fuzz_search's first find). */
		CHECK_EQ_INT(search_query_prepare("\xd8\x8d\x81\xa0", &out, why,
						  sizeof(why)),
			     -EINVAL);
		CHECK(strstr(why, "UTF-8") != NULL);
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

/* The segments of search_msg's index (FTS5's structure record: a 4-byte
 * cookie, then varints: levels, segments). */
static int msg_segments(const char *dir)
{
	char path[256];
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int n = -1;

	snprintf(path, sizeof(path), "%s/cache.db", dir);
	if (sqlite3_open(path, &db) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT block FROM search_msg_data"
				   " WHERE id = 10", -1, &s, NULL) == SQLITE_OK &&
	    sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) >= 6) {
		const unsigned char *p = sqlite3_column_blob(s, 0);

		/* Both counts are small here: one byte each. */
		if (!(p[4] & 0x80) && !(p[5] & 0x80))
			n = p[5];
	}
	sqlite3_finalize(s);
	sqlite3_close(db);
	return n;
}

/*
 * A transaction's index statements run at its end: every INSERT OR
 * REPLACE of a message would otherwise make FTS5 write what it holds as
 * a segment of its own (a statement journal), and a conversation of 30
 * messages stored in one transaction made several segments. Also: the
 * leftovers of a conversation cleared and not stored again leave the
 * index when the next one is cleared, and a transaction whose pending
 * text passes what is held (a huge conversation) stays in step.
 */
static void test_index_writes_at_commit(void)
{
	int64_t ids[30];
	const char *bodies[30];
	char dir[128], json[4200], body[4000];
	struct store *st = open_new("seg", dir, sizeof(dir));
	int r;

	REQUIRE(st);
	for (int i = 0; i < 30; i++) {
		ids[i] = 1000 + 131 * i;
		bodies[i] = i % 2 ? "walrus ledger" : "crimson walrus";
	}
	REQUIRE(!put_conv(st, 7, NULL, ids, bodies, 30));
	CHECK_EQ_INT(msg_segments(dir), 1);
	CHECK_EQ_INT(nconvs(st, "\"crimson walrus\""), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 30);

	/* Cleared, not stored again, then another conversation cleared. */
	REQUIRE(!store_begin(st));
	CHECK_EQ_INT(store_clear_messages(st, 7), 0);
	CHECK_EQ_INT(store_clear_messages(st, 8), 0);
	REQUIRE(!store_commit(st));
	CHECK_EQ_INT(nconvs(st, "walrus"), 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 0);

	/* 300 messages of 4000 bytes: the pending text runs mid-way. */
	memset(body, 'a', sizeof(body) - 1);
	body[sizeof(body) - 1] = 0;
	memcpy(body, "zeppelin ", 9);
	r = store_begin(st);
	r = r ? r : store_clear_messages(st, 9);
	for (int i = 0; i < 300 && !r; i++) {
		struct api_message m = { .id = 50000 + i, .conversation_id = 9,
					 .created = 1000 };

		snprintf(json, sizeof(json),
			 "{\"author\":{\"id\":1,\"type\":\"user\"},"
			 "\"body\":\"%s\"}", body);
		m.json = str_buf(json);
		r = store_put_message(st, &m);
		buf_release(&m.json);
	}
	CHECK_EQ_INT(r, 0);
	REQUIRE(!store_commit(st));
	CHECK_EQ_INT(nconvs(st, "zeppelin"), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 300);
	CHECK_EQ_INT(store_meta_i64(st, "search_text_bytes"),
		     300 * (int64_t)(sizeof(body) - 1));
	store_close(st);
	/* In step at the next open: nothing to rebuild. */
	st = store_open(dir);
	REQUIRE(st);
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	CHECK_EQ_INT(nconvs(st, "zeppelin"), 1);
	store_close(st);
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

	/* An index that lost rows: found out of step at the next open,
	 * and rebuilt; the sync meanwhile stores. */
	exec_sql(dir, "INSERT INTO search_msg(search_msg)"
		      " VALUES('delete-all')");
	unit_quiet(1);
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	CHECK_EQ_INT(store_search_progress(st, &done, &total, &ready, &ib, &tb),
		     0);
	CHECK(!ready);
	r = put_conv(st, 200, NULL, ids + 1, bodies + 1, 2);
	CHECK_EQ_INT(r, 0);
	while (store_search_build_step(st, 100) == 1)
		;
	CHECK_EQ_INT(nconvs(st, "alpha"), 0);
	CHECK_EQ_INT(nconvs(st, "beta"), 1);
	CHECK_EQ_INT(nconvs(st, "gamma"), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	store_close(st);
}

/* Whether the file DIR/NAME holds needle. */
static int file_holds(const char *dir, const char *name, const char *needle)
{
	char path[256];
	FILE *f;
	char *data;
	long n;
	int found = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "rb");
	if (!f)
		return 0;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = n > 0 ? malloc((size_t)n) : NULL;
	if (data && fread(data, 1, (size_t)n, f) == (size_t)n)
		found = memmem(data, (size_t)n, needle, strlen(needle)) != NULL;
	free(data);
	fclose(f);
	return found;
}

static int cache_holds(const char *dir, const char *needle)
{
	return file_holds(dir, "cache.db", needle) ||
	       file_holds(dir, "cache.db-wal", needle);
}

/*
 * M1: rows deleted behind the index's back by plain SQL (as a version
 * without the index's upkeep would): the next open finds the index out
 * of step (its rows against the table's), rebuilds it, and the text of
 * the deleted row leaves the file. A command that only reads does not
 * rebuild, but leaves the mark for the next open and says not ready.
 */
static void test_out_of_step_rebuild(void)
{
	static const int64_t ids[] = { 31, 32 };
	static const char *const bodies[] = { "keep this one",
					      "xylophonequagmire secret" };
	char dir[128];
	struct store *st = open_new("step", dir, sizeof(dir));
	int64_t done, total, ib, tb;
	int ready;

	REQUIRE(st);
	REQUIRE(!put_conv(st, 300, NULL, ids, bodies, 2));
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 2);
	CHECK_EQ_INT(nconvs(st, "xylophonequagmire"), 1);
	store_close(st);
	/* Index terms are prefix-compressed: the word's tail. */
	CHECK(cache_holds(dir, "phonequagmire"));
	exec_sql(dir, "PRAGMA secure_delete=ON;"
		      "DELETE FROM messages WHERE id = 32;");

	/* A reader checks nothing (it could not repair it, and counting
	 * every row would hold a mount's writers back): no reset, no mark;
	 * the check is a writer's. */
	search_open_read_only(1);
	unit_quiet(1);
	st = store_open(dir);
	unit_quiet(0);
	search_open_read_only(0);
	REQUIRE(st);
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	CHECK_EQ_INT(store_search_progress(st, &done, &total, &ready, &ib, &tb),
		     0);
	store_close(st);
	CHECK(cache_holds(dir, "phonequagmire"));

	unit_quiet(1);
	st = store_open(dir);
	unit_quiet(0);
	REQUIRE(st);
	while (store_search_build_step(st, 100) == 1)
		;
	CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 1);
	CHECK_EQ_INT(nconvs(st, "xylophonequagmire"), 0);
	CHECK_EQ_INT(nconvs(st, "keep"), 1);
	store_close(st);
	CHECK(!cache_holds(dir, "phonequagmire"));
	/* In step now: the next open leaves it alone. */
	st = store_open(dir);
	REQUIRE(st);
	CHECK_EQ_INT(store_search_progress(st, &done, &total, &ready, &ib, &tb),
		     0);
	CHECK(ready);
	store_close(st);
}

/*
 * st closed and the cache in dir opened again: the index in step with
 * the rows, so no rebuild is due. The store, or NULL.
 */
static struct store *reopened_in_step(struct store *st, const char *dir)
{
	store_close(st);
	st = store_open(dir);
	if (st)
		CHECK_EQ_INT(store_meta_i64(st, "search_rebuild"), 0);
	else
		CHECK(st != NULL);
	return st;
}

/*
 * M3 and L5: a message stored again with other JSON but the same text
 * leaves the index alone; an edit that only adds words leaves nothing to
 * merge, one that removes words does; a message put twice after one
 * clear keeps the index in step (its rows count).
 */
static void test_rewrite_same_text(void)
{
	static const int64_t ids[] = { 41, 42 };
	static const char *const v1[] = { "hello there", "<b>bold</b> move" };
	static const char *const v2[] = { "<p>hello there</p>",
					  "bold move" };
	static const char *const v3[] = { "hello there, friend", "bold move" };
	static const char *const v4[] = { "hello", "bold move" };
	char dir[128];
	struct store *st = open_new("same", dir, sizeof(dir));
	int64_t tb;

	REQUIRE(st);
	REQUIRE(!put_conv(st, 400, NULL, ids, v1, 2));
	tb = store_meta_i64(st, "search_text_bytes");
	/* Other HTML, the same text. */
	REQUIRE(!put_conv(st, 400, NULL, ids, v2, 2));
	CHECK_EQ_INT(store_meta_i64(st, "search_dirty"), 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_text_bytes"), tb);
	/* Words added. */
	REQUIRE(!put_conv(st, 400, NULL, ids, v3, 2));
	CHECK_EQ_INT(store_meta_i64(st, "search_dirty"), 0);
	CHECK_EQ_INT(nconvs(st, "friend"), 1);
	/* Words removed. */
	REQUIRE(!put_conv(st, 400, NULL, ids, v4, 2));
	CHECK(store_meta_i64(st, "search_dirty") != 0);
	CHECK_EQ_INT(nconvs(st, "friend"), 0);
	CHECK_EQ_INT(store_search_purge(st), 1);

	/* Twice after one clear, with other text each time. */
	{
		struct api_message m = { .id = 41, .conversation_id = 400,
					 .created = 41000 };
		static const char *const j[] = {
			"{\"author\":{\"id\":1,\"type\":\"user\"},"
			"\"body\":\"first take\"}",
			"{\"author\":{\"id\":1,\"type\":\"user\"},"
			"\"body\":\"second take\"}"
		};

		REQUIRE(!store_begin(st));
		CHECK_EQ_INT(store_clear_messages(st, 400), 0);
		for (int i = 0; i < 2; i++) {
			m.json = str_buf(j[i]);
			CHECK_EQ_INT(store_put_message(st, &m), 0);
			buf_release(&m.json);
		}
		REQUIRE(!store_commit(st));
	}
	CHECK_EQ_INT(nconvs(st, "first"), 0);
	CHECK_EQ_INT(nconvs(st, "second"), 1);
	CHECK_EQ_INT(nconvs(st, "hello"), 0);
	/* 42 went with the clear (not stored again). */
	CHECK_EQ_INT(nconvs(st, "bold"), 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 1);
	st = reopened_in_step(st, dir);
	REQUIRE(st);
	CHECK_EQ_INT(nconvs(st, "second"), 1);
	store_close(st);
}

/*
 * A message's indexed text is render_html_text's output, and a removal
 * must give FTS5 the very text it indexed: a change in the renderer's
 * output needs a bump of SEARCH_FORMAT (include/search_index.h), which rebuilds
 * every cache's index. This test hashes the renderer's output over a
 * fixed fixture: when it fails, bump SEARCH_FORMAT and add the new
 * {format, hash} line it prints to the table below.
 */
static void test_renderer_pins_search_format(void)
{
	static const char *const fixture[] = {
		"plain words",
		"<p>Le Caf\u00e9 &amp; refund</p><p>second</p>",
		"line<br>break<br/>again<br />",
		"<ul><li>one</li><li>two</li></ul>",
		"<a href=\"https://example.org/x\">a link</a> and text",
		"&lt;tag&gt; &quot;q&quot; &#39;a&#39; &#x263A; &nbsp;x&nbsp;",
		"<div>block</div><div><b>bold</b> <i>it</i></div>",
		"<blockquote>quoted</blockquote>after",
		"<script>var x = 1;</script><style>p{}</style>shown",
		"  spaced \t out \n lines  ",
		"<p>\u00c5ngstr\u00f6m \u65e5\u672c\u8a9e</p>",
		"<img src=\"x.png\" alt=\"pic\">#4711 ada@example.com",
		"",
	};
	static const struct {
		int format;
		uint64_t hash;
	} pinned[] = {
		{ 2, 0xfd791e606341582fULL },
		{ 3, 0xfd791e606341582fULL },	/* detail=none: same text */
	};
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a 64 */

	for (size_t i = 0; i < sizeof(fixture) / sizeof(fixture[0]); i++) {
		struct buf out = BUF_INIT;

		REQUIRE(!render_html_text(fixture[i], &out));
		for (size_t k = 0; k < out.len; k++) {
			h ^= (unsigned char)out.data[k];
			h *= 1099511628211ULL;
		}
		h ^= 0xff;	/* between outputs */
		h *= 1099511628211ULL;
		buf_release(&out);
	}
	for (size_t i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++)
		if (pinned[i].format == SEARCH_FORMAT) {
			if (pinned[i].hash != h)
				fprintf(stderr,
					"render_html_text's output changed:"
					" bump SEARCH_FORMAT in"
					" include/search_index.h and pin"
					" { %d, 0x%016llxULL }\n",
					SEARCH_FORMAT + 1,
					(unsigned long long)h);
			CHECK_EQ_U64(pinned[i].hash, h);
			return;
		}
	fprintf(stderr, "no hash pinned for SEARCH_FORMAT %d: add"
			" { %d, 0x%016llxULL }\n",
		SEARCH_FORMAT, SEARCH_FORMAT, (unsigned long long)h);
	CHECK(0);
}

/* What a query may cost: the rewrite's limits (review M2). */
static void test_query_limits(void)
{
	static const struct {
		const char *in;
		int ok;
	} cases[] = {
		{ "abc*", 1 },
		{ "ab*", 0 },
		{ "a*", 0 },
		{ "^ab*", 0 },
		{ "^abc*", 1 },
		{ "zone/b7*", 0 },	/* the prefix is "b7" */
		{ "zone/b7x*", 1 },
		{ "caf\xc3\xa9*", 1 },
		{ "\xc3\xa7\xc3\xa9*", 0 },	/* two characters */
		{ "one* two* three* four* five* sixx* seven* eight*", 1 },
		{ "one* two* three* four* five* sixx* seven* eight* nine*",
		  0 },
		{ "NEAR(aaa bbb, 2) OR ccc AND ddd NOT eee", 1 },
		{ "\"x abc\"*", 1 },
	};
	char why[SEARCH_WHY_MAX];
	struct buf q = BUF_INIT, out = BUF_INIT;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = search_query_prepare(cases[i].in, &out, why,
					     sizeof(why));

		CHECK_EQ_INT(r, cases[i].ok ? 0 : -EINVAL);
		if (!cases[i].ok)
			CHECK(strstr(why, "prefix") != NULL);
		buf_release(&out);
	}
	/* 32 terms, operators not counted; 33 is one too many, phrase
	 * words included. */
	for (int i = 0; i < 32; i++)
		buf_printf(&q, "%sw%d", i ? " OR " : "", i);
	CHECK_EQ_INT(search_query_prepare(q.data, &out, why, sizeof(why)), 0);
	buf_release(&out);
	buf_adds(&q, " \"x y\"");
	CHECK_EQ_INT(search_query_prepare(q.data, &out, why, sizeof(why)),
		     -EINVAL);
	CHECK(strstr(why, "more than 32 terms") != NULL);
	buf_release(&out);
	buf_release(&q);
}

/*
 * The caps keep the newest ids (listed ascending), a query past its
 * deadline is -ETIMEDOUT, and a hit names its author as a transcript does
 * (cut at RENDER_NAME_MAX - 1 bytes).
 */
static void test_caps_deadline_and_names(void)
{
	char dir[128], why[SEARCH_WHY_MAX], name[400];
	struct store *st = open_new("caps", dir, sizeof(dir));
	struct api_user u = { .id = 1, .mtime = 1 };
	struct search_result res;
	int64_t *ids = NULL;
	size_t n = 0;
	int changed;

	REQUIRE(st);
	for (int64_t c = 41; c <= 45; c++) {
		int64_t mid = c * 10;
		const char *body = "<p>capybara</p>";

		REQUIRE(!put_conv(st, c, NULL, &mid, &body, 1));
	}
	CHECK_EQ_INT(store_search_convs(st, "capybara", 2, &ids, &n, why,
					sizeof(why)), 0);
	REQUIRE(n == 2);
	CHECK(ids[0] == 44 && ids[1] == 45);
	free(ids);

	/* A 399-byte name: hits cut it where the transcript does. */
	memset(name, 'N', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	u.name = name;
	u.json = str_buf("{\"id\":1}");
	REQUIRE(!store_put_user(st, &u, 1, &changed));
	buf_release(&u.json);
	REQUIRE(!search_run(st, "capybara", SEARCH_HITS, 1, &res, why,
			    sizeof(why)));
	REQUIRE(res.nhits == 1);
	CHECK_EQ_INT(strlen(res.hits[0].name), RENDER_NAME_MAX - 1);
	search_result_release(&res);

	setenv("DRIFTFS_TEST_SEARCH_MS", "0", 1);
	CHECK_EQ_INT(search_run(st, "capybara", SEARCH_HITS, 0, &res, why,
				sizeof(why)),
		     -ETIMEDOUT);
	CHECK(strstr(why, "too long") != NULL);
	CHECK_EQ_INT(res.nhits, 0);
	unsetenv("DRIFTFS_TEST_SEARCH_MS");
	CHECK_EQ_INT(search_run(st, "capybara", SEARCH_CONVS, 0, &res, why,
				sizeof(why)),
		     0);
	CHECK_EQ_INT(res.nconvs, 5);
	search_result_release(&res);
	store_close(st);
}

/*
 * The message index keeps no positions: a phrase's candidates are checked
 * a batch at a time (store_search_query.c CHECK_BATCH, 2000), newest
 * first, and
 * hits are ranked by the terms' counts in the text. 5000 candidates cross
 * the batches; a message holding "alpha" three times ranks first.
 */
static void test_checked_batches_and_rank(void)
{
	char dir[128], why[SEARCH_WHY_MAX];
	struct store *st = open_new("batches", dir, sizeof(dir));
	struct search_result res;
	int64_t *ids = NULL, top = 7 * 1000 + 100;
	size_t n = 0;

	REQUIRE(st);
	/* Checked queries, not deadlines, are tested here: a run under
	 * valgrind must not stop them at 2 s. */
	setenv("DRIFTFS_TEST_SEARCH_MS", "600000", 1);
	for (int64_t c = 1; c <= 50; c++) {
		int64_t mids[101];
		const char *bodies[101];
		size_t k;

		for (k = 0; k < 100; k++) {
			mids[k] = c * 1000 + (int64_t)k;
			bodies[k] = k % 2 ? "beta alpha" : "alpha beta";
		}
		if (c == 7) {
			mids[k] = top;
			bodies[k++] = "alpha alpha alpha beta";
		}
		REQUIRE(!put_conv(st, c, NULL, mids, bodies, k));
	}
	CHECK_EQ_INT(nconvs(st, "\"alpha beta\""), 50);
	CHECK_EQ_INT(nconvs(st, "\"beta alpha\""), 50);
	CHECK_EQ_INT(nconvs(st, "alpha NOT \"beta alpha\""), 50);
	CHECK_EQ_INT(nconvs(st, "\"alpha alpha alpha\""), 1);
	CHECK_EQ_INT(nconvs(st, "\"gamma alpha\""), 0);
	/* More distinct tokens than the plan's program holds (a query has
	 * 32 words at most, but a word may be many tokens: "zz0\u2014zz1"
	 * is a phrase of two): FTS5 itself checks the candidates, on its
	 * checking table, and finds the same. */
	{
		static const char *const ph[] = {
			"\"alpha beta\"", "\"beta alpha\"",
			"\"alpha alpha alpha\"", "\"gamma alpha\"",
		};
		static const int want[] = { 50, 50, 1, 0 };
		struct buf q = BUF_INIT;
		struct search_tokenizer *tk;
		struct search_plan p;
		sqlite3 *mem;

		for (size_t i = 0; i < ARRAY_SIZE(ph); i++) {
			buf_reset(&q);
			buf_printf(&q, "%s OR ", ph[i]);
			for (int w = 0; w < 64; w++)
				buf_printf(&q, "%szz%d", w ? "\xe2\x80\x94" : "",
					   w);
			unit_ctx = q.data;
			/* Not one the program holds, or this would not be
			 * the table's test. */
			REQUIRE(sqlite3_open(":memory:", &mem) == SQLITE_OK);
			tk = search_tokenizer_open(mem);
			REQUIRE(tk);
			CHECK_EQ_INT(search_plan_make(q.data, tk, &p, NULL, 0),
				     0);
			CHECK_EQ_INT(p.checkable, 0);
			search_plan_release(&p);
			search_tokenizer_close(tk);
			sqlite3_close(mem);
			CHECK_EQ_INT(nconvs(st, q.data), want[i]);
			/* Hits too: each a message holding the phrase. */
			REQUIRE(!search_run(st, q.data, SEARCH_HITS, 0, &res,
					    why, sizeof(why)));
			CHECK_EQ_INT(res.nhits, want[i] > 1 ? SEARCH_MAX_HITS
							   : want[i]);
			if (i == 0)
				for (size_t h = 0; h < res.nhits; h++)
					CHECK(res.hits[h].msg % 2 == 0 ||
					      res.hits[h].msg == top);
			if (i == 2)
				CHECK(res.nhits && res.hits[0].msg == top);
			search_result_release(&res);
		}
		unit_ctx = NULL;
		buf_release(&q);
	}
	/* Under a cap: the newest conversations. */
	CHECK_EQ_INT(store_search_convs(st, "\"beta alpha\"", 3, &ids, &n,
					why, sizeof(why)), 0);
	REQUIRE(n == 3);
	CHECK(ids[0] == 48 && ids[1] == 49 && ids[2] == 50);
	free(ids);
	/* Hits: at most SEARCH_MAX_HITS, the most alphas first. */
	REQUIRE(!search_run(st, "\"alpha beta\"", SEARCH_HITS, 0, &res, why,
			    sizeof(why)));
	CHECK_EQ_INT(res.nhits, SEARCH_MAX_HITS);
	CHECK(res.nhits && res.hits[0].msg == top);
	for (size_t i = 0; i < res.nhits; i++)
		CHECK(res.hits[i].msg % 2 == 0);	/* "alpha beta" only */
	search_result_release(&res);
	REQUIRE(!search_run(st, "alpha", SEARCH_HITS, 5, &res, why,
			    sizeof(why)));
	CHECK_EQ_INT(res.nhits, 5);
	CHECK(res.nhits && res.hits[0].msg == top);
	CHECK(res.nhits > 1 && strstr(res.hits[1].snippet, "alpha"));
	search_result_release(&res);
	/* A prefix is as long as the tokenizer reads it: quoted, or with
	 * characters it splits on, too short is refused. */
	{
		static const char *const shorts[] = {
			"\"abc ab\"*", "\"a\"*", "ab\xe2\x80\x99*",
			"alpha NOT \"x\"*",
		};

		for (size_t i = 0; i < sizeof(shorts) / sizeof(shorts[0]);
		     i++) {
			unit_ctx = shorts[i];
			CHECK_EQ_INT(search_run(st, shorts[i], SEARCH_CHECK, 0,
						&res, why, sizeof(why)),
				     -EINVAL);
			CHECK(strstr(why, "prefix needs 3") != NULL);
		}
		unit_ctx = NULL;
		CHECK_EQ_INT(search_run(st, "\"x alp\"*", SEARCH_CHECK, 0,
					&res, why, sizeof(why)), 0);
		search_result_release(&res);
	}
	/* 5051 rows, none merged yet: the end of a pass merges them all,
	 * once; the queries find the same after. */
	CHECK_EQ_INT(store_search_purge(st), 1);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_merged"), 5051);
	CHECK_EQ_INT(store_search_purge(st), 0);
	CHECK_EQ_INT(nconvs(st, "\"alpha beta\""), 50);
	unsetenv("DRIFTFS_TEST_SEARCH_MS");
	store_close(st);
}

/*
 * The check of a query's candidates runs under its deadline: a query
 * whose checking alone takes long is stopped partway (-ETIMEDOUT, "too
 * long"), well before it would have ended. 200 messages of 3000 a's and
 * a b, and a NEAR of 80 a's and the b (a query of the store's, past what
 * search_query_prepare lets through; FTS5's parser takes about 90): each
 * candidate costs some ms to check, several times what its fetch costs,
 * so a quarter of the whole query's time falls within the check.
 */
static void test_check_deadline(void)
{
	char dir[128], why[SEARCH_WHY_MAX], dl[32];
	struct store *st = open_new("deadline", dir, sizeof(dir));
	struct buf body = BUF_INIT, q = BUF_INIT;
	int64_t *ids = NULL, t0, full, took;
	size_t n = 0;
	int r;

	REQUIRE(st);
	buf_adds(&q, "NEAR(");
	for (int i = 0; i < 80; i++)
		buf_adds(&q, "a ");
	buf_adds(&q, "b, 0)");
	buf_adds(&body, "{\"author\":{\"id\":1,\"type\":\"user\"},"
			"\"body\":\"");
	for (int i = 0; i < 3000; i++)
		buf_adds(&body, "a ");
	buf_adds(&body, "b\"}");
	for (int64_t c = 1; c <= 20; c++) {
		REQUIRE(!store_begin(st));
		for (int64_t k = 0; k < 10; k++) {
			struct api_message m = { .id = c * 100 + k,
						 .conversation_id = c,
						 .created = 1 };

			m.json = body;	/* borrowed */
			REQUIRE(!store_put_message(st, &m));
		}
		REQUIRE(!store_commit(st));
	}
	setenv("DRIFTFS_TEST_SEARCH_MS", "600000", 1);
	/* The quicker of two whole runs: a stall in one makes neither the
	 * deadline below too long nor the bound on the stopped run too
	 * loose. */
	full = INT64_MAX;
	for (int i = 0; i < 2; i++) {
		t0 = clock_mono_ms();
		CHECK_EQ_INT(store_search_convs(st, q.data, 1000, &ids, &n,
						why, sizeof(why)), 0);
		took = clock_mono_ms() - t0;
		full = took < full ? took : full;
		CHECK_EQ_INT(n, 20);
		free(ids);
		ids = NULL;
	}
	/* A sixth of that: past the candidates' fetch (a few ms), within
	 * their check. Only the time taken tells a stop there from one by
	 * SQLite's handler at the next statement after the whole check. */
	snprintf(dl, sizeof(dl), "%lld", (long long)(full / 6 + 1));
	setenv("DRIFTFS_TEST_SEARCH_MS", dl, 1);
	why[0] = 0;
	t0 = clock_mono_ms();
	r = store_search_convs(st, q.data, 1000, &ids, &n, why, sizeof(why));
	took = clock_mono_ms() - t0;
	unsetenv("DRIFTFS_TEST_SEARCH_MS");
	CHECK_EQ_INT(r, -ETIMEDOUT);
	CHECK(strstr(why, "too long") != NULL);
	CHECK(ids == NULL && n == 0);
	unit_ctx = dl;
	CHECK(took < full * 3 / 4);
	unit_ctx = NULL;
	free(ids);
	buf_release(&body);
	buf_release(&q);
	store_close(st);
}

static int same_text(const struct buf *a, const struct buf *b)
{
	return a->len == b->len &&
	       !memcmp(a->data ? a->data : "", b->data ? b->data : "", a->len);
}

struct parsed {
	struct api_message m[32];
	size_t n;
};

static int keep_message(void *ctx, struct api_message *m)
{
	struct parsed *p = ctx;

	if (p->n >= ARRAY_SIZE(p->m))
		return -ENOSPC;
	p->m[p->n++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

/*
 * store_search_put_message() indexes a message's text from the body
 * parse_message() took, not from its stored JSON parsed again; a removal
 * reads the stored JSON. The two must give the same text, or the index
 * would keep words of a message gone. Bodies that escape, quote, look
 * like the big integers json_parse() marks, or hold what render_string()
 * writes as \u escapes (C1 controls, separators, bidi) must all come
 * back the same through the JSON stored.
 */
static void test_body_from_the_api_is_the_stored_body(void)
{
	static const char *const bodies[] = {
		"\"<p>Hi <b>there</b></p>\"",
		"\"quote \\\" backslash \\\\ slash \\/ done\"",
		"\"tab\\there\\nline\\r\\nend\"",
		"\"\\u0001\\u0001starts with marks\"",
		"\"\\u0001Bx\"",
		"\"12345678901234567890123\"",
		"\"c1 \\u0085 \\u009b[31m csi\"",
		"\"bidi \\u202e evil \\u2066 iso \\u2028 sep\"",
		"\"caf\\u00e9 na\\u00efve \\ud83d\\ude00 \xc3\xa9\"",
		"\"bad utf-8 \xff\xfe \xc0\xaf\"",
		"\"del \\u007f and nul \\u0000 after\"",
		"\"&lt;b&gt; &amp; &#x27;\"",
		"\"esc \\b\\f\\/ and \\\"quoted\\\" \\\\n not a newline\"",
		"\"\\n  \\\"body\\\": \\\"a key in the text\"",
		"{\"nested\":\"object\"}",
		"null",
		"42",
		"\"\"",
	};
	struct buf page = BUF_INIT;
	struct parsed p = { 0 };
	char *next = NULL;

	buf_adds(&page, "{\"data\":{\"messages\":[");
	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		buf_printf(&page, "%s{\"id\":%zu,\"type\":\"chat\",\"body\":%s}",
			   i ? "," : "", i + 1, bodies[i]);
	buf_adds(&page, "]}}");
	CHECK_EQ_INT(api_parse_messages_page("t", page.data, page.len, 5,
					     keep_message, &p, &next),
		     0);
	CHECK_EQ_INT(p.n, ARRAY_SIZE(bodies));
	for (size_t i = 0; i < p.n; i++) {
		struct buf api = BUF_INIT, stored = BUF_INIT;

		unit_ctx = bodies[i];
		CHECK_EQ_INT(render_html_text(p.m[i].body, &api), 0);
		CHECK_EQ_INT(store_search_body_text(p.m[i].json.data,
						    p.m[i].json.len, &stored),
			     0);
		CHECK(same_text(&api, &stored));
		/* The readers' scan of the same JSON: the same text. */
		{
			struct buf read = BUF_INIT;

			CHECK_EQ_INT(store_search_body_text_read(
					     p.m[i].json.data, p.m[i].json.len,
					     &read),
				     0);
			CHECK(same_text(&read, &stored));
			buf_release(&read);
		}
		buf_release(&api);
		buf_release(&stored);
		api_message_release(&p.m[i]);
	}
	unit_ctx = NULL;
	free(next);
	buf_release(&page);
}

/*
 * store_search_body_text_read's scan, on JSON made by hand: where it is
 * shaped as json_render() shapes it, every escape the scan decodes; and
 * where it is not (cut short, an escape at the end, a NUL, a body that is
 * not a string, a "body" key deeper down, another layout), the parse's
 * answer.
 */
static void test_body_scan_layouts(void)
{
	static const struct {
		const char *json;
		size_t len;	/* 0: strlen */
	} cases[] = {
		{ "{\n  \"body\": \"a\\b\\f\\/ \\\"q\\\" \\\\ "
		  "x\\ny\\r\\tz\"\n}\n", 0 },
		{ "{\n  \"author\": {\n    \"body\": \"deep\"\n  },\n"
		  "  \"body\": \"<p>top</p>\"\n}\n", 0 },
		{ "{\n  \"author\": {\n    \"body\": \"deep\"\n  }\n}\n", 0 },
		{ "{\n  \"body\": null\n}\n", 0 },
		{ "{\n  \"body\": 42\n}\n", 0 },
		{ "{\n  \"body\": \"cut short", 0 },
		{ "{\n  \"body\": \"cut short\\", 0 },
		{ "{\n  \"body\": \"ends in an escape\\\n}\n", 0 },
		{ "{\n  \"body\": \"no closing quote\n}\n", 0 },
		{ "{\n  \"body\": \"closed\"\n}\n", 0 },
		{ "{\n  \"body\": \"a\0b\"\n}\n", 20 },
		{ "{\n  \"body\": \"caf\\u00e9 \\u0001\"\n}\n", 0 },
		{ "{\"x\": {\n  \"body\": \"not the top\"}, \"body\": \"top\"}", 0 },
		{ "", 0 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *j = cases[i].json;
		size_t len = cases[i].len ? cases[i].len : strlen(j);
		struct buf exact = BUF_INIT, read = BUF_INIT;

		unit_ctx = j;
		CHECK_EQ_INT(store_search_body_text(j, len, &exact), 0);
		CHECK_EQ_INT(store_search_body_text_read(j, len, &read), 0);
		CHECK(same_text(&read, &exact));
		buf_release(&exact);
		buf_release(&read);
	}
	unit_ctx = NULL;
}

/*
 * End to end: a message the sync stores is indexed from the body the
 * API's object gave (store_search_put_message), and removed by the text
 * its stored JSON gives. Stored again with other words, none of the old
 * ones may still find it.
 */
static void test_synced_body_replaced(void)
{
	/* Escapes the scan decodes, then ones it leaves to the parse. */
	static const char *const page[] = {
		"{\"data\":{\"messages\":[{\"id\":61,\"type\":\"chat\","
		"\"body\":\"<p>qwertz \\\"quoted\\\" back\\\\slash "
		"tab\\there</p>\"}]}}",
		"{\"data\":{\"messages\":[{\"id\":61,\"type\":\"chat\","
		"\"body\":\"<p>yxcvb caf\\u00e9 \\u202e</p>\"}]}}",
		"{\"data\":{\"messages\":[{\"id\":61,\"type\":\"chat\","
		"\"body\":\"<p>asdfgh</p>\"}]}}",
	};
	static const char *const found[][2] = {
		{ "qwertz", "here" }, { "yxcvb", "cafe" }, { "asdfgh", "" },
	};
	char dir[128];
	struct store *st = open_new("synced", dir, sizeof(dir));

	REQUIRE(st);
	for (int k = 0; k < 3; k++) {
		struct parsed p = { 0 };
		char *next = NULL;

		CHECK_EQ_INT(api_parse_messages_page("t", page[k],
						     strlen(page[k]), 600,
						     keep_message, &p, &next),
			     0);
		REQUIRE(p.n == 1 && p.m[0].body);
		REQUIRE(!store_begin(st));
		CHECK_EQ_INT(store_clear_messages(st, 600), 0);
		CHECK_EQ_INT(store_put_message(st, &p.m[0]), 0);
		REQUIRE(!store_commit(st));
		api_message_release(&p.m[0]);
		free(next);
		/* Indexed now, and what it held before no longer. */
		for (int i = 0; i < 2; i++)
			if (*found[k][i])
				CHECK_EQ_INT(nconvs(st, found[k][i]), 1);
		for (int j = 0; j < k; j++)
			for (int i = 0; i < 2; i++)
				CHECK_EQ_INT(nconvs(st, found[j][i]), 0);
	}
	CHECK_EQ_INT(nconvs(st, "asdfgh"), 1);
	CHECK_EQ_INT(nconvs(st, "quoted"), 0);
	CHECK_EQ_INT(nconvs(st, "slash"), 0);
	CHECK_EQ_INT(store_meta_i64(st, "search_rows_messages"), 1);
	store_close(reopened_in_step(st, dir));
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
	UNIT_RUN(test_index_writes_at_commit);
	UNIT_RUN(test_build_and_rebuild);
	UNIT_RUN(test_out_of_step_rebuild);
	UNIT_RUN(test_rewrite_same_text);
	UNIT_RUN(test_renderer_pins_search_format);
	UNIT_RUN(test_query_limits);
	UNIT_RUN(test_caps_deadline_and_names);
	UNIT_RUN(test_checked_batches_and_rank);
	UNIT_RUN(test_check_deadline);
	UNIT_RUN(test_body_from_the_api_is_the_stored_body);
	UNIT_RUN(test_body_scan_layouts);
	UNIT_RUN(test_synced_body_replaced);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd))
		perror("rm");
	return r;
}
