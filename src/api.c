// SPDX-License-Identifier: MIT
/* api.c: Drift endpoints, envelopes and paging, parsed into rows (see api.h). */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "names.h"

#define MAX_PAGES 100000
#define JSON_MAX ((size_t)32 << 20)

char *api_query_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;

		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			r = buf_addc(&b, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			r = buf_add(&b, e, 3);
		}
		if (r) {
			buf_release(&b);
			return NULL;
		}
	}
	return buf_detach(&b, NULL);
}

/* GETs path; the body (or a failure) in *resp, released by the caller. */
static int get_body(struct http *h, const char *path, struct http_response *resp)
{
	return http_call(h, "GET", path, NULL, NULL, 0, JSON_MAX, 0, resp);
}

/* Parses a response body. NULL (and *err, -EIO) when it is not JSON. */
static cJSON *parse_body(const char *where, const char *body, size_t len,
			 int *err)
{
	cJSON *v = json_parse(body ? body : "", len);

	*err = 0;
	if (!v) {
		log_error_event("GET %s: malformed JSON in the answer "
				"(%zu bytes)",
				where, len);
		*err = errno == ENOMEM ? -ENOMEM : -EIO;
	}
	return v;
}

static int shape_error(const char *path, const char *what)
{
	log_error_event("GET %s: unexpected response shape: %s", path, what);
	return -EIO;
}

