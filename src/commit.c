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
#include "outbox.h"
#include "sync.h"

/* Logs why content was refused and returns -EINVAL. */
static int invalid(const char *path, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int invalid(const char *path, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* The thread's context already names the path. */
	(void)path;
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
 * Queues one API call and tries it now. body is consumed. 0 when accepted
 * or queued, else the errno of a refusal.
 */
static int submit(struct driftfs *d, const char *path, const char *kind,
		  const char *method, const char *api_path, cJSON *body,
		  int64_t target)
{
	struct outbox_row row;
	struct buf resp = BUF_INIT;
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;
	int r;

	memset(&row, 0, sizeof(row));
	cJSON_Delete(body);
	if (body && !text)
		return -ENOMEM;
	row.path = strdup(path);
	row.kind = strdup(kind);
	row.method = strdup(method);
	row.api_path = strdup(api_path);
	row.target = target;
	r = row.path && row.kind && row.method && row.api_path ? 0 : -ENOMEM;
	if (!r && text)
		r = buf_adds(&row.body, text);
	free(text);
	if (!r)
		r = outbox_submit(d->outbox, &row, &resp);
	if (r == -EINPROGRESS) {
		log_info("%s: queued in the outbox; will retry", path);
		r = 0;
	}
	buf_release(&resp);
	store_outbox_row_release(&row);
	return r;
}

static cJSON *parse(const char *path, const char *data, size_t len, int *err)
{
	cJSON *v = json_parse(data, len);

	if (!v)
		*err = invalid(path, "not valid JSON");
	else if (!cJSON_IsObject(v)) {
		*err = invalid(path, "not a JSON object");
		cJSON_Delete(v);
		v = NULL;
	}
	return v;
}

/*
 * An edit of a stored file: *now is the new content (an object), *old the
 * stored object it replaces. Both are freed by the caller on success.
 */
static int parse_edit(struct driftfs *d, const char *path, enum store_query q,
		      int64_t id, const char *name, const char *data,
		      size_t len, cJSON **now, cJSON **old)
{
	struct buf cur = BUF_INIT;
	int r = 0;

	*old = NULL;
	*now = parse(path, data, len, &r);
	if (!*now)
		return r;
	r = store_blob(d->store, q, id, name, &cur);
	if (!r) {
		*old = json_parse(cur.data, cur.len);
		if (!*old)
			r = -EIO;
	}
	buf_release(&cur);
	if (r) {
		cJSON_Delete(*now);
		*now = NULL;
	}
	return r;
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

static int post_message(struct driftfs *d, const char *path, int64_t conv,
			cJSON *msg)
{
	char api[64];

	snprintf(api, sizeof(api), "/conversations/%lld/messages",
		 (long long)conv);
	return submit(d, path, "message", "POST", api, msg, conv);
}

/* reply and note: the text becomes a chat message or a private note. */
static int commit_text_message(struct driftfs *d, const char *path,
			       int64_t conv, const char *type,
			       const char *data, size_t len)
{
	struct buf html = BUF_INIT;
	cJSON *msg;
	int r;

	if (blank(data, len))
		return invalid(path, "an empty message");
	r = text_to_html(data, len, &html);
	msg = cJSON_CreateObject();
	if (r || !msg || !cJSON_AddStringToObject(msg, "type", type) ||
	    !cJSON_AddStringToObject(msg, "body", html.data)) {
		cJSON_Delete(msg);
		buf_release(&html);
		return -ENOMEM;
	}
	buf_release(&html);
	return post_message(d, path, conv, msg);
}

/* messages/new: {type, body, buttons, userId}; nothing else. */
static int commit_new_message(struct driftfs *d, const char *path,
			      int64_t conv, const char *data, size_t len)
{
	static const char *const types[] = { "chat", "private_note",
					     "private_prompt" };
	const cJSON *type, *f;
	cJSON *v;
	int r = 0, ok = 0;
	int64_t uid;

	v = parse(path, data, len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "type") && strcmp(f->string, "body") &&
		    strcmp(f->string, "buttons") && strcmp(f->string, "userId")) {
			r = invalid(path, "unknown field '%s' (allowed: type, "
					  "body, buttons, userId)",
				    f->string);
			goto out;
		}
	type = cJSON_GetObjectItemCaseSensitive(v, "type");
	for (size_t i = 0; cJSON_IsString(type) && i < 3; i++)
		ok |= !strcmp(type->valuestring, types[i]);
	if (!ok) {
		r = invalid(path, "field 'type' must be chat, private_note or "
				  "private_prompt");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (f && !cJSON_IsString(f)) {
		r = invalid(path, "field 'body' must be a string");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "buttons");
	if (f && !cJSON_IsArray(f)) {
		r = invalid(path, "field 'buttons' must be a list");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "userId");
	if (f && (json_i64(f, &uid) || uid <= 0)) {
		r = invalid(path, "field 'userId' must be a user id");
		goto out;
	}
	r = post_message(d, path, conv, v);
	v = NULL;
out:
	cJSON_Delete(v);
	return r;
}

/* contacts/new: {"attributes": {...}} or the attributes themselves. */
static int commit_new_contact(struct driftfs *d, const char *path,
			      const char *data, size_t len)
{
	cJSON *v, *attrs, *body;
	const char *email;
	int r = 0;

	v = parse(path, data, len, &r);
	if (!v)
		return r;
	attrs = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	if (attrs && (!cJSON_IsObject(attrs) || cJSON_GetArraySize(v) != 1)) {
		cJSON_Delete(v);
		return invalid(path, "'attributes' must be the only field, "
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
		return invalid(path, "attribute 'email' (a string with an @) "
				     "is required");
	}
	body = cJSON_CreateObject();
	if (!body) {
		cJSON_Delete(attrs);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(body, "attributes", attrs);
	return submit(d, path, "contact_create", "POST", "/contacts", body, 0);
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
static int commit_tag_changes(struct driftfs *d, const char *path,
			      int64_t id, char **add, size_t nadd,
			      char **del, size_t ndel)
{
	char api[1024];
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
		snprintf(api, sizeof(api), "/contacts/%lld/tags", (long long)id);
		r = submit(d, path, "tag_add", "POST", api, list, id);
	}
	for (size_t i = 0; i < ndel && !r; i++) {
		char *q = api_query_escape(del[i]);

		if (!q)
			return -ENOMEM;
		snprintf(api, sizeof(api), "/contacts/%lld/tags/%s",
			 (long long)id, q);
		free(q);
		r = submit(d, path, "tag_delete", "DELETE", api, NULL, id);
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
static int commit_contact_json(struct driftfs *d, const char *path,
			       int64_t id, const char *data, size_t len)
{
	cJSON *v = NULL, *old = NULL, *patch = NULL, *body;
	const cJSON *na, *oa, *f;
	char **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;
	int r;

	r = parse_edit(d, path, Q_CONTACT, id, NULL, data, len, &v, &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "attributes"))
			continue;
		if (!o) {
			r = invalid(path, "unknown field '%s'", f->string);
			goto out;
		}
		if (!cJSON_Compare(o, f, 1)) {
			r = invalid(path, "field '%s' is read-only", f->string);
			goto out;
		}
	}
	na = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	oa = cJSON_GetObjectItemCaseSensitive(old, "attributes");
	if (!cJSON_IsObject(na)) {
		r = invalid(path, "field 'attributes' must be an object");
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
				r = invalid(path, "attribute 'tags' must be a "
						  "list");
				goto out;
			}
			continue;
		}
		if (attribute_read_only(f->string)) {
			r = invalid(path, "attribute '%s' is read-only",
				    f->string);
			goto out;
		}
		if (cJSON_IsObject(f) || cJSON_IsArray(f)) {
			if (!o || (cJSON_IsObject(o) != cJSON_IsObject(f))) {
				r = invalid(path, "attribute '%s' has the "
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
			r = invalid(path, "attribute '%s' is read-only and "
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
			r = invalid(path, "a tag without a name");
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
		char api[64];

		body = cJSON_CreateObject();
		if (!body) {
			r = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToObject(body, "attributes", patch);
		patch = NULL;
		snprintf(api, sizeof(api), "/contacts/%lld", (long long)id);
		r = submit(d, path, "contact_patch", "PATCH", api, body, id);
	}
	if (!r)
		r = commit_tag_changes(d, path, id, add, nadd, del, ndel);
out:
	free_list(add, nadd);
	free_list(del, ndel);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* Splits text into its non-empty lines (trimmed of \r). */
static int split_lines(const char *data, size_t len, char ***out, size_t *n)
{
	char **v = NULL;
	size_t cap = 0;

	*n = 0;
	for (size_t i = 0; i < len;) {
		size_t e = i;

		while (e < len && data[e] != '\n')
			e++;
		size_t l = e - i;

		while (l && data[i + l - 1] == '\r')
			l--;
		if (l) {
			if (*n == cap) {
				char **p = realloc(v, (cap ? cap * 2 : 8) *
							      sizeof(*v));

				if (!p) {
					free_list(v, *n);
					return -ENOMEM;
				}
				v = p;
				cap = cap ? cap * 2 : 8;
			}
			v[*n] = strndup(data + i, l);
			if (!v[*n]) {
				free_list(v, *n);
				return -ENOMEM;
			}
			(*n)++;
		}
		i = e + 1;
	}
	*out = v;
	return 0;
}

static int in_list(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

/* tags: the new set of lines against the stored one. */
static int commit_tags(struct driftfs *d, const char *path, int64_t id,
		       const char *data, size_t len)
{
	struct buf cur = BUF_INIT;
	char **now = NULL, **was = NULL, **add, **del;
	size_t nnow = 0, nwas = 0, nadd = 0, ndel = 0;
	int r;

	r = store_blob(d->store, Q_CONTACT_TAGS, id, NULL, &cur);
	r = r ? r : split_lines(data, len, &now, &nnow);
	r = r ? r : split_lines(cur.data ? cur.data : "", cur.len, &was, &nwas);
	buf_release(&cur);
	if (r) {
		free_list(now, nnow);
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
	r = add && del ? commit_tag_changes(d, path, id, add, nadd, del, ndel)
		       : -ENOMEM;
	free_list(add, nadd);
	free_list(del, ndel);
	free_list(now, nnow);
	free_list(was, nwas);
	return r;
}

/* timeline: each line an event (text, or JSON {event, createdAt}). */
static int commit_timeline(struct driftfs *d, const char *path, int64_t id,
			   const char *data, size_t len)
{
	char **lines = NULL;
	size_t n = 0;
	cJSON **bodies;
	int r = split_lines(data, len, &lines, &n);

	if (r)
		return r;
	if (!n) {
		free_list(lines, n);
		return invalid(path, "no event (one a line)");
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

			event = json_get_str(j, "event");
			f = cJSON_GetObjectItemCaseSensitive(j, "createdAt");
			if (!j || !event || !*event)
				r = invalid(path, "line %zu: JSON events need "
						  "a string 'event'",
					    i + 1);
			else if (f && (json_i64(f, &at) || at <= 0))
				r = invalid(path, "line %zu: 'createdAt' must "
						  "be ms since the epoch",
					    i + 1);
		}
		if (!r && b) {
			cJSON_AddItemToObject(b, "contactId", id_node(id));
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
			r = submit(d, path, "timeline", "POST",
				   "/contacts/timeline", bodies[i], id);
		else
			cJSON_Delete(bodies[i]);
	}
	free(bodies);
	free_list(lines, n);
	return r;
}

/* unsubscribe: one email a line, one call for all. */
static int commit_unsubscribe(struct driftfs *d, const char *path,
			      const char *data, size_t len)
{
	char **lines = NULL;
	size_t n = 0;
	cJSON *list;
	int r = split_lines(data, len, &lines, &n);

	if (r)
		return r;
	for (size_t i = 0; i < n && !r; i++)
		if (!strchr(lines[i], '@') || strchr(lines[i], ' '))
			r = invalid(path, "line %zu is not an email address",
				    i + 1);
	if (!r && !n)
		r = invalid(path, "no email address (one a line)");
	list = r ? NULL : cJSON_CreateArray();
	for (size_t i = 0; list && i < n; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(lines[i]));
	free_list(lines, n);
	if (r)
		return r;
	return list ? submit(d, path, "unsubscribe", "POST",
			     "/emails/unsubscribe", list, 0)
		    : -ENOMEM;
}

/* users/<id>.json: PATCH the changed editable fields. */
static int commit_user(struct driftfs *d, const char *path, int64_t id,
		       const char *data, size_t len)
{
	static const char *const editable[] = { "name",	  "alias",
						"email",  "phone",
						"locale", "avatarUrl",
						"availability" };
	cJSON *v, *old = NULL, *patch = NULL;
	const cJSON *f;
	char api[64];
	int r;

	r = parse_edit(d, path, Q_USER, id, NULL, data, len, &v, &old);
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
			r = invalid(path, o ? "field '%s' is read-only"
					    : "unknown field '%s'",
				    f->string);
			goto out;
		}
		if (!cJSON_IsString(f)) {
			r = invalid(path, "field '%s' must be a string",
				    f->string);
			goto out;
		}
		if (!strcmp(f->string, "availability") &&
		    strcmp(f->valuestring, "AVAILABLE") &&
		    strcmp(f->valuestring, "OFFLINE")) {
			r = invalid(path, "field 'availability' must be "
					  "AVAILABLE or OFFLINE");
			goto out;
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
	}
	for (f = old->child; f; f = f->next)
		if (!cJSON_GetObjectItemCaseSensitive(v, f->string)) {
			r = invalid(path, "field '%s' cannot be removed",
				    f->string);
			goto out;
		}
	if (cJSON_GetArraySize(patch) == 0)
		goto out;
	snprintf(api, sizeof(api), "/users/update?userId=%lld", (long long)id);
	r = submit(d, path, "user_patch", "PATCH", api, patch, id);
	patch = NULL;
out:
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* conversations/new: {email, message, integrationSource, autoAssigneeId}. */
static int commit_new_conversation(struct driftfs *d, const char *path,
				   const char *data, size_t len)
{
	cJSON *v, *body = NULL, *msg, *attrs;
	const cJSON *f, *m;
	int r = 0;

	v = parse(path, data, len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "email") && strcmp(f->string, "message") &&
		    strcmp(f->string, "integrationSource") &&
		    strcmp(f->string, "autoAssigneeId")) {
			r = invalid(path, "unknown field '%s' (allowed: email, "
					  "message, integrationSource, "
					  "autoAssigneeId)",
				    f->string);
			goto out;
		}
	if (!json_get_str(v, "email") || !strchr(json_get_str(v, "email"), '@')) {
		r = invalid(path, "field 'email' (an email address) is "
				  "required");
		goto out;
	}
	m = cJSON_GetObjectItemCaseSensitive(v, "message");
	if (!cJSON_IsString(m) && !cJSON_IsObject(m)) {
		r = invalid(path, "field 'message' (text, or an object with "
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
		r = invalid(path, "field 'message.body' must be a string");
		goto out;
	}
	attrs = cJSON_GetObjectItemCaseSensitive(msg, "attributes");
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
	r = submit(d, path, "conversation_create", "POST", "/conversations/new",
		   body, 0);
	body = NULL;
out:
	cJSON_Delete(body);
	cJSON_Delete(v);
	return r;
}

/* messages/<id>.json: only the body may change (an edit of replace_body). */
static int commit_message_json(struct driftfs *d, const char *path,
			       int64_t id, const char *data, size_t len)
{
	struct store_row row;
	cJSON *v, *old = NULL, *msg = NULL;
	const cJSON *f;
	int r;

	r = store_one(d->store, Q_MESSAGE, id, NULL, &row);
	r = r ? r : parse_edit(d, path, Q_MESSAGE, id, NULL, data, len, &v,
			       &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "body")) {
			if (!cJSON_IsString(f)) {
				r = invalid(path, "field 'body' must be a "
						  "string");
				goto out;
			}
			continue;
		}
		if (!o || !cJSON_Compare(o, f, 1)) {
			r = invalid(path, o ? "field '%s' is read-only (only "
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
	cJSON_AddItemToObject(msg, "editedMessageId", id_node(id));
	cJSON_AddStringToObject(msg, "editType", "replace_body");
	cJSON_AddStringToObject(msg, "body", f->valuestring);
	r = post_message(d, path, row.id2, msg);
out:
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* accounts/<id>.json: PATCH with accountId and ownerId plus the changes. */
static int commit_account(struct driftfs *d, const char *path,
			  const char *name, const char *data, size_t len)
{
	static const char *const ro[] = { "accountId", "createDateTime",
					  "updateDateTime", "deleted" };
	cJSON *v, *old = NULL, *patch = NULL;
	const cJSON *f;
	int r, changed = 0;

	r = parse_edit(d, path, Q_ACCOUNT_BY_NAME, 0, name, data, len, &v,
		       &old);
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
				r = invalid(path, "field '%s' is read-only",
					    f->string);
				goto out;
			}
		if (!o) {
			r = invalid(path, "unknown field '%s'", f->string);
			goto out;
		}
		if ((o->type & 0xff) != (f->type & 0xff) &&
		    !(cJSON_IsBool(o) && cJSON_IsBool(f))) {
			r = invalid(path, "field '%s' has the wrong type",
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
	if (!cJSON_GetObjectItemCaseSensitive(patch, "ownerId"))
		cJSON_AddItemToObject(patch, "ownerId",
				      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
							      old, "ownerId"),
						      1));
	r = submit(d, path, "account_patch", "PATCH", "/accounts/update", patch,
		   0);
	patch = NULL;
out:
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

int commit_write(struct driftfs *d, const struct tnode *n, const char *path,
		 const char *data, size_t len)
{
	log_context_set(path);
	switch (n->kind) {
	case T_REPLY:
		return commit_text_message(d, path, n->id, "chat", data, len);
	case T_NOTE:
		return commit_text_message(d, path, n->id, "private_note",
					   data, len);
	case T_MESSAGES_NEW:
		return commit_new_message(d, path, n->id, data, len);
	case T_CONTACTS_NEW:
		return commit_new_contact(d, path, data, len);
	case T_CONTACT_JSON:
		return commit_contact_json(d, path, n->id, data, len);
	case T_CONTACT_TAGS:
		return commit_tags(d, path, n->id, data, len);
	case T_CONTACT_TIMELINE:
		return commit_timeline(d, path, n->id, data, len);
	case T_UNSUBSCRIBE:
		return commit_unsubscribe(d, path, data, len);
	case T_USER_JSON:
		return commit_user(d, path, n->id, data, len);
	case T_CONVS_NEW:
		return commit_new_conversation(d, path, data, len);
	case T_MESSAGE_JSON:
		return commit_message_json(d, path, n->id, data, len);
	case T_ACCOUNT_JSON:
		return commit_account(d, path, n->name, data, len);
	default:
		return -EACCES;
	}
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
			      n->id);
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
		return post_message(d, path, row.id2, msg);
	default:
		return -EPERM;
	}
}

/* The id in an API answer: data.id, or a bare object's id. */
static int64_t answer_id(const struct buf *response)
{
	cJSON *v = response->len ? json_parse(response->data, response->len)
				 : NULL;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(v, "data");
	int64_t id = 0;

	if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "messages")))
		o = NULL;
	if (json_get_i64(cJSON_IsObject(o) ? o : v, "id", &id))
		id = 0;
	cJSON_Delete(v);
	return id;
}

void commit_applied(struct driftfs *d, const struct outbox_row *row,
		    const struct buf *response)
{
	int64_t id;

	if (!strcmp(row->kind, "message")) {
		sync_note_write(d->sync, SO_CONVERSATION, row->target);
		id = answer_id(response);
		if (id) {
			char key[64];

			snprintf(key, sizeof(key), "created:message:%lld",
				 (long long)row->target);
			store_meta_set_i64(d->store, key, id);
		}
		sync_fetch_conversation(d->sync, row->target);
	} else if (!strcmp(row->kind, "contact_create")) {
		id = answer_id(response);
		if (id) {
			store_meta_set_i64(d->store, "created:contact", id);
			sync_fetch_contact(d->sync, id);
		}
	} else if (!strcmp(row->kind, "conversation_create")) {
		id = answer_id(response);
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

struct landed_ctx {
	const char *body;
	int64_t since;
	int found;
};

static int message_matches(void *ctx, struct api_message *m)
{
	struct landed_ctx *l = ctx;

	if (m->created >= l->since && m->body && !strcmp(m->body, l->body))
		l->found = 1;
	return 0;
}

/* For an edit: the edited message as it is now. */
struct edit_ctx {
	int64_t id;
	int seen;
	char *body;
};

static int find_edited(void *ctx, struct api_message *m)
{
	struct edit_ctx *e = ctx;

	if (m->id == e->id) {
		e->seen = 1;
		free(e->body);
		e->body = m->body ? strdup(m->body) : NULL;
	}
	return 0;
}

/* An edit landed when its effect shows: gone, or carrying the new body. */
static int edit_landed(struct driftfs *d, const struct outbox_row *row,
		       const cJSON *v)
{
	struct edit_ctx e = { 0, 0, NULL };
	const char *type = json_get_str(v, "editType");
	const char *body = json_get_str(v, "body");
	int r;

	if (json_get_i64(v, "editedMessageId", &e.id))
		return 0;
	r = api_messages(d->http, row->target, find_edited, &e);
	if (!r && type && !strcmp(type, "delete"))
		r = !e.seen;
	else if (!r)
		r = e.seen && e.body && body && !strcmp(e.body, body);
	free(e.body);
	return r;
}

static int contact_matches(void *ctx, const struct api_contact *c)
{
	struct landed_ctx *l = ctx;

	if (c->created >= l->since)
		l->found = 1;
	return 0;
}

int commit_landed(struct driftfs *d, const struct outbox_row *row)
{
	struct landed_ctx l = { NULL, row->created - 120000, 0 };
	cJSON *v = json_parse(row->body.data ? row->body.data : "",
			      row->body.len);
	int r = 0;

	if (!strcmp(row->kind, "message") &&
	    !strcmp(json_get_str(v, "type") ? json_get_str(v, "type") : "",
		    "edit")) {
		r = edit_landed(d, row, v);
		cJSON_Delete(v);
		return r;
	}
	if (!strcmp(row->kind, "message")) {
		l.body = json_get_str(v, "body");
		if (l.body)
			r = api_messages(d->http, row->target, message_matches,
					 &l);
	} else if (!strcmp(row->kind, "contact_create")) {
		const char *email = json_get_str(
			cJSON_GetObjectItemCaseSensitive(v, "attributes"),
			"email");

		if (email)
			r = api_contacts_by_email(d->http, email,
						  contact_matches, &l);
	}
	/* Timeline events and new conversations cannot be told apart from
	 * older ones: they are sent again (at least once). */
	cJSON_Delete(v);
	return r ? r : l.found;
}
