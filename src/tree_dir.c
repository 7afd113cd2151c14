// SPDX-License-Identifier: MIT
/*
 * tree_dir.c: what a directory holds: the fixed entries of the fixed,
 * contact and conversation directories, a name looked up (fetching a
 * missing contact, user or conversation through sync.c), the placeholders
 * of a contact just deleted, and listings. Attributes come from
 * tree_file.c.
 */
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "names.h"
#include "stats.h"
#include "store.h"
#include "sync.h"
#include "tree_int.h"

/* Entries of the fixed directories, in listing order. */
struct fixed_entry {
	int parent;
	const char *name;
	int kind;
};

static const struct fixed_entry fixed[] = {
	{ T_ROOT, "contacts", T_CONTACTS },
	{ T_ROOT, "users", T_USERS },
	{ T_ROOT, "conversations", T_CONVS },
	{ T_ROOT, "playbooks", T_PLAYBOOKS },
	{ T_ROOT, "accounts", T_ACCOUNTS },
	{ T_ROOT, "search", T_SEARCH },
	{ T_ROOT, ".driftfs", T_CTLDIR },
	{ T_CONTACTS, "by-email", T_BY_EMAIL },
	{ T_CONTACTS, "by-external-id", T_BY_EXTID },
	{ T_CONTACTS, "attributes.json", T_ATTRIBUTES },
	{ T_CONTACTS, "unsubscribe", T_UNSUBSCRIBE },
	{ T_CONTACTS, "new", T_CONTACTS_NEW },
	{ T_USERS, "by-email", T_USERS_BY_EMAIL },
	{ T_CONVS, "by-status", T_BY_STATUS },
	{ T_CONVS, "stats.json", T_STATS_JSON },
	{ T_CONVS, "new", T_CONVS_NEW },
	{ T_BY_STATUS, STATUS_NAME_OPEN, T_STATUS_OPEN },
	{ T_BY_STATUS, STATUS_NAME_CLOSED, T_STATUS_CLOSED },
	{ T_BY_STATUS, STATUS_NAME_PENDING, T_STATUS_PENDING },
	{ T_BY_STATUS, STATUS_NAME_BULK, T_STATUS_BULK },
	{ T_CTLDIR, "status", T_CTL_STATUS },
	{ T_CTLDIR, "stats", T_CTL_STATS },
	{ T_CTLDIR, "errors", T_CTL_ERRORS },
	{ T_CTLDIR, "outbox", T_OUTBOX },
	{ T_CTLDIR, "ctl", T_CTL_CTL },
};

/* Entries of each contact's and conversation's directory. */
static const struct fixed_entry object_entries[] = {
	{ T_CONTACT, "contact.json", T_CONTACT_JSON },
	{ T_CONTACT, "tags", T_CONTACT_TAGS },
	{ T_CONTACT, "timeline", T_CONTACT_TIMELINE },
	{ T_CONTACT, "conversations", T_CONTACT_CONVS },
	{ T_CONV, "conversation.json", T_CONV_JSON },
	{ T_CONV, "transcript.txt", T_TRANSCRIPT },
	{ T_CONV, "messages", T_MESSAGES },
	{ T_CONV, "reply", T_REPLY },
	{ T_CONV, "note", T_NOTE },
	{ T_CONV, "attachments", T_ATTACHMENTS },
	{ T_CONV, "contact", T_CONV_CONTACT_LINK },
};