/* A next-page link api_next_path() refused: -ENOMEM, or why, logged. */
static int next_refused(const char *path, const char *field)
{
	if (errno == ENOMEM)
		return -ENOMEM;
	log_error_event("GET %s: unexpected response shape: %s.next is not a "
			"URL of printable ASCII (a control, space, quote, "
			"backslash or non-ASCII byte, or no path): not "
			"followed",
			path, field);
	return -EIO;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int64_t get_ms(const cJSON *obj, const char *key)
{
	int64_t v = 0;

	if (json_get_i64(obj, key, &v) || v < 0)
		return 0;
	return v;
}

/*
 * One line of the tags file: the tag with the characters entry names
 * escape (names.h: controls, C1, bidi controls, U+2028/U+2029, invalid
 * UTF-8, and '%' itself) as %XX, so a tag stays on its own line, cannot
 * drive a terminal or reorder what it shows, and decodes back exactly
 * (commit.c decodes every line). Escaped, not removed as the text
 * sanitiser would, so that each tag still shows as one distinct line.
 */
static int add_tag_line(struct buf *out, const char *name)
{
	int r = names_escape_buf(out, name, strlen(name));

	return r ? r : buf_addc(out, '\n');
}

void api_contact_release(struct api_contact *c)
{
	free(c->email);
	free(c->external_id);
	free(c->name);
	buf_release(&c->json);
	buf_release(&c->tags);
	memset(c, 0, sizeof(*c));
}

static int parse_contact(const cJSON *v, struct api_contact *c)
{
	const cJSON *attrs, *tags, *ext;
	int r;

	memset(c, 0, sizeof(*c));
	if (!cJSON_IsObject(v) || json_get_i64(v, "id", &c->id) || c->id <= 0)
		return -EINVAL;
	c->created = get_ms(v, "createdAt");
	attrs = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	c->email = dup_or_null(json_get_str(attrs, "email"));
	c->name = dup_or_null(json_get_str(attrs, "name"));
	ext = cJSON_GetObjectItemCaseSensitive(attrs, "externalId");
	if (cJSON_IsString(ext)) {
		c->external_id = strdup(ext->valuestring);
	} else if (cJSON_IsNumber(ext) || cJSON_IsRaw(ext)) {
		int64_t n;

		if (!json_i64(ext, &n) &&
		    asprintf(&c->external_id, "%lld", (long long)n) < 0)
			c->external_id = NULL;
	}
	r = json_render(v, &c->json);
	tags = cJSON_GetObjectItemCaseSensitive(attrs, "tags");
	for (const cJSON *t = cJSON_IsArray(tags) ? tags->child : NULL;
	     t && !r; t = t->next) {
		const char *name = cJSON_IsString(t) ? t->valuestring
						     : json_get_str(t, "name");

		if (name)
			r = add_tag_line(&c->tags, name);
	}
	if (r)
		api_contact_release(c);
	return r;
}

int api_parse_contact(const char *where, const char *body, size_t len,
		      struct api_contact *out)
{
	cJSON *v;
	int err;

	memset(out, 0, sizeof(*out));
	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_contact(cJSON_GetObjectItemCaseSensitive(v, "data"), out);
	if (err == -EINVAL)
		err = shape_error(where, "no contact object with an id in data");
	cJSON_Delete(v);
	return err;
}

int api_contact_get(struct http *h, int64_t id, struct api_contact *out)
{
	struct http_response resp;
	char path[64];
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/contacts/%lld", (long long)id);
	err = get_body(h, path, &resp);
	if (!err)
		err = api_parse_contact(path, resp.body.data, resp.body.len,
					out);
	http_response_release(&resp);
	if (!err && out->id != id) {
		err = shape_error(path, "a different contact id in data");
		api_contact_release(out);
	}
	return err;
}

int api_parse_contact_list(const char *where, const char *body, size_t len,
			   api_contact_cb cb, void *ctx)
{
	const cJSON *data;
	cJSON *v;
	int err;

	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	/* The docs once showed a single object here: accept it too. */
	if (cJSON_IsObject(data)) {
		struct api_contact c;

		err = parse_contact(data, &c);
		if (!err) {
			err = cb(ctx, &c);
			api_contact_release(&c);
		} else {
			err = shape_error(where, "contact without an id");
		}
	} else if (cJSON_IsArray(data)) {
		for (const cJSON *e = data->child; e && !err; e = e->next) {
			struct api_contact c;

			if (parse_contact(e, &c)) {
				shape_error(where, "contact without an id");
				continue;
			}
			err = cb(ctx, &c);
			api_contact_release(&c);
		}
	} else {
		err = shape_error(where, "data is not a list");
	}
	cJSON_Delete(v);
	return err;
}

/* Walks a {"data": [contact...]} lookup answer. */
static int contact_list(struct http *h, const char *path, api_contact_cb cb,
			void *ctx)
{
	struct http_response resp;
	int err = get_body(h, path, &resp);

	if (!err)
		err = api_parse_contact_list(path, resp.body.data,
					     resp.body.len, cb, ctx);
	http_response_release(&resp);
	return err;
}

int api_contacts_by_email(struct http *h, const char *email, api_contact_cb cb,
			  void *ctx)
{
	char *q = api_query_escape(email), *path = NULL;
	int r = -ENOMEM;

	if (q && asprintf(&path, "/contacts?email=%s", q) >= 0)
		r = contact_list(h, path, cb, ctx);
	else
		path = NULL;
	free(q);
	free(path);
	return r;
}

int api_contacts_by_external_id(struct http *h, const char *ext,
				api_contact_cb cb, void *ctx)
{
	char *q = api_query_escape(ext), *path = NULL;
	int r = -ENOMEM;

	if (q && asprintf(&path, "/contacts?idType=external&id=%s", q) >= 0)
		r = contact_list(h, path, cb, ctx);
	else
		path = NULL;
	free(q);
	free(path);
	return r;
}

int api_parse_attributes(const char *where, const char *body, size_t len,
			 struct buf *json)
{
	const cJSON *data;
	cJSON *v;
	int err;

	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	if (cJSON_IsObject(data) || cJSON_IsArray(data))
		err = json_render(data, json);
	else
		err = shape_error(where, "no data object");
	cJSON_Delete(v);
	return err;
}

int api_contact_attributes(struct http *h, struct buf *json)
{
	const char *path = "/contacts/attributes";
	struct http_response resp;
	int err = get_body(h, path, &resp);

	if (!err)
		err = api_parse_attributes(path, resp.body.data, resp.body.len,
					   json);
	http_response_release(&resp);
	return err;
}

void api_user_release(struct api_user *u)
{
	free(u->email);
	free(u->name);
	buf_release(&u->json);
	memset(u, 0, sizeof(*u));
}

static int parse_user(const cJSON *v, struct api_user *u)
{
	int r;

	memset(u, 0, sizeof(*u));
	if (!cJSON_IsObject(v) || json_get_i64(v, "id", &u->id) || u->id <= 0)
		return -EINVAL;
	u->mtime = get_ms(v, "updatedAt");
	if (!u->mtime)
		u->mtime = get_ms(v, "createdAt");
	u->email = dup_or_null(json_get_str(v, "email"));
	u->name = dup_or_null(json_get_str(v, "name"));
	if (!u->name)
		u->name = dup_or_null(json_get_str(v, "alias"));
	u->bot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "bot"));
	r = json_render(v, &u->json);
	if (r)
		api_user_release(u);
	return r;
}

