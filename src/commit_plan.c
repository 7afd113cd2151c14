// SPDX-License-Identifier: MIT
/* commit_plan.c: commit_plan(): the pure planners' entry, their shared
 * helpers, and the files that create (replies, notes, messages/new,
 * contacts/new, conversations/new). No store, no HTTP. Edits of stored
 * objects are commit_edit.c's, one-a-line files commit_lines.c's. */
#include "commit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_write.h"
#include "commit_int.h"
#include "json.h"
#include "log.h"

int commit_invalid(const char *fmt, ...)
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

/*
 * The target of a call about an object named by a string (an account id,
 * the email of a contact or conversation to create): its hash, as accounts
 * get their inode numbers. Emails compare without case, as the API's do.
 */
int64_t commit_string_target(const char *s, int fold)
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

void commit_plan_release(struct commit_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->calls[i].api_path);
		cJSON_Delete(p->calls[i].body);
	}
	free(p->calls);
	memset(p, 0, sizeof(*p));
}

int commit_plan_add(struct commit_plan *p, const char *kind, int64_t target,
		    int r, struct api_write_req *req)
{
	struct commit_call *c;

	if (r)
		return r;
	c = realloc(p->calls, (p->n + 1) * sizeof(*c));
	if (!c) {
		api_write_req_release(req);
		return -ENOMEM;
	}
	p->calls = c;
	c = &p->calls[p->n++];
	c->kind = kind;
	c->method = req->method;
	c->body = req->body;
	c->target = target;
	c->api_path = req->path;
	memset(req, 0, sizeof(*req));
	return 0;
}

cJSON *commit_parse(const char *data, size_t len, int *err)
{
	cJSON *v = json_parse(data, len);

	if (!v)
		*err = commit_invalid("not valid JSON");
	else if (!cJSON_IsObject(v)) {
		*err = commit_invalid("not a JSON object");
		cJSON_Delete(v);
		v = NULL;
	}
	return v;
}

