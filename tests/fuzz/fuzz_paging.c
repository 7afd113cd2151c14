// SPDX-License-Identifier: MIT
/*
 * fuzz_paging.c: the next-page links and cursors of api.c never send the
 * token to another host.
 *
 * Input: a selector byte, then
 *   0: a links.next / data.next URL, reduced by api_next_path();
 *   1: conversation list pages (FUZZ_SEP between them), walked with one
 *      cursor as api_conversations_page() walks them;
 *   2: an accounts page (its data.next);
 *   3: a messages page (its pagination.next, as api_messages() sends it).
 * Every next path is joined to a base URL the way http.c does (base, then
 * path) and parsed by libcurl as libcurl parses it: when it parses, the
 * scheme, host and port are the base's and it names no user or password.
 * A walk stops (done) on any error; a relative path comes back verbatim.
 */
#include <errno.h>

#include <curl/curl.h>

#include "api.h"
#include "fuzz.h"

static const char *const bases[] = { "https://api.drift.test",
				     "http://127.0.0.1:8089",
				     "https://api.drift.test/v1" };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static char *part(CURLU *u, CURLUPart what)
{
	char *s = NULL;

	if (curl_url_get(u, what, &s, 0) != CURLUE_OK)
		return NULL;
	return s;
}

static void same_part(CURLU *a, CURLU *b, CURLUPart what, const char *name,
		      const char *url)
{
	char *x = part(a, what), *y = part(b, what);

	FUZZ_ASSERT((!x && !y) || (x && y && !strcmp(x, y)),
		    "%s of '%s' is '%s', not the base's '%s'", name, url,
		    y ? y : "(none)", x ? x : "(none)");
	curl_free(x);
	curl_free(y);
}

static void check_path(const char *what, const char *path)
{
	FUZZ_ASSERT(path[0] == '/', "%s: '%s' is not a path", what, path);
	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		const unsigned flags = CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME;
		CURLU *base = curl_url(), *u = curl_url();
		char *url = NULL;

		if (!base || !u || asprintf(&url, "%s%s", bases[i], path) < 0)
			abort();
		FUZZ_ASSERT(curl_url_set(base, CURLUPART_URL, bases[i], flags) ==
				    CURLUE_OK,
			    "base");
		if (curl_url_set(u, CURLUPART_URL, url, flags) == CURLUE_OK) {
			char *user = part(u, CURLUPART_USER);
			char *pass = part(u, CURLUPART_PASSWORD);

			same_part(base, u, CURLUPART_SCHEME, "scheme", url);
			same_part(base, u, CURLUPART_HOST, "host", url);
			same_part(base, u, CURLUPART_PORT, "port", url);
			FUZZ_ASSERT(!user && !pass, "%s: '%s' names a user", what,
				    url);
		}
		free(url);
		curl_url_cleanup(u);
		curl_url_cleanup(base);
	}
}

static int on_conversation(void *ctx, const struct api_conversation *c)
{
	(void)ctx;
	FUZZ_ASSERT(c->id > 0, "conversation id %lld", (long long)c->id);
	return 0;
}

static int on_object(void *ctx, const struct api_object *o)
{
	(void)ctx;
	(void)o;
	return 0;
}

static int on_message(void *ctx, struct api_message *m)
{
	(void)ctx;
	(void)m;
	return 0;
}

static void walk_conversations(const char *p, size_t n)
{
	struct api_cursor cur = { 0 };
	unsigned bodies = 0;

	while (n && !cur.done) {
		size_t len;
		const char *body = fuzz_part(&p, &n, &len);
		int r = api_parse_conversations_page("fuzz", body, len, &cur,
						     on_conversation, NULL);

		bodies++;
		FUZZ_ASSERT(!r || r == -EIO || r == -ENOMEM, "result %d", r);
		FUZZ_ASSERT(!r || cur.done, "an error left the walk going");
		FUZZ_ASSERT(!cur.next == !!cur.done, "next and done disagree");
		FUZZ_ASSERT(cur.pages <= bodies, "more pages than bodies");
		if (cur.next)
			check_path("links.next", cur.next);
	}
	api_cursor_release(&cur);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	char *s, *next = NULL, *q;

	if (size < 1 || size > 65536)
		return 0;
	switch (data[0] % 4) {
	case 0:
		s = fuzz_dup(p, n);
		next = api_next_path(s);
		if (next) {
			check_path("api_next_path", next);
			if (s[0] == '/')
				FUZZ_ASSERT(!strcmp(next, s), "path changed");
		}
		free(s);
		break;
	case 1:
		walk_conversations(p, n);
		break;
	case 2:
		api_parse_accounts_page("fuzz", p, n, on_object, NULL, &next);
		if (next)
			check_path("data.next", next);
		break;
	case 3:
		api_parse_messages_page("fuzz", p, n, 1, on_message, NULL, &next);
		if (!next)
			break;
		q = api_query_escape(next);
		FUZZ_ASSERT(q, "escape");
		FUZZ_ASSERT(strspn(q, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
				      "rstuvwxyz0123456789-._~%") == strlen(q),
			    "'%s' is not escaped", q);
		free(q);
		break;
	}
	free(next);
	return 0;
}
