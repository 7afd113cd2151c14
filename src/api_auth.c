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
#include "secret.h"

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
		secret_scrub(it->valuestring, strlen(it->valuestring));
}

int api_token_info(struct http *h, const char *token, long timeout_ms,
		   struct api_token_info *out)
{
	struct http_response resp;
	struct http_request rq = {
		.method = "POST",
		.path = "/app/token_info",
		.max_body = HTTP_MAX_BODY,
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
		secret_scrub(resp.body.data, resp.body.len);
	http_response_release(&resp);
out:
	secret_free(text);
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
		.max_body = HTTP_MAX_BODY,
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

/* Whether v is one token: no controls, spaces or DEL (the credentials file
 * holds it on one line, trimmed). */
static int token_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* A member under either of two names, as a string. */
static const char *str2(const cJSON *o, const char *a, const char *b)
{
	const char *v = json_get_str(o, a);

	return v ? v : json_get_str(o, b);
}

void api_oauth_token_release(struct api_oauth_token *t)
{
	if (!t)
		return;
	secret_free(t->access_token);
	secret_free(t->refresh_token);
	memset(t, 0, sizeof(*t));
}

int api_parse_oauth_token(const char *body, size_t len,
			  struct api_oauth_token *out)
{
	cJSON *v = json_parse(body, len);
	const char *at, *rt;
	int64_t exp = 0;
	int r = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!v || !cJSON_IsObject(v))
		goto out;
	at = str2(v, "access_token", "accessToken");
	rt = str2(v, "refresh_token", "refreshToken");
	if (!at || !*at || !token_ok(at) || (rt && !token_ok(rt)))
		goto out;
	if (json_get_i64(v, "expires_in", &exp) &&
	    json_get_i64(v, "expiresIn", &exp))
		exp = 0;
	if (exp >= 1000000)
		exp /= 1000;
	if (exp < 0)
		exp = 0;
	if (json_get_i64(v, "orgId", &out->org))
		out->org = 0;
	out->access_token = strdup(at);
	out->refresh_token = rt && *rt ? strdup(rt) : NULL;
	if (!out->access_token || (rt && *rt && !out->refresh_token)) {
		r = -ENOMEM;
		goto out;
	}
	out->expires_in = exp;
	r = 0;
out:
	if (r)
		api_oauth_token_release(out);
	cJSON_Delete(v);
	return r;
}

#define AUTHORIZE_URL "https://dev.drift.com/authorize"

char *api_oauth_authorize_url(const char *client_id, const char *redirect_uri,
			      const char *state)
{
	char *e_id = api_query_escape(client_id), *url = NULL;
	char *e_uri = redirect_uri ? api_query_escape(redirect_uri) : NULL;

	if (!e_id || (redirect_uri && !e_uri) ||
	    asprintf(&url, "%s?response_type=code&client_id=%s%s%s&state=%s",
		     AUTHORIZE_URL, e_id, e_uri ? "&redirect_uri=" : "",
		     e_uri ? e_uri : "", state) < 0) {
		url = NULL;
		errno = ENOMEM;
	}
	free(e_id);
	free(e_uri);
	return url;
}

/* Appends "&name=value" (no '&' first), value percent-encoded. */
static int form_add(struct buf *b, const char *name, const char *value)
{
	char *e;
	int r;

	if (!value)
		return 0;
	e = api_query_escape(value);
	if (!e)
		return -ENOMEM;
	r = buf_printf(b, "%s%s=%s", b->len ? "&" : "", name, e);
	secret_free(e);
	return r;
}

int api_oauth_token(struct http *h, const struct api_oauth_grant *g,
		    struct api_oauth_token *out, char *why, size_t n)
{
	/* An error page may echo the form: none of these may show. */
	const char *secrets[4], *const grant[] = { g->client_secret,
						   g->refresh_token, g->code };
	size_t nsec = 0;
	struct http_request rq = {
		.method = "POST",
		.path = "/oauth2/token",
		.ctype = "application/x-www-form-urlencoded",
		.max_body = 1 << 20,
		.flags = HTTP_NO_AUTH | HTTP_IDEMPOTENT,
		.secrets = secrets,
	};
	struct http_response resp;
	struct buf form = BUF_INIT;
	int r;

	for (size_t i = 0; i < sizeof(grant) / sizeof(*grant); i++)
		if (grant[i])
			secrets[nsec++] = grant[i];
	secrets[nsec] = NULL;
	memset(out, 0, sizeof(*out));
	why[0] = '\0';
	r = form_add(&form, "grant_type", g->grant_type);
	r = r ? r : form_add(&form, "client_id", g->client_id);
	r = r ? r : form_add(&form, "client_secret", g->client_secret);
	r = r ? r : form_add(&form, "code", g->code);
	r = r ? r : form_add(&form, "refresh_token", g->refresh_token);
	r = r ? r : form_add(&form, "redirect_uri", g->redirect_uri);
	if (r) {
		snprintf(why, n, "out of memory");
		goto out;
	}
	/* Retried only on transient failures, where the server most likely
	 * never saw the grant. */
	rq.body = form.data;
	rq.body_len = form.len;
	r = http_request(h, &rq, &resp);
	if (r) {
		if (resp.status)
			snprintf(why, n, "POST /oauth2/token: HTTP %ld%s%s",
				 resp.status, resp.message[0] ? ": " : "",
				 resp.message);
		else
			snprintf(why, n, "POST /oauth2/token: %s",
				 resp.message[0] ? resp.message
						 : "no response");
		if (resp.status == 400 || resp.status == 401)
			r = -EACCES;
	} else {
		r = api_parse_oauth_token(resp.body.data, resp.body.len, out);
		if (r)
			snprintf(why, n, "POST /oauth2/token: the answer holds "
					 "no access token");
	}
	if (resp.body.data)
		secret_scrub(resp.body.data, resp.body.len);
	http_response_release(&resp);
out:
	if (form.data)
		secret_scrub(form.data, form.len);
	buf_release(&form);
	return r;
}
