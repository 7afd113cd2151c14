// SPDX-License-Identifier: MIT
/* api_write.c: the paths, bodies and answers of Drift's write endpoints
 * (see api_write.h). What a user's bytes mean is commit's; the reads are
 * api.c's. */
#include "api_write.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "json.h"

void api_write_req_release(struct api_write_req *r)
{
	free(r->path);
	cJSON_Delete(r->body);
	memset(r, 0, sizeof(*r));
}

/*
 * Fills out; body is consumed. The path is formatted whole, however long:
 * a tag delete names the tag in it, and a cut name would name another tag
 * or none.
 */
static int req(struct api_write_req *out, const char *method, cJSON *body,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int req(struct api_write_req *out, const char *method, cJSON *body,
	       const char *fmt, ...)
{
	va_list ap;
	int n;

	memset(out, 0, sizeof(*out));
	va_start(ap, fmt);
	n = vasprintf(&out->path, fmt, ap);
	va_end(ap);
	if (n < 0) {
		out->path = NULL;
		cJSON_Delete(body);
		return -ENOMEM;
	}
	out->method = method;
	out->body = body;
	return 0;
}

/* A JSON number node holding an id exactly (cJSON numbers are doubles). */
static cJSON *id_node(int64_t id)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%lld", (long long)id);
	return cJSON_CreateRaw(tmp);
}

cJSON *api_write_text_message(const char *type, const char *html)
{
	cJSON *msg = cJSON_CreateObject();

	if (!msg || !cJSON_AddStringToObject(msg, "type", type) ||
	    !cJSON_AddStringToObject(msg, "body", html)) {
		cJSON_Delete(msg);
		return NULL;
	}
	return msg;
}

cJSON *api_write_message_edit(int64_t id, const char *edit_type,
			      const char *body)
{
	cJSON *msg = cJSON_CreateObject();

	if (!msg)
		return NULL;
	cJSON_AddStringToObject(msg, "type", "edit");
	cJSON_AddItemToObject(msg, "editedMessageId", id_node(id));
	cJSON_AddStringToObject(msg, "editType", edit_type);
	cJSON_AddStringToObject(msg, "body", body);
	return msg;
}

int api_write_message(int64_t conv, cJSON *msg, struct api_write_req *out)
{
	return req(out, "POST", msg, "/conversations/%lld/messages",
		   (long long)conv);
}

int api_write_conversation_create(const char *email, cJSON *msg,
				  const cJSON *source, const cJSON *assignee,
				  struct api_write_req *out)
{
	cJSON *body = cJSON_CreateObject(), *attrs;

	memset(out, 0, sizeof(*out));
	if (!body) {
		cJSON_Delete(msg);
		return -ENOMEM;
	}
	attrs = cJSON_GetObjectItemCaseSensitive(msg, "attributes");
	if (!attrs)
		attrs = cJSON_AddObjectToObject(msg, "attributes");
	if (source)
		cJSON_AddItemToObject(attrs, "integrationSource",
				      cJSON_Duplicate(source, 1));
	if (assignee)
		cJSON_AddItemToObject(attrs, "autoAssigneeId",
				      cJSON_Duplicate(assignee, 1));
	cJSON_AddStringToObject(body, "email", email);
	cJSON_AddItemToObject(body, "message", msg);
	return req(out, "POST", body, "/conversations/new");
}

int api_write_contact_create(cJSON *attrs, struct api_write_req *out)
{
	cJSON *body = cJSON_CreateObject();

	memset(out, 0, sizeof(*out));
	if (!body) {
		cJSON_Delete(attrs);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(body, "attributes", attrs);
	return req(out, "POST", body, "/contacts");
}

int api_write_contact_patch(int64_t id, cJSON *attrs,
			    struct api_write_req *out)
{
	cJSON *body = cJSON_CreateObject();

	memset(out, 0, sizeof(*out));
	if (!body) {
		cJSON_Delete(attrs);
		return -ENOMEM;
	}
	cJSON_AddItemToObject(body, "attributes", attrs);
	return req(out, "PATCH", body, "/contacts/%lld", (long long)id);
}

int api_write_contact_delete(int64_t id, struct api_write_req *out)
{
	return req(out, "DELETE", NULL, "/contacts/%lld", (long long)id);
}

int api_write_tags_add(int64_t id, char *const *names, size_t n,
		       struct api_write_req *out)
{
	cJSON *list = cJSON_CreateArray();

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; list && i < n; i++) {
		cJSON *t = cJSON_CreateObject();

		cJSON_AddStringToObject(t, "name", names[i]);
		cJSON_AddItemToArray(list, t);
	}
	if (!list)
		return -ENOMEM;
	return req(out, "POST", list, "/contacts/%lld/tags", (long long)id);
}

