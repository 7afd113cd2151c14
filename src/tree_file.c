// SPDX-License-Identifier: MIT
/*
 * tree_file.c: what a node looks like, from the store: its attributes
 * (tree_getattr), a file's bytes (tree_content, tree_content_fd), a link's
 * target, and the files generated on the fly (.driftfs/, stats.json, the
 * outbox's items). Which names a directory holds is tree_dir.c's.
 */
#include "tree.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "json.h"
#include "names.h"
#include "store.h"
#include "tree_int.h"

/* The time shown on the fixed directories: the cache's last change. */
static int64_t fixed_mtime(struct driftfs *d)
{
	int64_t t = store_meta_i64(d->store, "changed_at");

	return t ? t : d->started_ms;
}

/*
 * The target of a link node, and the time it shows: that of the object it
 * points to, so listings and stat agree.
 */
int tree_link_target(struct driftfs *d, const struct tnode *n, struct buf *out,
		     int64_t *mtime)
{
	struct store_row row;
	int r;

	switch (n->kind) {
	case T_CONTACT_CONV_LINK:
	case T_STATUS_LINK:
		r = store_one(d->store, Q_CONV, n->id, NULL, &row);
		if (r)
			return r;
		*mtime = row.mtime;
		if (n->kind == T_STATUS_LINK)
			return buf_printf(out, "../../%lld", (long long)n->id);
		return buf_printf(out, "../../../conversations/%lld",
				  (long long)n->id);
	case T_EMAIL_LINK:
	case T_EXTID_LINK:
		r = store_one(d->store,
			      n->kind == T_EMAIL_LINK ? Q_CONTACT_BY_EMAIL
						      : Q_CONTACT_BY_EXTID,
			      0, n->name, &row);
		if (r)
			return r;
		*mtime = row.mtime;
		return buf_printf(out, "../%lld", (long long)row.id);
	case T_USER_EMAIL_LINK:
		r = store_one(d->store, Q_USER_BY_EMAIL, 0, n->name, &row);
		if (r)
			return r;
		*mtime = row.mtime;
		return buf_printf(out, "../%lld.json", (long long)row.id);
	case T_CONV_CONTACT_LINK:
		r = store_one(d->store, Q_CONV, n->id, NULL, &row);
		if (!r && row.id2 <= 0)
			r = -ENOENT;
		if (r)
			return r;
		*mtime = row.mtime;
		return buf_printf(out, "../../contacts/%lld",
				  (long long)row.id2);
	case T_SEARCH_CONV_LINK:
	case T_SEARCH_CONTACT_LINK:
		return tree_search_link(d, n, out, mtime);
	default:
		return -EINVAL;
	}
}

int tree_readlink(struct driftfs *d, const struct tnode *n, struct buf *out)
{
	int64_t mtime;

	if (tree_access(n->kind) != TA_LINK)
		return -EINVAL;
	return tree_link_target(d, n, out, &mtime);
}

static int stats_json(struct driftfs *d, struct buf *out, int64_t *mtime);
static int outbox_item(struct driftfs *d, int64_t seq, struct buf *out,
		       int64_t *mtime);
static int created_id(struct driftfs *d, const struct tnode *n,
		      struct buf *out);

static int generated(struct driftfs *d, int kind, struct buf *out)
{
	switch (kind) {
	case T_CTL_STATUS:
		return ctl_status(d, out);
	case T_CTL_STATS:
		return ctl_stats(d, out);
	case T_CTL_ERRORS:
		return ctl_errors(d, out);
	case T_STATS_JSON:
		return stats_json(d, out, NULL);
	default:
		return 0;
	}
}

/* .driftfs/outbox/<seq>.json: what a pending write will send, and why it
 * has not gone yet. */
int tree_render_outbox_row(const struct outbox_row *row, struct buf *out)
{
	cJSON *o = cJSON_CreateObject(), *body;
	int r;

	body = row->body.len ? json_parse(row->body.data, row->body.len) : NULL;
	if (!o) {
		cJSON_Delete(body);
		return -ENOMEM;
	}
	cJSON_AddNumberToObject(o, "seq", (double)row->seq);
	cJSON_AddNumberToObject(o, "created", (double)row->created);
	cJSON_AddStringToObject(o, "path", row->path);
	cJSON_AddStringToObject(o, "kind", row->kind);
	cJSON_AddStringToObject(o, "method", row->method);
	cJSON_AddStringToObject(o, "apiPath", row->api_path);
	if (row->object && *row->object)
		cJSON_AddStringToObject(o, "object", row->object);
	if (body)
		cJSON_AddItemToObject(o, "body", body);
	else if (row->body.len)
		cJSON_AddStringToObject(o, "body", row->body.data);
	cJSON_AddStringToObject(o, "state", row->state);
	cJSON_AddNumberToObject(o, "attempts", (double)row->attempts);
	if (row->last_error)
		cJSON_AddStringToObject(o, "lastError", row->last_error);
	r = json_render(o, out);
	cJSON_Delete(o);
	return r;
}

