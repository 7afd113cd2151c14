// SPDX-License-Identifier: MIT
/* commit.c: written bytes to API calls, validated first (see commit.h). */
#include "commit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "names.h"
#include "outbox.h"
#include "render.h"
#include "sync.h"

/* Logs why content was refused and returns -EINVAL. */
static int invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int invalid(const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* The thread's context names the path. */
	log_error_event("refused, nothing sent: %s", why);
	return -EINVAL;
}

/* A JSON number node holding an id exactly (cJSON numbers are doubles). */
static cJSON *id_node(int64_t id)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%lld", (long long)id);
	return cJSON_CreateRaw(tmp);
}

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

/*
 * The target of a call about an object named by a string (an account id,
 * the email of a contact or conversation to create): its hash, as accounts
 * get their inode numbers. Emails compare without case, as the API's do.
 */
static int64_t string_target(const char *s, int fold)
{
	char *t = s ? strdup(s) : NULL;
	int64_t h;

	if (!t)
		return -1;
	for (char *c = t; fold && *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	h = store_account_hash(t);
	free(t);
	return h;
}

char *commit_object_key(const char *kind, int64_t target)
{
	char *key;

	if (asprintf(&key, "%s:%lld", object_class(kind), (long long)target) < 0)
		return NULL;
	return key;
}

/* Whether body is a message edit or delete ({"type": "edit", ...}). */
static int is_edit(const cJSON *body)
{
	const char *type = json_get_str(body, "type");

	return type && !strcmp(type, "edit");
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
	if (!strcmp(kind, "message") && !is_edit(body) &&
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

void commit_plan_release(struct commit_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->calls[i].api_path);
		cJSON_Delete(p->calls[i].body);
	}
	free(p->calls);
	memset(p, 0, sizeof(*p));
}

/*
 * Appends a call to the plan; body is consumed. The API path is formatted
 * whole, however long (a fixed buffer cut a long tag name out of a delete,
 * which then named another tag or none).
 */
static int plan_add(struct commit_plan *p, const char *kind,
		    const char *method, cJSON *body, int64_t target,
		    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int plan_add(struct commit_plan *p, const char *kind,
		    const char *method, cJSON *body, int64_t target,
		    const char *fmt, ...)
{
	struct commit_call *c;
	char *api = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&api, fmt, ap);
	va_end(ap);
	c = n < 0 ? NULL : realloc(p->calls, (p->n + 1) * sizeof(*c));
	if (!c) {
		free(n < 0 ? NULL : api);
		cJSON_Delete(body);
		return -ENOMEM;
	}
	p->calls = c;
	c = &p->calls[p->n++];
	c->kind = kind;
	c->method = method;
	c->body = body;
	c->target = target;
	c->api_path = api;
	return 0;
}

static cJSON *parse(const char *data, size_t len, int *err)
{
	cJSON *v = json_parse(data, len);

	if (!v)
		*err = invalid("not valid JSON");
	else if (!cJSON_IsObject(v)) {
		*err = invalid("not a JSON object");
		cJSON_Delete(v);
		v = NULL;
	}
	return v;
}

/* The version an edit is compared with: the one the writer read, if known. */
static const char *edit_base(const struct commit_input *in, size_t *len)
{
	*len = in->base ? in->base_len : in->stored_len;
	return in->base ? in->base : in->stored;
}

/*
 * An edit of a stored file: *now is the new content (an object), *old the
 * version the writer read (edit_base). Both are freed by the caller on
 * success. Validation and the diff both run against *old: a read-only
 * field Drift moved on since the read is not the writer's change either.
 */
static int parse_edit(const struct commit_input *in, cJSON **now,
		      cJSON **old)
{
	size_t blen;
	const char *base = edit_base(in, &blen);
	int r = 0;

	*old = NULL;
	*now = parse(in->data, in->len, &r);
	if (!*now)
		return r;
	*old = base ? json_parse(base, blen) : NULL;
	if (!cJSON_IsObject(*old)) {
		cJSON_Delete(*old);
		cJSON_Delete(*now);
		*old = *now = NULL;
		return -EIO;
	}
	return 0;
}

/* Text as an HTML message body: escaped, line breaks as <br>. */
static int text_to_html(const char *data, size_t len, struct buf *out)
{
	int r = 0;

	while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len && !r; i++) {
		switch (data[i]) {
		case '&':
			r = buf_adds(out, "&amp;");
			break;
		case '<':
			r = buf_adds(out, "&lt;");
			break;
		case '>':
			r = buf_adds(out, "&gt;");
			break;
		case '\n':
			r = buf_adds(out, "<br>");
			break;
		case '\r':
			break;
		default:
			r = buf_addc(out, data[i]);
		}
	}
	return r;
}

static int blank(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (data[i] != ' ' && data[i] != '\t' && data[i] != '\n' &&
		    data[i] != '\r')
			return 0;
	return 1;
}

static int plan_message(struct commit_plan *p, int64_t conv, cJSON *msg)
{
	return plan_add(p, "message", "POST", msg, conv,
			"/conversations/%lld/messages", (long long)conv);
}

/* reply and note: the text becomes a chat message or a private note. */
static int plan_text_message(const struct commit_input *in, const char *type,
			     struct commit_plan *p)
{
	const char *data = in->data;
	size_t len = in->len;
	struct buf html = BUF_INIT;
	cJSON *msg;
	int r;

	if (blank(data, len))
		return invalid("an empty message");
	r = text_to_html(data, len, &html);
	msg = cJSON_CreateObject();
	if (r || !msg || !cJSON_AddStringToObject(msg, "type", type) ||
	    !cJSON_AddStringToObject(msg, "body", html.data)) {
		cJSON_Delete(msg);
		buf_release(&html);
		return -ENOMEM;
	}
	buf_release(&html);
	return plan_message(p, in->id, msg);
}

