// SPDX-License-Identifier: MIT
/*
 * fuzz_search.c: a query from a user, through search_query_prepare and the
 * plan (search_expr.h), against FTS5 itself.
 *
 * Input: the query text, as typed or decoded from an entry name. Checked:
 * - search_query_prepare either refuses it (a reason in why) or gives
 *   text FTS5 may take or refuse, never crashing or leaking;
 * - when FTS5 (with positions) takes the prepared query on a few fixed
 *   rows, the plan is made (or refused only for nesting), its relaxed
 *   query runs on the same rows without positions, finds every row FTS5
 *   found, and exactly those when the plan says exact; a plan that finds
 *   nothing means FTS5 found nothing;
 * - when the plan is checkable, its program matches exactly the rows FTS5
 *   found, each row given to it alone;
 * - every term of the plan is a token the tokenizer gives back unchanged.
 */
#include <errno.h>

#include <sqlite3.h>

#include "fuzz.h"
#include "search.h"
#include "search_expr.h"

static sqlite3 *db;
static struct search_tokenizer *tk;
static struct search_match match;

/* The rows: short texts over a few words, accents and punctuation. */
static const char *const rows[] = {
	"refund the invoice today", "the invoice came before any refund",
	"refund", "invoice", "caf\xc3\xa9 au lait, please", "ada@example.com",
	"order #4711 shipped", "a/b testing and a-b tests", "", "the the the",
	"\xc3\x9c" "ber alles", "zeppelin refund invoice the",
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	sqlite3_stmt *s;

	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
	    sqlite3_exec(db,
			 "CREATE VIRTUAL TABLE f USING fts5(body,"
			 " tokenize='unicode61 remove_diacritics 2');"
			 "CREATE VIRTUAL TABLE n USING fts5(body, content='',"
			 " columnsize=0, detail=none,"
			 " tokenize='unicode61 remove_diacritics 2');",
			 NULL, NULL, NULL) != SQLITE_OK)
		abort();
	for (size_t i = 0; i < NROWS; i++)
		for (int t = 0; t < 2; t++) {
			if (sqlite3_prepare_v2(db,
					       t ? "INSERT INTO n(rowid, body)"
						   " VALUES(?1, ?2)"
						 : "INSERT INTO f(rowid, body)"
						   " VALUES(?1, ?2)",
					       -1, &s, NULL) != SQLITE_OK)
				abort();
			sqlite3_bind_int64(s, 1, (sqlite3_int64)i + 1);
			sqlite3_bind_text(s, 2, rows[i], -1, SQLITE_STATIC);
			if (sqlite3_step(s) != SQLITE_DONE)
				abort();
			sqlite3_finalize(s);
		}
	tk = search_tokenizer_open(db);
	if (!tk)
		abort();
	return 0;
}

/* The rows table t finds for q, as a bit set; -1: FTS5 refused q. */
static long long found(const char *t, const char *q)
{
	char sql[96];
	sqlite3_stmt *s;
	long long set = 0;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT rowid FROM %s WHERE %s MATCH ?1",
		 t, t);
	if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
		abort();
	sqlite3_bind_text(s, 1, q, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		set |= 1LL << (sqlite3_column_int64(s, 0) - 1);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? set : -1;
}

struct same {
	const char *want;
	size_t n;
	int ok;
};

static int same_tok(void *ctx, const char *tok, size_t n, size_t start,
		    size_t end)
{
	struct same *x = ctx;

	(void)start;
	(void)end;
	x->ok = x->ok == -1 && n == x->n && !memcmp(tok, x->want, n);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_dup(data, size), why[SEARCH_WHY_MAX] = "";
	struct buf q = BUF_INIT;
	struct search_plan p;
	long long truth, cand;
	int r;

	if (strlen(text) != size)
		goto out;	/* a name holds no NUL */
	r = search_query_prepare(text, &q, why, sizeof(why));
	if (r) {
		FUZZ_ASSERT(r == -EINVAL && why[0], "prepare: %d, why '%s'", r,
			    why);
		goto out;
	}
	FUZZ_ASSERT(q.data && strlen(q.data) == q.len, "prepared text");
	truth = found("f", q.data);
	r = search_plan_make(q.data, tk, &p, why, sizeof(why));
	if (truth < 0) {
		search_plan_release(&p);
		goto out;	/* FTS5 refuses it: so does a run */
	}
	FUZZ_ASSERT(!r || (r == -EINVAL && strstr(why, "nested too deep")),
		    "plan of '%s': %d (%s)", q.data, r, why);
	if (!r && p.none) {
		FUZZ_ASSERT(truth == 0, "'%s': none, FTS5 found %llx", q.data,
			    truth);
	} else if (!r) {
		cand = found("n", p.relaxed.data);
		FUZZ_ASSERT(cand >= 0, "'%s' relaxed '%s' refused", q.data,
			    p.relaxed.data);
		FUZZ_ASSERT((truth & ~cand) == 0,
			    "'%s' relaxed '%s' misses %llx", q.data,
			    p.relaxed.data, truth & ~cand);
		FUZZ_ASSERT(!p.exact || truth == cand,
			    "'%s' exact '%s' finds %llx, FTS5 %llx", q.data,
			    p.relaxed.data, cand, truth);
	}
	if (!r && !p.none && p.checkable) {
		long long got = 0;

		for (size_t i = 0; i < NROWS; i++) {
			struct buf row = { .data = (char *)rows[i],
					   .len = strlen(rows[i]) };
			int m = search_plan_match(&p, tk, &row, 1, &match);

			FUZZ_ASSERT(m == 0 || m == 1, "'%s': match %d", q.data,
				    m);
			got |= (long long)m << i;
		}
		FUZZ_ASSERT(got == truth, "'%s': the program finds %llx, FTS5"
			    " %llx", q.data, got, truth);
	}
	for (size_t i = 0; !r && i < p.nterms; i++) {
		struct same x = { p.terms[i].tok, strlen(p.terms[i].tok), -1 };

		FUZZ_ASSERT(search_tokenize(tk, x.want, x.n, same_tok, &x) == 0,
			    "tokenize");
		FUZZ_ASSERT(x.ok == 1, "term '%s' is not one token of itself",
			    x.want);
	}
	search_plan_release(&p);
out:
	buf_release(&q);
	free(text);
	return 0;
}
