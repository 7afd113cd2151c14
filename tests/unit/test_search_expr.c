// SPDX-License-Identifier: MIT
/*
 * test_search_expr: the plan of a query for the message index without
 * positions (src/search_expr.c). Fixed queries check the relaxed query,
 * exactness and the terms; a differential test runs thousands of random
 * queries of FTS5's grammar on random messages and proves, against FTS5
 * with positions as the truth, that the relaxed query runs on a
 * detail=none table, finds every message the query finds, and finds no
 * other when the plan says it is exact.
 */
#include "unit.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "buf.h"
#include "search_expr.h"

static sqlite3 *db;
static struct search_tokenizer *tk;

static void open_db(void)
{
	if (db)
		return;
	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	tk = search_tokenizer_open(db);
	CHECK(tk != NULL);
}

struct plan_want {
	const char *q;
	const char *relaxed;	/* NULL: none */
	int exact;
	const char *terms;	/* space-separated, * for a prefix */
};

static void test_fixed(void)
{
	static const struct plan_want w[] = {
		{ "a b", "(\"a\" AND \"b\")", 1, "a b" },
		{ "a OR b c", "(\"a\" OR (\"b\" AND \"c\"))", 1, "a b c" },
		{ "a NOT b c", "(\"a\" NOT (\"b\" AND \"c\"))", 1, "a" },
		{ "\"a b\"", "(\"a\" AND \"b\")", 0, "a b" },
		{ "x NOT \"a b\"", "\"x\"", 0, "x" },
		{ "x NOT (a OR \"b c\")", "(\"x\" NOT \"a\")", 0, "x" },
		{ "x NOT (a AND \"b c\")", "\"x\"", 0, "x" },
		{ "\"a b\" OR c", "((\"a\" AND \"b\") OR \"c\")", 0, "a b c" },
		{ "NEAR(a b, 3)", "(\"a\" AND \"b\")", 0, "a b" },
		{ "NEAR(a)", "\"a\"", 1, "a" },
		{ "^a", "(\"a\")", 0, "a" },
		{ "foo*", "\"foo\"*", 1, "foo*" },
		{ "\"foo bar\"*", "(\"foo\" AND \"bar\"*)", 0, "foo bar*" },
		{ "\xc3\x9c" "N\xc3\xaf" "code", "\"unicode\"", 1, "unicode" },
		{ "a \"\"", "\"a\"", 1, "a" },
		{ "\"\" OR a", "\"a\"", 1, "a" },
		{ "a NOT \"--\"", "\"a\"", 1, "a" },
		{ "\"alice@example.com\"",
		  "(\"alice\" AND \"example\" AND \"com\")", 0,
		  "alice example com" },
		{ "a + b", "(\"a\" AND \"b\")", 0, "a b" },
		{ "\"\"", NULL, 1, "" },
		/* The star of each string of a + chain sets or clears the
		 * prefix of the phrase's last token so far (FTS5's rule). */
		{ "abc + \"---\"*", "\"abc\"*", 1, "abc*" },
		{ "abc* + \"---\"", "\"abc\"", 1, "abc" },
		{ "\"abc\" + \"\"*", "\"abc\"*", 1, "abc*" },
		{ "a* + b", "(\"a\"* AND \"b\")", 0, "a* b" },
		{ "\"\" AND a", NULL, 1, "a" },
		{ "a NOT (\"\" AND b)", "\"a\"", 1, "a" },
		{ "NEAR(\"\" a, 2)", "\"a\"", 1, "a" },
	};
	static const char *const bad[] = {
		"a (b)", "(a) b", "a OR", "NOT a", "near(a b)", "NEAR(a b, x)",
		"\"open", "a:b", "{a}", "-a", "*", "()", "NEAR()", "a )",
	};

	open_db();
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		struct search_plan p;
		struct buf terms = BUF_INIT;

		unit_ctx = w[i].q;
		CHECK_EQ_INT(search_plan_make(w[i].q, tk, &p, NULL, 0), 0);
		if (w[i].relaxed) {
			CHECK(!p.none);
			CHECK_EQ_STR(p.relaxed.data ? p.relaxed.data : "",
				     w[i].relaxed);
		} else {
			CHECK(p.none);
		}
		CHECK_EQ_INT(p.exact, w[i].exact);
		for (size_t k = 0; k < p.nterms; k++)
			buf_printf(&terms, "%s%s%s", k ? " " : "",
				   p.terms[k].tok, p.terms[k].prefix ? "*" : "");
		CHECK_EQ_STR(terms.data ? terms.data : "", w[i].terms);
		buf_release(&terms);
		search_plan_release(&p);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct search_plan p;
		char why[80] = "";

		unit_ctx = bad[i];
		CHECK_EQ_INT(search_plan_make(bad[i], tk, &p, why, sizeof(why)),
			     -EINVAL);
		CHECK(strstr(why, "not one driftfs can run") != NULL);
		search_plan_release(&p);
	}
	{
		struct search_plan p;
		struct buf deep = BUF_INIT;
		char why[80] = "";

		for (int i = 0; i < 129; i++)
			buf_addc(&deep, '(');
		buf_adds(&deep, "a");
		for (int i = 0; i < 129; i++)
			buf_addc(&deep, ')');
		CHECK_EQ_INT(search_plan_make(deep.data, tk, &p, why,
					      sizeof(why)), -EINVAL);
		CHECK(strstr(why, "nested too deep") != NULL);
		search_plan_release(&p);
		buf_release(&deep);
	}
	unit_ctx = NULL;
}