int api_write_tag_delete(int64_t id, const char *name,
			 struct api_write_req *out)
{
	char *q = api_query_escape(name);
	int r;

	memset(out, 0, sizeof(*out));
	if (!q)
		return -ENOMEM;
	r = req(out, "DELETE", NULL, "/contacts/%lld/tags/%s", (long long)id,
		q);
	free(q);
	return r;
}

cJSON *api_write_timeline_body(int64_t contact, const char *event,
			       int64_t at)
{
	cJSON *b = cJSON_CreateObject();

	if (!b)
		return NULL;
	cJSON_AddItemToObject(b, "contactId", id_node(contact));
	cJSON_AddStringToObject(b, "event", event);
	if (at)
		cJSON_AddItemToObject(b, "createdAt", id_node(at));
	return b;
}

int api_write_timeline(cJSON *body, struct api_write_req *out)
{
	return req(out, "POST", body, "/contacts/timeline");
}

int api_write_unsubscribe(char *const *emails, size_t n,
			  struct api_write_req *out)
{
	cJSON *list = cJSON_CreateArray();

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; list && i < n; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(emails[i]));
	if (!list)
		return -ENOMEM;
	return req(out, "POST", list, "/emails/unsubscribe");
}

int api_write_user_patch(int64_t id, cJSON *patch, struct api_write_req *out)
{
	return req(out, "PATCH", patch, "/users/update?userId=%lld",
		   (long long)id);
}

int api_write_account_patch(cJSON *patch, const cJSON *account_id,
			    const cJSON *owner_id, struct api_write_req *out)
{
	cJSON_AddItemToObject(patch, "accountId",
			      cJSON_Duplicate(account_id, 1));
	if (!cJSON_GetObjectItemCaseSensitive(patch, "ownerId"))
		cJSON_AddItemToObject(patch, "ownerId",
				      cJSON_Duplicate(owner_id, 1));
	return req(out, "PATCH", patch, "/accounts/update");
}

/*
 * The id (and createdAt, ms, when it has one) in an API answer: data.id,
 * the first of data.messages[] (drift-api.md: a message POST may answer
 * either way), or a bare object's id.
 */
int64_t api_write_answer_id(const char *body, size_t len, int64_t *created)
{
	cJSON *v = len ? json_parse(body, len) : NULL;
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

int api_write_message_kind(const cJSON *msg)
{
	const char *type = json_get_str(msg, "type");
	const char *edit;

	if (!type || strcmp(type, "edit"))
		return API_MSG_NEW;
	edit = json_get_str(msg, "editType");
	return edit && !strcmp(edit, "delete") ? API_MSG_DELETE : API_MSG_EDIT;
}

int api_write_message_kind_of(const char *body, size_t len)
{
	cJSON *v = json_parse(body ? body : "", len);
	int kind = api_write_message_kind(v);

	cJSON_Delete(v);
	return kind;
}

int api_write_post_parse(const char *body, size_t len,
			 struct api_write_post *out)
{
	cJSON *v = json_parse(body ? body : "", len);
	const cJSON *uid = cJSON_GetObjectItemCaseSensitive(v, "userId");
	const char *type = json_get_str(v, "type");
	const char *html = json_get_str(v, "body");
	int r = 0;

	memset(out, 0, sizeof(*out));
	out->type = strdup(type ? type : "");
	out->html = html ? strdup(html) : NULL;
	if (!out->type || (html && !out->html))
		r = -ENOMEM;
	if (uid && json_i64(uid, &out->user))
		out->user = 0;
	cJSON_Delete(v);
	return r;
}

void api_write_post_release(struct api_write_post *p)
{
	free(p->type);
	free(p->html);
	memset(p, 0, sizeof(*p));
}

int api_write_contact_email(const char *body, size_t len, char **email)
{
	cJSON *v = json_parse(body ? body : "", len);
	const char *e = json_get_str(
		cJSON_GetObjectItemCaseSensitive(v, "attributes"), "email");

	*email = e ? strdup(e) : NULL;
	cJSON_Delete(v);
	return e && !*email ? -ENOMEM : 0;
}

char *api_write_messages_probe(int64_t conv)
{
	char *path;

	if (asprintf(&path, "/conversations/%lld/messages", (long long)conv) <
	    0)
		return NULL;
	return path;
}

char *api_write_contacts_probe(const char *email)
{
	char *q = api_query_escape(email), *path = NULL;

	/* At most 95 bytes, as the buffer it was made in held. */
	if (q && asprintf(&path, "/contacts?email=%.79s", q) < 0)
		path = NULL;
	free(q);
	return path;
}