/* messages/new: {type, body, buttons, userId}; nothing else. */
static int plan_new_message(const struct commit_input *in,
			    struct commit_plan *p)
{
	static const char *const types[] = { "chat", "private_note",
					     "private_prompt" };
	const cJSON *type, *f;
	cJSON *v;
	int r = 0, ok = 0;
	int64_t uid;

	v = parse(in->data, in->len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "type") && strcmp(f->string, "body") &&
		    strcmp(f->string, "buttons") && strcmp(f->string, "userId")) {
			r = invalid("unknown field '%s' (allowed: type, "
					  "body, buttons, userId)",
				    f->string);
			goto out;
		}
	type = cJSON_GetObjectItemCaseSensitive(v, "type");
	for (size_t i = 0; cJSON_IsString(type) && i < 3; i++)
		ok |= !strcmp(type->valuestring, types[i]);
	if (!ok) {
		r = invalid("field 'type' must be chat, private_note or "
				  "private_prompt");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (f && !cJSON_IsString(f)) {
		r = invalid("field 'body' must be a string");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "buttons");
	if (f && !cJSON_IsArray(f)) {
		r = invalid("field 'buttons' must be a list");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "userId");
	if (f && (json_i64(f, &uid) || uid <= 0)) {
		r = invalid("field 'userId' must be a user id");
		goto out;
	}
	r = plan_message(p, in->id, v);
	v = NULL;
out:
	cJSON_Delete(v);
	return r;
}

/* contacts/new: {"attributes": {...}} or the attributes themselves. */
static int plan_new_contact(const struct commit_input *in,
			    struct commit_plan *p)
{
	cJSON *v, *attrs, *body;
	const char *email;
	int r = 0;

	v = parse(in->data, in->len, &r);
	if (!v)
		return r;
	attrs = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	if (attrs && (!cJSON_IsObject(attrs) || cJSON_GetArraySize(v) != 1)) {
		cJSON_Delete(v);
		return invalid("'attributes' must be the only field, "
				     "an object");
	}
	if (attrs)
		attrs = cJSON_DetachItemViaPointer(v, attrs);
	else
		attrs = v, v = NULL;
	cJSON_Delete(v);
	email = json_get_str(attrs, "email");
	if (!email || !strchr(email, '@')) {
		cJSON_Delete(attrs);
		return invalid("attribute 'email' (a string with an @) "
				     "is required");
	}
	body = cJSON_CreateObject();
	if (!body) {
		cJSON_Delete(attrs);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(body, "attributes", attrs);
	return plan_add(p, "contact_create", "POST", body,
			string_target(email, 1), "/contacts");
}

/*
 * Version counters the API bumps on every change: a copy edited while one
 * moved on still means the user's change, so they are ignored, not refused.
 */
static int attribute_counter(const char *name)
{
	return !strcmp(name, "_END_USER_VERSION") ||
	       !strcmp(name, "_end_user_version") ||
	       !strcmp(name, "_calculated_version");
}

/* Attributes the API manages; an edit may not change them. */
static int attribute_read_only(const char *name)
{
	static const char *const ro[] = { "_END_USER_VERSION",
					  "_end_user_version",
					  "_calculated_version", "events",
					  "socialProfiles", "start_date",
					  "external_id", "tags" };

	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (!strcmp(name, ro[i]))
			return 1;
	return 0;
}

static const char *tag_name(const cJSON *t)
{
	return cJSON_IsString(t) ? t->valuestring : json_get_str(t, "name");
}

static int has_tag(const cJSON *list, const char *name)
{
	for (const cJSON *t = cJSON_IsArray(list) ? list->child : NULL; t;
	     t = t->next)
		if (tag_name(t) && !strcmp(tag_name(t), name))
			return 1;
	return 0;
}

/* Tag changes: one call to add the new ones, one per removed tag. */
static int plan_tag_changes(struct commit_plan *p, int64_t id, char **add,
			    size_t nadd, char **del, size_t ndel)
{
	int r = 0;

	if (nadd) {
		cJSON *list = cJSON_CreateArray();

		for (size_t i = 0; list && i < nadd; i++) {
			cJSON *t = cJSON_CreateObject();

			cJSON_AddStringToObject(t, "name", add[i]);
			cJSON_AddItemToArray(list, t);
		}
		if (!list)
			return -ENOMEM;
		r = plan_add(p, "tag_add", "POST", list, id,
			     "/contacts/%lld/tags", (long long)id);
	}
	for (size_t i = 0; i < ndel && !r; i++) {
		char *q = api_query_escape(del[i]);

		if (!q)
			return -ENOMEM;
		r = plan_add(p, "tag_delete", "DELETE", NULL, id,
			     "/contacts/%lld/tags/%s", (long long)id, q);
		free(q);
	}
	return r;
}

static void free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* contact.json: a PATCH of the changed attributes, plus tag calls. */
static int plan_contact_json(const struct commit_input *in,
			     struct commit_plan *p)
{
	cJSON *v = NULL, *old = NULL, *patch = NULL, *body;
	const cJSON *na, *oa, *f;
	char **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;
	int r;