static void test_terms(void)
{
	struct search_plan p;

	open_db();
	CHECK_EQ_INT(search_plan_make("refund pay* NOT invoice", tk, &p, NULL, 0), 0);
	CHECK(search_plan_term(&p, "refund", 6));
	CHECK(!search_plan_term(&p, "refunds", 7));
	CHECK(!search_plan_term(&p, "invoice", 7));
	CHECK(search_plan_term(&p, "payment", 7));
	CHECK(search_plan_term(&p, "pay", 3));
	CHECK(!search_plan_term(&p, "pa", 2));
	CHECK_EQ_INT(p.prefix_chars, 3);
	CHECK_EQ_STR(p.shortest, "pay");
	search_plan_release(&p);
	/* The shortest prefix as the tokenizer folds it, wherever it is:
	 * "ab" and an emoji is the prefix "ab"; one under a NOT counts. */
	CHECK_EQ_INT(search_plan_make("\"ab\xf0\x9f\x98\x80\"* OR abcd*", tk, &p,
				      NULL, 0), 0);
	CHECK_EQ_INT(p.prefix_chars, 2);
	CHECK_EQ_STR(p.shortest, "ab");
	search_plan_release(&p);
	CHECK_EQ_INT(search_plan_make("refund NOT \xc3\xa1\xcc\x81*", tk, &p,
				      NULL, 0), 0);
	CHECK_EQ_INT(p.prefix_chars, 1);
	search_plan_release(&p);
	CHECK_EQ_INT(search_plan_make("refund", tk, &p, NULL, 0), 0);
	CHECK(p.prefix_chars == SIZE_MAX);
	search_plan_release(&p);
}

/* ---- Differential: random queries against FTS5 with positions ---------- */

static const char *const vocab[] = { "a", "b", "c", "d", "ab", "abc",
				     "\xc3\xa1" "b" };
#define NVOCAB (sizeof(vocab) / sizeof(vocab[0]))

static unsigned rnd_state = 12345;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 16) % n;
}

static void gen_word(struct buf *q)
{
	buf_adds(q, vocab[rnd(NVOCAB)]);
	if (!rnd(8))
		buf_addc(q, '*');
}

