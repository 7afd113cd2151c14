// SPDX-License-Identifier: MIT
/*
 * api_lists.c: the org's whole lists that a pass refetches and prunes:
 * users (and one user by id), playbooks, accounts (paged). Not the org
 * lookup from the users list (api_auth.c).
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "json.h"

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
	u->mtime = api_get_ms(v, "updatedAt");
	if (!u->mtime)
		u->mtime = api_get_ms(v, "createdAt");
	u->email = buf_strdup_or_null(json_get_str(v, "email"));
	u->name = buf_strdup_or_null(json_get_str(v, "name"));
	if (!u->name)
		u->name = buf_strdup_or_null(json_get_str(v, "alias"));
	u->bot = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "bot"));
	if (json_get_i64(v, "orgId", &u->org))
		u->org = 0;
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

	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	/* A list, or (like the multi-get) a map keyed by id. */
	if (!cJSON_IsArray(data) && !cJSON_IsObject(data)) {
		err = api_shape_error(where, "data is not a list");
		goto out;
	}
	for (const cJSON *e = data->child; e && !err; e = e->next) {
		struct api_user u;

		if (parse_user(e, &u)) {
			api_shape_error(where, "user without an id");
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
	int err = api_get_body(h, path, &resp);

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
	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	err = parse_user(cJSON_GetObjectItemCaseSensitive(v, "data"), out);
	if (err == -EINVAL)
		err = api_shape_error(where,
				      "no user object with an id in data");
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
	err = api_get_body(h, path, &resp);
	if (!err)
		err = api_parse_user(path, resp.body.data, resp.body.len, out);
	http_response_release(&resp);
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

	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	/* A bare array; tolerate the usual envelope as well. */
	list = cJSON_IsArray(v) ? v : cJSON_GetObjectItemCaseSensitive(v, "data");
	if (!cJSON_IsArray(list)) {
		err = api_shape_error(where, "not a list of playbooks");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_object o = { 0 };

		if (json_get_i64(e, "id", &o.id) || o.id <= 0) {
			api_shape_error(where, "playbook without an id");
			continue;
		}
		o.mtime = api_get_ms(e, "updatedAt");
		if (!o.mtime)
			o.mtime = api_get_ms(e, "createdAt");
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
	int err = api_get_body(h, path, &resp);

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
	v = api_parse_body(where, body, len, &err);
	if (!v)
		return err;
	data = cJSON_GetObjectItemCaseSensitive(v, "data");
	list = cJSON_GetObjectItemCaseSensitive(data, "accounts");
	if (!cJSON_IsArray(list)) {
		err = api_shape_error(where, "no data.accounts list");
		goto out;
	}
	for (const cJSON *e = list->child; e && !err; e = e->next) {
		struct api_object o = { 0 };
		const char *id = json_get_str(e, "accountId");

		if (!id || !*id) {
			api_shape_error(where, "account without accountId");
			continue;
		}
		o.key = strdup(id);
		o.mtime = api_get_ms(e, "updateDateTime");
		if (!o.mtime)
			o.mtime = api_get_ms(e, "createDateTime");
		err = o.key ? json_render(e, &o.json) : -ENOMEM;
		err = err ? err : cb(ctx, &o);
		api_object_release(&o);
	}
	next = cJSON_GetObjectItemCaseSensitive(data, "next");
	if (!err && cJSON_IsString(next) && next->valuestring[0] &&
	    cJSON_GetArraySize(list) > 0) {
		*next_path = api_next_path(next->valuestring);
		if (!*next_path)
			err = api_next_refused(where, "data");
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

		err = api_get_body(h, path, &resp);
		if (!err)
			err = api_parse_accounts_page(path, resp.body.data,
						      resp.body.len, cb, ctx,
						      &newpath);
		http_response_release(&resp);
		if (!err && newpath) {
			err = api_cursor_cycles(&mark, page + 1, newpath);
			if (err) {
				if (err > 0)
					err = api_shape_error(path,
						"the paging cursor repeats");
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
