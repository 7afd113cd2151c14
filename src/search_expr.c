// SPDX-License-Identifier: MIT
/*
 * search_expr.c: an FTS5 query turned into what the message index, which
 * keeps no positions, can run (include/search_expr.h): FTS5's tokenizer
 * on a connection, and a parser of FTS5's grammar that gives each part
 * of the query two relaxations, one that finds more and one that finds
 * less, so that a NOT can exclude only what it excludes for sure.
 */
#include "search_expr.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* ---- The tokenizer ------------------------------------------------------ */

struct search_tokenizer {
	fts5_tokenizer api;	/* unicode61's functions, FTS5's */
	Fts5Tokenizer *tok;	/* our instance: remove_diacritics 2 */
};

struct search_tokenizer *search_tokenizer_open(struct sqlite3 *db)
{
	static const char *args[] = { "remove_diacritics", "2" };
	struct search_tokenizer *t;
	fts5_api *api = NULL;
	sqlite3_stmt *s = NULL;
	void *ud = NULL;

	if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &s, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_pointer(s, 1, (void *)&api, "fts5_api_ptr", NULL);
		sqlite3_step(s);
	}
	sqlite3_finalize(s);
	if (!api || api->iVersion < 2) {
		errno = ENOTSUP;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (api->xFindTokenizer(api, "unicode61", &ud, &t->api) != SQLITE_OK) {
		free(t);
		errno = ENOTSUP;
		return NULL;
	}
	if (t->api.xCreate(ud, args, 2, &t->tok) != SQLITE_OK) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void search_tokenizer_close(struct search_tokenizer *t)
{
	if (!t)
		return;
	t->api.xDelete(t->tok);
	free(t);
}

struct tok_call {
	search_tok_cb cb;
	void *ctx;
	int r;			/* the callback's -errno */
};

static int tok_each(void *ctx, int flags, const char *tok, int n, int start,
		    int end)
{
	struct tok_call *c = ctx;
	int r;

	if (flags & FTS5_TOKEN_COLOCATED)
		return SQLITE_OK;
	r = c->cb(c->ctx, tok, (size_t)n, (size_t)start, (size_t)end);
	if (r < 0) {
		c->r = r;
		return SQLITE_ERROR;
	}
	return r ? SQLITE_DONE : SQLITE_OK;
}

int search_tokenize(struct search_tokenizer *t, const char *text, size_t n,
		    search_tok_cb cb, void *ctx)
{
	struct tok_call c = { cb, ctx, 0 };
	int rc;

	if (n > INT32_MAX)
		return -EINVAL;
	rc = t->api.xTokenize(t->tok, &c, FTS5_TOKENIZE_DOCUMENT,
			      text ? text : "", (int)n, tok_each);
	if (c.r)
		return c.r;
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	return rc == SQLITE_OK || rc == SQLITE_DONE ? 0 : -EIO;
}

/* ---- The lexer: FTS5's tokens (fts5_expr.c fts5ExprGetToken) ------------ */

enum tk {
	T_END, T_LP, T_RP, T_COMMA, T_PLUS, T_STAR, T_CARET, T_STRING,
	T_OR, T_AND, T_NOT, T_BAD
};

struct lexer {
	const char *at;		/* the next token's first byte */
	enum tk kind;		/* the current token */
	const char *s;		/* its text (a STRING's, quotes included) */
	size_t n;
};

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

/* sqlite3Fts5IsBareword's set. */
static int is_bare(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_' || c == 0x1a;
}

static void lex_next(struct lexer *l)
{
	const char *p = l->at;

	while (is_space(*p))
		p++;
	l->s = p;
	l->n = 1;
	switch (*p) {
	case 0:
		l->kind = T_END;
		l->n = 0;
		break;
	case '(':
		l->kind = T_LP;
		break;
	case ')':
		l->kind = T_RP;
		break;
	case ',':
		l->kind = T_COMMA;
		break;
	case '+':
		l->kind = T_PLUS;
		break;
	case '*':
		l->kind = T_STAR;
		break;
	case '^':
		l->kind = T_CARET;
		break;
	case '"': {
		const char *q = p + 1;

		for (;;) {
			if (!*q) {
				l->kind = T_BAD;	/* unterminated */
				break;
			}
			if (q[0] == '"' && q[1] != '"') {
				l->kind = T_STRING;
				break;
			}
			q += q[0] == '"' ? 2 : 1;
		}
		l->n = (size_t)(q - p) + (*q ? 1 : 0);
		break;
	}
	default:
		if (!is_bare((unsigned char)*p)) {
			l->kind = T_BAD;
			break;
		}
		while (is_bare((unsigned char)p[l->n]))
			l->n++;
		l->kind = T_STRING;
		if (l->n == 2 && !memcmp(p, "OR", 2))
			l->kind = T_OR;
		else if (l->n == 3 && !memcmp(p, "AND", 3))
			l->kind = T_AND;
		else if (l->n == 3 && !memcmp(p, "NOT", 3))
			l->kind = T_NOT;
	}
	l->at = p + l->n;
}

/* The kind of the token after the current one. */
static enum tk lex_peek(const struct lexer *l)
{
	struct lexer x = *l;

	lex_next(&x);
	return x.kind;
}

/* ---- Relaxations ------------------------------------------------------- */

/*
 * One part of the query, relaxed both ways: sup finds all it finds and
 * maybe more (sup_true: no bound at all), sub only what it finds
 * (sub_false: nothing). never: it finds nothing, exactly (FTS5's empty
 * phrase: a phrase of no token, or a sequence of them).
 */
struct rx {
	struct buf sup, sub;
	int sup_true, sub_false, never;
};

#define RX_INIT { BUF_INIT, BUF_INIT, 0, 0, 0 }

static void rx_release(struct rx *x)
{
	buf_release(&x->sup);
	buf_release(&x->sub);
}

/* *a = "(a op b)". */
static int join(struct buf *a, const char *op, struct buf *b)
{
	struct buf out = BUF_INIT;
	int r;

	r = buf_addc(&out, '(');
	r = r ? r : buf_add(&out, a->data, a->len);
	r = r ? r : buf_adds(&out, op);
	r = r ? r : buf_add(&out, b->data, b->len);
	r = r ? r : buf_addc(&out, ')');
	if (r) {
		buf_release(&out);
		return r;
	}
	buf_release(a);
	*a = out;
	return 0;
}

/* Moves b's buffer into a's place. */
static void take(struct buf *a, struct buf *b)
{
	buf_release(a);
	*a = *b;
	*b = (struct buf)BUF_INIT;
}

/* Moves all of b into a. */
static void rx_move(struct rx *a, struct rx *b)
{
	rx_release(a);
	*a = *b;
	*b = (struct rx)RX_INIT;
}

static void rx_never(struct rx *a)
{
	rx_release(a);
	*a = (struct rx)RX_INIT;
	a->never = 1;
}

/* a = a AND b; b is left released. */
static int rx_and(struct rx *a, struct rx *b)
{
	int r = 0;

	if (a->never || b->never) {
		rx_never(a);
		goto out;
	}
	if (a->sup_true) {
		take(&a->sup, &b->sup);
		a->sup_true = b->sup_true;
	} else if (!b->sup_true) {
		r = join(&a->sup, " AND ", &b->sup);
	}
	if (!r && (a->sub_false || b->sub_false)) {
		buf_release(&a->sub);
		a->sub_false = 1;
	} else if (!r) {
		r = join(&a->sub, " AND ", &b->sub);
	}
out:
	rx_release(b);
	return r;
}

/* a = a OR b; b is left released. */
static int rx_or(struct rx *a, struct rx *b)
{
	int r = 0;

	if (b->never)
		goto out;
	if (a->never) {
		rx_move(a, b);
		return 0;
	}
	if (a->sup_true || b->sup_true) {
		buf_release(&a->sup);
		a->sup_true = 1;
	} else {
		r = join(&a->sup, " OR ", &b->sup);
	}
	if (!r && a->sub_false) {
		take(&a->sub, &b->sub);
		a->sub_false = b->sub_false;
	} else if (!r && !b->sub_false) {
		r = join(&a->sub, " OR ", &b->sub);
	}
out:
	rx_release(b);
	return r;
}

/*
 * a = a NOT b; b is left released. What a NOT excludes for sure is what
 * b's sub finds; what it may exclude, what b's sup finds.
 */
static int rx_not(struct rx *a, struct rx *b)
{
	int r = 0;

	if (a->never || b->never)
		goto out;
	if (!a->sup_true && !b->sub_false)
		r = join(&a->sup, " NOT ", &b->sub);
	if (!r && (a->sub_false || b->sup_true)) {
		buf_release(&a->sub);
		a->sub_false = 1;
	} else if (!r) {
		r = join(&a->sub, " NOT ", &b->sup);
	}
out:
	rx_release(b);
	return r;
}

/*
 * a = a b, in a sequence or a NEAR(): there FTS5 drops an empty phrase
 * (b never) rather than finding nothing. *have: whether a holds a part
 * yet (a starts never).
 */
static int rx_seq(struct rx *a, struct rx *b, int *have)
{
	if (b->never) {
		rx_release(b);
		return 0;
	}
	if (!*have) {
		*have = 1;
		rx_move(a, b);
		return 0;
	}
	return rx_and(a, b);
}

/* ---- The parser --------------------------------------------------------- */

/* Parentheses nested deeper than this: refused (FTS5's parser stops at
 * about 98). */
#define DEPTH_MAX 128

struct parser {
	struct lexer l;
	struct search_tokenizer *t;
	struct search_plan *p;
	int depth;
	int too_deep;		/* why the parse failed */
};

/* The tokens of one phrase, as the tokenizer folds them. */
struct phrase {
	struct search_term *v;
	size_t n, alloc;
};

static void phrase_release(struct phrase *ph)
{
	for (size_t i = 0; i < ph->n; i++)
		free(ph->v[i].tok);
	free(ph->v);
	memset(ph, 0, sizeof(*ph));
}

static int phrase_add(void *ctx, const char *tok, size_t n, size_t start,
		      size_t end)
{
	struct phrase *ph = ctx;
	char *s;

	(void)start;
	(void)end;
	if (ph->n == ph->alloc) {
		size_t na = ph->alloc ? ph->alloc * 2 : 8;
		struct search_term *v = realloc(ph->v, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ph->v = v;
		ph->alloc = na;
	}
	s = malloc(n + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, tok, n);
	s[n] = 0;
	ph->v[ph->n].tok = s;
	ph->v[ph->n].prefix = 0;
	ph->n++;
	return 0;
}

/* Tokenizes the current STRING (a quoted one unquoted first). */
static int string_tokens(struct parser *ps, struct phrase *ph)
{
	struct lexer *l = &ps->l;
	struct buf text = BUF_INIT;
	int r;

	if (l->s[0] == '"') {
		r = 0;
		for (size_t i = 1; i + 1 < l->n && !r; i++) {
			r = buf_addc(&text, l->s[i]);
			if (l->s[i] == '"')
				i++;	/* "" is one quote */
		}
		r = r ? r
		      : search_tokenize(ps->t, text.data, text.len, phrase_add,
					ph);
	} else {
		r = search_tokenize(ps->t, l->s, l->n, phrase_add, ph);
	}
	buf_release(&text);
	return r;
}

/* A token as an FTS5 string: "tok" (a quote doubled), then * for a
 * prefix. */
static int add_term(struct buf *b, const struct search_term *x)
{
	int r = buf_addc(b, '"');

	for (const char *c = x->tok; *c && !r; c++)
		r = *c == '"' ? buf_adds(b, "\"\"") : buf_addc(b, *c);
	r = r ? r : buf_addc(b, '"');
	return r ? r : (x->prefix ? buf_addc(b, '*') : 0);
}

/* The phrase's tokens into the plan's terms (unless under a NOT). */
static int keep_terms(struct parser *ps, struct phrase *ph, int neg)
{
	struct search_plan *p = ps->p;
	struct search_term *v;

	if (neg || !ph->n)
		return 0;
	v = realloc(p->terms, (p->nterms + ph->n) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->terms = v;
	memcpy(v + p->nterms, ph->v, ph->n * sizeof(*v));
	p->nterms += ph->n;
	ph->n = 0;	/* the strings are the plan's now */
	return 0;
}

/*
 * phrase := STRING [*] (+ STRING [*])*, the current token a STRING;
 * loose: it must not be taken as exact even if it holds one token (^).
 */
static int parse_phrase(struct parser *ps, int neg, int loose, struct rx *x)
{
	struct phrase ph = { 0 };
	int r = 0;

	for (;;) {
		int star;

		if (ps->l.kind != T_STRING) {
			r = -EINVAL;
			break;
		}
		r = string_tokens(ps, &ph);
		if (r)
			break;
		lex_next(&ps->l);
		star = ps->l.kind == T_STAR;
		if (star)
			lex_next(&ps->l);
		/* As FTS5 does (sqlite3Fts5ParseTerm): after each string,
		 * the phrase's last token so far is a prefix or not by this
		 * string's star, even when the string added no token. */
		if (ph.n)
			ph.v[ph.n - 1].prefix = star;
		if (ps->l.kind != T_PLUS)
			break;
		lex_next(&ps->l);
	}
	/* The shortest prefix, in characters (UTF-8 lead bytes). */
	for (size_t i = 0; i < ph.n && !r; i++) {
		size_t chars = 0;

		if (!ph.v[i].prefix)
			continue;
		for (const char *c = ph.v[i].tok; *c; c++)
			chars += ((unsigned char)*c & 0xC0) != 0x80;
		if (chars < ps->p->prefix_chars) {
			ps->p->prefix_chars = chars;
			snprintf(ps->p->shortest, sizeof(ps->p->shortest),
				 "%s", ph.v[i].tok);
		}
	}
	if (!r && !ph.n) {
		x->never = 1;
	} else if (!r && ph.n == 1 && !loose) {
		r = add_term(&x->sup, &ph.v[0]);
		r = r ? r : add_term(&x->sub, &ph.v[0]);
	} else if (!r) {
		/* Its tokens, in any order and place: found with it. */
		r = buf_addc(&x->sup, '(');
		for (size_t i = 0; i < ph.n && !r; i++) {
			r = i ? buf_adds(&x->sup, " AND ") : 0;
			r = r ? r : add_term(&x->sup, &ph.v[i]);
		}
		r = r ? r : buf_addc(&x->sup, ')');
		x->sub_false = 1;
		ps->p->exact = 0;
	}
	r = r ? r : keep_terms(ps, &ph, neg);
	phrase_release(&ph);
	return r;
}

/* NEAR(phrase phrase ... [, n]), the current token "NEAR", then '('. */
static int parse_near(struct parser *ps, int neg, struct rx *x)
{
	struct lexer *l = &ps->l;
	size_t nphrases = 0, parts = 0;
	int r = 0, have = 0;

	if (l->n != 4 || memcmp(l->s, "NEAR", 4))
		return -EINVAL;	/* FTS5: syntax error near it */
	lex_next(l);		/* ( */
	lex_next(l);
	x->never = 1;
	while (!r && l->kind == T_STRING) {
		struct rx y = RX_INIT;

		r = parse_phrase(ps, neg, 0, &y);
		if (r) {
			rx_release(&y);
			break;
		}
		nphrases++;
		parts += !y.never;
		r = rx_seq(x, &y, &have);
	}
	if (!r && l->kind == T_COMMA) {
		lex_next(l);
		if (l->kind != T_STRING || l->s[0] == '"')
			return -EINVAL;
		for (size_t i = 0; i < l->n; i++)
			if (l->s[i] < '0' || l->s[i] > '9')
				return -EINVAL;
		lex_next(l);
	}
	if (!r && (l->kind != T_RP || !nphrases))
		r = -EINVAL;
	if (r)
		return r;
	lex_next(l);
	/* Two phrases or more (FTS5 drops the empty ones): near each
	 * other, which the index cannot tell. One: the phrase itself. */
	if (parts > 1) {
		buf_release(&x->sub);
		x->sub_false = 1;
		ps->p->exact = 0;
	}
	return 0;
}

static int parse_or(struct parser *ps, int neg, struct rx *x);

/* A sequence of NEAR groups, ^phrases and phrases: ANDed. */
static int parse_seq(struct parser *ps, int neg, struct rx *x)
{
	int r = 0, have = 0;

	x->never = 1;
	while (!r && (ps->l.kind == T_STRING || ps->l.kind == T_CARET)) {
		struct rx y = RX_INIT;

		if (ps->l.kind == T_CARET) {
			lex_next(&ps->l);
			r = parse_phrase(ps, neg, 1, &y);
		} else if (lex_peek(&ps->l) == T_LP) {
			r = parse_near(ps, neg, &y);
		} else {
			r = parse_phrase(ps, neg, 0, &y);
		}
		if (r) {
			rx_release(&y);
			break;
		}
		r = rx_seq(x, &y, &have);
	}
	return r;
}

/* ( expr ) or a sequence. */
static int parse_prim(struct parser *ps, int neg, struct rx *x)
{
	int r;

	if (ps->l.kind == T_LP) {
		if (++ps->depth > DEPTH_MAX) {
			ps->too_deep = 1;
			return -EINVAL;
		}
		lex_next(&ps->l);
		r = parse_or(ps, neg, x);
		if (!r && ps->l.kind != T_RP)
			r = -EINVAL;
		if (!r)
			lex_next(&ps->l);
		ps->depth--;
		return r;
	}
	if (ps->l.kind != T_STRING && ps->l.kind != T_CARET)
		return -EINVAL;
	return parse_seq(ps, neg, x);
}

static int parse_not(struct parser *ps, int neg, struct rx *x)
{
	int r = parse_prim(ps, neg, x);

	while (!r && ps->l.kind == T_NOT) {
		struct rx y = RX_INIT;

		lex_next(&ps->l);
		r = parse_prim(ps, !neg, &y);
		r = r ? r : rx_not(x, &y);
		rx_release(&y);
	}
	return r;
}

static int parse_and(struct parser *ps, int neg, struct rx *x)
{
	int r = parse_not(ps, neg, x);

	while (!r && ps->l.kind == T_AND) {
		struct rx y = RX_INIT;

		lex_next(&ps->l);
		r = parse_not(ps, neg, &y);
		r = r ? r : rx_and(x, &y);
		rx_release(&y);
	}
	return r;
}

static int parse_or(struct parser *ps, int neg, struct rx *x)
{
	int r = parse_and(ps, neg, x);

	while (!r && ps->l.kind == T_OR) {
		struct rx y = RX_INIT;

		lex_next(&ps->l);
		r = parse_and(ps, neg, &y);
		r = r ? r : rx_or(x, &y);
		rx_release(&y);
	}
	return r;
}

int search_plan_make(const char *fts, struct search_tokenizer *t,
		     struct search_plan *p, char *why, size_t whylen)
{
	struct parser ps = { .t = t, .p = p };
	struct rx x = RX_INIT;
	int r;

	memset(p, 0, sizeof(*p));
	p->exact = 1;
	p->prefix_chars = SIZE_MAX;
	ps.l.at = fts;
	lex_next(&ps.l);
	r = parse_or(&ps, 0, &x);
	if (!r && ps.l.kind != T_END)
		r = -EINVAL;
	/* No bound at all: no part of the query finds anything for sure
	 * (never so far: every phrase bounds it). */
	if (!r && !x.never && x.sup_true)
		r = -EINVAL;
	if (!r) {
		p->none = x.never;
		if (!p->none)
			take(&p->relaxed, &x.sup);
	}
	rx_release(&x);
	if (r == -EINVAL && why && whylen)
		snprintf(why, whylen, "%s",
			 ps.too_deep ? "the query is nested too deep"
				     : "the query is not one driftfs can run");
	return r;
}

void search_plan_release(struct search_plan *p)
{
	if (!p)
		return;
	buf_release(&p->relaxed);
	for (size_t i = 0; i < p->nterms; i++)
		free(p->terms[i].tok);
	free(p->terms);
	memset(p, 0, sizeof(*p));
}

int search_term_match(const struct search_term *x, const char *tok,
		      size_t n)
{
	size_t len = strlen(x->tok);

	return (len == n || (x->prefix && len < n)) && !memcmp(x->tok, tok, len);
}

int search_plan_term(const struct search_plan *p, const char *tok, size_t n)
{
	for (size_t i = 0; i < p->nterms; i++)
		if (search_term_match(&p->terms[i], tok, n))
			return 1;
	return 0;
}
