// SPDX-License-Identifier: MIT
/*
 * store_search_query.c: the queries of the full-text index in cache.db
 * (include/search.h, include/store.h's store_search_*): each planned by
 * search_expr.c, run on the indexes, which keep no positions, and its
 * candidates checked when the plan is not exact, by the plan's program
 * (or, for the rare query it cannot hold, by FTS5 on a small in-memory
 * table); the hits ranked and their snippets cut; and what each pooled
 * connection keeps for them (its tokenizer, an emptied checking table).
 * The index itself, its writers, build and merges: store_search.c.
 */
#include "store_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "log.h"
#include "search_expr.h"
#include "search_index.h"
#include "store_search_int.h"
#include "text.h"

/*
 * A hit's snippet: the part of the message's text around the first token
 * that is one of the query's terms (search_plan_term), one line. The
 * index keeps no positions, so the text is tokenized again here, by the
 * index's own tokenizer.
 */
struct first_term {
	const struct search_plan *p;
	long start;		/* byte offset of the first term, -1: none */
};

static int first_term_cb(void *ctx, const char *tok, size_t n, size_t start,
			 size_t end)
{
	struct first_term *f = ctx;

	(void)end;
	if (!search_plan_term(f->p, tok, n))
		return 0;
	f->start = (long)start;
	return 1;	/* found: stop */
}

/* Into out (reset first, NUL-terminated); 0 or -errno. */
static int snippet_of(struct search_tokenizer *tk,
		      const struct search_plan *p, const void *json,
		      size_t json_len, struct buf *out)
{
	struct buf text = BUF_INIT;
	struct first_term f = { p, -1 };
	size_t from = 0, n, i;
	char *line;
	int r;

	buf_reset(out);
	r = json ? store_search_body_text_read(json, json_len, &text) : 0;
	if (!r && text.len)
		r = search_tokenize(tk, text.data, text.len, first_term_cb, &f);
	if (r) {
		buf_release(&text);
		return r;
	}
	/* A little context before the match, from a word's start. */
	if (f.start > 0) {
		from = (size_t)f.start > 40 ? (size_t)f.start - 40 : 0;
		while (from > 0 && from < (size_t)f.start &&
		       text.data[from - 1] != ' ' &&
		       text.data[from - 1] != '\n')
			from++;
		while (from > 0 && ((unsigned char)text.data[from] & 0xC0) ==
					   0x80)
			from++;
	}
	n = text.len - from;
	if (n > STORE_SNIPPET_MAX)
		n = STORE_SNIPPET_MAX;
	/* Not cut inside a character. */
	while (from + n < text.len && n > 0 &&
	       ((unsigned char)text.data[from + n] & 0xC0) == 0x80)
		n--;
	r = from ? buf_adds(out, "...") : 0;
	r = r ? r : text_clean_buf(out, text.data ? text.data + from : "",
				   n, 0);
	r = r ? r : (from + n < text.len ? buf_adds(out, "...") : 0);
	r = r ? r : buf_addc(out, 0);
	buf_release(&text);
	if (r)
		return r;
	/* One line, blank runs as one space. */
	line = out->data;
	for (i = 0, n = 0; line[i]; i++) {
		char ch = line[i] == '\t' ? ' ' : line[i];

		if (ch == ' ' && (n == 0 || line[n - 1] == ' '))
			continue;
		line[n++] = ch;
	}
	while (n > 0 && line[n - 1] == ' ')
		n--;
	line[n] = 0;
	out->len = n;
	return 0;
}

/* Whether d has FTS5 and its tokenizer (kept for d's queries): 0 or
 * -errno. */
int store_search_register(struct db *d)
{
	if (!d->search_tk)
		d->search_tk = search_tokenizer_open(d->sql);
	return d->search_tk ? 0 : -errno;
}

/* ---- Queries ---------------------------------------------------------- */

/*
 * A query's deadline: a short query costs a few ms, but a few prefix
 * terms over a big index cost seconds to minutes, on a FUSE thread. The
 * progress handler interrupts the statement past it (SQLITE_INTERRUPT:
 * -ETIMEDOUT). DRIFTFS_TEST_SEARCH_MS sets another (the tests make an
 * ordinary query too slow); like DRIFTFS_TEST_BUSY_MS it is read in
 * every build, and only makes the wait shorter or longer.
 */
#define QUERY_DEADLINE_MS 2000
/* VM steps between checks of the clock (about a ms of work); a deadline
 * of 0 stops a query at its first step. */
#define QUERY_CHECK_STEPS 1000

static int64_t query_deadline_ms(void)
{
	const char *v = getenv("DRIFTFS_TEST_SEARCH_MS");
	long n = v && *v ? strtol(v, NULL, 10) : -1;

	return n >= 0 && n <= 600000 ? n : QUERY_DEADLINE_MS;
}