int api_parse_users(const char *where, const char *body, size_t len,
		    api_user_cb cb, void *ctx)
{
	const cJSON *data;
	cJSON *v;
	int err;

	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	/* A list, or (like the multi-get) a map keyed by id. */
	if (!cJSON_IsArray(data) && !cJSON_IsObject(data)) {
		err = shape_error(where, "data is not a list");
		goto out;
	}
	for (const cJSON *e = data->child; e && !err; e = e->next) {
		struct api_user u;

		if (parse_user(e, &u)) {
			shape_error(where, "user without an id");
			continue;
		}
		err = cb(ctx, &u);
		api_user_release(&u);
	}
out:
	cJSON_Delete(v);
	return err;
}

int api_users_list(struct http *h, api_user_cb cb, void *ctx)
{
	const char *path = "/users/list";
	struct http_response resp;
	int err = get_body(h, path, &resp);

	if (!err)
		err = api_parse_users(path, resp.body.data, resp.body.len, cb,
				      ctx);
	http_response_release(&resp);
	return err;
}

int api_parse_user(const char *where, const char *body, size_t len,
		   struct api_user *out)
{
	cJSON *v;
	int err;

	memset(out, 0, sizeof(*out));
	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_user(cJSON_GetObjectItemCaseSensitive(v, "data"), out);
	if (err == -EINVAL)
		err = shape_error(where, "no user object with an id in data");
	cJSON_Delete(v);
	return err;
}

int api_user_get(struct http *h, int64_t id, struct api_user *out)
{
	struct http_response resp;
	char path[64];
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/users/%lld", (long long)id);
	err = get_body(h, path, &resp);
	if (!err)
		err = api_parse_user(path, resp.body.data, resp.body.len, out);
	http_response_release(&resp);
	return err;
}

void api_conversation_release(struct api_conversation *c)
{
	buf_release(&c->json);
	memset(c, 0, sizeof(*c));
}

static int parse_conversation(const cJSON *v, int full,
			      struct api_conversation *c)
{
	const char *status;

	memset(c, 0, sizeof(*c));
	if (!cJSON_IsObject(v) || json_get_i64(v, "id", &c->id) || c->id <= 0)
		return -EINVAL;
	if (json_get_i64(v, "contactId", &c->contact_id) || c->contact_id < 0)
		c->contact_id = 0;
	c->created = get_ms(v, "createdAt");
	c->updated = get_ms(v, "updatedAt");
	if (!c->updated)
		c->updated = c->created;
	status = json_get_str(v, "status");
	if (status && strlen(status) < sizeof(c->status)) {
		for (size_t i = 0; status[i]; i++)
			c->status[i] = (char)(status[i] >= 'A' && status[i] <= 'Z'
						      ? status[i] + 32
						      : status[i]);
	}
	return full ? json_render(v, &c->json) : 0;
}

/* A paging cursor as a string (it may come as a string or a number). */
static char *cursor_string(const cJSON *next)
{
	char *s = NULL;

	if (cJSON_IsString(next) && next->valuestring[0])
		return strdup(next->valuestring);
	if (cJSON_IsRaw(next))
		return strdup(next->valuestring);
	if (cJSON_IsNumber(next) &&
	    asprintf(&s, "%.0f", next->valuedouble) >= 0)
		return s;
	return NULL;
}

/*
 * Catches a paging cursor that comes back (a cycle of any length, which
 * would otherwise page forever): each new cursor is compared with a mark
 * that moves to the current cursor whenever the page count reaches a power
 * of two (Brent's method), so a cycle is noticed within twice its length.
 * Returns 1 when next has been seen, 0 otherwise, -ENOMEM.
 */
