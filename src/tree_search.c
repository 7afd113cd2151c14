// SPDX-License-Identifier: MIT
/*
 * tree_search.c: the nodes under search/ (DESIGN.md §3.1): a query's
 * directory, its conversations/ and contacts/ of links, and hits.txt, all
 * answered from the search index (search.h) and never the network.
 *
 * search/ lists as empty, so find, grep -r and rsync never walk into a
 * query; any name looked up in it is a query (decoded as every entry name
 * is: %2F is '/'). Each node under it carries the query's entry name
 * (tree_kind_named), so its inode number is a hash of kind and name,
 * stable across mounts; a result link is keyed by its object's id alone
 * (the same link under any query). src/fs/ gives these nodes short cache
 * timeouts (tree_search_kind), and forgets old queries (fs_query_seen).
 *
 * A query's result is kept for RESULT_TTL_MS (as long as the kernel keeps
 * the entries: SEARCH_TIMEOUT) and until the cache changes
 * (tree_search_changed), so the getattr, open and fstat of one
 * `cat search/Q/hits.txt` share one run (the lookup of search/Q only
 * checks the query: SEARCH_CHECK), and st_size is the size of the
 * bytes read. (Another process writing the cache, driftctl sync, sends no
 * change: a result is then at most RESULT_TTL_MS old.) A failure is kept
 * too: a query that ran past its deadline is not run again by the next
 * request a moment later.
 */
#include "tree.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "names.h"
#include "search.h"
#include "store.h"
#include "text.h"
#include "tree_int.h"

/* The entries of a query's directory. */
static const struct {
	const char *name;
	int kind;
} query_entries[] = {
	{ "conversations", T_SEARCH_CONVS },
	{ "contacts", T_SEARCH_CONTACTS },
	{ "hits.txt", T_SEARCH_HITS },
};

/* ---- Results kept a moment -------------------------------------------- */

#define RESULT_SLOTS 8
#define RESULT_TTL_MS 1000

/* One run's outcome, shared by the requests that use it (refs). */
struct qres {
	unsigned refs;
	const struct store *st;	/* whose cache it read */
	uint64_t gen;		/* changes before it ran (see gen) */
	unsigned what;
	int64_t at_ms;		/* clock_mono_ms() when it ran */
	int r;			/* 0, -EINVAL or -ETIMEDOUT */
	char *qname;
	struct search_result res;
};

/*
 * The kept results (a slot NULL or one reference), and the error lines
 * of failed queries lately (hash of the query name and error, time).
 * lock is a leaf: held for a few statements, no other lock taken under
 * it and no query run.
 */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct qres *kept[RESULT_SLOTS];
/* The cache's changes so far (tree_search_changed). */
static uint64_t gen;
#define ERR_SLOTS 32
#define ERR_QUIET_MS 60000
static struct {
	uint64_t h;
	int64_t at_ms;
} said[ERR_SLOTS];

static void qres_put(struct qres *q)
{
	unsigned left;

	if (!q)
		return;
	pthread_mutex_lock(&lock);
	left = --q->refs;
	pthread_mutex_unlock(&lock);
	if (left)
		return;
	search_result_release(&q->res);
	free(q->qname);
	free(q);
}

/* A kept result of (qname, what) younger than the TTL, with a reference
 * for the caller, or NULL. */
static struct qres *kept_find(const struct store *st, const char *qname,
			      unsigned what)
{
	int64_t now = clock_mono_ms();
	struct qres *q = NULL;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < RESULT_SLOTS && !q; i++)
		if (kept[i] && kept[i]->what == what && kept[i]->st == st &&
		    kept[i]->gen == gen &&
		    now - kept[i]->at_ms < RESULT_TTL_MS &&
		    !strcmp(kept[i]->qname, qname)) {
			q = kept[i];
			q->refs++;
		}
	pthread_mutex_unlock(&lock);
	return q;
}

void tree_search_changed(void)
{
	pthread_mutex_lock(&lock);
	gen++;
	pthread_mutex_unlock(&lock);
}

static uint64_t gen_now(void)
{
	uint64_t g;

	pthread_mutex_lock(&lock);
	g = gen;
	pthread_mutex_unlock(&lock);
	return g;
}