static int query_progress(void *arg)
{
	const int64_t *until = arg;

	return clock_mono_ms() >= *until;
}

/* The deadline on d's connection while one query steps (until, the
 * caller's, lives until query_end). */
static void query_begin(struct db *d, int64_t *until)
{
	int64_t ms = query_deadline_ms();

	*until = clock_mono_ms() + ms;
	sqlite3_progress_handler(d->sql, ms ? QUERY_CHECK_STEPS : 1,
				 query_progress, until);
}

static void query_end(struct db *d)
{
	sqlite3_progress_handler(d->sql, 0, NULL, NULL);
}

/* SQLite's complaint about a query, one clean line. */
static void query_error(struct db *d, char *why, size_t whylen)
{
	const char *m = sqlite3_errmsg(d->sql);

	if (why && whylen)
		text_clean(why, whylen, m, strlen(m), 0);
}

/* The error of a query's step: a bad query is -EINVAL, one past its
 * deadline -ETIMEDOUT. */
static int query_rc(struct db *d, int rc, char *why, size_t whylen)
{
	if ((rc & 0xff) == SQLITE_ERROR) {
		query_error(d, why, whylen);
		return -EINVAL;
	}
	if ((rc & 0xff) == SQLITE_INTERRUPT) {
		if (why && whylen)
			snprintf(why, whylen, "the query took too long");
		return -ETIMEDOUT;
	}
	log_err("cache: search: %s", sqlite3_errmsg(d->sql));
	return store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
}

/* ---- The plan of a query, and the check of its candidates ------------- */

/*
 * Candidates checked at a time: their text goes into the checking table
 * (struct checker), which then runs the query. Bounds its memory.
 */
#define CHECK_BATCH 2000
/*
 * Hits are ranked among the newest this many matching messages: the
 * index keeps no positions and so no term counts, so each is counted
 * from the text here.
 */
#define RANK_WINDOW 10000
/* Terms counted for the rank, at most. */
#define RANK_TERMS 64
/* bm25's k1 (FTS5's too): how fast a term's repeats stop counting. */
#define RANK_K1 1.2

/*
 * What one query holds while it runs: its connection (store_db_get's),
 * the tokenizer on it, the plan, and the deadline. A query runs on the
 * calling thread; nothing of it outlives query_close.
 */
struct query {
	struct store *st;
	struct db *d;
	struct search_tokenizer *tk;
	struct search_plan plan;
	struct search_match match;	/* search_plan_match's, reused */
	int64_t until;		/* the deadline, clock_mono_ms */
	char *why;
	size_t whylen;
};

static void query_close(struct query *q)
{
	search_plan_release(&q->plan);
	search_match_release(&q->match);
	q->tk = NULL;		/* the connection's */
	if (q->d) {
		query_end(q->d);
		store_db_put(q->st, q->d);
		q->d = NULL;
	}
}

/* The deadline's handler on connection c (off: none). */
static void deadline_on(struct query *q, sqlite3 *c)
{
	sqlite3_progress_handler(c, q->until > clock_mono_ms()
					    ? QUERY_CHECK_STEPS : 1,
				 query_progress, &q->until);
}

/*
 * Statement w of q's connection, prepared with the deadline's handler off
 * (a prepare that reads the schema runs statements it would stop).
 */
static sqlite3_stmt *qprep(struct query *q, enum sstmt w)
{
	sqlite3_stmt *s;

	sqlite3_progress_handler(q->d->sql, 0, NULL, NULL);
	s = store_search_prep(q->d, w);
	deadline_on(q, q->d->sql);
	return s;
}

static void say_slow(struct query *q)
{
	if (q->why && q->whylen)
		snprintf(q->why, q->whylen, "the query took too long");
}

static int query_valid(struct query *q, const char *fts);

/*
 * Opens q for the FTS5 query fts: FTS5 must take it (query_valid: -EINVAL
 * with its reason), then its plan (-EINVAL: nested too deep for it, or a
 * prefix too short). On failure q holds nothing.
 */