	r = parse_edit(in, &v, &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "attributes"))
			continue;
		if (!o) {
			r = invalid("unknown field '%s'", f->string);
			goto out;
		}
		if (!cJSON_Compare(o, f, 1)) {
			r = invalid("field '%s' is read-only", f->string);
			goto out;
		}
	}
	na = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	oa = cJSON_GetObjectItemCaseSensitive(old, "attributes");
	if (!cJSON_IsObject(na)) {
		r = invalid("field 'attributes' must be an object");
		goto out;
	}
	patch = cJSON_CreateObject();
	add = calloc((size_t)cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(na, "tags")) + 1,
		     sizeof(*add));
	del = calloc((size_t)cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(oa, "tags")) + 1,
		     sizeof(*del));
	if (!patch || !add || !del) {
		r = -ENOMEM;
		goto out;
	}
	for (f = na->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(oa, f->string);

		if ((o && cJSON_Compare(o, f, 1)) || attribute_counter(f->string))
			continue;
		if (!strcmp(f->string, "tags")) {
			if (!cJSON_IsArray(f)) {
				r = invalid("attribute 'tags' must be a "
						  "list");
				goto out;
			}
			continue;
		}
		if (attribute_read_only(f->string)) {
			r = invalid("attribute '%s' is read-only",
				    f->string);
			goto out;
		}
		if (cJSON_IsObject(f) || cJSON_IsArray(f)) {
			if (!o || (cJSON_IsObject(o) != cJSON_IsObject(f))) {
				r = invalid("attribute '%s' has the "
						  "wrong type",
					    f->string);
				goto out;
			}
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
	}
	for (f = oa ? oa->child : NULL; f; f = f->next) {
		if (cJSON_GetObjectItemCaseSensitive(na, f->string) ||
		    attribute_counter(f->string))
			continue;
		if (attribute_read_only(f->string)) {
			r = invalid("attribute '%s' is read-only and "
					  "cannot be removed",
				    f->string);
			goto out;
		}
		/* Removing an attribute clears it. */
		cJSON_AddItemToObject(patch, f->string, cJSON_CreateNull());
	}
	/* Tags: by name, whatever their shape (strings or objects). */
	f = cJSON_GetObjectItemCaseSensitive(na, "tags");
	for (const cJSON *t = cJSON_IsArray(f) ? f->child : NULL; t; t = t->next) {
		const cJSON *ot = cJSON_GetObjectItemCaseSensitive(oa, "tags");

		if (!tag_name(t)) {
			r = invalid("a tag without a name");
			goto out;
		}
		if (!has_tag(ot, tag_name(t)) && !(add[nadd] = strdup(tag_name(t)))) {
			r = -ENOMEM;
			goto out;
		}
		if (add[nadd])
			nadd++;
	}
	f = cJSON_GetObjectItemCaseSensitive(oa, "tags");
	for (const cJSON *t = cJSON_IsArray(f) ? f->child : NULL; t; t = t->next) {
		const cJSON *nt = cJSON_GetObjectItemCaseSensitive(na, "tags");

		if (tag_name(t) && !has_tag(nt, tag_name(t)) &&
		    (del[ndel] = strdup(tag_name(t))))
			ndel++;
	}
	if (cJSON_GetArraySize(patch) > 0) {
		body = cJSON_CreateObject();
		if (!body) {
			r = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToObject(body, "attributes", patch);
		patch = NULL;
		r = plan_add(p, "contact_patch", "PATCH", body, in->id,
			     "/contacts/%lld", (long long)in->id);
	}
	if (!r)
		r = plan_tag_changes(p, in->id, add, nadd, del, ndel);
out:
	free_list(add, nadd);
	free_list(del, ndel);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/*
 * Splits text into its non-empty lines (trimmed of \r). A NUL byte is
 * refused: no name or event can hold one, and cutting the line there would
 * send something the user did not write.
 */
static int split_lines(const char *data, size_t len, char ***out, size_t *n)
{
	char **v = NULL;
	size_t cap = 0, line = 0;
	int r = 0;

	*n = 0;
	*out = NULL;
	for (size_t i = 0; i < len && !r;) {
		size_t e = i;

		while (e < len && data[e] != '\n')
			e++;
		size_t l = e - i;

		line++;
		if (memchr(data + i, '\0', l)) {
			r = invalid("line %zu holds a NUL byte", line);
			break;
		}
		while (l && data[i + l - 1] == '\r')
			l--;
		if (l && *n == cap) {
			char **p = realloc(v, (cap ? cap * 2 : 8) * sizeof(*v));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			v = p;
			cap = cap ? cap * 2 : 8;
		}
		if (l && !(v[*n] = strndup(data + i, l)))
			r = -ENOMEM;
		else if (l)
			(*n)++;
		i = e + 1;
	}
	if (r) {
		/* The caller sees nothing to free. */
		free_list(v, *n);
		*n = 0;
		return r;
	}
	*out = v;
	return 0;
}

/*
 * A \u0000 escape in JSON text: cJSON decodes it into a NUL, which cuts
 * the string there, as a raw NUL would.
 */
static int refuse_nul_escape(const char *data, size_t len, const char *where)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] != '\\')
			continue;
		if (len - i >= 6 && !memcmp(data + i + 1, "u0000", 5))
			return invalid("%sa \\u0000 escape at offset %zu (text "
				       "cannot hold a NUL)", where, i);
		i++;	/* the escaped character */
	}
	return 0;
}

static int in_list(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

/*
 * Replaces each line of the tags file with the tag it names: the file shows
 * tags %XX-escaped (api.c, names.h), so "a%0Ab" is the tag "a\nb" and
 * "50%25off" is "50%off". A '%' that starts no escape is refused.
 */
static int decode_tag_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;
		int r = names_unescape_buf(&b, v[i], strlen(v[i]));

		if (r == -EINVAL)
			r = invalid("tag line %zu: a '%%' must begin a %%XX "
				    "escape other than %%00 (write %%25 for "
				    "'%%')",
				    i + 1);
		if (r) {
			buf_release(&b);
			return r;
		}
		free(v[i]);
		v[i] = buf_detach(&b, NULL);
	}
	return 0;
}

/*
 * tags: the new set of lines against the one the writer read (both the
 * file's escaped text, so both are decoded before they are compared).
 */