static void gen_phrase(struct buf *q)
{
	switch (rnd(6)) {
	case 0: {
		unsigned n = rnd(4);

		buf_addc(q, '"');
		for (unsigned i = 0; i < n; i++)
			buf_printf(q, "%s%s", i ? (rnd(2) ? " " : "-") : "",
				   vocab[rnd(NVOCAB)]);
		buf_addc(q, '"');
		if (n && !rnd(6))
			buf_addc(q, '*');
		break;
	}
	case 1:
		gen_word(q);
		for (unsigned i = 0, n = 1 + rnd(2); i < n; i++) {
			buf_adds(q, " + ");
			if (rnd(3))
				gen_word(q);
			else	/* a string of no token, starred or not */
				buf_adds(q, rnd(2) ? "\"-\"" : "\"\"*");
		}
		break;
	default:
		gen_word(q);
	}
}

static void gen_cnear(struct buf *q)
{
	unsigned k = rnd(8);

	if (k == 0) {
		unsigned n = 1 + rnd(5);

		buf_adds(q, "NEAR(");
		for (unsigned i = 0; i < n; i++) {
			if (i)
				buf_addc(q, ' ');
			gen_phrase(q);
		}
		if (rnd(2))
			buf_printf(q, ", %u", rnd(2) ? rnd(4) : rnd(13));
		buf_addc(q, ')');
	} else if (k == 1) {
		buf_addc(q, '^');
		gen_phrase(q);
	} else {
		gen_phrase(q);
	}
}

static void gen_expr(struct buf *q, int depth);

static void gen_prim(struct buf *q, int depth)
{
	if (depth < 3 && !rnd(4)) {
		buf_addc(q, '(');
		gen_expr(q, depth + 1);
		buf_addc(q, ')');
		return;
	}
	for (unsigned i = 0, n = 1 + rnd(2); i < n; i++) {
		if (i)
			buf_addc(q, ' ');
		gen_cnear(q);
	}
}

static void gen_expr(struct buf *q, int depth)
{
	static const char *const ops[] = { " OR ", " AND ", " NOT " };

	gen_prim(q, depth);
	for (unsigned i = 0, n = rnd(3); i < n; i++) {
		buf_adds(q, ops[rnd(3)]);
		gen_prim(q, depth);
	}
}