static int cursor_cycles(char **mark, unsigned page, const char *next)
{
	if (*mark && !strcmp(*mark, next))
		return 1;
	if ((page & (page - 1)) == 0) {
		char *m = strdup(next);

		if (!m)
			return -ENOMEM;
		free(*mark);
		*mark = m;
	}
	return 0;
}

char *api_next_path(const char *url)
{
	const char *p = NULL;

	/* Only what RFC 3986 lets a URL hold: the path becomes a request
	 * line, an error line and a stats name, so an escape sequence or a
	 * quote in it would reach a terminal or a JSON string. */
	for (const unsigned char *q = (const unsigned char *)url; *q; q++)
		if (*q <= 0x20 || *q >= 0x7f || *q == '"' || *q == '\\')
			goto invalid;
	if (!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7))
		p = strstr(url, "://");
	if (p) {
		p = strchr(p + 3, '/');
		if (!p)
			goto invalid;
	} else if (url[0] == '/') {
		p = url;
	} else if (url[0] == '?') {
		char *s = NULL;

		if (asprintf(&s, "/conversations/list%s", url) < 0) {
			errno = ENOMEM;
			return NULL;
		}
		return s;
	} else {
		goto invalid;
	}
	return strdup(p);
invalid:
	errno = EINVAL;
	return NULL;
}

int api_parse_conversations_page(const char *where, const char *body,
				 size_t len, struct api_cursor *cur,
				 api_conversation_cb cb, void *ctx)
{
	const cJSON *data, *links, *pag, *more, *next;
	char *newnext = NULL;
	cJSON *v;
	int err;

	v = parse_body(where, body, len, &err);
	if (!v)
		goto out;
	cur->pages++;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	if (!cJSON_IsArray(data)) {
		err = shape_error(where, "data is not a list");
		goto out;
	}
	/* Work out the next page before handing out rows. */
	links = cJSON_GetObjectItemCaseSensitive(v, "links");
	pag = cJSON_GetObjectItemCaseSensitive(v, "pagination");
	next = cJSON_GetObjectItemCaseSensitive(links, "next");
	if (cJSON_IsString(next) && next->valuestring[0]) {
		newnext = api_next_path(next->valuestring);
		if (!newnext) {
			err = next_refused(where, "links");
			goto out;
		}
	} else if (cJSON_IsObject(pag)) {
		more = cJSON_GetObjectItemCaseSensitive(pag, "more");
		next = cJSON_GetObjectItemCaseSensitive(pag, "next");
		char *nv = cJSON_IsFalse(more) ? NULL : cursor_string(next);

		if (nv) {
			char *q = api_query_escape(nv);

			if (!q || asprintf(&newnext,
					   "/conversations/list?limit=%d&next=%s",
					   50, q) < 0)
				newnext = NULL;
			free(q);
			free(nv);
			if (!newnext) {
				err = -ENOMEM;
				goto out;
			}
		}
	}
	if (newnext) {
		int c = cursor_cycles(&cur->mark, cur->pages, newnext);

		if (c) {
			err = c < 0 ? c : shape_error(where, "the paging cursor "
							     "repeats");
			free(newnext);
			newnext = NULL;
		}
	}
	for (const cJSON *e = data->child; e && !err; e = e->next) {
		struct api_conversation c;

		if (parse_conversation(e, 0, &c)) {
			shape_error(where, "conversation without an id");
			continue;
		}
		err = cb(ctx, &c);
		api_conversation_release(&c);
	}
out:
	free(cur->next);
	cur->next = newnext;
	if (!newnext || err)
		cur->done = 1;
	cJSON_Delete(v);
	return err;
}

