// SPDX-License-Identifier: MIT
/* tree.c: the tree of DESIGN.md §2: names, inodes, attributes, bytes. */
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
#include "stats.h"
#include "store.h"
#include "sync.h"

#define PAYLOAD_BITS 56
#define PAYLOAD_MASK ((UINT64_C(1) << PAYLOAD_BITS) - 1)
#define HASHED_BIT (UINT64_C(1) << (PAYLOAD_BITS - 1))

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
	{ T_BY_STATUS, "open", T_STATUS_OPEN },
	{ T_BY_STATUS, "closed", T_STATUS_CLOSED },
	{ T_BY_STATUS, "pending", T_STATUS_PENDING },
	{ T_BY_STATUS, "bulk_sent", T_STATUS_BULK },
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

#define N_ELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const status_names[] = { "open", "closed", "pending",
					    "bulk_sent" };

const char *tree_fixed_path(int kind)
{
	static const char *const paths[T__FIXED_END] = {
		[T_ROOT] = "",
		[T_CONTACTS] = "contacts",
		[T_USERS] = "users",
		[T_CONVS] = "conversations",
		[T_PLAYBOOKS] = "playbooks",
		[T_ACCOUNTS] = "accounts",
		[T_CTLDIR] = ".driftfs",
		[T_BY_EMAIL] = "contacts/by-email",
		[T_BY_EXTID] = "contacts/by-external-id",
		[T_ATTRIBUTES] = "contacts/attributes.json",
		[T_UNSUBSCRIBE] = "contacts/unsubscribe",
		[T_CONTACTS_NEW] = "contacts/new",
		[T_USERS_BY_EMAIL] = "users/by-email",
		[T_BY_STATUS] = "conversations/by-status",
		[T_STATUS_OPEN] = "conversations/by-status/open",
		[T_STATUS_CLOSED] = "conversations/by-status/closed",
		[T_STATUS_PENDING] = "conversations/by-status/pending",
		[T_STATUS_BULK] = "conversations/by-status/bulk_sent",
		[T_STATS_JSON] = "conversations/stats.json",
		[T_CONVS_NEW] = "conversations/new",
		[T_CTL_STATUS] = ".driftfs/status",
		[T_CTL_STATS] = ".driftfs/stats",
		[T_CTL_ERRORS] = ".driftfs/errors",
		[T_OUTBOX] = ".driftfs/outbox",
		[T_CTL_CTL] = ".driftfs/ctl",
	};

	return kind > 0 && kind < T__FIXED_END && paths[kind] ? paths[kind]
							       : "?";
}

int tree_kind_named(int kind)
{
	return kind == T_EMAIL_LINK || kind == T_EXTID_LINK ||
	       kind == T_USER_EMAIL_LINK || kind == T_ACCOUNT_JSON;
}

uint64_t tree_ino(const struct tnode *n)
{
	uint64_t payload;

	if (n->kind < T__FIXED_END)
		return (uint64_t)n->kind;
	if (tree_kind_named(n->kind))
		payload = HASHED_BIT |
			  (names_hash64(n->name, strlen(n->name), 0) &
			   (HASHED_BIT - 1));
	else if (n->id > 0 && (uint64_t)n->id < HASHED_BIT)
		payload = (uint64_t)n->id;
	else
		payload = HASHED_BIT | (names_hash64(&n->id, sizeof(n->id), 1) &
					(HASHED_BIT - 1));
	return ((uint64_t)n->kind << PAYLOAD_BITS) | (payload & PAYLOAD_MASK);
}

enum tree_access tree_access(int kind)
{
	switch (kind) {
	case T_ROOT:
	case T_CONTACTS:
	case T_USERS:
	case T_CONVS:
	case T_PLAYBOOKS:
	case T_ACCOUNTS:
	case T_CTLDIR:
	case T_BY_EMAIL:
	case T_BY_EXTID:
	case T_USERS_BY_EMAIL:
	case T_BY_STATUS:
	case T_STATUS_OPEN:
	case T_STATUS_CLOSED:
	case T_STATUS_PENDING:
	case T_STATUS_BULK:
	case T_OUTBOX:
	case T_CONTACT:
	case T_CONTACT_CONVS:
	case T_CONV:
	case T_MESSAGES:
	case T_ATTACHMENTS:
		return TA_DIR;
	case T_CONTACT_CONV_LINK:
	case T_EMAIL_LINK:
	case T_EXTID_LINK:
	case T_USER_EMAIL_LINK:
	case T_CONV_CONTACT_LINK:
	case T_STATUS_LINK:
		return TA_LINK;
	case T_CONTACT_JSON:
	case T_CONTACT_TAGS:
	case T_USER_JSON:
	case T_MESSAGE_JSON:
	case T_ACCOUNT_JSON:
		return TA_RW;
	case T_UNSUBSCRIBE:
	case T_CONTACTS_NEW:
	case T_CONVS_NEW:
	case T_CONTACT_TIMELINE:
	case T_MESSAGES_NEW:
	case T_REPLY:
	case T_NOTE:
		return TA_WO;
	case T_CTL_STATUS:
	case T_CTL_STATS:
	case T_CTL_ERRORS:
	case T_STATS_JSON:
	case T_OUTBOX_ITEM:
		return TA_DYNAMIC;
	case T_CTL_CTL:
		return TA_CTL;
	default:
		return TA_RO;
	}
}

