// SPDX-License-Identifier: MIT
/*
 * api.c: what every Drift endpoint shares: the GET with its size bound, the
 * envelope parse, the logged shape errors, query escaping, and paging (next
 * links, cursors, cycle detection). The endpoints themselves live in
 * api_contact.c, api_conversation.c, api_lists.c and api_auth.c (see
 * api.h), the writes in api_write.c (api_write.h) and the conversation
 * report in api_report.c.
 */
#include "api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_int.h"
#include "json.h"
#include "log.h"
#include "text.h"

char *api_query_escape(const char *s)
{
	return text_percent_encode(s);
}

/* GETs path; the body (or a failure) in *resp, released by the caller. */
int api_get_body(struct http *h, const char *path, struct http_response *resp)
{
	return http_call(h, "GET", path, NULL, NULL, 0, HTTP_MAX_BODY, 0, resp);
}

/* Parses a response body. NULL (and *err, -EIO) when it is not JSON. */
cJSON *api_parse_body(const char *where, const char *body, size_t len,
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

int api_shape_error(const char *path, const char *what)
{
	log_error_event("GET %s: unexpected response shape: %s", path, what);
	return -EIO;
}

/* A next-page link api_next_path() refused: -ENOMEM, or why, logged. */
int api_next_refused(const char *path, const char *field)
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

int64_t api_get_ms(const cJSON *obj, const char *key)
{
	int64_t v = 0;

	if (json_get_i64(obj, key, &v) || v < 0)
		return 0;
	return v;
}

/* A paging cursor as a string (it may come as a string or a number). */
char *api_cursor_string(const cJSON *next)
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
int api_cursor_cycles(char **mark, unsigned page, const char *next)
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
