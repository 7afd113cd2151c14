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

/* ---- The program ------------------------------------------------------- */

/* FTS5 cuts a token, the query's or a text's, to this many bytes (its
 * FTS5_MAX_TOKEN_SIZE). */
#define TOKEN_MAX 32768
/* FTS5's NEAR distance when the query gives none (FTS5_DEFAULT_NEARDIST). */
#define NEAR_DEFAULT 10
/* A NEAR distance past this FTS5 would overflow, adding digits in an int:
 * such a query is left to FTS5 to check. */
#define NEAR_MAX 999999999

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

/* A node into the program; *out its index. Nothing once the program is
 * given up (not checkable). 0 or -ENOMEM. */
static int node_add(struct parser *ps, enum search_op op, size_t a, size_t b,
		    int64_t near, size_t *out)
{
	struct search_plan *p = ps->p;

	*out = 0;
	if (!p->checkable)
		return 0;
	if (p->nnodes == p->nodes_alloc) {
		size_t na = p->nodes_alloc ? 2 * p->nodes_alloc : 16;
		struct search_node *v = realloc(p->nodes, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->nodes = v;
		p->nodes_alloc = na;
	}
	p->nodes[p->nnodes] = (struct search_node){ op, a, b, near };
	*out = p->nnodes++;
	return 0;
}

/* x's index in the plan's cterms into *out, added if new. Past
 * SEARCH_CTERMS_MAX the program is given up. 0 or -ENOMEM. */
static int cterm_of(struct search_plan *p, const struct search_term *x,
		    size_t *out)
{
	struct search_term *v;
	char *tok;

	for (size_t i = 0; i < p->ncterms; i++)
		if (p->cterms[i].prefix == x->prefix &&
		    !strcmp(p->cterms[i].tok, x->tok)) {
			*out = i;
			return 0;
		}
	if (p->ncterms == SEARCH_CTERMS_MAX) {
		p->checkable = 0;
		return 0;
	}
	v = realloc(p->cterms, (p->ncterms + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	p->cterms = v;
	tok = strdup(x->tok);
	if (!tok)
		return -ENOMEM;
	v[p->ncterms] = (struct search_term){ tok, x->len, x->prefix };
	*out = p->ncterms++;
	return 0;
}

/* Block v (*alloc elements of size bytes) grown, doubling, to hold
 * need: v itself, or where it moved, *alloc updated; NULL when memory ran
 * out (v is kept as it was). */
static void *grown(void *v, size_t *alloc, size_t need, size_t size)
{
	size_t na = *alloc ? *alloc : 16;
	void *nv;

	if (need <= *alloc)
		return v;
	while (na < need)
		na *= 2;
	nv = realloc(v, na * size);
	if (nv)
		*alloc = na;
	return nv;
}

/* The phrase of tokens v[0..n) (n > 0) into the program, and a node that
 * finds it into *node. */
static int phrase_prog(struct parser *ps, const struct search_term *v,
		       size_t n, int caret, size_t *node)
{
	struct search_plan *p = ps->p;
	size_t first = p->nptok;
	unsigned char *ptok;
	struct search_phrase *phrases;

	*node = 0;
	if (!p->checkable)
		return 0;
	ptok = grown(p->ptok, &p->ptok_alloc, p->nptok + n, 1);
	if (!ptok)
		return -ENOMEM;
	p->ptok = ptok;
	phrases = grown(p->phrases, &p->phrases_alloc, p->nphrases + 1,
			sizeof(*phrases));
	if (!phrases)
		return -ENOMEM;
	p->phrases = phrases;
	for (size_t i = 0; i < n; i++) {
		size_t k;
		int r = cterm_of(p, &v[i], &k);

		if (r || !p->checkable)
			return r;
		p->ptok[p->nptok++] = (unsigned char)k;
	}
	p->phrases[p->nphrases] = (struct search_phrase){ first, n, caret };
	return node_add(ps, SO_PHRASE, p->nphrases++, 1, 0, node);
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
	size_t node;		/* its program's root (not never) */
};

#define RX_INIT { BUF_INIT, BUF_INIT, 0, 0, 0, 0 }

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
static int rx_and(struct parser *ps, struct rx *a, struct rx *b)
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
	r = r ? r : node_add(ps, SO_AND, a->node, b->node, 0, &a->node);
out:
	rx_release(b);
	return r;
}

/* a = a OR b; b is left released. */
static int rx_or(struct parser *ps, struct rx *a, struct rx *b)
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
	r = r ? r : node_add(ps, SO_OR, a->node, b->node, 0, &a->node);
out:
	rx_release(b);
	return r;
}

/*
 * a = a NOT b; b is left released. What a NOT excludes for sure is what
 * b's sub finds; what it may exclude, what b's sup finds.
 */
static int rx_not(struct parser *ps, struct rx *a, struct rx *b)
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
	r = r ? r : node_add(ps, SO_NOT, a->node, b->node, 0, &a->node);
out:
	rx_release(b);
	return r;
}

