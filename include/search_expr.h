/* SPDX-License-Identifier: MIT */
/*
 * search_expr: what an FTS5 query asks of the search indexes, which keep
 * no positions.
 *
 * Those indexes are FTS5 with detail=none (store_search.c): they record
 * which rows hold a token, not where, at about half the size of one with
 * positions. They cannot run a phrase of two tokens or more, NEAR(),
 * or ^. So a query (as search_query_prepare gives it) becomes a plan:
 *
 *   relaxed  an FTS5 query such an index can run that finds every row
 *            the query finds, and maybe more: a phrase becomes
 *            its tokens ANDed, NEAR() its phrases ANDed, and the right of
 *            a NOT keeps only what it excludes for sure;
 *   exact    1 when relaxed finds exactly what the query does (no phrase
 *            of two tokens or more, no NEAR() of two phrases, no ^):
 *            the index's answer is the answer. 0: each row relaxed
 *            finds is checked against the original query, by the
 *            program below or (not checkable) by FTS5 itself on a table
 *            with positions holding the candidates alone;
 *   terms    the tokens a matching message may show (those outside the
 *            right of a NOT), to cut a snippet around the first;
 *   program  the query itself, as nodes over phrases, that
 *            search_plan_match runs on one candidate's tokens: what FTS5
 *            with positions would answer for it, without a table
 *            (checkable; else the caller checks with FTS5 itself).
 *
 * Tokens are counted by the caller's tokenizer: the index's own
 * (search_tokenizer_open, unicode61 remove_diacritics 2), since whether
 * "foo—bar" is one token or two is its decision.
 *
 * The grammar is FTS5's (SQLite 3.40, fts5parse.y), as far as
 * search_query_prepare lets it through: phrases (barewords, "quoted",
 * a + b), prefix*, ^, NEAR(p p, n), AND, OR, NOT and parentheses, with
 * FTS5's precedence: a sequence of phrases binds tighter than NOT, NOT
 * than AND, AND than OR ("a NOT b c" is "a NOT (b AND c)"). A phrase that
 * holds no token is dropped, as FTS5 drops it. Column filters are not
 * parsed (search_query_prepare quotes ':', '{' and '-'): -EINVAL, and the
 * caller asks FTS5 why.
 *
 * Threads: none of its own. A plan belongs to its caller; a tokenizer to
 * the thread that opened it, on a connection that outlives it.
 */
#ifndef DRIFTFS_SEARCH_EXPR_H
#define DRIFTFS_SEARCH_EXPR_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct sqlite3;

/* One token of a query: folded as the index folds it (NUL-terminated). */
struct search_term {
	char *tok;
	size_t len;		/* strlen(tok) */
	int prefix;		/* tok* */
};

/*
 * The program: nodes in the order they were made, so each node's
 * operands come before it; the plan's root is the query's (not always
 * the last made: an empty phrase drops what it was ANDed with). AND, OR,
 * NOT: a and b are the operands' nodes (a NOT b);
 * PHRASE: phrase a; NEAR: phrases a .. a + b - 1, each instance of one
 * near enough to one of each other (FTS5's NEAR: no more than near
 * tokens between the end of any and the start of the last).
 */
enum search_op { SO_PHRASE, SO_NEAR, SO_AND, SO_OR, SO_NOT };

struct search_node {
	enum search_op op;
	size_t a, b;
	int64_t near;
};

/* A phrase: n tokens, each an index into the plan's cterms, in order;
 * caret: it must start a column (^). */
struct search_phrase {
	size_t first, n;	/* in the plan's ptok */
	int caret;
};

/* Distinct tokens a program may hold: a token's matches are a bit. */
#define SEARCH_CTERMS_MAX 64
/* Columns a candidate may have (a contact has four). */
#define SEARCH_COLS_MAX 4

