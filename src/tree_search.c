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
 * (the same link under any query). Nothing is kept between calls: each
 * lookup, listing and hits.txt runs its query again (a few ms), and
 * src/fs/ gives these nodes short cache timeouts (tree_search_kind).
 */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "names.h"
#include "search.h"
#include "store.h"
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

/*
 * Runs the query that the entry name qname holds. An invalid one is
 * -EINVAL, with SQLite's reason in .driftfs/errors (the request's
 * context names the path).
 */
static int run(struct driftfs *d, const char *qname, unsigned what,
	       struct search_result *res)
{
	struct buf q = BUF_INIT;
	char why[SEARCH_WHY_MAX] = "";
	int r;

	memset(res, 0, sizeof(*res));
	r = names_decode(qname, &q);
	if (r)
		return r == -ENOMEM ? r : -ENOENT;
	r = search_run(d->store, q.data ? q.data : "", what, 0, res, why,
		       sizeof(why));
	if (r == -EINVAL)
		log_error_event("search: invalid query: %s", why);
	buf_release(&q);
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
	struct search_result res;
	unsigned what;
	int64_t id;
	int kind, r;

	switch (dir->kind) {
	case T_SEARCH:
		/* Checked by running it (the contacts' table is the
		 * smallest; the syntax is the same for all three). */
		r = run(d, name, SEARCH_CONTACTS, &res);
		search_result_release(&res);
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
				    ? search_has(res.convs, res.nconvs, id)
				    : search_has(res.contacts, res.ncontacts,
						 id)))
			r = -ENOENT;
		search_result_release(&res);
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
	struct search_result res;
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
		for (size_t i = 0; i < res.nconvs && !r; i++)
			r = list_link(d, T_SEARCH_CONV_LINK, res.convs[i], cb,
				      ctx);
		search_result_release(&res);
		return r;
	case T_SEARCH_CONTACTS:
		r = run(d, dir->name, SEARCH_CONTACTS, &res);
		for (size_t i = 0; i < res.ncontacts && !r; i++)
			r = list_link(d, T_SEARCH_CONTACT_LINK,
				      res.contacts[i], cb, ctx);
		search_result_release(&res);
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
	struct search_result res;
	int r = run(d, n->name, SEARCH_HITS, &res);

	r = r ? r : search_hits_text(&res, out);
	search_result_release(&res);
	return r;
}