/* The rowids table t finds for q, ascending, as a string: -1 on error. */
static int run(const char *t, const char *q, struct buf *out)
{
	char sql[128];
	sqlite3_stmt *s;
	int rc;

	buf_reset(out);
	snprintf(sql, sizeof(sql),
		 "SELECT rowid FROM %s WHERE %s MATCH ?1 ORDER BY rowid", t, t);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(s, 1, q, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		buf_printf(out, "%lld ", (long long)sqlite3_column_int64(s, 0));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Whether every id of a (a string of ascending ids) is in b. */
static int subset(const char *a, const char *b)
{
	char *x = strdup(a), *save = NULL;
	int ok = 1;

	for (char *w = strtok_r(x, " ", &save); w && ok;
	     w = strtok_r(NULL, " ", &save)) {
		char pat[32];
		size_t n = (size_t)snprintf(pat, sizeof(pat), "%s ", w);
		const char *at = b;

		ok = 0;
		while ((at = strstr(at, pat))) {
			if (at == b || at[-1] == ' ') {
				ok = 1;
				break;
			}
			at += n;
		}
	}
	free(x);
	return ok;
}

static void test_differential(void)
{
	struct buf truth = BUF_INIT, cand = BUF_INIT, q = BUF_INIT;
	int queries = 0, inexact = 0;

	open_db();
	CHECK(sqlite3_exec(db,
			   "CREATE VIRTUAL TABLE full USING fts5(body,"
			   " tokenize='unicode61 remove_diacritics 2');"
			   "CREATE VIRTUAL TABLE none USING fts5(body,"
			   " content='', columnsize=0, detail=none,"
			   " tokenize='unicode61 remove_diacritics 2');",
			   NULL, NULL, NULL) == SQLITE_OK);
	for (int id = 1; id <= 300; id++) {
		struct buf doc = BUF_INIT;
		sqlite3_stmt *s;

		for (unsigned i = 0, n = rnd(9); i < n; i++)
			buf_printf(&doc, "%s%s", i ? (rnd(5) ? " " : ", ") : "",
				   vocab[rnd(NVOCAB)]);
		for (int t = 0; t < 2; t++) {
			sqlite3_prepare_v2(db,
					   t ? "INSERT INTO none(rowid, body)"
					       " VALUES(?1, ?2)"
					     : "INSERT INTO full(rowid, body)"
					       " VALUES(?1, ?2)",
					   -1, &s, NULL);
			sqlite3_bind_int(s, 1, id);
			sqlite3_bind_text(s, 2, doc.data ? doc.data : "", -1,
					  SQLITE_STATIC);
			CHECK(sqlite3_step(s) == SQLITE_DONE);
			sqlite3_finalize(s);
		}
		buf_release(&doc);
	}
	for (int i = 0; i < 4000; i++) {
		struct search_plan p;
		int r;

		buf_reset(&q);
		gen_expr(&q, 0);
		unit_ctx = q.data;
		if (run("full", q.data, &truth)) {
			/* Not a query FTS5 takes: nor may the plan be
			 * anything but a refusal (or FTS5's to make). */
			continue;
		}
		queries++;
		r = search_plan_make(q.data, tk, &p, NULL, 0);
		CHECK_EQ_INT(r, 0);
		if (r) {
			search_plan_release(&p);
			continue;
		}
		if (p.none) {
			CHECK_EQ_STR(truth.data ? truth.data : "", "");
		} else {
			CHECK_EQ_INT(run("none", p.relaxed.data, &cand), 0);
			CHECK(subset(truth.data ? truth.data : "",
				     cand.data ? cand.data : ""));
			if (p.exact)
				CHECK_EQ_STR(cand.data ? cand.data : "",
					     truth.data ? truth.data : "");
			else
				inexact++;
		}
		search_plan_release(&p);
	}
	unit_ctx = NULL;
	/* The generator must exercise both kinds. */
	CHECK(queries > 3000);
	CHECK(inexact > 500);
	CHECK(queries - inexact > 500);
	buf_release(&truth);
	buf_release(&cand);
	buf_release(&q);
}

/* ---- Differential: the program against FTS5 with positions ------------- */

#define MATCH_DOCS 200

/* A random text of up to max tokens of the vocabulary. */
static void gen_text(struct buf *doc, unsigned max)
{
	buf_reset(doc);
	for (unsigned i = 0, n = rnd(max + 1); i < n; i++)
		buf_printf(doc, "%s%s", i ? (rnd(5) ? " " : ", ") : "",
			   vocab[rnd(NVOCAB)]);
}

/* The ids of docs[0..n) (ncols texts each; id = index + 1) the program
 * matches, as run() gives them: -1 on error. */
static int run_program(const struct search_plan *p, const struct buf *docs,
		       int ncols, struct search_match *m, struct buf *out)
{
	buf_reset(out);
	for (int i = 0; i < MATCH_DOCS; i++) {
		int r = search_plan_match(p, tk, &docs[i * ncols], ncols, m);

		if (r < 0)
			return -1;
		if (r)
			buf_printf(out, "%d ", i + 1);
	}
	return 0;
}

/*
 * Thousands of random queries on random texts of one column (messages,
 * tags) and of four (contacts, some columns empty): what the program
 * matches is exactly what FTS5 with positions finds, NEAR's default
 * distance and ^ across columns included.
 */
static void test_match_differential(void)
{
	static const char *const table[] = { "m1", "m4" };
	struct buf docs[MATCH_DOCS * 4], truth = BUF_INIT, got = BUF_INIT,
						q = BUF_INIT;
	struct search_match m = { 0 };
	int checked = 0, inexact = 0, found = 0;

	open_db();
	CHECK(sqlite3_exec(db,
			   "CREATE VIRTUAL TABLE m1 USING fts5(body,"
			   " content='', columnsize=0,"
			   " tokenize='unicode61 remove_diacritics 2');"
			   "CREATE VIRTUAL TABLE m4 USING fts5(name, email,"
			   " external_id, phone, content='', columnsize=0,"
			   " tokenize='unicode61 remove_diacritics 2');",
			   NULL, NULL, NULL) == SQLITE_OK);
	for (int t = 0; t < 2; t++) {
		int ncols = t ? 4 : 1;

		for (int id = 1; id <= MATCH_DOCS; id++) {
			struct buf *d = &docs[(id - 1) * ncols];
			sqlite3_stmt *s;

			for (int c = 0; c < ncols; c++) {
				d[c] = (struct buf)BUF_INIT;
				/* Long enough for NEAR's default of 10. */
				if (!t || rnd(4))
					gen_text(&d[c], t ? 8 : 24);
			}
			CHECK(sqlite3_prepare_v2(
				      db,
				      t ? "INSERT INTO m4(rowid, name, email,"
					  " external_id, phone)"
					  " VALUES(?1, ?2, ?3, ?4, ?5)"
					: "INSERT INTO m1(rowid, body)"
					  " VALUES(?1, ?2)",
				      -1, &s, NULL) == SQLITE_OK);
			sqlite3_bind_int(s, 1, id);
			for (int c = 0; c < ncols; c++)
				sqlite3_bind_text(s, 2 + c,
						  d[c].data ? d[c].data : "",
						  (int)d[c].len, SQLITE_STATIC);
			CHECK(sqlite3_step(s) == SQLITE_DONE);
			sqlite3_finalize(s);
		}
		for (int i = 0; i < 3000; i++) {
			struct search_plan p;
			int r;

			buf_reset(&q);
			gen_expr(&q, 0);
			unit_ctx = q.data;
			if (run(table[t], q.data, &truth))
				continue;
			r = search_plan_make(q.data, tk, &p, NULL, 0);
			CHECK_EQ_INT(r, 0);
			if (r || p.none || !p.checkable) {
				search_plan_release(&p);
				continue;
			}
			checked++;
			inexact += !p.exact;
			found += truth.len > 0;
			CHECK_EQ_INT(run_program(&p, docs, ncols, &m, &got),
				     0);
			CHECK_EQ_STR(got.data ? got.data : "",
				     truth.data ? truth.data : "");
			search_plan_release(&p);
		}
		for (int i = 0; i < MATCH_DOCS * ncols; i++)
			buf_release(&docs[i]);
	}
	unit_ctx = NULL;
	/* The generator must exercise what the program decides. */
	CHECK(checked > 4000);
	CHECK(inexact > 1000);
	CHECK(found > 2000);
	search_match_release(&m);
	buf_release(&truth);
	buf_release(&got);
	buf_release(&q);
}

/* What the program is given up for, and a bad call. */
static void test_match_limits(void)
{
	struct search_plan p;
	struct search_match m = { 0 };
	struct buf q = BUF_INIT, doc = BUF_INIT;

	open_db();
	/* 65 distinct tokens: more than a mask holds. */
	buf_adds(&q, "\"");
	for (int i = 0; i < 65; i++)
		buf_printf(&q, "%sw%d", i ? " " : "", i);
	buf_adds(&q, "\"");
	CHECK_EQ_INT(search_plan_make(q.data, tk, &p, NULL, 0), 0);
	CHECK_EQ_INT(p.checkable, 0);
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 1, &m), -EINVAL);
	search_plan_release(&p);
	/* 64 are fine, and the same token twice is one. */
	buf_reset(&q);
	buf_adds(&q, "\"");
	for (int i = 0; i < 64; i++)
		buf_printf(&q, "w%d ", i);
	buf_adds(&q, "w0\"");
	CHECK_EQ_INT(search_plan_make(q.data, tk, &p, NULL, 0), 0);
	CHECK_EQ_INT(p.checkable, 1);
	CHECK_EQ_INT((int)p.ncterms, 64);
	buf_reset(&doc);
	for (int i = 0; i < 64; i++)
		buf_printf(&doc, "W%d ", i);
	buf_adds(&doc, "w0");
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 1, &m), 1);
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 0, &m), -EINVAL);
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, SEARCH_COLS_MAX + 1, &m),
		     -EINVAL);
	search_plan_release(&p);
	/* A NEAR distance FTS5 would add past an int: left to FTS5. */
	CHECK_EQ_INT(search_plan_make("NEAR(a b, 9999999999)", tk, &p, NULL,
				      0), 0);
	CHECK_EQ_INT(p.checkable, 0);
	search_plan_release(&p);
	CHECK_EQ_INT(search_plan_make("NEAR(a b, 000000000000000001)", tk, &p,
				      NULL, 0), 0);
	CHECK_EQ_INT(p.checkable, 1);
	buf_reset(&doc);
	buf_adds(&doc, "a x b");
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 1, &m), 1);
	buf_reset(&doc);
	buf_adds(&doc, "a x y b");
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 1, &m), 0);
	search_plan_release(&p);
	search_match_release(&m);
	buf_release(&q);
	buf_release(&doc);
}