struct search_plan {
	struct buf relaxed;	/* empty when none */
	int exact;
	int none;		/* finds nothing (every phrase was empty) */
	struct search_term *terms;
	size_t nterms;
	/*
	 * The shortest prefix* token in characters, wherever it stands (a
	 * NOT's right too), as the tokenizer folds it: a short prefix
	 * matches much of the index, so the caller may refuse it. SIZE_MAX:
	 * no prefix. shortest holds it (cut to fit).
	 */
	size_t prefix_chars;
	char shortest[64];
	/*
	 * The program (see above). checkable: 0 when the query has more
	 * than SEARCH_CTERMS_MAX distinct tokens or a NEAR distance FTS5
	 * would overflow; then only FTS5 can check it.
	 */
	int checkable;
	struct search_term *cterms;	/* every distinct token, NOT's too */
	size_t ncterms;
	unsigned char *ptok;		/* the phrases' tokens: cterms indexes */
	size_t nptok, ptok_alloc;
	struct search_phrase *phrases;
	size_t nphrases, phrases_alloc;
	struct search_node *nodes;
	size_t nnodes, nodes_alloc, root;
};

/*
 * A token of text: its bytes (not NUL-terminated) and where it lies in
 * the text. Returns 0 to go on, 1 to stop, -errno to fail.
 */
typedef int (*search_tok_cb)(void *ctx, const char *tok, size_t n,
			     size_t start, size_t end);

/* FTS5's unicode61 remove_diacritics 2, on one connection. */
struct search_tokenizer;

/*
 * The tokenizer of db (which must outlive it): NULL with errno set
 * (ENOTSUP: no FTS5). Released by search_tokenizer_close (NULL is fine).
 */
struct search_tokenizer *search_tokenizer_open(struct sqlite3 *db);
void search_tokenizer_close(struct search_tokenizer *t);
/* Calls cb for each token of text (n bytes): 0, or cb's -errno, -EIO
 * (FTS5 failed), -EINVAL (n past INT32_MAX). */
int search_tokenize(struct search_tokenizer *t, const char *text, size_t n,
		    search_tok_cb cb, void *ctx);

/*
 * The plan of the FTS5 query fts, into *p (zeroed first; released by
 * search_plan_release, also after a failure). -EINVAL, why (the caller's,
 * may be NULL) saying why: fts is nested too deep, or is not a query this
 * parser knows (the caller asks FTS5 first, which says why when it
 * refuses it too); -ENOMEM.
 */
int search_plan_make(const char *fts, struct search_tokenizer *t,
		     struct search_plan *p, char *why, size_t whylen);
void search_plan_release(struct search_plan *p);

/*
 * Whether token tok (n bytes, folded) is term x (equal, or starting with
 * it when x is a prefix), both cut at 32768 bytes as FTS5 cuts tokens: 1
 * or 0.
 */
int search_term_match(const struct search_term *x, const char *tok,
		      size_t n);
/* Whether tok is one of the plan's terms: 1 or 0. */
int search_plan_term(const struct search_plan *p, const char *tok, size_t n);

/*
 * What search_plan_match works in, kept by its caller between candidates
 * so that it allocates only as a candidate is bigger than the ones before:
 * 8 bytes a token of the candidate, 16 a phrase and 1 a node of the plan.
 * Zeroed to start; search_match_release frees it.
 */
struct search_match {
	uint64_t *mask;		/* per token: the cterms it is */
	size_t ntok, tok_alloc;
	size_t colend[SEARCH_COLS_MAX];	/* tokens up to each column's end */
	int64_t *pos;		/* per phrase, a NEAR's: its latest instance
				 * so far, then (pos + nphrases) its next */
	size_t pos_alloc;	/* phrases pos holds */
	unsigned char *val;	/* per node: whether it matched */
	size_t val_alloc;
};

void search_match_release(struct search_match *m);

/*
 * Whether a candidate whose ncols texts (1 to SEARCH_COLS_MAX; an empty
 * buf is an empty column) are cols matches p's query, as FTS5 with
 * positions and tokenizer t would find it: 1, 0, or -errno (-EINVAL: p
 * is not checkable or ncols is out of range; -ENOMEM; the tokenizer's).
 */
int search_plan_match(const struct search_plan *p, struct search_tokenizer *t,
		      const struct buf *cols, int ncols,
		      struct search_match *m);

#endif
