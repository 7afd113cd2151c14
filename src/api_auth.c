// SPDX-License-Identifier: MIT
/*
 * api_auth.c: the endpoints about the token rather than the data: what
 * token_info says about a token, and which org the users list names. The
 * token source and the credentials file are auth.c's.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "json.h"

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
		v = api_parse_body(path, resp.body.data, resp.body.len, &err);
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