static int outbox_item(struct driftfs *d, int64_t seq, struct buf *out,
		       int64_t *mtime)
{
	struct outbox_row row;
	int r = store_outbox_get(d->store, seq, &row);

	if (r)
		return r;
	r = tree_render_outbox_row(&row, out);
	if (mtime)
		*mtime = row.created;
	store_outbox_row_release(&row);
	return r;
}

/* The single-row query and argument behind a stored file. */
static int file_query(const struct tnode *n, enum store_query *q)
{
	switch (n->kind) {
	case T_CONTACT_JSON:
		*q = Q_CONTACT;
		return 0;
	case T_CONTACT_TAGS:
		*q = Q_CONTACT_TAGS;
		return 0;
	case T_USER_JSON:
		*q = Q_USER;
		return 0;
	case T_CONV_JSON:
		*q = Q_CONV;
		return 0;
	case T_TRANSCRIPT:
		*q = Q_TRANSCRIPT;
		return 0;
	case T_MESSAGE_JSON:
		*q = Q_MESSAGE;
		return 0;
	case T_ATTACHMENT:
		*q = Q_ATTACHMENT;
		return 0;
	case T_PLAYBOOK_JSON:
		*q = Q_PLAYBOOK;
		return 0;
	case T_ACCOUNT_JSON:
		*q = Q_ACCOUNT_BY_NAME;
		return 0;
	default:
		return -ENOENT;
	}
}

int tree_getattr(struct driftfs *d, const struct tnode *n, struct tattr *a)
{
	struct store_row row;
	enum store_query q;
	struct buf tmp = BUF_INIT;
	int r = 0;

	memset(a, 0, sizeof(*a));
	a->ino = tree_ino(n);
	a->mode = tree_kind_mode(n->kind);
	a->nlink = tree_kind_nlink(n->kind);

	if (n->kind == T_OUTBOX_ITEM) {
		r = outbox_item(d, n->id, &tmp, &a->mtime_ms);
		a->size = (int64_t)tmp.len;
		goto out;
	}
	if (n->kind == T_CONTACTS_NEW || n->kind == T_CONVS_NEW ||
	    n->kind == T_MESSAGES_NEW) {
		r = created_id(d, n, &tmp);
		a->size = (int64_t)tmp.len;
		if (n->kind == T_MESSAGES_NEW) {
			r = store_one(d->store, Q_CONV, n->id, NULL, &row);
			a->mtime_ms = row.mtime;
		} else {
			a->mtime_ms = fixed_mtime(d);
		}
		goto out;
	}
	if (n->kind < T__FIXED_END) {
		a->mtime_ms = fixed_mtime(d);
		if (n->kind == T_ATTRIBUTES) {
			r = store_meta_get(d->store, "attributes", &tmp);
			a->size = r ? 3 : (int64_t)tmp.len;
			r = 0;
		} else if (n->kind == T_STATS_JSON) {
			r = stats_json(d, &tmp, &a->mtime_ms);
			a->size = (int64_t)tmp.len;
		} else if (tree_access(n->kind) == TA_DYNAMIC) {
			r = generated(d, n->kind, &tmp);
			a->size = (int64_t)tmp.len;
			a->mtime_ms = ctl_mtime(d);
		}
		goto out;
	}
	if (!file_query(n, &q)) {
		r = store_one(d->store, q, n->id, n->name, &row);
		a->size = row.size;
		a->mtime_ms = row.mtime;
		goto out;
	}
	switch (n->kind) {
	case T_CONTACT:
	case T_CONTACT_CONVS:
	case T_CONTACT_TIMELINE:
		r = store_one(d->store, Q_CONTACT, n->id, NULL, &row);
		a->mtime_ms = row.mtime;
		break;
	case T_CONV:
	case T_MESSAGES:
	case T_ATTACHMENTS:
	case T_MESSAGES_NEW:
	case T_REPLY:
	case T_NOTE:
		r = store_one(d->store, Q_CONV, n->id, NULL, &row);
		a->mtime_ms = row.mtime;
		break;
	case T_SEARCH_QUERY:
	case T_SEARCH_CONVS:
	case T_SEARCH_CONTACTS:
	case T_SEARCH_HITS:
		a->mtime_ms = fixed_mtime(d);
		if (n->kind == T_SEARCH_HITS) {
			r = tree_search_hits(d, n, &tmp);
			a->size = (int64_t)tmp.len;
		}
		break;
	default:
		if (tree_access(n->kind) == TA_LINK) {
			r = tree_link_target(d, n, &tmp, &a->mtime_ms);
			a->size = (int64_t)tmp.len;
		} else {
			r = -ENOENT;
		}
	}
out:
	if (a->mtime_ms <= 0)
		a->mtime_ms = 0;
	if (!r && tree_access(n->kind) == TA_DYNAMIC)
		a->mtime_ns = (uint32_t)(names_hash64(tmp.data, tmp.len, 0) %
					 1000000);
	buf_release(&tmp);
	return r;
}

