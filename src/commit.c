// SPDX-License-Identifier: MIT
/* commit.c: a write carried out: its calls queued in the outbox, in order
 * (see commit.h). What the bytes mean is commit_plan.c's; whether a call
 * landed, commit_landed.c's. */
#include "commit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_write.h"
#include "commit_int.h"
#include "log.h"
#include "outbox.h"

/*
 * The class of object a kind of call changes: with the target, the outbox
 * row's ordering key. Ids of different classes may be equal, so the class
 * is part of the key; a kind missing here orders as its own class.
 */
static const char *object_class(const char *kind)
{
	static const char *const map[][2] = {
		{ "message", "conversation" },
		{ "contact_patch", "contact" },
		{ "tag_add", "contact" },
		{ "tag_delete", "contact" },
		{ "contact_delete", "contact" },
		{ "timeline", "contact" },
		{ "user_patch", "user" },
		{ "account_patch", "account" },
		/* Creations: the contact email the new object is for. */
		{ "contact_create", "email" },
		{ "conversation_create", "email" },
		{ "unsubscribe", "unsubscribe" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (!strcmp(kind, map[i][0]))
			return map[i][1];
	return kind;
}

char *commit_object_key(const char *kind, int64_t target)
{
	char *key;

	if (asprintf(&key, "%s:%lld", object_class(kind), (long long)target) < 0)
		return NULL;
	return key;
}

static int newest_message(void *ctx, const struct store_row *r)
{
	struct outbox_row *row = ctx;

	/* Q_MESSAGES runs oldest first: the last row seen is the newest. */
	row->after_created = r->mtime;
	row->after_id = r->id;
	return 0;
}

/*
 * Queues one API call and tries it now. body is consumed. 0 when accepted
 * or queued, else the errno of a refusal.
 */
static int submit(struct driftfs *d, const char *path, const char *kind,
		  const char *method, const char *api_path, cJSON *body,
		  int64_t target, int *queued)
{
	struct outbox_row row;
	struct buf resp = BUF_INIT;
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	int r;

	memset(&row, 0, sizeof(row));
	/*
	 * A new message: what the conversation held before it, as far as
	 * the cache knows. The landed check counts only newer messages.
	 */
	if (!strcmp(kind, "message") &&
	    api_write_message_kind(body) == API_MSG_NEW &&
	    store_each(d->store, Q_MESSAGES, target, NULL, newest_message,
		       &row))
		row.after_created = row.after_id = 0;
	cJSON_Delete(body);
	if (body && !text)
		return -ENOMEM;
	row.path = strdup(path);
	row.kind = strdup(kind);
	row.method = strdup(method);
	row.api_path = strdup(api_path);
	row.target = target;
	row.object = commit_object_key(kind, target);
	r = row.path && row.kind && row.method && row.api_path && row.object
		    ? 0
		    : -ENOMEM;
	if (!r && text)
		r = buf_adds(&row.body, text);
	free(text);
	if (!r)
		r = outbox_submit(d->outbox, &row, &resp);
	if (r == -EINPROGRESS) {
		log_info("%s: queued in the outbox; will retry", path);
		if (queued)
			*queued = 1;
		r = 0;
	}
	buf_release(&resp);
	store_outbox_row_release(&row);
	return r;
}

/* The stored content an edit of n replaces, and (messages) its conversation. */
static int load_stored(struct driftfs *d, const struct tnode *n,
		       struct buf *out, int64_t *conv)
{
	struct store_row row;
	int r;

	switch (n->kind) {
	case T_CONTACT_JSON:
		return store_blob(d->store, Q_CONTACT, n->id, NULL, out);
	case T_CONTACT_TAGS:
		return store_blob(d->store, Q_CONTACT_TAGS, n->id, NULL, out);
	case T_USER_JSON:
		return store_blob(d->store, Q_USER, n->id, NULL, out);
	case T_MESSAGE_JSON:
		r = store_one(d->store, Q_MESSAGE, n->id, NULL, &row);
		if (r)
			return r;
		*conv = row.id2;
		return store_blob(d->store, Q_MESSAGE, n->id, NULL, out);
	case T_ACCOUNT_JSON:
		return store_blob(d->store, Q_ACCOUNT_BY_NAME, 0, n->name, out);
	default:
		return 0;
	}
}

/*
 * DESIGN §4: a new custom attribute of the wrong type for its definition
 * fails the close(), when the definitions are cached (sync_attributes()).
 * The caller's thread; the store takes its own locks.
 */
static int check_attribute_defs(struct driftfs *d,
				const struct commit_input *in)
{
	struct buf defs = BUF_INIT;
	int r = store_meta_get(d->store, "attributes", &defs);

	if (!r)
		r = commit_check_attribute_defs(in, defs.data ? defs.data : "",
						defs.len);
	else if (r == -ENOENT)
		r = 0;
	buf_release(&defs);
	return r;
}

int commit_write(struct driftfs *d, const struct tnode *n, const char *path,
		 const char *data, size_t len, const struct buf *base,
		 int *queued)
{
	struct commit_input in = { .kind = n->kind, .id = n->id,
				   .data = data, .len = len };
	struct commit_plan plan;
	struct buf stored = BUF_INIT;
	int r;

	log_context_set(path);
	if (queued)
		*queued = 0;
	r = load_stored(d, n, &stored, &in.conv);
	if (r) {
		buf_release(&stored);
		return r;
	}
	in.stored = stored.data ? stored.data : "";
	in.stored_len = stored.len;
	if (base) {
		in.base = base->data ? base->data : "";
		in.base_len = base->len;
	}
	r = commit_plan(&in, &plan);
	if (!r && n->kind == T_CONTACT_JSON && plan.n > 0)
		r = check_attribute_defs(d, &in);
	buf_release(&stored);
	/* In order; a call refused stops the ones after it. */
	for (size_t i = 0; !r && i < plan.n; i++) {
		struct commit_call *c = &plan.calls[i];

		r = submit(d, path, c->kind, c->method, c->api_path, c->body,
			   c->target, queued);
		c->body = NULL;
	}
	commit_plan_release(&plan);
	return r;
}

int commit_delete(struct driftfs *d, const struct tnode *n, const char *path)
{
	struct api_write_req req;
	cJSON *msg;
	struct store_row row;
	int r;

	log_context_set(path);
	switch (n->kind) {
	case T_CONTACT:
	case T_CONTACT_JSON:
		r = api_write_contact_delete(n->id, &req);
		r = r ? r
		      : submit(d, path, "contact_delete", req.method, req.path,
			       NULL, n->id, NULL);
		break;
	case T_MESSAGE_JSON:
		if (store_one(d->store, Q_MESSAGE, n->id, NULL, &row))
			return -ENOENT;
		msg = api_write_message_edit(n->id, "delete", "");
		if (!msg)
			return -ENOMEM;
		r = api_write_message(row.id2, msg, &req);
		r = r ? r
		      : submit(d, path, "message", req.method, req.path,
			       req.body, row.id2, NULL);
		/* submit() consumed the body. */
		req.body = NULL;
		break;
	default:
		return -EPERM;
	}
	api_write_req_release(&req);
	return r;
}