static int query_open(struct query *q, struct store *st, const char *fts,
		      char *why, size_t whylen)
{
	int r;

	memset(q, 0, sizeof(*q));
	q->st = st;
	q->why = why;
	q->whylen = whylen;
	q->d = store_db_get(st);
	if (!q->d)
		return -errno;
	/* Before the deadline's handler, which would stop its statement. */
	r = store_search_register(q->d);
	if (r) {
		query_close(q);
		return r;
	}
	q->tk = q->d->search_tk;
	query_begin(q->d, &q->until);
	r = query_valid(q, fts);
	r = r ? r : search_plan_make(fts, q->tk, &q->plan, why, whylen);
	/* A short prefix as the tokenizer reads it (search_query_prepare
	 * counts the bytes it sees: "ab\u2019*" is the prefix "ab"). */
	if (!r && q->plan.prefix_chars < SEARCH_PREFIX_MIN) {
		if (why && whylen)
			snprintf(why, whylen, "a prefix needs %d characters or"
				 " more: %s*", SEARCH_PREFIX_MIN,
				 q->plan.shortest);
		r = -EINVAL;
	}
	if (r)
		query_close(q);
	return r;
}

/* What is checked: messages, contacts (four columns), tags. */
enum cand_kind { CK_MSG, CK_CONTACT, CK_TAGS, CK__COUNT };

_Static_assert(CK__COUNT == sizeof(((struct db *)0)->search_chk) /
				   sizeof(struct checker *),
	       "struct db's checking tables");

/*
 * The checking table: a private in-memory database whose FTS5 table keeps
 * positions, filled with a batch of candidates' text as the index would
 * have it, on which the original query runs. It checks candidates only
 * for a plan its program cannot (search_expr.h: not checkable), and takes
 * every query first, to say whether FTS5 does (query_valid). Used by one
 * query at a time on its thread; kept between queries by the connection
 * (struct db), empty and without a deadline, and closed with its
 * statements.
 *
 * A batch's rows are never committed: they are added in a transaction,
 * the query runs inside it (FTS5 reads its own pending rows), and the
 * rollback empties the table. Committing them and emptying the table
 * with FTS5's 'delete-all' cost more than twice as much (29 against 12
 * us for three rows), and a query has a batch or two.
 */
struct checker {
	sqlite3 *v;
	sqlite3_stmt *ins, *sel, *begin, *rollback;
	enum cand_kind kind;
	int ncols;		/* 4: a contact's texts; else 1 */
	int in_tx;		/* a batch's transaction is open */
};

/* A checking table this big or smaller (an empty one: about 47 KB) is
 * kept for the next query on its connection: its in-memory pages stay
 * allocated until then, and a connection keeps three at most. */
#define CHECKER_KEEP_BYTES (96 * 1024)

static void checker_close(struct checker *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->ins);
	sqlite3_finalize(c->sel);
	sqlite3_finalize(c->begin);
	sqlite3_finalize(c->rollback);
	sqlite3_close(c->v);
	free(c);
}

void store_search_db_release(struct db *d)
{
	for (int k = 0; k < CK__COUNT; k++) {
		checker_close(d->search_chk[k]);
		d->search_chk[k] = NULL;
	}
	search_tokenizer_close(d->search_tk);
	d->search_tk = NULL;
}