int api_conversations_page(struct http *h, struct api_cursor *cur,
			   api_conversation_cb cb, void *ctx)
{
	struct http_response resp;
	char *path = NULL;
	int err;

	if (cur->done)
		return 0;
	if (cur->pages >= MAX_PAGES) {
		log_error_event("GET /conversations/list: more than %d pages; "
				"stopping",
				MAX_PAGES);
		cur->done = 1;
		return -EIO;
	}
	if (cur->next) {
		path = strdup(cur->next);
	} else if (asprintf(&path, "/conversations/list?limit=%d",
			    cur->legacy_limit ? 50 : 100) < 0) {
		path = NULL;
	}
	if (!path)
		return -ENOMEM;
	err = get_body(h, path, &resp);
	if (err == -EINVAL && !cur->next && !cur->legacy_limit) {
		/* A server of the legacy style may refuse limit=100. */
		cur->legacy_limit = 1;
		http_response_release(&resp);
		free(path);
		return api_conversations_page(h, cur, cb, ctx);
	}
	if (!err) {
		err = api_parse_conversations_page(path, resp.body.data,
						   resp.body.len, cur, cb, ctx);
	} else {
		free(cur->next);
		cur->next = NULL;
		cur->done = 1;
	}
	http_response_release(&resp);
	free(path);
	return err;
}

void api_cursor_release(struct api_cursor *cur)
{
	free(cur->next);
	free(cur->mark);
	memset(cur, 0, sizeof(*cur));
}

int api_parse_conversation(const char *where, const char *body, size_t len,
			   struct api_conversation *out)
{
	cJSON *v;
	int err;

	memset(out, 0, sizeof(*out));
	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_conversation(cJSON_GetObjectItemCaseSensitive(v, "data"),
				 1, out);
	if (err == -EINVAL)
		err = shape_error(where, "no conversation with an id in data");
	cJSON_Delete(v);
	return err;
}

int api_conversation_get(struct http *h, int64_t id,
			 struct api_conversation *out)
{
	struct http_response resp;
	char path[64];
	int err;

	memset(out, 0, sizeof(*out));
	snprintf(path, sizeof(path), "/conversations/%lld", (long long)id);
	err = get_body(h, path, &resp);
	if (!err)
		err = api_parse_conversation(path, resp.body.data,
					     resp.body.len, out);
	http_response_release(&resp);
	return err;
}

void api_message_release(struct api_message *m)
{
	for (size_t i = 0; i < m->natt; i++) {
		free(m->att[i].file_name);
		free(m->att[i].mime);
	}
	free(m->att);
	free(m->body);
	buf_release(&m->json);
	memset(m, 0, sizeof(*m));
}

/*
 * The id of an attachment: its "id", else the one in .../attachments/N/...
 * N must be all digits, end at a '/' or the end, and fit: sscanf's %lld
 * took "99x", a sign or blanks, and saturated a longer number to
 * LLONG_MAX, giving two attachments one id.
 */
static int attachment_id(const cJSON *a, int64_t *id)
{
	const char *url, *p;
	char *end;
	long long n;

	if (!json_get_i64(a, "id", id) && *id > 0)
		return 0;
	url = json_get_str(a, "url");
	p = url ? strstr(url, "/attachments/") : NULL;
	if (!p)
		return -EINVAL;
	p += strlen("/attachments/");
	if (*p < '0' || *p > '9')
		return -EINVAL;
	errno = 0;
	n = strtoll(p, &end, 10);
	if (errno || (*end && *end != '/') || n <= 0)
		return -EINVAL;
	*id = n;
	return 0;
}

static int parse_attachments(const cJSON *list, struct api_message *m)
{
	size_t n = 0;

	if (cJSON_IsObject(list)) {
		n = 1;
	} else if (cJSON_IsArray(list)) {
		n = (size_t)cJSON_GetArraySize(list);
		list = list->child;
	} else {
		return 0;
	}
	m->att = calloc(n ? n : 1, sizeof(*m->att));
	if (!m->att)
		return -ENOMEM;
	for (size_t i = 0; i < n && list; i++, list = list->next) {
		struct api_attachment *a = &m->att[m->natt];
		const char *fn = json_get_str(list, "fileName");

		if (attachment_id(list, &a->id)) {
			log_error_event("message %lld: attachment without an "
					"id: not shown",
					(long long)m->id);
			continue;
		}
		a->file_name = strdup(fn ? fn : "");
		a->mime = dup_or_null(json_get_str(list, "mimeType"));
		if (!a->file_name)
			return -ENOMEM;
		m->natt++;
	}
	return 0;
}