/* Keeps q in place of the oldest (or an expired) slot. */
static void kept_add(struct qres *q)
{
	struct qres *old;
	size_t at = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < RESULT_SLOTS; i++) {
		if (!kept[i]) {
			at = i;
			break;
		}
		if (kept[i]->at_ms < kept[at]->at_ms)
			at = i;
	}
	old = kept[at];
	kept[at] = q;
	q->refs++;
	pthread_mutex_unlock(&lock);
	qres_put(old);
}

/* Whether the error line of (qname, r) is due: not said in the last
 * ERR_QUIET_MS (a typo retried, or a script's loop, makes one line). */
static int error_due(const char *qname, int r)
{
	uint64_t h = names_hash64(qname, strlen(qname), (uint64_t)-r);
	int64_t now = clock_mono_ms();
	size_t at = 0;
	int due = 1;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ERR_SLOTS; i++) {
		if (said[i].at_ms && said[i].h == h &&
		    now - said[i].at_ms < ERR_QUIET_MS) {
			due = 0;
			break;
		}
		if (said[i].at_ms < said[at].at_ms)
			at = i;
	}
	if (due) {
		said[at].h = h;
		said[at].at_ms = now;
	}
	pthread_mutex_unlock(&lock);
	return due;
}

/*
 * Runs the query that the entry name qname holds, or takes its result
 * kept from a moment ago: *out (a reference, qres_put) on success. An
 * invalid one is -EINVAL and one that runs too long -ETIMEDOUT (what the
 * application sees: EAGAIN, fs_reply_err), each with its reason in
 * .driftfs/errors (the request's context names the path), once a minute
 * for the same query.
 */
static int run(struct driftfs *d, const char *qname, unsigned what,
	       struct qres **out)
{
	struct buf q = BUF_INIT;
	char why[SEARCH_WHY_MAX] = "";
	struct qres *x;
	int r;

	*out = NULL;
	x = kept_find(d->store, qname, what);
	if (x) {
		r = x->r;
		if (r)
			qres_put(x);
		else
			*out = x;
		return r;
	}
	r = names_decode(qname, &q);
	if (r)
		return r == -ENOMEM ? r : -ENOENT;
	x = calloc(1, sizeof(*x));
	if (!x || !(x->qname = strdup(qname))) {
		free(x);
		buf_release(&q);
		return -ENOMEM;
	}
	x->refs = 1;
	x->st = d->store;
	x->what = what;
	x->gen = gen_now();	/* before: a change meanwhile makes it stale */
	r = search_run(d->store, q.data ? q.data : "", what, 0, &x->res, why,
		       sizeof(why));
	x->r = r;
	x->at_ms = clock_mono_ms();
	if ((r == -EINVAL || r == -ETIMEDOUT) && error_due(qname, r)) {
		char clean[256];

		text_clean(clean, sizeof(clean), q.data ? q.data : "", q.len,
			   0);
		if (r == -EINVAL)
			log_error_event("search: invalid query: %s", why);
		else
			log_error_event("search: query took too long: %s",
					clean);
	}
	buf_release(&q);
	if (!r || r == -EINVAL || r == -ETIMEDOUT)
		kept_add(x);
	if (r)
		qres_put(x);
	else
		*out = x;
	return r;
}

/* Whether a name is a whole decimal id (no sign, no leading zero). */
static int parse_id(const char *s, int64_t *out)
{
	int64_t v = 0;
	size_t len = strlen(s);

	if (len == 0 || len > 19 || s[0] == '0')
		return -ENOENT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' ||
		    v > (INT64_MAX - (s[i] - '0')) / 10)
			return -ENOENT;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int child_named(struct driftfs *d, int kind, const char *qname,
		       struct tnode *child, struct tattr *attr)
{
	int r;

	child->kind = kind;
	child->id = 0;
	child->name = strdup(qname);
	if (!child->name)
		return -ENOMEM;
	r = tree_getattr(d, child, attr);
	if (r)
		tree_node_release(child);
	return r;
}

int tree_search_lookup(struct driftfs *d, const struct tnode *dir,
		       const char *name, struct tnode *child,
		       struct tattr *attr)
{
	struct qres *res;
	unsigned what;
	int64_t id;
	int kind, r;