/* Parses a whole decimal id (no sign, no leading zero, > 0). */
static int parse_id(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;

	if (len == 0 || len > 19 || s[0] == '0')
		return -ENOENT;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -ENOENT;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return -ENOENT;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int tree_parse_id(const char *name, int64_t *out)
{
	return parse_id(name, strlen(name), out);
}

/* Parses "<id>.json". */
static int parse_json_id(const char *name, int64_t *out)
{
	size_t n = strlen(name);

	if (n < 6 || strcmp(name + n - 5, ".json"))
		return -ENOENT;
	return parse_id(name, n - 5, out);
}

/* Fills child and attr for a found entry. */
static int found(struct driftfs *d, int kind, int64_t id, const char *name,
		 struct tnode *child, struct tattr *attr)
{
	int r;

	child->kind = kind;
	child->id = id;
	child->name = NULL;
	if (name && tree_kind_named(kind)) {
		child->name = strdup(name);
		if (!child->name)
			return -ENOMEM;
	}
	r = tree_getattr(d, child, attr);
	if (r)
		tree_node_release(child);
	return r;
}

static int lookup_fixed(const struct fixed_entry *tab, size_t n, int parent,
			const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (tab[i].parent == parent && !strcmp(tab[i].name, name))
			return tab[i].kind;
	return 0;
}

/* Looks a name-keyed contact up, asking the API when the cache misses. */
static int lookup_contact_name(struct driftfs *d, int kind, const char *name,
			       struct tnode *child, struct tattr *attr)
{
	enum store_query q = kind == T_EMAIL_LINK ? Q_CONTACT_BY_EMAIL
						  : Q_CONTACT_BY_EXTID;
	struct buf key = BUF_INIT;
	struct store_row row;
	int r = store_one(d->store, q, 0, name, &row);

	if (r == -ENOENT && !names_decode(name, &key) && key.len) {
		r = kind == T_EMAIL_LINK
			    ? sync_lookup_email(d->sync, key.data)
			    : sync_lookup_external_id(d->sync, key.data);
		if (!r)
			r = store_one(d->store, q, 0, name, &row);
	}
	buf_release(&key);
	return r ? r : found(d, kind, 0, name, child, attr);
}

int tree_lookup(struct driftfs *d, const struct tnode *dir, const char *name,
		struct tnode *child, struct tattr *attr)
{
	struct store_row row;
	int64_t id;
	int kind, r;

	memset(child, 0, sizeof(*child));
	if (tree_access(dir->kind) != TA_DIR)
		return -ENOTDIR;
	if (strlen(name) > NAMES_MAX)
		return -ENAMETOOLONG;
	if (dir->kind < T__FIXED_END) {
		kind = lookup_fixed(fixed, N_ELEM(fixed), dir->kind, name);
		if (kind)
			return found(d, kind, 0, NULL, child, attr);
	} else {
		kind = lookup_fixed(object_entries, N_ELEM(object_entries),
				    dir->kind, name);
		if (kind == T_CONV_CONTACT_LINK) {
			r = store_one(d->store, Q_CONV, dir->id, NULL, &row);
			if (r || row.id2 <= 0)
				return r ? r : -ENOENT;
		}
		if (kind)
			return found(d, kind, dir->id, NULL, child, attr);
	}

	switch (dir->kind) {
	case T_CONTACTS:
		if (parse_id(name, strlen(name), &id))
			return -ENOENT;
		r = store_one(d->store, Q_CONTACT, id, NULL, &row);
		if (r == -ENOENT)
			r = sync_fetch_contact(d->sync, id);
		else
			stats_add("cache hits", 1);
		return r ? r : found(d, T_CONTACT, id, NULL, child, attr);
	case T_USERS:
		if (parse_json_id(name, &id))
			return -ENOENT;
		r = store_one(d->store, Q_USER, id, NULL, &row);
		if (r == -ENOENT)
			r = sync_fetch_user(d->sync, id);
		return r ? r : found(d, T_USER_JSON, id, NULL, child, attr);
	case T_CONVS:
		if (parse_id(name, strlen(name), &id))
			return -ENOENT;
		r = store_one(d->store, Q_CONV, id, NULL, &row);
		if (r == -ENOENT)
			r = sync_fetch_conversation(d->sync, id);
		else
			stats_add("cache hits", 1);
		return r ? r : found(d, T_CONV, id, NULL, child, attr);
	case T_BY_EMAIL:
		return lookup_contact_name(d, T_EMAIL_LINK, name, child, attr);
	case T_BY_EXTID:
		return lookup_contact_name(d, T_EXTID_LINK, name, child, attr);
	case T_USERS_BY_EMAIL:
		r = store_one(d->store, Q_USER_BY_EMAIL, 0, name, &row);
		return r ? r : found(d, T_USER_EMAIL_LINK, 0, name, child,
				     attr);
	case T_STATUS_OPEN:
	case T_STATUS_CLOSED:
	case T_STATUS_PENDING:
	case T_STATUS_BULK:
		if (parse_id(name, strlen(name), &id))
			return -ENOENT;
		r = store_one(d->store, Q_CONV, id, NULL, &row);
		if (!r && (!row.text ||
			   strcmp(row.text, tree_status_names[dir->kind -
							      T_STATUS_OPEN])))
			r = -ENOENT;
		return r ? r : found(d, T_STATUS_LINK, id, NULL, child, attr);
	case T_CONTACT_CONVS:
		if (parse_id(name, strlen(name), &id))
			return -ENOENT;
		r = store_one(d->store, Q_CONV, id, NULL, &row);
		if (!r && row.id2 != dir->id)
			r = -ENOENT;
		return r ? r : found(d, T_CONTACT_CONV_LINK, id, NULL, child,
				     attr);
	case T_MESSAGES:
		if (!strcmp(name, "new"))
			return found(d, T_MESSAGES_NEW, dir->id, NULL, child,
				     attr);
		if (parse_json_id(name, &id))
			return -ENOENT;
		r = store_one(d->store, Q_MESSAGE, id, NULL, &row);
		if (!r && row.id2 != dir->id)
			r = -ENOENT;
		return r ? r : found(d, T_MESSAGE_JSON, id, NULL, child, attr);
	case T_ATTACHMENTS: {
		size_t digits = strspn(name, "0123456789");

		if (name[digits] != '-' || parse_id(name, digits, &id))
			return -ENOENT;
		r = store_one(d->store, Q_ATTACHMENT, id, NULL, &row);
		if (!r && (row.id2 != dir->id || !row.name ||
			   strcmp(row.name, name)))
			r = -ENOENT;
		return r ? r : found(d, T_ATTACHMENT, id, NULL, child, attr);
	}
	case T_PLAYBOOKS:
		if (parse_json_id(name, &id))
			return -ENOENT;
		r = store_one(d->store, Q_PLAYBOOK, id, NULL, &row);
		return r ? r : found(d, T_PLAYBOOK_JSON, id, NULL, child,
				     attr);
	case T_ACCOUNTS:
		r = store_one(d->store, Q_ACCOUNT_BY_NAME, 0, name, &row);
		return r ? r : found(d, T_ACCOUNT_JSON, 0, name, child, attr);
	case T_OUTBOX:
		if (parse_json_id(name, &id))
			return -ENOENT;
		return found(d, T_OUTBOX_ITEM, id, NULL, child, attr);
	case T_SEARCH:
	case T_SEARCH_QUERY:
	case T_SEARCH_CONVS:
	case T_SEARCH_CONTACTS:
		return tree_search_lookup(d, dir, name, child, attr);
	default:
		return -ENOENT;
	}
}

int tree_lookup_deleted(const struct tnode *dir, const char *name,
			struct tnode *child, struct tattr *attr)
{
	int64_t id = 0;
	int kind = 0;

	memset(child, 0, sizeof(*child));
	memset(attr, 0, sizeof(*attr));
	if (dir->kind == T_CONTACTS && !parse_id(name, strlen(name), &id))
		kind = T_CONTACT;
	else if (dir->kind == T_CONTACT)
		kind = lookup_fixed(object_entries, N_ELEM(object_entries),
				    T_CONTACT, name);
	else if (dir->kind == T_CONTACT_CONVS &&
		 !parse_id(name, strlen(name), &id))
		kind = T_CONTACT_CONV_LINK;
	if (!kind)
		return -ENOENT;
	child->kind = kind;
	child->id = kind == T_CONTACT_CONV_LINK ? id : (id ? id : dir->id);
	tree_attr_deleted(child, attr);
	return 0;
}

void tree_attr_deleted(const struct tnode *n, struct tattr *attr)
{
	memset(attr, 0, sizeof(*attr));
	attr->ino = tree_ino(n);
	attr->mode = tree_kind_mode(n->kind);
	attr->nlink = 1;
}

/* State of one listing: how rows become entries. */
struct list_ctx {
	struct driftfs *d;
	tree_list_cb cb;
	void *ctx;
	int kind;		/* kind of the entries */
	const char *suffix;	/* appended to numeric names (".json") */
	mode_t mode;
};

/* Emits one row of a listing with attributes built from the row itself. */
static int list_row(void *arg, const struct store_row *row)
{
	struct list_ctx *l = arg;
	struct tnode child = { l->kind, row->id, NULL };
	struct tattr a;
	char name[NAMES_MAX + 1];
	int r;

	if (row->name)
		snprintf(name, sizeof(name), "%s", row->name);
	else
		snprintf(name, sizeof(name), "%lld%s", (long long)row->id,
			 l->suffix ? l->suffix : "");
	if (tree_kind_named(l->kind)) {
		if (!row->name)
			return 0;
		child.name = name;
		child.id = 0;
	}
	memset(&a, 0, sizeof(a));
	a.ino = tree_ino(&child);
	a.mode = l->mode;
	a.nlink = tree_kind_nlink(l->kind);
	a.mtime_ms = row->mtime > 0 ? row->mtime : 0;
	a.size = row->size;
	if (S_ISLNK(a.mode)) {
		/* Links are small: their size is their target's length. */
		struct buf t = BUF_INIT;

		r = tree_link_target(l->d, &child, &t, &a.mtime_ms);
		a.size = (int64_t)t.len;
		buf_release(&t);
		if (r)
			return 0;
	}
	return l->cb(l->ctx, name, &child, &a);
}

struct outbox_list {
	struct driftfs *d;
	tree_list_cb cb;
	void *ctx;
};

static int list_outbox_row(void *arg, const struct outbox_row *row)
{
	struct outbox_list *l = arg;
	struct tnode child = { T_OUTBOX_ITEM, row->seq, NULL };
	struct buf b = BUF_INIT;
	struct tattr a;
	char name[32];
	int r;

	memset(&a, 0, sizeof(a));
	a.ino = tree_ino(&child);
	a.mode = tree_kind_mode(T_OUTBOX_ITEM);
	a.nlink = 1;
	a.mtime_ms = row->created;
	r = tree_render_outbox_row(row, &b);
	a.size = (int64_t)b.len;
	buf_release(&b);
	snprintf(name, sizeof(name), "%lld.json", (long long)row->seq);
	return r ? r : l->cb(l->ctx, name, &child, &a);
}

static int list_query(struct driftfs *d, enum store_query q, int64_t arg,
		      const char *sarg, int kind, const char *suffix,
		      tree_list_cb cb, void *ctx)
{
	struct list_ctx l = {d, cb, ctx, kind, suffix, tree_kind_mode(kind)};

	return store_each(d->store, q, arg, sarg, list_row, &l);
}

static int list_fixed(struct driftfs *d, const struct fixed_entry *tab,
		      size_t n, const struct tnode *dir, tree_list_cb cb,
		      void *ctx)
{
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		struct tnode child = { tab[i].kind, dir->id, NULL };
		struct tattr a;

		if (tab[i].parent != dir->kind)
			continue;
		r = tree_getattr(d, &child, &a);
		if (r == -ENOENT) {
			r = 0;	/* e.g. a conversation without a contact */
			continue;
		}
		r = r ? r : cb(ctx, tab[i].name, &child, &a);
	}
	return r;
}