/* A "new" file reads as the id of the last object created through it. */
static int created_id(struct driftfs *d, const struct tnode *n,
		      struct buf *out)
{
	char key[64];
	int64_t id;

	if (n->kind == T_CONTACTS_NEW)
		snprintf(key, sizeof(key), "created:contact");
	else if (n->kind == T_CONVS_NEW)
		snprintf(key, sizeof(key), "created:conversation");
	else
		snprintf(key, sizeof(key), "created:message:%lld",
			 (long long)n->id);
	id = store_meta_i64(d->store, key);
	return id ? buf_printf(out, "%lld\n", (long long)id) : 0;
}

int tree_content(struct driftfs *d, const struct tnode *n, struct buf *out)
{
	enum store_query q;
	int r;

	if (!file_query(n, &q))
		return store_blob(d->store, q, n->id, n->name, out);
	switch (n->kind) {
	case T_CONTACTS_NEW:
	case T_CONVS_NEW:
	case T_MESSAGES_NEW:
		return created_id(d, n, out);
	case T_OUTBOX_ITEM:
		return outbox_item(d, n->id, out, NULL);
	case T_ATTRIBUTES:
		r = store_meta_get(d->store, "attributes", out);
		return r == -ENOENT ? buf_adds(out, "{}\n") : r;
	case T_SEARCH_HITS:
		return tree_search_hits(d, n, out);
	default:
		if (tree_access(n->kind) == TA_DYNAMIC)
			return generated(d, n->kind, out);
		return 0;
	}
}

int tree_content_fd(struct driftfs *d, const struct tnode *n)
{
	if (n->kind != T_ATTACHMENT)
		return -ENOTSUP;
	return store_attachment_open(d->store, n->id);
}

struct status_counts {
	int64_t n[N_ELEM(tree_status_names)];
	int64_t mtime;
};

static int count_status(void *ctx, const struct store_row *row)
{
	struct status_counts *c = ctx;

	for (size_t i = 0; i < N_ELEM(tree_status_names); i++)
		if (row->name && !strcmp(row->name, tree_status_names[i]))
			c->n[i] = row->id;
	if (row->mtime > c->mtime)
		c->mtime = row->mtime;
	return 0;
}

/* Counts by status, computed from the cache (GET /conversations/stats has
 * no documented shape, and the cache is what the tree shows anyway). */
static int stats_json(struct driftfs *d, struct buf *out, int64_t *mtime)
{
	struct status_counts c = { { 0 }, 0 };
	cJSON *o;
	int64_t total = 0;
	int r;

	r = store_each(d->store, Q_STATUS_COUNTS, 0, NULL, count_status, &c);
	if (r)
		return r;
	o = cJSON_CreateObject();
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < N_ELEM(tree_status_names); i++) {
		cJSON_AddNumberToObject(o, tree_status_names[i],
					(double)c.n[i]);
		total += c.n[i];
	}
	cJSON_AddNumberToObject(o, "total", (double)total);
	r = json_render(o, out);
	cJSON_Delete(o);
	if (mtime)
		*mtime = c.mtime ? c.mtime : fixed_mtime(d);
	return r;
}