	switch (dir->kind) {
	case T_SEARCH:
		/* Checked, not run (store_search_check): what runs later
		 * fails its own entry. */
		r = run(d, name, SEARCH_CHECK, &res);
		qres_put(res);
		return r ? r : child_named(d, T_SEARCH_QUERY, name, child,
					   attr);
	case T_SEARCH_QUERY:
		for (size_t i = 0; i < N_ELEM(query_entries); i++)
			if (!strcmp(name, query_entries[i].name))
				return child_named(d, query_entries[i].kind,
						   dir->name, child, attr);
		return -ENOENT;
	case T_SEARCH_CONVS:
	case T_SEARCH_CONTACTS:
		if (parse_id(name, &id))
			return -ENOENT;
		what = dir->kind == T_SEARCH_CONVS ? SEARCH_CONVS
						   : SEARCH_CONTACTS;
		kind = dir->kind == T_SEARCH_CONVS ? T_SEARCH_CONV_LINK
						   : T_SEARCH_CONTACT_LINK;
		r = run(d, dir->name, what, &res);
		if (!r && !(what == SEARCH_CONVS
				    ? search_has(res->res.convs,
						 res->res.nconvs, id)
				    : search_has(res->res.contacts,
						 res->res.ncontacts, id)))
			r = -ENOENT;
		qres_put(res);
		if (r)
			return r;
		child->kind = kind;
		child->id = id;
		child->name = NULL;
		return tree_getattr(d, child, attr);
	default:
		return -ENOENT;
	}
}

/* One link entry of a listing. */
static int list_link(struct driftfs *d, int kind, int64_t id, tree_list_cb cb,
		     void *ctx)
{
	struct tnode child = { kind, id, NULL };
	struct buf t = BUF_INIT;
	struct tattr a;
	char name[24];
	int r;

	memset(&a, 0, sizeof(a));
	a.ino = tree_ino(&child);
	a.mode = tree_kind_mode(kind);
	a.nlink = 1;
	r = tree_search_link(d, &child, &t, &a.mtime_ms);
	a.size = (int64_t)t.len;
	buf_release(&t);
	if (r == -ENOENT)
		return 0;	/* gone since the query ran */
	if (r)
		return r;
	snprintf(name, sizeof(name), "%lld", (long long)id);
	return cb(ctx, name, &child, &a);
}

int tree_search_list(struct driftfs *d, const struct tnode *dir,
		     tree_list_cb cb, void *ctx)
{
	struct qres *res;
	int r = 0;

	switch (dir->kind) {
	case T_SEARCH_QUERY:
		for (size_t i = 0; i < N_ELEM(query_entries) && !r; i++) {
			struct tnode child = { query_entries[i].kind, 0,
					       dir->name };
			struct tattr a;

			r = tree_getattr(d, &child, &a);
			r = r ? r : cb(ctx, query_entries[i].name, &child, &a);
		}
		return r;
	case T_SEARCH_CONVS:
		r = run(d, dir->name, SEARCH_CONVS, &res);
		for (size_t i = 0; !r && i < res->res.nconvs; i++)
			r = list_link(d, T_SEARCH_CONV_LINK,
				      res->res.convs[i], cb, ctx);
		qres_put(res);
		return r;
	case T_SEARCH_CONTACTS:
		r = run(d, dir->name, SEARCH_CONTACTS, &res);
		for (size_t i = 0; !r && i < res->res.ncontacts; i++)
			r = list_link(d, T_SEARCH_CONTACT_LINK,
				      res->res.contacts[i], cb, ctx);
		qres_put(res);
		return r;
	default:
		return 0;
	}
}

int tree_search_link(struct driftfs *d, const struct tnode *n,
		     struct buf *out, int64_t *mtime)
{
	struct store_row row;
	int conv = n->kind == T_SEARCH_CONV_LINK;
	int r = store_one(d->store, conv ? Q_CONV : Q_CONTACT, n->id, NULL,
			  &row);

	if (r)
		return r;
	*mtime = row.mtime;
	return buf_printf(out, "../../../%s/%lld",
			  conv ? "conversations" : "contacts", (long long)n->id);
}

int tree_search_hits(struct driftfs *d, const struct tnode *n,
		     struct buf *out)
{
	struct qres *res;
	int r = run(d, n->name, SEARCH_HITS, &res);

	r = r ? r : search_hits_text(&res->res, out);
	qres_put(res);
	return r;
}