static int parse_message(const cJSON *v, int64_t conv, struct api_message *m)
{
	const cJSON *author, *att;
	const char *s;
	int r;

	memset(m, 0, sizeof(*m));
	if (!cJSON_IsObject(v) || json_get_i64(v, "id", &m->id) || m->id <= 0)
		return -EINVAL;
	if (json_get_i64(v, "conversationId", &m->conversation_id))
		m->conversation_id = conv;
	m->created = get_ms(v, "createdAt");
	author = cJSON_GetObjectItemCaseSensitive(v, "author");
	if (json_get_i64(author, "id", &m->author_id))
		m->author_id = 0;
	s = json_get_str(author, "type");
	snprintf(m->author_type, sizeof(m->author_type), "%s", s ? s : "");
	m->bot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(author, "bot"));
	s = json_get_str(v, "type");
	snprintf(m->type, sizeof(m->type), "%s", s ? s : "chat");
	m->body = strdup((s = json_get_str(v, "body")) ? s : "");
	if (!m->body)
		return -ENOMEM;
	att = cJSON_GetObjectItemCaseSensitive(v, "attachments");
	if (!att)
		att = cJSON_GetObjectItemCaseSensitive(v, "attachment");
	r = parse_attachments(att, m);
	r = r ? r : json_render(v, &m->json);
	if (r)
		api_message_release(m);
	return r;
}

int api_parse_messages_page(const char *where, const char *body, size_t len,
			    int64_t conversation_id, api_message_cb cb,
			    void *ctx, char **next)
{
	const cJSON *data, *list, *pag, *more, *cursor;
	cJSON *v;
	int err;

	*next = NULL;
	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	list = cJSON_GetObjectItemCaseSensitive(data, "messages");
	if (!list && cJSON_IsArray(data))
		list = data;
	if (!cJSON_IsArray(list)) {
		err = shape_error(where, "no data.messages list");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_message m;
		int pr = parse_message(e, conversation_id, &m);

		if (pr == -EINVAL) {
			shape_error(where, "message without an id");
			continue;
		}
		err = pr ? pr : cb(ctx, &m);
		if (!pr)
			api_message_release(&m);
	}
	pag = cJSON_GetObjectItemCaseSensitive(v, "pagination");
	more = cJSON_GetObjectItemCaseSensitive(pag, "more");
	cursor = cJSON_GetObjectItemCaseSensitive(pag, "next");
	if (!err && !cJSON_IsFalse(more) && cJSON_GetArraySize(list) > 0)
		*next = cursor_string(cursor);
out:
	cJSON_Delete(v);
	return err;
}

int api_messages(struct http *h, int64_t conversation_id, api_message_cb cb,
		 void *ctx)
{
	char *path = NULL, *cursor = NULL, *mark = NULL;
	int err = 0;

	for (unsigned page = 0; page < MAX_PAGES; page++) {
		struct http_response resp;
		char *q = NULL, *newcur = NULL;

		if (cursor) {
			q = api_query_escape(cursor);
			if (!q) {
				err = -ENOMEM;
				break;
			}
		}
		free(path);
		if (asprintf(&path, "/conversations/%lld/messages%s%s",
			     (long long)conversation_id, q ? "?next=" : "",
			     q ? q : "") < 0) {
			path = NULL;
			free(q);
			err = -ENOMEM;
			break;
		}
		free(q);
		err = get_body(h, path, &resp);
		if (!err)
			err = api_parse_messages_page(path, resp.body.data,
						      resp.body.len,
						      conversation_id, cb, ctx,
						      &newcur);
		http_response_release(&resp);
		if (!newcur || err) {
			free(newcur);
			break;
		}
		err = cursor_cycles(&mark, page + 1, newcur);
		if (err) {
			if (err > 0)
				err = shape_error(path, "the paging cursor repeats");
			free(newcur);
			break;
		}
		free(cursor);
		cursor = newcur;
	}
	free(cursor);
	free(mark);
	free(path);
	return err;
}

struct fd_sink {
	int fd;
	int64_t size;
};

