// SPDX-License-Identifier: MIT
/*
 * api_contact.c: contacts (by id, by email, by external id) and the custom
 * attribute definitions. Not the contact writes (api_write.c), nor the
 * paging helpers (api.c).
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "json.h"
#include "names.h"

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
	c->created = api_get_ms(v, "createdAt");
	attrs = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	c->email = buf_strdup_or_null(json_get_str(attrs, "email"));
	c->name = buf_strdup_or_null(json_get_str(attrs, "name"));
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
		const char *name = json_tag_name(t);

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
	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_contact(cJSON_GetObjectItemCaseSensitive(v, "data"), out);
	if (err == -EINVAL)
		err = api_shape_error(where,
				      "no contact object with an id in data");
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
	err = api_get_body(h, path, &resp);
	if (!err)
		err = api_parse_contact(path, resp.body.data, resp.body.len,
					out);
	http_response_release(&resp);
	if (!err && out->id != id) {
		err = api_shape_error(path, "a different contact id in data");
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

	v = api_parse_body(where, body, len, &err);
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
			err = api_shape_error(where, "contact without an id");
		}
	} else if (cJSON_IsArray(data)) {
		for (const cJSON *e = data->child; e && !err; e = e->next) {
			struct api_contact c;

			if (parse_contact(e, &c)) {
				api_shape_error(where, "contact without an id");
				continue;
			}
			err = cb(ctx, &c);
			api_contact_release(&c);
		}
	} else {
		err = api_shape_error(where, "data is not a list");
	}
	cJSON_Delete(v);
	return err;
}

/* Walks a {"data": [contact...]} lookup answer. where names the request
 * in error lines without its query's value (an email is the user's
 * data, and those lines reach the journal). */
static int contact_list(struct http *h, const char *path, const char *where,
			api_contact_cb cb, void *ctx)
{
	struct http_response resp;
	int err = api_get_body(h, path, &resp);

	if (!err)
		err = api_parse_contact_list(where, resp.body.data,
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
		r = contact_list(h, path, "/contacts?email=***", cb, ctx);
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
		r = contact_list(h, path, "/contacts?idType=external&id=***",
				 cb, ctx);
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

	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	if (cJSON_IsObject(data) || cJSON_IsArray(data))
		err = json_render(data, json);
	else
		err = api_shape_error(where, "no data object");
	cJSON_Delete(v);
	return err;
}

int api_contact_attributes(struct http *h, struct buf *json)
{
	const char *path = "/contacts/attributes";
	struct http_response resp;
	int err = api_get_body(h, path, &resp);

	if (!err)
		err = api_parse_attributes(path, resp.body.data, resp.body.len,
					   json);
	http_response_release(&resp);
	return err;
}