static int checker_make(struct checker *c, enum cand_kind kind)
{
	/* The index's own columns, positions kept. */
	static const char *const schema[] = {
		[CK_MSG] = "CREATE VIRTUAL TABLE v USING fts5(body,"
			   " content='', columnsize=0,"
			   " tokenize='unicode61 remove_diacritics 2')",
		[CK_CONTACT] = "CREATE VIRTUAL TABLE v USING fts5(name, email,"
			       " external_id, phone, content='', columnsize=0,"
			       " tokenize='unicode61 remove_diacritics 2')",
		[CK_TAGS] = "CREATE VIRTUAL TABLE v USING fts5(tags,"
			    " content='', columnsize=0,"
			    " tokenize='unicode61 remove_diacritics 2')",
	};
	static const char *const ins[] = {
		[CK_MSG] = "INSERT INTO v(rowid, body) VALUES(?1, ?2)",
		[CK_CONTACT] = "INSERT INTO v(rowid, name, email, external_id,"
			       " phone) VALUES(?1, ?2, ?3, ?4, ?5)",
		[CK_TAGS] = "INSERT INTO v(rowid, tags) VALUES(?1, ?2)",
	};

	c->ncols = kind == CK_CONTACT ? 4 : 1;
	if (sqlite3_open_v2(":memory:", &c->v,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(c->v, schema[kind], NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->v, ins[kind], -1, &c->ins, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(c->v, "SELECT rowid FROM v WHERE v MATCH ?1",
			       -1, &c->sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(c->v, "BEGIN", -1, &c->begin, NULL) !=
		    SQLITE_OK ||
	    sqlite3_prepare_v2(c->v, "ROLLBACK", -1, &c->rollback, NULL) !=
		    SQLITE_OK) {
		log_err("cache: search: the checking table: %s",
			c->v ? sqlite3_errmsg(c->v) : "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/*
 * The checking table of kind for q: the one q's connection kept, or a new
 * one; empty, under q's deadline. Given back with checker_put.
 */
static int checker_get(struct query *q, enum cand_kind kind,
		       struct checker **out)
{
	struct checker *c = q->d->search_chk[kind];
	int r;

	*out = NULL;
	if (c) {
		q->d->search_chk[kind] = NULL;
	} else {
		c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		r = checker_make(c, kind);
		if (r) {
			checker_close(c);
			return r;
		}
	}
	c->kind = kind;
	deadline_on(q, c->v);
	*out = c;
	return 0;
}

/* The checking table q's candidates of kind need (NULL when the plan is
 * exact, or its program checks them): checker_get's. */
static int checker_for(struct query *q, enum cand_kind kind,
		       struct checker **out)
{
	*out = NULL;
	if (q->plan.exact || q->plan.checkable)
		return 0;
	return checker_get(q, kind, out);
}

/*
 * Ends c's batch: its rows go with the transaction. Not under q's
 * deadline (NULL: none to put back), which would turn an answer complete
 * by now into a timeout.
 */
static int checker_rollback(struct query *q, struct checker *c)
{
	int rc;

	sqlite3_reset(c->sel);
	/* An error may have ended the transaction already: SQLite rolls
	 * back itself on an interrupt or when memory runs out. */
	if (sqlite3_get_autocommit(c->v)) {
		c->in_tx = 0;
		return SQLITE_DONE;
	}
	sqlite3_progress_handler(c->v, 0, NULL, NULL);
	rc = sqlite3_step(c->rollback);
	sqlite3_reset(c->rollback);
	if (q)
		deadline_on(q, c->v);
	if (rc == SQLITE_DONE)
		c->in_tx = 0;
	return rc;
}

/*
 * Gives c back to q's connection, emptied, if it is small (a query that
 * checked many candidates leaves its pages behind), else closes it.
 * NULL is fine.
 */
static void checker_put(struct query *q, struct checker *c)
{
	int cur = 0, hi = 0, rc;

	if (!c)
		return;
	/* No deadline from here: the rollback must not be stopped. */
	sqlite3_progress_handler(c->v, 0, NULL, NULL);
	rc = checker_rollback(NULL, c);
	sqlite3_db_status(c->v, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0);
	/* Kept only as the next query needs it: out of any transaction,
	 * so empty, and small. */
	if (rc != SQLITE_DONE || c->in_tx || !sqlite3_get_autocommit(c->v) ||
	    cur > CHECKER_KEEP_BYTES ||
	    q->d->search_chk[c->kind]) {
		checker_close(c);
		return;
	}
	q->d->search_chk[c->kind] = c;
}

/* The error of a step on the checking database. */
static int check_rc(struct query *q, struct checker *c, int rc);

/*
 * Whether FTS5 takes fts: run on the empty checking table, which keeps
 * positions as the indexes do not (they refuse a phrase that FTS5
 * takes). 0, -EINVAL with FTS5's reason, -ETIMEDOUT.
 */
static int query_valid(struct query *q, const char *fts)
{
	struct checker *c;
	int r, rc;

	r = checker_get(q, CK_MSG, &c);
	if (r)
		return r;
	sqlite3_bind_text(c->sel, 1, fts, -1, SQLITE_STATIC);
	rc = sqlite3_step(c->sel);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		r = 0;
	} else if ((rc & 0xff) == SQLITE_ERROR) {
		const char *m = sqlite3_errmsg(c->v);

		if (q->why && q->whylen)
			text_clean(q->why, q->whylen, m, strlen(m), 0);
		r = -EINVAL;
	} else if ((rc & 0xff) == SQLITE_INTERRUPT) {
		r = check_rc(q, c, rc);
	} else {
		log_err("cache: search: checking a query: %s",
			sqlite3_errmsg(c->v));
		r = (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
	}
	sqlite3_reset(c->sel);
	checker_put(q, c);
	return r;
}

static int check_rc(struct query *q, struct checker *c, int rc)
{
	if ((rc & 0xff) == SQLITE_INTERRUPT) {
		say_slow(q);
		return -ETIMEDOUT;
	}
	log_err("cache: search: checking candidates: %s",
		sqlite3_errmsg(c->v));
	return (rc & 0xff) == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* A candidate's text: c->ncols columns. */
static int checker_add(struct query *q, struct checker *c, int64_t id,
		       const struct buf *text)
{
	int rc;

	if (!c->in_tx) {
		rc = sqlite3_step(c->begin);
		sqlite3_reset(c->begin);
		if (rc != SQLITE_DONE)
			return check_rc(q, c, rc);
		c->in_tx = 1;
	}
	sqlite3_bind_int64(c->ins, 1, id);
	for (int i = 0; i < c->ncols; i++)
		sqlite3_bind_text(c->ins, 2 + i,
				  text[i].data ? text[i].data : "",
				  (int)text[i].len, SQLITE_STATIC);
	rc = sqlite3_step(c->ins);
	sqlite3_reset(c->ins);
	return rc == SQLITE_DONE ? 0 : check_rc(q, c, rc);
}

/*
 * Runs the query on the batch added, in its transaction, marks the ids it
 * finds in ids[0..n) (descending: each found id's keep[] set to 1), and
 * empties the table (the rollback).
 */
static int checker_run(struct query *q, struct checker *c, const char *fts,
		       const int64_t *ids, size_t n, unsigned char *keep)
{
	int r = 0, rc;

	sqlite3_bind_text(c->sel, 1, fts, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(c->sel)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(c->sel, 0);
		size_t lo = 0, hi = n;

		while (lo < hi) {	/* ids descending */
			size_t mid = lo + (hi - lo) / 2;

			if (ids[mid] == id) {
				keep[mid] = 1;
				break;
			}
			if (ids[mid] > id)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	if (rc != SQLITE_DONE)
		r = check_rc(q, c, rc);
	rc = checker_rollback(q, c);
	if (!r && rc != SQLITE_DONE)	/* checker_put tries again */
		r = check_rc(q, c, rc);
	return r;
}

/*
 * A batch of candidates: the next (at most CHECK_BATCH) the relaxed query
 * finds, newest first, each row's text made as the index made it. One
 * cursor runs across the batches: FTS5 reads a prefix's rows once.
 */
struct batch {
	enum cand_kind kind;
	sqlite3_stmt *s;		/* the candidates' cursor, open across
					 * batches (reset by batch_release) */
	int ended;			/* the cursor has no more rows */
	int ncols;			/* texts a candidate */
	int64_t *id, *conv, *created;	/* descending ids (contacts: id) */
	struct buf *text;		/* ncols a candidate */
	unsigned char *keep;		/* found by the query */
	size_t n, alloc;		/* alloc grows to CHECK_BATCH */
};

/* Room for one more candidate. Grown as the candidates come: most
 * queries have a few, and a batch of CHECK_BATCH made at once and zeroed
 * was a fifth of a query's instructions. */
static int batch_grow(struct batch *b)
{
	size_t na = b->alloc ? 2 * b->alloc : 16;
	struct buf *t;
	void *p;

	if (b->n < b->alloc)
		return 0;
	if (na > CHECK_BATCH)
		na = CHECK_BATCH;
	if (na <= b->alloc)
		return -ENOMEM;		/* not reached: n < CHECK_BATCH */
	if (!(p = realloc(b->id, na * sizeof(*b->id))))
		return -ENOMEM;
	b->id = p;
	if (!(p = realloc(b->conv, na * sizeof(*b->conv))))
		return -ENOMEM;
	b->conv = p;
	if (!(p = realloc(b->created, na * sizeof(*b->created))))
		return -ENOMEM;
	b->created = p;
	if (!(p = realloc(b->keep, na)))
		return -ENOMEM;
	b->keep = p;
	t = realloc(b->text, na * (size_t)b->ncols * sizeof(*t));
	if (!t)
		return -ENOMEM;
	/* The new texts empty, so batch_release frees alloc * ncols. */
	for (size_t i = b->alloc * (size_t)b->ncols;
	     i < na * (size_t)b->ncols; i++)
		t[i] = (struct buf)BUF_INIT;
	b->text = t;
	b->alloc = na;
	return 0;
}

static void batch_release(struct batch *b)
{
	if (b->s)
		sqlite3_reset(b->s);	/* a pooled statement */
	for (size_t i = 0; i < b->alloc * (size_t)b->ncols; i++)
		buf_release(&b->text[i]);
	free(b->id);
	free(b->conv);
	free(b->created);
	free(b->text);
	free(b->keep);
	memset(b, 0, sizeof(*b));
}

static int batch_fill(struct query *q, struct batch *b)
{
	int r = 0, rc = SQLITE_DONE;

	b->ncols = b->kind == CK_CONTACT ? 4 : 1;
	b->n = 0;
	if (b->ended)
		return 0;
	if (!b->s) {
		static const enum sstmt cand[CK__COUNT] = {
			[CK_MSG] = SS_Q_CAND,
			[CK_CONTACT] = SS_Q_CONTACT_CAND,
			[CK_TAGS] = SS_Q_TAG_CAND,
		};

		b->s = qprep(q, cand[b->kind]);
		if (!b->s) {
			query_error(q->d, q->why, q->whylen);
			return -EIO;
		}
		sqlite3_bind_text(b->s, 1, q->plan.relaxed.data, -1,
				  SQLITE_STATIC);
	}
	while (!r && b->n < CHECK_BATCH &&
	       (rc = sqlite3_step(b->s)) == SQLITE_ROW) {
		sqlite3_stmt *s = b->s;
		size_t k = b->n;
		struct buf *t;

		r = batch_grow(b);
		if (r)
			break;
		t = &b->text[k * (size_t)b->ncols];

		b->id[k] = sqlite3_column_int64(s, 0);
		b->keep[k] = 0;
		for (int i = 0; i < b->ncols; i++)
			buf_reset(&t[i]);
		if (b->kind == CK_CONTACT) {
			struct store_search_contact ct;

			b->conv[k] = b->created[k] = 0;
			r = store_search_contact_fill(
				&ct, (const char *)sqlite3_column_text(s, 1),
				(const char *)sqlite3_column_text(s, 2),
				(const char *)sqlite3_column_text(s, 3),
				sqlite3_column_blob(s, 4),
				(size_t)sqlite3_column_bytes(s, 4));
			if (!r) {
				for (int i = 0; i < 4 && !r; i++)
					r = ct.f[i] ? buf_adds(&t[i], ct.f[i])
						    : 0;
				store_search_contact_release(&ct);
			}
		} else if (b->kind == CK_TAGS) {
			b->conv[k] = b->id[k];
			b->created[k] = 0;
			r = store_search_tags_text(
				sqlite3_column_blob(s, 1),
				(size_t)sqlite3_column_bytes(s, 1), &t[0]);
		} else {
			b->conv[k] = sqlite3_column_int64(s, 1);
			b->created[k] = sqlite3_column_int64(s, 2);
			r = store_search_body_text_read(
				sqlite3_column_blob(s, 3),
				(size_t)sqlite3_column_bytes(s, 3), &t[0]);
		}
		if (!r)
			b->n++;
	}
	if (!r && rc == SQLITE_DONE)
		b->ended = 1;
	else if (!r && rc != SQLITE_ROW)
		r = query_rc(q->d, rc, q->why, q->whylen);
	return r;
}

/*
 * Which of the batch the plan's program matches (keep[]), under the
 * query's deadline, looked at before each candidate (a long message may
 * take ms): the checking table's answer, without the table. On chat
 * messages it costs about a fifth as much: no segment written and read
 * back, each candidate tokenized once.
 */
static int batch_match(struct query *q, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		int r;

		if (clock_mono_ms() >= q->until) {
			say_slow(q);
			return -ETIMEDOUT;
		}
		r = search_plan_match(&q->plan, q->tk,
				      &b->text[i * (size_t)b->ncols], b->ncols,
				      &q->match);
		if (r < 0)
			return r;
		b->keep[i] = (unsigned char)r;
	}
	return 0;
}

/*
 * Which of the batch the query finds (keep[]): all of them when the plan
 * is exact, else those its program matches (checkable), else those the
 * checking table finds (c).
 */
static int batch_check(struct query *q, struct checker *c, const char *fts,
		       struct batch *b)
{
	int r = 0;

	if (!b->n)
		return 0;	/* nothing to check (and no arrays yet) */
	if (q->plan.exact) {
		memset(b->keep, 1, b->n);
		return 0;
	}
	if (q->plan.checkable)
		return batch_match(q, b);
	for (size_t i = 0; i < b->n && !r; i++)
		r = checker_add(q, c, b->id[i], &b->text[i * (size_t)b->ncols]);
	return r ? r : checker_run(q, c, fts, b->id, b->n, b->keep);
}

static int add_id(int64_t **ids, size_t *n, size_t *alloc, int64_t id)
{
	if (*n == *alloc) {
		size_t na = *alloc ? *alloc * 2 : 64;
		int64_t *p = realloc(*ids, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		*ids = p;
		*alloc = na;
	}
	(*ids)[(*n)++] = id;
	return 0;
}

/* Steps s for ids (column 0) into ids/n/alloc. */
static int step_ids(sqlite3_stmt *s, int64_t **ids, size_t *n,
		    size_t *alloc, int *rcp)
{
	int r = 0, rc;

	while (!r && (rc = sqlite3_step(s)) == SQLITE_ROW)
		r = add_id(ids, n, alloc, sqlite3_column_int64(s, 0));
	*rcp = rc;
	return r;
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x > y ? -1 : x < y;
}

/* Sorted newest first, duplicates out. */
static void ids_unique(int64_t *ids, size_t *n)
{
	size_t k = 0;

	if (*n)
		qsort(ids, *n, sizeof(*ids), cmp_desc);
	for (size_t i = 0; i < *n; i++)
		if (!k || ids[k - 1] != ids[i])
			ids[k++] = ids[i];
	*n = k;
}

/* Newest first, unique, cut at max, then ascending. */
static void ids_finish(int64_t *ids, size_t *n, size_t max)
{
	ids_unique(ids, n);
	if (*n > max)
		*n = max;
	for (size_t i = 0; i < *n / 2; i++) {
		int64_t t = ids[i];

		ids[i] = ids[*n - 1 - i];
		ids[*n - 1 - i] = t;
	}
}

/* Runs statement w of q's connection with (text, max) for ids. */
static int run_ids(struct query *q, enum sstmt w, const char *text,
		   size_t max, int64_t **ids, size_t *n, size_t *alloc)
{
	sqlite3_stmt *s = qprep(q, w);
	int r, rc;

	if (!s) {
		query_error(q->d, q->why, q->whylen);
		return -EIO;
	}
	sqlite3_bind_text(s, 1, text, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	r = step_ids(s, ids, n, alloc, &rc);
	if (!r && rc != SQLITE_DONE)
		r = query_rc(q->d, rc, q->why, q->whylen);
	sqlite3_reset(s);
	return r;
}

int store_search_check(struct store *st, const char *fts, char *why,
		       size_t whylen)
{
	struct query q;
	int r = query_open(&q, st, fts, why, whylen);

	if (!r)
		query_close(&q);
	return r;
}

/*
 * What an inexact plan finds of kind, checked a batch of candidates at a
 * time, newest first, until max more ids are in ids or the candidates
 * end: contacts and tagged conversations by their ids, messages by their
 * conversations (counted once however many of their messages match).
 */
static int checked_ids(struct query *q, enum cand_kind kind, const char *fts,
		       size_t max, int64_t **ids, size_t *n, size_t *alloc)
{
	struct checker *c = NULL;
	struct batch b = { .kind = kind };
	size_t added = 0;
	int r;

	r = checker_for(q, kind, &c);
	while (!r) {
		r = batch_fill(q, &b);
		r = r ? r : batch_check(q, c, fts, &b);
		for (size_t i = 0; i < b.n && !r; i++)
			if (b.keep[i]) {
				r = add_id(ids, n, alloc,
					   kind == CK_MSG ? b.conv[i] : b.id[i]);
				added++;
			}
		if (r || b.ended)
			break;
		if (kind == CK_MSG) {
			ids_unique(*ids, n);
			if (*n >= max)
				break;
		} else if (added >= max) {
			break;
		}
	}
	batch_release(&b);
	checker_put(q, c);
	return r;
}

/*
 * One part of a query for ids: the statement an exact plan runs on the
 * index, the candidates an inexact one checks (messages give their
 * conversations).
 */
static int part_ids(struct query *q, const char *fts, enum sstmt exact,
		    enum cand_kind kind, size_t max, int64_t **ids, size_t *n,
		    size_t *alloc)
{
	if (q->plan.none)
		return 0;
	if (q->plan.exact)
		return run_ids(q, exact, q->plan.relaxed.data, max, ids, n,
			       alloc);
	return checked_ids(q, kind, fts, max, ids, n, alloc);
}

/* The ids (ascending, the newest max) the parts find between them. */
static int union_ids(struct store *st, const char *fts, size_t max,
		     const enum sstmt *exact, const enum cand_kind *kind,
		     size_t nparts, int64_t **ids, size_t *n, char *why,
		     size_t whylen)
{
	struct query q;
	size_t alloc = 0;
	int r;

	*ids = NULL;
	*n = 0;
	r = query_open(&q, st, fts, why, whylen);
	if (r)
		return r;
	for (size_t i = 0; i < nparts && !r; i++)
		r = part_ids(&q, fts, exact[i], kind[i], max, ids, n, &alloc);
	query_close(&q);
	if (r) {
		free(*ids);
		*ids = NULL;
		*n = 0;
		return r;
	}
	ids_finish(*ids, n, max);
	return 0;
}

int store_search_convs(struct store *st, const char *fts, size_t max,
		       int64_t **ids, size_t *n, char *why, size_t whylen)
{
	/* The conversations of matching messages, and of matching tags. */
	static const enum sstmt exact[] = { SS_Q_MSG_CONVS, SS_Q_TAG_CONVS };
	static const enum cand_kind kind[] = { CK_MSG, CK_TAGS };

	return union_ids(st, fts, max, exact, kind, 2, ids, n, why, whylen);
}

int store_search_contacts(struct store *st, const char *fts, size_t max,
			  int64_t **ids, size_t *n, char *why, size_t whylen)
{
	static const enum sstmt exact[] = { SS_Q_CONTACTS };
	static const enum cand_kind kind[] = { CK_CONTACT };

	return union_ids(st, fts, max, exact, kind, 1, ids, n, why, whylen);
}

/* ---- Hits, ranked -------------------------------------------------------- */

/* A matching message, while the hits are ranked. */
struct ranked {
	int64_t id, conv, created;
	double score;
	uint16_t *tf;		/* each term's count in it: nterms */
};

struct tf_count {
	const struct search_plan *p;
	size_t nterms;
	uint16_t *tf;
};

static int tf_cb(void *ctx, const char *tok, size_t n, size_t start,
		 size_t end)
{
	struct tf_count *c = ctx;

	(void)start;
	(void)end;
	for (size_t t = 0; t < c->nterms; t++)
		if (c->tf[t] < UINT16_MAX &&
		    search_term_match(&c->p->terms[t], tok, n))
			c->tf[t]++;
	return 0;
}

static int cmp_rank(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id > y->id ? -1 : x->id < y->id;
}

/*
 * Scores the matches in the manner of bm25 without lengths (what FTS5's
 * bm25 gave with columnsize=0): for each term, its rarity among the
 * matches ranked (Lucene's idf, log(1 + (n - with + 0.5) / (with + 0.5)),
 * always above 0) times its count, a count adding less with each repeat
 * (k1). Ties: the newest first.
 */
static void rank_score(struct ranked *v, size_t n, size_t nterms)
{
	for (size_t t = 0; t < nterms; t++) {
		size_t with = 0;
		double idf;

		for (size_t i = 0; i < n; i++)
			with += v[i].tf[t] > 0;
		idf = log(1.0 + ((double)n - (double)with + 0.5) /
				    ((double)with + 0.5));
		for (size_t i = 0; i < n; i++) {
			double f = v[i].tf[t];

			v[i].score += idf * f * (RANK_K1 + 1.0) / (f + RANK_K1);
		}
	}
	qsort(v, n, sizeof(*v), cmp_rank);
}

int store_search_hits(struct store *st, const char *fts, size_t max,
		      store_search_hit_cb cb, void *ctx, char *why,
		      size_t whylen)
{
	struct buf snip = BUF_INIT;
	struct checker *c = NULL;
	struct batch b = { .kind = CK_MSG };
	struct ranked *v = NULL;
	uint16_t *tf = NULL;
	struct query q;
	size_t nv = 0, nterms;
	sqlite3_stmt *js;
	int r;

	r = query_open(&q, st, fts, why, whylen);
	if (r)
		return r;
	if (q.plan.none)
		goto out;
	nterms = q.plan.nterms < RANK_TERMS ? q.plan.nterms : RANK_TERMS;
	v = calloc(RANK_WINDOW, sizeof(*v));
	tf = calloc((size_t)RANK_WINDOW * (nterms ? nterms : 1), sizeof(*tf));
	if (!v || !tf) {
		r = -ENOMEM;
		goto out;
	}
	r = checker_for(&q, CK_MSG, &c);
	/* The newest RANK_WINDOW matches, a batch at a time. */
	while (!r && nv < RANK_WINDOW) {
		r = batch_fill(&q, &b);
		r = r ? r : batch_check(&q, c, fts, &b);
		for (size_t i = 0; i < b.n && !r && nv < RANK_WINDOW; i++) {
			struct tf_count cnt = { &q.plan, nterms,
						tf + nv * nterms };

			if (!b.keep[i])
				continue;
			r = search_tokenize(q.tk, b.text[i].data, b.text[i].len,
					    tf_cb, &cnt);
			v[nv].id = b.id[i];
			v[nv].conv = b.conv[i];
			v[nv].created = b.created[i];
			v[nv].tf = cnt.tf;
			nv++;
		}
		if (b.ended)
			break;
	}
	batch_release(&b);
	checker_put(&q, c);
	if (r)
		goto out;
	rank_score(v, nv, nterms);
	js = qprep(&q, SS_MSG_OLD);
	if (!js) {
		query_error(q.d, why, whylen);
		r = -EIO;
		goto out;
	}
	for (size_t i = 0; i < nv && i < max && !r; i++) {
		int rc;

		sqlite3_bind_int64(js, 1, v[i].id);
		rc = sqlite3_step(js);
		if (rc == SQLITE_ROW) {
			const void *json = sqlite3_column_blob(js, 0);
			size_t len = (size_t)sqlite3_column_bytes(js, 0);

			r = snippet_of(q.tk, &q.plan, json, len, &snip);
			r = r ? r : cb(ctx, v[i].id, v[i].conv, v[i].created,
				       json, len, snip.data);
		} else if (rc != SQLITE_DONE) {
			r = query_rc(q.d, rc, why, whylen);
		}
		sqlite3_reset(js);
	}
out:
	query_close(&q);
	free(v);
	free(tf);
	buf_release(&snip);
	return r;
}