/* The version an edit is compared with: the one the writer read, if known. */
const char *commit_edit_base(const struct commit_input *in, size_t *len)
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
int commit_parse_edit(const struct commit_input *in, cJSON **now,
		      cJSON **old)
{
	size_t blen;
	const char *base = commit_edit_base(in, &blen);
	int r = 0;

	*old = NULL;
	*now = commit_parse(in->data, in->len, &r);
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

void commit_free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
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

int commit_plan_message(struct commit_plan *p, int64_t conv, cJSON *msg)
{
	struct api_write_req req;

	return commit_plan_add(p, "message", conv,
			       api_write_message(conv, msg, &req), &req);
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
		return commit_invalid("an empty message");
	r = text_to_html(data, len, &html);
	msg = r ? NULL : api_write_text_message(type, html.data);
	buf_release(&html);
	if (!msg)
		return -ENOMEM;
	return commit_plan_message(p, in->id, msg);
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

	v = commit_parse(in->data, in->len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "type") && strcmp(f->string, "body") &&
		    strcmp(f->string, "buttons") && strcmp(f->string, "userId")) {
			r = commit_invalid("unknown field '%s' (allowed: type, "
					  "body, buttons, userId)",
				    f->string);
			goto out;
		}
	type = cJSON_GetObjectItemCaseSensitive(v, "type");
	for (size_t i = 0; cJSON_IsString(type) && i < 3; i++)
		ok |= !strcmp(type->valuestring, types[i]);
	if (!ok) {
		r = commit_invalid("field 'type' must be chat, private_note or "
				  "private_prompt");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (f && !cJSON_IsString(f)) {
		r = commit_invalid("field 'body' must be a string");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "buttons");
	if (f && !cJSON_IsArray(f)) {
		r = commit_invalid("field 'buttons' must be a list");
		goto out;
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "userId");
	if (f && (json_i64(f, &uid) || uid <= 0)) {
		r = commit_invalid("field 'userId' must be a user id");
		goto out;
	}
	r = commit_plan_message(p, in->id, v);
	v = NULL;
out:
	cJSON_Delete(v);
	return r;
}

/* contacts/new: {"attributes": {...}} or the attributes themselves. */
static int plan_new_contact(const struct commit_input *in,
			    struct commit_plan *p)
{
	struct api_write_req req;
	cJSON *v, *attrs;
	const char *email;
	int64_t target;
	int r = 0;

	v = commit_parse(in->data, in->len, &r);
	if (!v)
		return r;
	attrs = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	if (attrs && (!cJSON_IsObject(attrs) || cJSON_GetArraySize(v) != 1)) {
		cJSON_Delete(v);
		return commit_invalid("'attributes' must be the only field, "
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
		return commit_invalid("attribute 'email' (a string with an @) "
				     "is required");
	}
	target = commit_string_target(email, 1);
	return commit_plan_add(p, "contact_create", target,
			       api_write_contact_create(attrs, &req), &req);
}

/* conversations/new: {email, message, integrationSource, autoAssigneeId}. */
static int plan_new_conversation(const struct commit_input *in,
				 struct commit_plan *p)
{
	struct api_write_req req;
	cJSON *v, *msg, *attrs;
	const cJSON *f, *m;
	int r = 0;

	v = commit_parse(in->data, in->len, &r);
	if (!v)
		return r;
	for (f = v->child; f; f = f->next)
		if (strcmp(f->string, "email") && strcmp(f->string, "message") &&
		    strcmp(f->string, "integrationSource") &&
		    strcmp(f->string, "autoAssigneeId")) {
			r = commit_invalid("unknown field '%s' (allowed: email, "
					  "message, integrationSource, "
					  "autoAssigneeId)",
				    f->string);
			goto out;
		}
	if (!json_get_str(v, "email") || !strchr(json_get_str(v, "email"), '@')) {
		r = commit_invalid("field 'email' (an email address) is "
				  "required");
		goto out;
	}
	m = cJSON_GetObjectItemCaseSensitive(v, "message");
	if (!cJSON_IsString(m) && !cJSON_IsObject(m)) {
		r = commit_invalid("field 'message' (text, or an object with "
				  "'body') is required");
		goto out;
	}
	msg = cJSON_IsObject(m) ? cJSON_Duplicate(m, 1) : cJSON_CreateObject();
	if (!msg) {
		r = -ENOMEM;
		goto out;
	}
	if (cJSON_IsString(m))
		cJSON_AddStringToObject(msg, "body", m->valuestring);
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(msg, "body"))) {
		cJSON_Delete(msg);
		r = commit_invalid("field 'message.body' must be a string");
		goto out;
	}
	attrs = cJSON_GetObjectItemCaseSensitive(msg, "attributes");
	if (attrs && !cJSON_IsObject(attrs)) {
		/* integrationSource and autoAssigneeId would be lost in it. */
		cJSON_Delete(msg);
		r = commit_invalid("field 'message.attributes' must be an object");
		goto out;
	}
	r = commit_plan_add(
	    p, "conversation_create",
	    commit_string_target(json_get_str(v, "email"), 1),
	    api_write_conversation_create(
		json_get_str(v, "email"), msg,
		cJSON_GetObjectItemCaseSensitive(v, "integrationSource"),
		cJSON_GetObjectItemCaseSensitive(v, "autoAssigneeId"), &req),
	    &req);
out:
	cJSON_Delete(v);
	return r;
}

/*
 * A NUL byte ends a C string: the message body, note or JSON value would be
 * cut there, and less than the user wrote sent without a word. Refused, as
 * split_lines() refuses it in the one-a-line files (which it checks
 * itself; commit_plan_timeline() checks the escape in its JSON lines). In JSON,
 * a \u0000 escape is refused too: cJSON decodes it into the same cut.
 */
static int refuse_nul(const struct commit_input *in)
{
	const char *nul;

	if (in->kind == T_CONTACT_TAGS || in->kind == T_CONTACT_TIMELINE ||
	    in->kind == T_UNSUBSCRIBE || !in->len)
		return 0;
	nul = memchr(in->data, '\0', in->len);
	if (nul)
		return commit_invalid("a NUL byte at offset %zu (text cannot hold "
			       "one)", (size_t)(nul - in->data));
	if (in->kind == T_REPLY || in->kind == T_NOTE)
		return 0;	/* plain text: a backslash is a backslash */
	return commit_refuse_nul_escape(in->data, in->len, "");
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
		r = commit_plan_contact_json(in, out);
		break;
	case T_CONTACT_TAGS:
		r = commit_plan_tags(in, out);
		break;
	case T_CONTACT_TIMELINE:
		r = commit_plan_timeline(in, out);
		break;
	case T_UNSUBSCRIBE:
		r = commit_plan_unsubscribe(in, out);
		break;
	case T_USER_JSON:
		r = commit_plan_user(in, out);
		break;
	case T_CONVS_NEW:
		r = plan_new_conversation(in, out);
		break;
	case T_MESSAGE_JSON:
		r = commit_plan_message_json(in, out);
		break;
	case T_ACCOUNT_JSON:
		r = commit_plan_account(in, out);
		break;
	default:
		r = -EACCES;
	}
	if (r)
		commit_plan_release(out);
	return r;
}