static int plan_tags(const struct commit_input *in, struct commit_plan *p)
{
	char **now = NULL, **was = NULL, **add, **del;
	size_t nnow = 0, nwas = 0, nadd = 0, ndel = 0, blen;
	const char *base = edit_base(in, &blen);
	int r;

	r = split_lines(in->data, in->len, &now, &nnow);
	r = r ? r : split_lines(base ? base : "", blen, &was, &nwas);
	r = r ? r : decode_tag_lines(now, nnow);
	r = r ? r : decode_tag_lines(was, nwas);
	if (r) {
		free_list(now, nnow);
		free_list(was, nwas);
		return r;
	}
	add = calloc(nnow + 1, sizeof(*add));
	del = calloc(nwas + 1, sizeof(*del));
	for (size_t i = 0; add && i < nnow; i++)
		if (!in_list(was, nwas, now[i]) && !in_list(add, nadd, now[i]))
			add[nadd++] = strdup(now[i]);
	for (size_t i = 0; del && i < nwas; i++)
		if (!in_list(now, nnow, was[i]))
			del[ndel++] = strdup(was[i]);
	r = add && del ? plan_tag_changes(p, in->id, add, nadd, del, ndel)
		       : -ENOMEM;
	free_list(add, nadd);
	free_list(del, ndel);
	free_list(now, nnow);
	free_list(was, nwas);
	return r;
}

/* timeline: each line an event (text, or JSON {event, createdAt}). */
static int plan_timeline(const struct commit_input *in, struct commit_plan *p)
{
	char **lines = NULL;
	size_t n = 0;
	cJSON **bodies;
	int r = split_lines(in->data, in->len, &lines, &n);

	if (r)
		return r;
	if (!n) {
		free_list(lines, n);
		return invalid("no event (one a line)");
	}
	bodies = calloc(n, sizeof(*bodies));
	for (size_t i = 0; bodies && i < n && !r; i++) {
		cJSON *b = cJSON_CreateObject();
		const char *event = lines[i];
		cJSON *j = lines[i][0] == '{' ? json_parse(lines[i],
							   strlen(lines[i]))
					      : NULL;
		int64_t at = 0;

		if (lines[i][0] == '{') {
			const cJSON *f;
			char where[32];

			snprintf(where, sizeof(where), "line %zu: ", i + 1);
			r = refuse_nul_escape(lines[i], strlen(lines[i]), where);
			if (r) {
				cJSON_Delete(j);
				cJSON_Delete(b);
				bodies[i] = NULL;
				break;
			}
			event = json_get_str(j, "event");
			f = cJSON_GetObjectItemCaseSensitive(j, "createdAt");
			if (!j || !event || !*event)
				r = invalid("line %zu: JSON events need "
						  "a string 'event'",
					    i + 1);
			else if (f && (json_i64(f, &at) || at <= 0))
				r = invalid("line %zu: 'createdAt' must "
						  "be ms since the epoch",
					    i + 1);
		}
		if (!r && b) {
			cJSON_AddItemToObject(b, "contactId", id_node(in->id));
			cJSON_AddStringToObject(b, "event", event);
			if (at)
				cJSON_AddItemToObject(b, "createdAt",
						      id_node(at));
		}
		bodies[i] = b;
		cJSON_Delete(j);
	}
	/* All lines are valid before any is sent. */
	for (size_t i = 0; bodies && i < n; i++) {
		if (!r)
			r = plan_add(p, "timeline", "POST", bodies[i], in->id,
				     "/contacts/timeline");
		else
			cJSON_Delete(bodies[i]);
	}
	free(bodies);
	free_list(lines, n);
	return r;
}

/* unsubscribe: one email a line, one call for all. */
static int plan_unsubscribe(const struct commit_input *in,
			    struct commit_plan *p)
{
	char **lines = NULL;
	size_t n = 0;
	cJSON *list;
	int r = split_lines(in->data, in->len, &lines, &n);

	if (r)
		return r;
	for (size_t i = 0; i < n && !r; i++)
		if (!strchr(lines[i], '@') || strchr(lines[i], ' '))
			r = invalid("line %zu is not an email address",
				    i + 1);
	if (!r && !n)
		r = invalid("no email address (one a line)");
	list = r ? NULL : cJSON_CreateArray();
	for (size_t i = 0; list && i < n; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(lines[i]));
	free_list(lines, n);
	if (r)
		return r;
	/* Target 0: the org's one unsubscribe list. */
	return list ? plan_add(p, "unsubscribe", "POST", list, 0,
			       "/emails/unsubscribe")
		    : -ENOMEM;
}

/* users/<id>.json: PATCH the changed editable fields. */
static int plan_user(const struct commit_input *in, struct commit_plan *p)
{
	static const char *const editable[] = { "name",	  "alias",
						"email",  "phone",
						"locale", "avatarUrl",
						"availability" };
	cJSON *v, *old = NULL, *patch = NULL;
	const cJSON *f;
	int r;

	r = parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);
		int ok = 0;

		if (o && cJSON_Compare(o, f, 1))
			continue;
		for (size_t i = 0; i < sizeof(editable) / sizeof(*editable); i++)
			ok |= !strcmp(f->string, editable[i]);
		if (!ok) {
			r = invalid(o ? "field '%s' is read-only"
					    : "unknown field '%s'",
				    f->string);
			goto out;
		}
		if (!cJSON_IsString(f)) {
			r = invalid("field '%s' must be a string",
				    f->string);
			goto out;
		}
		if (!strcmp(f->string, "availability") &&
		    strcmp(f->valuestring, "AVAILABLE") &&
		    strcmp(f->valuestring, "OFFLINE")) {
			r = invalid("field 'availability' must be "
					  "AVAILABLE or OFFLINE");
			goto out;
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
	}
	for (f = old->child; f; f = f->next)
		if (!cJSON_GetObjectItemCaseSensitive(v, f->string)) {
			r = invalid("field '%s' cannot be removed",
				    f->string);
			goto out;
		}
	if (cJSON_GetArraySize(patch) == 0)
		goto out;
	r = plan_add(p, "user_patch", "PATCH", patch, in->id,
		     "/users/update?userId=%lld", (long long)in->id);
	patch = NULL;
out:
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* conversations/new: {email, message, integrationSource, autoAssigneeId}. */
static int plan_new_conversation(const struct commit_input *in,
				 struct commit_plan *p)
{
	cJSON *v, *body = NULL, *msg, *attrs;
	const cJSON *f, *m;
	int r = 0;