int tree_list(struct driftfs *d, const struct tnode *dir, tree_list_cb cb,
	      void *ctx)
{
	int r;

	if (tree_access(dir->kind) != TA_DIR)
		return -ENOTDIR;
	if (dir->kind < T__FIXED_END)
		r = list_fixed(d, fixed, N_ELEM(fixed), dir, cb, ctx);
	else
		r = list_fixed(d, object_entries, N_ELEM(object_entries), dir,
			       cb, ctx);
	if (r)
		return r;

	switch (dir->kind) {
	case T_CONTACTS:
		return list_query(d, Q_CONTACTS, 0, NULL, T_CONTACT, NULL, cb,
				  ctx);
	case T_USERS:
		return list_query(d, Q_USERS, 0, NULL, T_USER_JSON, ".json",
				  cb, ctx);
	case T_CONVS:
		return list_query(d, Q_CONVS, 0, NULL, T_CONV, NULL, cb, ctx);
	case T_BY_EMAIL:
		return list_query(d, Q_EMAIL_NAMES, 0, NULL, T_EMAIL_LINK,
				  NULL, cb, ctx);
	case T_BY_EXTID:
		return list_query(d, Q_EXTID_NAMES, 0, NULL, T_EXTID_LINK,
				  NULL, cb, ctx);
	case T_USERS_BY_EMAIL:
		return list_query(d, Q_USER_EMAIL_NAMES, 0, NULL,
				  T_USER_EMAIL_LINK, NULL, cb, ctx);
	case T_STATUS_OPEN:
	case T_STATUS_CLOSED:
	case T_STATUS_PENDING:
	case T_STATUS_BULK:
		return list_query(d, Q_CONVS_BY_STATUS, 0,
				  tree_status_names[dir->kind - T_STATUS_OPEN],
				  T_STATUS_LINK, NULL, cb, ctx);
	case T_CONTACT_CONVS:
		return list_query(d, Q_CONTACT_CONVS, dir->id, NULL,
				  T_CONTACT_CONV_LINK, NULL, cb, ctx);
	case T_MESSAGES: {
		struct tnode child = { T_MESSAGES_NEW, dir->id, NULL };
		struct tattr a;

		r = list_query(d, Q_MESSAGES, dir->id, NULL, T_MESSAGE_JSON,
			       ".json", cb, ctx);
		r = r ? r : tree_getattr(d, &child, &a);
		return r ? r : cb(ctx, "new", &child, &a);
	}
	case T_ATTACHMENTS:
		return list_query(d, Q_ATTACHMENTS, dir->id, NULL,
				  T_ATTACHMENT, NULL, cb, ctx);
	case T_PLAYBOOKS:
		return list_query(d, Q_PLAYBOOKS, 0, NULL, T_PLAYBOOK_JSON,
				  ".json", cb, ctx);
	case T_ACCOUNTS:
		return list_query(d, Q_ACCOUNTS, 0, NULL, T_ACCOUNT_JSON, NULL,
				  cb, ctx);
	case T_OUTBOX: {
		struct outbox_list ol = { d, cb, ctx };

		return store_outbox_each(d->store, list_outbox_row, &ol);
	}
	case T_SEARCH_QUERY:
	case T_SEARCH_CONVS:
	case T_SEARCH_CONTACTS:
		return tree_search_list(d, dir, cb, ctx);
	default:
		return 0;	/* search/ too: it lists as empty */
	}
}