/*
 * a = a b, in a sequence or a NEAR(): there FTS5 drops an empty phrase
 * (b never) rather than finding nothing. *have: whether a holds a part
 * yet (a starts never).
 */
static int rx_seq(struct parser *ps, struct rx *a, struct rx *b, int *have)
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
	return rx_and(ps, a, b);
}

/* ---- The parser --------------------------------------------------------- */

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
	ph->v[ph->n].len = n;
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
	if (!r && !ph.n)
		x->never = 1;
	else if (!r)
		r = phrase_prog(ps, ph.v, ph.n, loose, &x->node);
	if (r || x->never) {
		/* failed, or no token: nothing to find it by */
	} else if (ph.n == 1 && !loose) {
		r = add_term(&x->sup, &ph.v[0]);
		r = r ? r : add_term(&x->sub, &ph.v[0]);
	} else {
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
	size_t nphrases = 0, parts = 0, first = ps->p->nphrases;
	int64_t near = NEAR_DEFAULT;
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
		r = rx_seq(ps, x, &y, &have);
	}
	if (!r && l->kind == T_COMMA) {
		lex_next(l);
		if (l->kind != T_STRING || l->s[0] == '"')
			return -EINVAL;
		near = 0;
		for (size_t i = 0; i < l->n; i++) {
			if (l->s[i] < '0' || l->s[i] > '9')
				return -EINVAL;
			near = near * 10 + (l->s[i] - '0');
			if (near > NEAR_MAX) {
				ps->p->checkable = 0;
				near = NEAR_MAX;
			}
		}
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
		/* Its phrases are the last parts made: empty ones made none. */
		return node_add(ps, SO_NEAR, first, ps->p->nphrases - first,
				near, &x->node);
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
		r = rx_seq(ps, x, &y, &have);
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
		r = r ? r : rx_not(ps, x, &y);
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
		r = r ? r : rx_and(ps, x, &y);
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
		r = r ? r : rx_or(ps, x, &y);
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
	p->checkable = 1;
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
		p->root = x.node;
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
	for (size_t i = 0; i < p->ncterms; i++)
		free(p->cterms[i].tok);
	free(p->cterms);
	free(p->ptok);
	free(p->phrases);
	free(p->nodes);
	memset(p, 0, sizeof(*p));
}

int search_term_match(const struct search_term *x, const char *tok,
		      size_t n)
{
	size_t len = x->len < TOKEN_MAX ? x->len : TOKEN_MAX;

	if (n > TOKEN_MAX)
		n = TOKEN_MAX;
	return (len == n || (x->prefix && len < n)) && !memcmp(x->tok, tok, len);
}

int search_plan_term(const struct search_plan *p, const char *tok, size_t n)
{
	for (size_t i = 0; i < p->nterms; i++)
		if (search_term_match(&p->terms[i], tok, n))
			return 1;
	return 0;
}

/* ---- Running the program on one candidate ------------------------------ */

void search_match_release(struct search_match *m)
{
	if (!m)
		return;
	free(m->mask);
	free(m->pos);
	free(m->val);
	memset(m, 0, sizeof(*m));
}

struct match_tok {
	const struct search_plan *p;
	struct search_match *m;
};

/* Each token of a text: which cterms it is. */
static int match_each(void *ctx, const char *tok, size_t n, size_t start,
		      size_t end)
{
	struct match_tok *c = ctx;
	struct search_match *m = c->m;
	uint64_t bits = 0, *mask;

	(void)start;
	(void)end;
	mask = grown(m->mask, &m->tok_alloc, m->ntok + 1, sizeof(*mask));
	if (!mask)
		return -ENOMEM;
	m->mask = mask;
	for (size_t i = 0; i < c->p->ncterms; i++)
		if (search_term_match(&c->p->cterms[i], tok, n))
			bits |= (uint64_t)1 << i;
	m->mask[m->ntok++] = bits;
	return 0;
}

/* No instance: past every position. */
#define NO_POS INT64_MAX

/*
 * The first instance of phrase ph at or after position from, as FTS5
 * gives positions, (column << 32) | the token's place in its column; or
 * NO_POS. Instances are found from the tokens' masks as they are needed,
 * never stored: a long text and a NEAR of many phrases cost time, not
 * memory.
 */