static mode_t kind_mode(int kind)
{
	switch (tree_access(kind)) {
	case TA_DIR:
		return S_IFDIR | 0755;
	case TA_LINK:
		return S_IFLNK | 0777;
	case TA_RW:
		return S_IFREG | 0644;
	case TA_WO:
	case TA_CTL:
		/*
		 * Readable (and empty) although only writes mean anything:
		 * a 0200 file makes every "grep -r" and "rsync -a" of the
		 * mount fail with EACCES.
		 */
		return S_IFREG | 0644;
	default:
		return S_IFREG | 0444;
	}
}

/*
 * Directories holding subdirectories say nlink 1 ("not counted"), as btrfs
 * does: 2 would tell find(1) and others that there are none, and counting
 * them would cost a query per stat.
 */
static unsigned kind_nlink(int kind)
{
	switch (kind) {
	case T_ROOT:
	case T_CONTACTS:
	case T_USERS:
	case T_CONVS:
	case T_CTLDIR:
	case T_BY_STATUS:
	case T_CONTACT:
	case T_CONV:
		return 1;
	default:
		return tree_access(kind) == TA_DIR ? 2 : 1;
	}
}

void tree_node_release(struct tnode *n)
{
	free(n->name);
	n->name = NULL;
}

int tree_node_copy(struct tnode *dst, const struct tnode *src)
{
	*dst = *src;
	dst->name = NULL;
	if (src->name) {
		dst->name = strdup(src->name);
		if (!dst->name)
			return -ENOMEM;
	}
	return 0;
}

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

/* Parses "<id>.json". */
static int parse_json_id(const char *name, int64_t *out)
{
	size_t n = strlen(name);

	if (n < 6 || strcmp(name + n - 5, ".json"))
		return -ENOENT;
	return parse_id(name, n - 5, out);
}

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
static int link_target(struct driftfs *d, const struct tnode *n,
		       struct buf *out, int64_t *mtime)
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
	default:
		return -EINVAL;
	}
}

int tree_readlink(struct driftfs *d, const struct tnode *n, struct buf *out)
{
	int64_t mtime;

	if (tree_access(n->kind) != TA_LINK)
		return -EINVAL;
	return link_target(d, n, out, &mtime);
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
static int render_outbox_row(const struct outbox_row *row, struct buf *out)
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
	r = render_outbox_row(&row, out);
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
	a->mode = kind_mode(n->kind);
	a->nlink = kind_nlink(n->kind);

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
	default:
		if (tree_access(n->kind) == TA_LINK) {
			r = link_target(d, n, &tmp, &a->mtime_ms);
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
	int64_t n[N_ELEM(status_names)];
	int64_t mtime;
};

static int count_status(void *ctx, const struct store_row *row)
{
	struct status_counts *c = ctx;

	for (size_t i = 0; i < N_ELEM(status_names); i++)
		if (row->name && !strcmp(row->name, status_names[i]))
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
	for (size_t i = 0; i < N_ELEM(status_names); i++) {
		cJSON_AddNumberToObject(o, status_names[i], (double)c.n[i]);
		total += c.n[i];
	}
	cJSON_AddNumberToObject(o, "total", (double)total);
	r = json_render(o, out);
	cJSON_Delete(o);
	if (mtime)
		*mtime = c.mtime ? c.mtime : fixed_mtime(d);
	return r;
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
			   strcmp(row.text,
				  status_names[dir->kind - T_STATUS_OPEN])))
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
	attr->mode = kind_mode(n->kind);
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
	a.nlink = kind_nlink(l->kind);
	a.mtime_ms = row->mtime > 0 ? row->mtime : 0;
	a.size = row->size;
	if (S_ISLNK(a.mode)) {
		/* Links are small: their size is their target's length. */
		struct buf t = BUF_INIT;

		r = link_target(l->d, &child, &t, &a.mtime_ms);
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
	a.mode = kind_mode(T_OUTBOX_ITEM);
	a.nlink = 1;
	a.mtime_ms = row->created;
	r = render_outbox_row(row, &b);
	a.size = (int64_t)b.len;
	buf_release(&b);
	snprintf(name, sizeof(name), "%lld.json", (long long)row->seq);
	return r ? r : l->cb(l->ctx, name, &child, &a);
}

static int list_query(struct driftfs *d, enum store_query q, int64_t arg,
		      const char *sarg, int kind, const char *suffix,
		      tree_list_cb cb, void *ctx)
{
	struct list_ctx l = { d, cb, ctx, kind, suffix, kind_mode(kind) };

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
				  status_names[dir->kind - T_STATUS_OPEN],
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
	default:
		return 0;
	}
}