static int fd_sink(void *ctx, const void *data, size_t len)
{
	struct fd_sink *s = ctx;
	const char *p = data;

	if (!data) {
		s->size = 0;
		if (ftruncate(s->fd, 0) || lseek(s->fd, 0, SEEK_SET) < 0)
			return -errno;
		return 0;
	}
	while (len) {
		ssize_t n = write(s->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
		s->size += n;
	}
	return 0;
}

int api_attachment_save(struct http *h, int64_t id, size_t max, int fd,
			int64_t *size)
{
	struct fd_sink sink = { fd, 0 };
	struct http_response resp;
	char path[64];
	struct http_request rq = {
		.method = "GET",
		.path = path,
		.max_body = max,
		.sink = fd_sink,
		.sink_ctx = &sink,
	};
	int err;

	snprintf(path, sizeof(path), "/attachments/%lld/data", (long long)id);
	err = http_request(h, &rq, &resp);
	http_response_release(&resp);
	*size = sink.size;
	return err;
}

void api_object_release(struct api_object *o)
{
	free(o->key);
	buf_release(&o->json);
	memset(o, 0, sizeof(*o));
}

int api_parse_playbooks(const char *where, const char *body, size_t len,
			api_object_cb cb, void *ctx)
{
	const cJSON *list;
	cJSON *v;
	int err;

	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	/* A bare array; tolerate the usual envelope as well. */
	list = cJSON_IsArray(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "data");
	if (!cJSON_IsArray(list)) {
		err = shape_error(where, "not a list of playbooks");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_object o = { 0 };

		if (json_get_i64(e, "id", &o.id) || o.id <= 0) {
			shape_error(where, "playbook without an id");
			continue;
		}
		o.mtime = get_ms(e, "updatedAt");
		if (!o.mtime)
			o.mtime = get_ms(e, "createdAt");
		err = json_render(e, &o.json);
		err = err ? err : cb(ctx, &o);
		api_object_release(&o);
	}
out:
	cJSON_Delete(v);
	return err;
}

int api_playbooks(struct http *h, api_object_cb cb, void *ctx)
{
	const char *path = "/playbooks/list";
	struct http_response resp;
	int err = get_body(h, path, &resp);

	if (!err)
		err = api_parse_playbooks(path, resp.body.data, resp.body.len,
					  cb, ctx);
	http_response_release(&resp);
	return err;
}

int api_parse_accounts_page(const char *where, const char *body, size_t len,
			    api_object_cb cb, void *ctx, char **next_path)
{
	const cJSON *data, *list, *next;
	cJSON *v;
	int err;

	*next_path = NULL;
	v = parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	list = cJSON_GetObjectItemCaseSensitive(data, "accounts");
	if (!cJSON_IsArray(list)) {
		err = shape_error(where, "no data.accounts list");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_object o = { 0 };
		const char *id = json_get_str(e, "accountId");

		if (!id || !*id) {
			shape_error(where, "account without accountId");
			continue;
		}
		o.key = strdup(id);
		o.mtime = get_ms(e, "updateDateTime");
		if (!o.mtime)
			o.mtime = get_ms(e, "createDateTime");
		err = o.key ? json_render(e, &o.json) : -ENOMEM;
		err = err ? err : cb(ctx, &o);
		api_object_release(&o);
	}
	next = cJSON_GetObjectItemCaseSensitive(data, "next");
	if (!err && cJSON_IsString(next) && next->valuestring[0] &&
	    cJSON_GetArraySize(list) > 0) {
		*next_path = api_next_path(next->valuestring);
		if (!*next_path)
			err = next_refused(where, "data");
	}
out:
	cJSON_Delete(v);
	return err;
}

int api_accounts(struct http *h, api_object_cb cb, void *ctx)
{
	char *path = strdup("/accounts?index=0&size=65"), *mark = NULL;
	int err = 0;

	for (unsigned page = 0; path && page < MAX_PAGES && !err; page++) {
		struct http_response resp;
		char *newpath = NULL;

		err = get_body(h, path, &resp);
		if (!err)
			err = api_parse_accounts_page(path, resp.body.data,
						      resp.body.len, cb, ctx,
						      &newpath);
		http_response_release(&resp);
		if (!err && newpath) {
			err = cursor_cycles(&mark, page + 1, newpath);
			if (err) {
				if (err > 0)
					err = shape_error(path, "the paging "
								"cursor repeats");
				free(newpath);
				newpath = NULL;
			}
		}
		free(path);
		path = newpath;
	}
	free(path);
	free(mark);
	return err;
}

/* "orgId:1351205" (token_info's authenticated_userid) or a bare number. */
static int64_t org_from(const cJSON *v)
{
	const char *who = json_get_str(v, "authenticated_userid");
	int64_t org = 0;
	char *end;

	if (who && !strncmp(who, "orgId:", 6)) {
		errno = 0;
		org = strtoll(who + 6, &end, 10);
		if (errno || end == who + 6 || *end)
			org = 0;
	}
	/* drift-api.md §2.2: token answers may carry orgId at top level. */
	if (org <= 0 && json_get_i64(v, "orgId", &org))
		org = 0;
	return org > 0 ? org : 0;
}

/* Zeroes the string a JSON tree holds under key (a token), if any. */
static void scrub_item(cJSON *obj, const char *key)
{
	cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	if (cJSON_IsString(it) && it->valuestring)
		memset(it->valuestring, 0, strlen(it->valuestring));
}

int api_token_info(struct http *h, const char *token, long timeout_ms,
		   struct api_token_info *out)
{
	struct http_response resp;
	struct http_request rq = {
		.method = "POST",
		.path = "/app/token_info",
		.max_body = JSON_MAX,
		/* A quick check is asked once: a start must not wait out
		 * retries on a network that does not answer. */
		.flags = timeout_ms > 0 ? HTTP_NO_RETRY : HTTP_IDEMPOTENT,
		.timeout_ms = timeout_ms,
	};
	cJSON *body = cJSON_CreateObject(), *v = NULL;
	char *text = NULL;
	int err = 0;

	memset(out, 0, sizeof(*out));
	memset(&resp, 0, sizeof(resp));
	if (!body || !cJSON_AddStringToObject(body, "access_token", token)) {
		err = -ENOMEM;
		goto out;
	}
	text = cJSON_PrintUnformatted(body);
	if (!text) {
		err = -ENOMEM;
		goto out;
	}
	rq.body = text;
	rq.body_len = strlen(text);
	err = http_request(h, &rq, &resp);
	out->status = resp.status;
	snprintf(out->message, sizeof(out->message), "%s", resp.message);
	if (!err)
		v = json_parse(resp.body.data ? resp.body.data : "",
			       resp.body.len);
	if (v) {
		const char *sc = json_get_str(v, "scope");

		out->org = org_from(v);
		if (sc)
			snprintf(out->scope, sizeof(out->scope), "%s", sc);
		if (json_get_i64(v, "expires_in", &out->expires_in))
			out->expires_in = 0;
	} else if (!err) {
		err = -EIO;
	}
	/* The answer echoes the token back (drift-api.md §2.3). */
	scrub_item(v, "access_token");
	cJSON_Delete(v);
	if (resp.body.data)
		memset(resp.body.data, 0, resp.body.len);
	http_response_release(&resp);
out:
	if (text) {
		memset(text, 0, strlen(text));
		free(text);
	}
	scrub_item(body, "access_token");
	cJSON_Delete(body);
	return err;
}

int api_users_org(struct http *h, long timeout_ms, int64_t *org)
{
	const char *path = "/users/list";
	struct http_response resp;
	struct http_request rq = {
		.method = "GET",
		.path = path,
		.max_body = JSON_MAX,
		.flags = timeout_ms > 0 ? HTTP_NO_RETRY : 0,
		.timeout_ms = timeout_ms,
	};
	cJSON *v = NULL, *data, *u;
	int err = http_request(h, &rq, &resp);

	*org = 0;
	if (!err)
		v = parse_body(path, resp.body.data, resp.body.len, &err);
	data = v ? cJSON_GetObjectItemCaseSensitive(v, "data") : NULL;
	if (!cJSON_IsArray(data))
		data = NULL;
	cJSON_ArrayForEach(u, data)
	{
		int64_t o;

		if (!json_get_i64(u, "orgId", &o) && o > 0) {
			*org = o;
			break;
		}
	}
	if (!err && !*org)
		err = -ENOENT;
	cJSON_Delete(v);
	http_response_release(&resp);
	return err;
}