	v = parse(in->data, in->len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "email") && strcmp(f->string, "message") &&
		    strcmp(f->string, "integrationSource") &&
		    strcmp(f->string, "autoAssigneeId")) {
			r = invalid("unknown field '%s' (allowed: email, "
					  "message, integrationSource, "
					  "autoAssigneeId)",
				    f->string);
			goto out;
		}
	if (!json_get_str(v, "email") || !strchr(json_get_str(v, "email"), '@')) {
		r = invalid("field 'email' (an email address) is "
				  "required");
		goto out;
	}
	m = cJSON_GetObjectItemCaseSensitive(v, "message");
	if (!cJSON_IsString(m) && !cJSON_IsObject(m)) {
		r = invalid("field 'message' (text, or an object with "
				  "'body') is required");
		goto out;
	}
	body = cJSON_CreateObject();
	msg = cJSON_IsObject(m) ? cJSON_Duplicate(m, 1) : cJSON_CreateObject();
	if (!body || !msg) {
		cJSON_Delete(msg);
		r = -ENOMEM;
		goto out;
	}
	if (cJSON_IsString(m))
		cJSON_AddStringToObject(msg, "body", m->valuestring);
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "body"))) {
		cJSON_Delete(msg);
		r = invalid("field 'message.body' must be a string");
		goto out;
	}
	attrs = cJSON_GetObjectItemCaseSensitive(msg, "attributes");
	if (attrs && !cJSON_IsObject(attrs)) {
		/* integrationSource and autoAssigneeId would be lost in it. */
		cJSON_Delete(msg);
		r = invalid("field 'message.attributes' must be an object");
		goto out;
	}
	if (!attrs)
		attrs = cJSON_AddObjectToObject(msg, "attributes");
	f = cJSON_GetObjectItemCaseSensitive(v, "integrationSource");
	if (f)
		cJSON_AddItemToObject(attrs, "integrationSource",
				      cJSON_Duplicate(f, 1));
	f = cJSON_GetObjectItemCaseSensitive(v, "autoAssigneeId");
	if (f)
		cJSON_AddItemToObject(attrs, "autoAssigneeId",
				      cJSON_Duplicate(f, 1));
	cJSON_AddStringToObject(body, "email", json_get_str(v, "email"));
	cJSON_AddItemToObject(body, "message", msg);
	r = plan_add(p, "conversation_create", "POST", body,
		     string_target(json_get_str(v, "email"), 1),
		     "/conversations/new");
	body = NULL;
out:
	cJSON_Delete(body);
	cJSON_Delete(v);
	return r;
}

/* messages/<id>.json: only the body may change (an edit of replace_body). */
static int plan_message_json(const struct commit_input *in,
			     struct commit_plan *p)
{
	cJSON *v, *old = NULL, *msg = NULL;
	const cJSON *f;
	int r;

	r = parse_edit(in, &v, &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "body")) {
			if (!cJSON_IsString(f)) {
				r = invalid("field 'body' must be a "
						  "string");
				goto out;
			}
			continue;
		}
		if (!o || !cJSON_Compare(o, f, 1)) {
			r = invalid(o ? "field '%s' is read-only (only "
					      "'body' can be edited)"
					    : "unknown field '%s'",
				    f->string);
			goto out;
		}
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (!f || cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(old, "body"),
				1))
		goto out;
	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "type", "edit");
	cJSON_AddItemToObject(msg, "editedMessageId", id_node(in->id));
	cJSON_AddStringToObject(msg, "editType", "replace_body");
	cJSON_AddStringToObject(msg, "body", f->valuestring);
	r = plan_message(p, in->conv, msg);
out:
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* An account's target: the hash of its id (a string, or a number). */
static int64_t account_target(const cJSON *account)
{
	const cJSON *id;
	char *num;
	int64_t t;

	id = cJSON_GetObjectItemCaseSensitive(account, "accountId");
	if (cJSON_IsString(id))
		return string_target(id->valuestring, 0);
	num = id ? cJSON_PrintUnformatted(id) : NULL;
	t = string_target(num, 0);
	free(num);
	return t;
}

