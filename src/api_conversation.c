// SPDX-License-Identifier: MIT
/*
 * api_conversation.c: the conversation list (both paging styles), the
 * account's conversation count, one conversation, its messages (all
 * pages) and the bytes of an attachment.
 * Not the shared paging helpers (api.c) nor any write.
 */
#include "api.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_int.h"
#include "json.h"
#include "log.h"

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
	c->created = api_get_ms(v, "createdAt");
	c->updated = api_get_ms(v, "updatedAt");
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

int api_parse_conversations_page(const char *where, const char *body,
				 size_t len, struct api_cursor *cur,
				 api_conversation_cb cb, void *ctx)
{
	const cJSON *data, *links, *pag, *more, *next;
	char *newnext = NULL;
	cJSON *v;
	int err;

	v = api_parse_body(where, body, len, &err);
	if (!v)
		goto out;
	cur->pages++;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	if (!cJSON_IsArray(data)) {
		err = api_shape_error(where, "data is not a list");
		goto out;
	}
	/* Work out the next page before handing out rows. */
	links = cJSON_GetObjectItemCaseSensitive(v, "links");
	pag = cJSON_GetObjectItemCaseSensitive(v, "pagination");
	next = cJSON_GetObjectItemCaseSensitive(links, "next");
	if (cJSON_IsString(next) && next->valuestring[0]) {
		newnext = api_next_path(next->valuestring);
		if (!newnext) {
			err = api_next_refused(where, "links");
			goto out;
		}
	} else if (cJSON_IsObject(pag)) {
		more = cJSON_GetObjectItemCaseSensitive(pag, "more");
		next = cJSON_GetObjectItemCaseSensitive(pag, "next");
		char *nv = cJSON_IsFalse(more) ? NULL : api_cursor_string(next);

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
		int c = api_cursor_cycles(&cur->mark, cur->pages, newnext);

		if (c) {
			err = c < 0 ? c
				    : api_shape_error(where, "the paging "
						      "cursor repeats");
			free(newnext);
			newnext = NULL;
		}
	}
	for (const cJSON *e = data->child; e && !err; e = e->next) {
		struct api_conversation c;

		if (parse_conversation(e, 0, &c)) {
			api_shape_error(where, "conversation without an id");
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
	err = api_get_body(h, path, &resp);
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
	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_conversation(cJSON_GetObjectItemCaseSensitive(v, "data"),
				 1, out);
	if (err == -EINVAL)
		err = api_shape_error(where,
				      "no conversation with an id in data");
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
	err = api_get_body(h, path, &resp);
	if (!err)
		err = api_parse_conversation(path, resp.body.data,
					     resp.body.len, out);
	http_response_release(&resp);
	return err;
}

/* The counts by status of one conversationCount member: a number, or an
 * object of numbers (members of other kinds skipped); -ENODATA for
 * anything else, or when a count is negative or the sum overflows. */
/* A total beyond any account (2^40 conversations) is not believed: the
 * estimate of the time left divides by it, and it is only shown. */
#define STATS_TOTAL_MAX ((int64_t)1 << 40)

static int stats_sum(const cJSON *count, int64_t *total)
{
	int64_t n, sum = 0;
	int seen = 0;

	if (!json_i64(count, &n) && n >= 0) {
		if (n > STATS_TOTAL_MAX)
			return -ENODATA;
		*total = n;
		return 0;
	}
	if (!cJSON_IsObject(count))
		return -ENODATA;
	for (const cJSON *e = count->child; e; e = e->next) {
		if (json_i64(e, &n))
			continue;
		if (n < 0 || sum > INT64_MAX - n)
			return -ENODATA;
		sum += n;
		seen = 1;
	}
	if (!seen || sum > STATS_TOTAL_MAX)
		return -ENODATA;
	*total = sum;
	return 0;
}

int api_parse_conversation_stats(const char *body, size_t len,
				 int64_t *total)
{
	cJSON *v = json_parse(body ? body : "", len);
	const cJSON *count;
	int err;

	*total = 0;
	if (!v)
		return errno == ENOMEM ? -ENOMEM : -ENODATA;
	count = cJSON_GetObjectItemCaseSensitive(v, "conversationCount");
	if (!count)
		count = cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(v, "data"),
			"conversationCount");
	err = count ? stats_sum(count, total) : -ENODATA;
	cJSON_Delete(v);
	return err;
}

int api_conversation_stats(struct http *h, int64_t *total)
{
	struct http_response resp;
	int err;

	*total = 0;
	err = http_call(h, "GET", "/conversations/stats", NULL, NULL, 0,
			(size_t)64 << 10, HTTP_NO_RETRY, &resp);
	if (!err)
		err = api_parse_conversation_stats(resp.body.data,
						   resp.body.len, total);
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
		a->mime = buf_strdup_or_null(json_get_str(list, "mimeType"));
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
	m->created = api_get_ms(v, "createdAt");
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
	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	list = cJSON_GetObjectItemCaseSensitive(data, "messages");
	if (!list && cJSON_IsArray(data))
		list = data;
	if (!cJSON_IsArray(list)) {
		err = api_shape_error(where, "no data.messages list");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_message m;
		int pr = parse_message(e, conversation_id, &m);

		if (pr == -EINVAL) {
			api_shape_error(where, "message without an id");
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
		*next = api_cursor_string(cursor);
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
		err = api_get_body(h, path, &resp);
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
		err = api_cursor_cycles(&mark, page + 1, newcur);
		if (err) {
			if (err > 0)
				err = api_shape_error(path, "the paging cursor "
						      "repeats");
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