/*
 * FTS5 cuts tokens at 32768 bytes, in texts and in queries alike: a token
 * longer than that is found by its first 32768 bytes. The program cuts
 * them the same, as FTS5 with positions shows.
 */
static void test_match_long_token(void)
{
	struct buf q = BUF_INIT, doc = BUF_INIT, truth = BUF_INIT;
	struct search_match m = { 0 };
	struct search_plan p;
	sqlite3_stmt *s;

	open_db();
	CHECK(sqlite3_exec(db,
			   "CREATE VIRTUAL TABLE lt USING fts5(body,"
			   " content='', columnsize=0,"
			   " tokenize='unicode61 remove_diacritics 2');",
			   NULL, NULL, NULL) == SQLITE_OK);
	for (int i = 0; i < 32768; i++)
		buf_addc(&doc, 'a');
	buf_adds(&doc, "bbb zzz");	/* one token of 32771 bytes, then zzz */
	CHECK(sqlite3_prepare_v2(db, "INSERT INTO lt(rowid, body)"
				 " VALUES(1, ?1)", -1, &s, NULL) == SQLITE_OK);
	sqlite3_bind_text(s, 1, doc.data, (int)doc.len, SQLITE_STATIC);
	CHECK(sqlite3_step(s) == SQLITE_DONE);
	sqlite3_finalize(s);
	/* The token with another tail, then zzz: the same to FTS5. */
	buf_addc(&q, '"');
	for (int i = 0; i < 32768; i++)
		buf_addc(&q, 'a');
	buf_adds(&q, "ccc zzz\"");
	CHECK_EQ_INT(run("lt", q.data, &truth), 0);
	CHECK_EQ_STR(truth.data ? truth.data : "", "1 ");
	CHECK_EQ_INT(search_plan_make(q.data, tk, &p, NULL, 0), 0);
	CHECK_EQ_INT(search_plan_match(&p, tk, &doc, 1, &m), 1);
	search_plan_release(&p);
	search_match_release(&m);
	buf_release(&q);
	buf_release(&doc);
	buf_release(&truth);
}

int main(void)
{
	UNIT_RUN(test_fixed);
	UNIT_RUN(test_terms);
	UNIT_RUN(test_differential);
	UNIT_RUN(test_match_differential);
	UNIT_RUN(test_match_limits);
	UNIT_RUN(test_match_long_token);
	search_tokenizer_close(tk);
	sqlite3_close(db);
	return unit_summary();
}