/* accounts/<id>.json: PATCH with accountId and ownerId plus the changes. */
static int plan_account(const struct commit_input *in, struct commit_plan *p)
{
	static const char *const ro[] = { "accountId", "createDateTime",
					  "updateDateTime", "deleted" };
	cJSON *v, *old = NULL, *patch = NULL, *cur = NULL;
	const cJSON *f;
	int r, changed = 0;

	r = parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (o && cJSON_Compare(o, f, 1))
			continue;
		for (size_t i = 0; i < sizeof(ro) / sizeof(*ro); i++)
			if (!strcmp(f->string, ro[i])) {
				r = invalid("field '%s' is read-only",
					    f->string);
				goto out;
			}
		if (!o) {
			r = invalid("unknown field '%s'", f->string);
			goto out;
		}
		if ((o->type & 0xff) != (f->type & 0xff) &&
		    !(cJSON_IsBool(o) && cJSON_IsBool(f))) {
			r = invalid("field '%s' has the wrong type",
				    f->string);
			goto out;
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
		changed = 1;
	}
	if (!changed)
		goto out;
	f = cJSON_GetObjectItemCaseSensitive(old, "accountId");
	cJSON_AddItemToObject(patch, "accountId", cJSON_Duplicate(f, 1));
	/*
	 * The API wants ownerId in every PATCH: one the writer left alone
	 * is the stored one, since the owner read may have changed since.
	 */
	if (!cJSON_GetObjectItemCaseSensitive(patch, "ownerId")) {
		cur = in->stored ? json_parse(in->stored, in->stored_len)
				 : NULL;
		f = cJSON_GetObjectItemCaseSensitive(cur, "ownerId");
		if (!f)
			f = cJSON_GetObjectItemCaseSensitive(old, "ownerId");
		cJSON_AddItemToObject(patch, "ownerId", cJSON_Duplicate(f, 1));
	}
	r = plan_add(p, "account_patch", "PATCH", patch,
		     account_target(old), "/accounts/update");
	patch = NULL;
out:
	cJSON_Delete(cur);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/*
 * A NUL byte ends a C string: the message body, note or JSON value would be
 * cut there, and less than the user wrote sent without a word. Refused, as
 * split_lines() refuses it in the one-a-line files (which it checks
 * itself; plan_timeline() checks the escape in its JSON lines). In JSON, a
 * \u0000 escape is refused too: cJSON decodes it into the same cut.
 */
static int refuse_nul(const struct commit_input *in)
{
	const char *nul;

	if (in->kind == T_CONTACT_TAGS || in->kind == T_CONTACT_TIMELINE ||
	    in->kind == T_UNSUBSCRIBE || !in->len)
		return 0;
	nul = memchr(in->data, '\0', in->len);
	if (nul)
		return invalid("a NUL byte at offset %zu (text cannot hold "
			       "one)", (size_t)(nul - in->data));
	if (in->kind == T_REPLY || in->kind == T_NOTE)
		return 0;	/* plain text: a backslash is a backslash */
	return refuse_nul_escape(in->data, in->len, "");
}

int commit_plan(const struct commit_input *in, struct commit_plan *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = refuse_nul(in);
	if (r)
		return r;
	switch (in->kind) {
	case T_REPLY:
		r = plan_text_message(in, "chat", out);
		break;
	case T_NOTE:
		r = plan_text_message(in, "private_note", out);
		break;
	case T_MESSAGES_NEW:
		r = plan_new_message(in, out);
		break;
	case T_CONTACTS_NEW:
		r = plan_new_contact(in, out);
		break;
	case T_CONTACT_JSON:
		r = plan_contact_json(in, out);
		break;
	case T_CONTACT_TAGS:
		r = plan_tags(in, out);
		break;
	case T_CONTACT_TIMELINE:
		r = plan_timeline(in, out);
		break;
	case T_UNSUBSCRIBE:
		r = plan_unsubscribe(in, out);
		break;
	case T_USER_JSON:
		r = plan_user(in, out);
		break;
	case T_CONVS_NEW:
		r = plan_new_conversation(in, out);
		break;
	case T_MESSAGE_JSON:
		r = plan_message_json(in, out);
		break;
	case T_ACCOUNT_JSON:
		r = plan_account(in, out);
		break;
	default:
		r = -EACCES;
	}
	if (r)
		commit_plan_release(out);
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
	char api[64];
	cJSON *msg;
	struct store_row row;

	log_context_set(path);
	switch (n->kind) {
	case T_CONTACT:
	case T_CONTACT_JSON:
		snprintf(api, sizeof(api), "/contacts/%lld", (long long)n->id);
		return submit(d, path, "contact_delete", "DELETE", api, NULL,
			      n->id, NULL);
	case T_MESSAGE_JSON:
		if (store_one(d->store, Q_MESSAGE, n->id, NULL, &row))
			return -ENOENT;
		msg = cJSON_CreateObject();
		if (!msg)
			return -ENOMEM;
		cJSON_AddStringToObject(msg, "type", "edit");
		cJSON_AddItemToObject(msg, "editedMessageId", id_node(n->id));
		cJSON_AddStringToObject(msg, "editType", "delete");
		cJSON_AddStringToObject(msg, "body", "");
		snprintf(api, sizeof(api), "/conversations/%lld/messages",
			 (long long)row.id2);
		return submit(d, path, "message", "POST", api, msg, row.id2,
			      NULL);
	default:
		return -EPERM;
	}
}

/*
 * The id (and createdAt, ms, when it has one) in an API answer: data.id,
 * the first of data.messages[] (drift-api.md: a message POST may answer
 * either way), or a bare object's id.
 */
static int64_t answer_id(const struct buf *response, int64_t *created)
{
	cJSON *v = response->len ? json_parse(response->data, response->len)
				 : NULL;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(v, "data");
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(o, "messages");
	int64_t id = 0;

	if (cJSON_IsArray(msgs))
		o = cJSON_GetArrayItem(msgs, 0);
	else if (cJSON_IsObject(msgs))
		o = NULL;
	if (!cJSON_IsObject(o))
		o = v;
	if (json_get_i64(o, "id", &id))
		id = 0;
	if (created && json_get_i64(o, "createdAt", created))
		*created = 0;
	cJSON_Delete(v);
	return id;
}

void commit_applied(struct driftfs *d, const struct outbox_row *row,
		    const struct buf *response)
{
	int64_t id;

	if (!strcmp(row->kind, "message")) {
		int64_t created = 0;

		sync_note_write(d->sync, SO_CONVERSATION, row->target);
		id = answer_id(response, &created);
		/* The later rows of the conversation look for theirs after
		 * this one: an identical earlier message is never theirs.
		 * Not an edit's answer (an edit posts no message). */
		if (id && !commit_idempotent(row)) {
			char key[64];

			snprintf(key, sizeof(key), "created:message:%lld",
				 (long long)row->target);
			store_meta_set_i64(d->store, key, id);
		}
		if (id && created && !commit_idempotent(row) && row->object &&
		    row->object[0])
			store_outbox_advance(d->store, row->seq, row->object,
					     created, id);
		sync_fetch_conversation(d->sync, row->target);
	} else if (!strcmp(row->kind, "contact_create")) {
		id = answer_id(response, NULL);
		if (id) {
			store_meta_set_i64(d->store, "created:contact", id);
			sync_fetch_contact(d->sync, id);
		}
	} else if (!strcmp(row->kind, "conversation_create")) {
		id = answer_id(response, NULL);
		if (id) {
			store_meta_set_i64(d->store, "created:conversation", id);
			sync_fetch_conversation(d->sync, id);
		}
	} else if (!strcmp(row->kind, "contact_delete")) {
		sync_note_write(d->sync, SO_CONTACT, row->target);
		sync_forget_contact(d->sync, row->target);
	} else if (!strcmp(row->kind, "contact_patch") ||
		   !strcmp(row->kind, "tag_add") ||
		   !strcmp(row->kind, "tag_delete")) {
		sync_note_write(d->sync, SO_CONTACT, row->target);
		sync_fetch_contact(d->sync, row->target);
	} else if (!strcmp(row->kind, "user_patch")) {
		sync_note_write(d->sync, SO_USER, row->target);
		sync_fetch_user(d->sync, row->target);
	} else if (!strcmp(row->kind, "account_patch")) {
		sync_refresh_accounts(d->sync);
	}
}

int commit_message_text(const char *html, struct buf *out)
{
	struct buf t = BUF_INIT;
	size_t start = out->len;
	int r = render_html_text(html ? html : "", &t), space = 0;

	for (size_t i = 0; !r && i < t.len; i++) {
		unsigned char c = (unsigned char)t.data[i];

		/* White space, U+00A0 (&nbsp;) included, counts as one. */
		if (c == 0xc2 && i + 1 < t.len &&
		    (unsigned char)t.data[i + 1] == 0xa0) {
			i++;
			space = 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
			   c == '\f' || c == '\v') {
			space = 1;
		} else {
			if (space && out->len > start)
				r = buf_addc(out, ' ');
			space = 0;
			r = r ? r : buf_addc(out, (char)c);
		}
	}
	buf_release(&t);
	return r;
}

/* Whether html reads as text (a commit_message_text()). */
static int same_text(const char *html, const char *text)
{
	struct buf t = BUF_INIT;
	int same = !commit_message_text(html, &t) && t.len &&
		   !strcmp(t.data, text);

	buf_release(&t);
	return same;
}

#define LANDED_SKEW_MS (5 * 60 * 1000)

struct landed_ctx {
	const char *text;	/* commit_message_text() of the body */
	const char *type;	/* the message's type: chat, private_note... */
	int64_t user;		/* the userId it was posted with, else 0 */
	int64_t since;		/* nothing created before this (ms) */
	int64_t after_created, after_id;	/* outbox_row.after_* */
	int64_t exclude;	/* an earlier row's message, else 0 */
	int64_t found;		/* the id of the one found, else 0 */
	int64_t found_created;
};

/*
 * Whether m may be the message a row posted: newer than the newest message
 * the cache held when it was queued (and than the clock window), of the
 * same type, written by the author the API gives our posts (the userId
 * sent, else the org's bot user: a contact's message never counts), and
 * with the same text.
 */
int commit_message_matches(const struct landed_match *w,
			   const struct api_message *m)
{
	/* Both bounds: the marks may predate messages the cache had not
	 * fetched yet, and the clock window (wide, for skew) keeps an
	 * identical older one of the same author out. */
	if (m->created < w->since || (w->exclude && m->id == w->exclude))
		return 0;
	if (m->created < w->after_created ||
	    (m->created == w->after_created && m->id <= w->after_id))
		return 0;
	if (strcmp(m->type, w->type) || strcmp(m->author_type, "user"))
		return 0;
	if (w->user ? m->author_id != w->user : !m->bot)
		return 0;
	return m->body && same_text(m->body, w->text);
}

static int message_matches(void *ctx, struct api_message *m)
{
	struct landed_ctx *l = ctx;
	struct landed_match w = { l->text, l->type, l->user, l->since,
				  l->after_created, l->after_id, l->exclude };

	/* The first match, oldest first, is the one that came of the row. */
	if (!l->found && commit_message_matches(&w, m)) {
		l->found = m->id;
		l->found_created = m->created;
	}
	return 0;
}

static int contact_matches(void *ctx, const struct api_contact *c)
{
	struct landed_ctx *l = ctx;

	if (c->created >= l->since &&
	    (!l->found || c->created > l->found_created)) {
		l->found = c->id;
		l->found_created = c->created;
	}
	return 0;
}

int commit_idempotent(const struct outbox_row *row)
{
	cJSON *v;
	int edit;

	if (strcmp(row->method, "POST"))
		return 1;
	if (strcmp(row->kind, "message"))
		return 0;
	v = json_parse(row->body.data ? row->body.data : "", row->body.len);
	edit = is_edit(v);
	cJSON_Delete(v);
	return edit;
}

int commit_is_delete(const struct outbox_row *row)
{
	cJSON *v;
	const char *type;
	int del;

	if (!strcmp(row->method, "DELETE"))
		return 1;
	if (strcmp(row->kind, "message"))
		return 0;
	v = json_parse(row->body.data ? row->body.data : "", row->body.len);
	type = is_edit(v) ? json_get_str(v, "editType") : NULL;
	del = type && !strcmp(type, "delete");
	cJSON_Delete(v);
	return del;
}

int commit_checked(const struct outbox_row *row)
{
	if (!strcmp(row->kind, "contact_create"))
		return 1;
	return !strcmp(row->kind, "message") && !commit_idempotent(row);
}

/*
 * A check refused with -EACCES: by a 403 (the API will not show it) or by
 * a 401 (the token is refused; it would show it to a good one). The same
 * request once more tells which: -EKEYREJECTED for a 401, else -EACCES.
 */
static int refusal(struct driftfs *d, const char *path)
{
	struct http_response resp;
	int r;

	r = http_call(d->http, "GET", path, NULL, NULL, 0, 0, HTTP_NO_RETRY,
		      &resp);
	r = resp.status == 401 || (r == -EACCES && !resp.attempts)
		    ? -EKEYREJECTED
		    : -EACCES;
	http_response_release(&resp);
	return r;
}

int commit_landed(struct driftfs *d, const struct outbox_row *row,
		  struct buf *found)
{
	char probe[96];

	/* LANDED_SKEW_MS: how far the local clock may be ahead of the
	 * API's before a landed message is missed (and sent again). */
	struct landed_ctx l = { NULL, NULL, 0, row->created - LANDED_SKEW_MS,
				row->after_created, row->after_id, 0, 0, 0 };
	cJSON *v = json_parse(row->body.data ? row->body.data : "",
			      row->body.len);
	int r = 0;

	if (!commit_checked(row)) {
		cJSON_Delete(v);
		return 0;
	}
	if (!strcmp(row->kind, "message")) {
		/* Compared as text: the API may store the HTML otherwise. A
		 * message with no text (buttons only) cannot be told from
		 * another: it is sent again. */
		struct buf t = BUF_INIT;
		const cJSON *uid = cJSON_GetObjectItemCaseSensitive(v,
								    "userId");
		char key[64];

		snprintf(key, sizeof(key), "created:message:%lld",
			 (long long)row->target);
		l.exclude = store_meta_i64(d->store, key);
		l.type = json_get_str(v, "type") ? json_get_str(v, "type")
						 : "";
		if (uid && json_i64(uid, &l.user))
			l.user = 0;
		r = commit_message_text(json_get_str(v, "body"), &t);
		l.text = t.data;
		if (!r && t.len)
			r = api_messages(d->http, row->target, message_matches,
					 &l);
		snprintf(probe, sizeof(probe), "/conversations/%lld/messages",
			 (long long)row->target);
		if (r == -EACCES)
			r = refusal(d, probe);
		buf_release(&t);
	} else {
		const char *email = json_get_str(
			cJSON_GetObjectItemCaseSensitive(v, "attributes"),
			"email");

		char *q = NULL;

		/* A contact has no marks: the clock window alone, kept
		 * narrow (someone else's contact of that email, made a
		 * little earlier, is not ours). */
		l.since = row->created - 120000;
		if (email)
			r = api_contacts_by_email(d->http, email,
						  contact_matches, &l);
		if (r == -EACCES)
			q = api_query_escape(email);
		if (q) {
			snprintf(probe, sizeof(probe), "/contacts?email=%.80s",
				 q);
			r = refusal(d, probe);
			free(q);
		}
		/* No contact with that email: not created. */
		if (r == -ENOENT)
			r = 0;
	}
	cJSON_Delete(v);
	if (r)
		return r;
	/* What commit_applied() reads the new object's id from. */
	if (l.found && found && l.found_created && !strcmp(row->kind, "message"))
		r = buf_printf(found, "{\"id\":%lld,\"createdAt\":%lld}",
			       (long long)l.found, (long long)l.found_created);
	else if (l.found && found)
		r = buf_printf(found, "{\"id\":%lld}", (long long)l.found);
	return r ? r : l.found != 0;
}

/*
 * Fields that move on with every change in Drift and that a writer cannot
 * change: two versions that differ in one are different versions, however
 * alike the rest.
 */
static int version_marker(const char *name)
{
	return attribute_counter(name) || !strcmp(name, "updatedAt") ||
	       !strcmp(name, "updateDateTime");
}

/* Adds the differences of two JSON objects to *markers and *fields. */
static void json_distance(const cJSON *a, const cJSON *b, uint64_t *markers,
			  uint64_t *fields)
{
	const cJSON *x, *y;

	cJSON_ArrayForEach(x, a) {
		y = cJSON_GetObjectItemCaseSensitive(b, x->string);
		if (cJSON_IsObject(x) && cJSON_IsObject(y))
			json_distance(x, y, markers, fields);
		else if (!y || !cJSON_Compare(x, y, 1))
			(*(version_marker(x->string) ? markers : fields))++;
	}
	cJSON_ArrayForEach(y, b)
		if (!cJSON_GetObjectItemCaseSensitive(a, y->string))
			(*(version_marker(y->string) ? markers : fields))++;
}

/* A line's extent: non-empty, trimmed of \r (as split_lines reads it). */
struct line {
	const char *s;
	size_t n;
};

/* The non-empty lines of text, or NULL (*n 0 for none). */
static struct line *lines_of(const char *text, size_t len, size_t *n)
{
	struct line *v = calloc(len / 2 + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v && i < len;) {
		const char *e = memchr(text + i, '\n', len - i);
		size_t l = e ? (size_t)(e - text) - i : len - i;
		size_t next = i + l + 1;

		while (l && text[i + l - 1] == '\r')
			l--;
		if (l)
			v[(*n)++] = (struct line){ text + i, l };
		i = next;
	}
	return v;
}

/* Lines of a not among those of b. */
static uint64_t lines_missing(const struct line *a, size_t na,
			      const struct line *b, size_t nb)
{
	uint64_t d = 0;

	for (size_t i = 0; i < na; i++) {
		size_t j = 0;

		while (j < nb && (b[j].n != a[i].n ||
				  memcmp(b[j].s, a[i].s, a[i].n)))
			j++;
		d += j == nb;
	}
	return d;
}

uint64_t commit_base_distance(const char *a, size_t alen, const char *b,
			      size_t blen)
{
	cJSON *ja = json_parse(a, alen), *jb = NULL;
	uint64_t markers = 0, fields = 0;

	if (cJSON_IsObject(ja))
		jb = json_parse(b, blen);
	if (cJSON_IsObject(ja) && cJSON_IsObject(jb)) {
		json_distance(ja, jb, &markers, &fields);
	} else {
		size_t na, nb;
		struct line *la = lines_of(a, alen, &na);
		struct line *lb = lines_of(b, blen, &nb);

		if (la && lb)
			fields = lines_missing(la, na, lb, nb) +
				 lines_missing(lb, nb, la, na);
		else
			fields = UINT32_MAX;	/* no memory: the farthest */
		free(la);
		free(lb);
	}
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	if (fields > UINT32_MAX)
		fields = UINT32_MAX;
	return markers << 32 | fields;
}