static int64_t phrase_next(const struct search_plan *p,
			   const struct search_phrase *ph,
			   const struct search_match *m, int ncols, int64_t from)
{
	const unsigned char *tok = p->ptok + ph->first;
	int c0 = (int)(from >> 32);

	for (int c = c0; c < ncols; c++) {
		size_t cs = c ? m->colend[c - 1] : 0, ce = m->colend[c];
		size_t off = c == c0 ? (size_t)(from & 0xffffffff) : 0;

		for (; ph->n <= ce - cs && off <= ce - cs - ph->n; off++) {
			size_t k = 0;

			if (ph->caret && off)
				break;
			while (k < ph->n &&
			       (m->mask[cs + off + k] >> tok[k] & 1))
				k++;
			if (k == ph->n)
				return (int64_t)c << 32 | (int64_t)off;
		}
	}
	return NO_POS;
}

/*
 * NEAR of phrases a .. a + n - 1: FTS5 finds it where each phrase i has
 * an instance s_i with L - s_i - len_i <= near for the last of them, L.
 * So it is found iff some instance L of one of them has, for each phrase,
 * an instance at or before L that ends near enough before it (the latest
 * such is the one to try). Each instance is tried as L in turn, ascending,
 * each phrase's place moving only forward, as in FTS5's sweep: O(n) a try
 * plus one forward scan of the tokens a phrase over the whole sweep.
 * Positions carry their column, so no instance counts with one in another
 * column, as in FTS5.
 */
static int near_found(const struct search_plan *p, struct search_match *m,
		      int ncols, size_t a, size_t n, int64_t near)
{
	int64_t *last = m->pos, *next = m->pos + p->nphrases;

	for (size_t i = a; i < a + n; i++) {
		next[i] = phrase_next(p, &p->phrases[i], m, ncols, 0);
		if (next[i] == NO_POS)
			return 0;
		last[i] = NO_POS;
	}
	for (;;) {
		int64_t l = NO_POS;
		size_t i;

		/* The next instance of any of them: the L to try. */
		for (i = a; i < a + n; i++)
			if (next[i] < l)
				l = next[i];
		if (l == NO_POS)
			return 0;
		/* Each phrase's latest instance at or before it. */
		for (i = a; i < a + n; i++)
			while (next[i] <= l) {
				last[i] = next[i];
				next[i] = phrase_next(p, &p->phrases[i], m,
						      ncols, next[i] + 1);
			}
		for (i = a; i < a + n; i++)
			if (last[i] == NO_POS ||
			    l - last[i] - (int64_t)p->phrases[i].n > near)
				break;
		if (i == a + n)
			return 1;
	}
}

int search_plan_match(const struct search_plan *p, struct search_tokenizer *t,
		      const struct buf *cols, int ncols,
		      struct search_match *m)
{
	struct match_tok c = { p, m };
	int r;

	if (!p->checkable || p->none || !p->nnodes || ncols < 1 ||
	    ncols > SEARCH_COLS_MAX)
		return -EINVAL;
	if (p->nphrases > m->pos_alloc) {
		int64_t *pos = realloc(m->pos, 2 * p->nphrases * sizeof(*pos));

		if (!pos)
			return -ENOMEM;
		m->pos = pos;
		m->pos_alloc = p->nphrases;
	}
	if (p->nnodes > m->val_alloc) {
		unsigned char *val = realloc(m->val, p->nnodes);

		if (!val)
			return -ENOMEM;
		m->val = val;
		m->val_alloc = p->nnodes;
	}
	m->ntok = 0;
	for (int i = 0; i < ncols; i++) {
		r = search_tokenize(t, cols[i].data, cols[i].len, match_each,
				    &c);
		if (r)
			return r;
		m->colend[i] = m->ntok;
	}
	/* Operands come before their nodes. */
	for (size_t i = 0; i < p->nnodes; i++) {
		const struct search_node *x = &p->nodes[i];
		unsigned char v = 0;

		switch (x->op) {
		case SO_PHRASE:
			v = phrase_next(p, &p->phrases[x->a], m, ncols, 0) !=
			    NO_POS;
			break;
		case SO_NEAR:
			v = (unsigned char)near_found(p, m, ncols, x->a, x->b,
						      x->near);
			break;
		case SO_AND:
			v = m->val[x->a] && m->val[x->b];
			break;
		case SO_OR:
			v = m->val[x->a] || m->val[x->b];
			break;
		case SO_NOT:
			v = m->val[x->a] && !m->val[x->b];
			break;
		}
		m->val[i] = v;
	}
	return m->val[p->root];
}
