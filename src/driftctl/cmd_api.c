// SPDX-License-Identifier: MIT
/*
 * cmd_api.c: driftctl api: one authenticated call with the user's method,
 * path, headers and body, through driftfs's client; the answer's body on
 * stdout. The path is the user's: nothing here knows Drift's endpoints.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "config.h"
#include "driftctl_int.h"
#include "http.h"
#include "text.h"

#define INPUT_MAX ((size_t)32 << 20)	/* -d bodies */

struct api_args {
	const char *method;
	const char *path;
	const char *data;
	const char **headers;	/* NULL-terminated */
	size_t nheaders;
	char **queries;
	size_t nqueries;
};

enum { O_METHOD = 1, O_HEADER, O_QUERY, O_DATA };

static const struct opt api_opts[] = {
	{ "method", 'X', 1, O_METHOD }, { "header", 'H', 1, O_HEADER },
	{ "query", 'q', 1, O_QUERY },	{ "data", 'd', 1, O_DATA },
	{ NULL, 0, 0, 0 },
};

static int api_opt(struct cli *c, void *cmd, const struct opt *o,
		   const char *value)
{
	struct api_args *aa = cmd;
	void *p;

	(void)c;
	if (!o) {
		if (aa->path) {
			cli_say("api: unexpected argument '%s' (one PATH only)",
				value);
			return DX_USAGE;
		}
		aa->path = value;
		return 0;
	}
	switch (o->id) {
	case O_METHOD:
		aa->method = value;
		return 0;
	case O_DATA:
		aa->data = value;
		return 0;
	case O_HEADER:
		if (!strchr(value, ':')) {
			cli_say("api: header '%s' is not 'Name: value'", value);
			return DX_USAGE;
		}
		if (!strncasecmp(value, "authorization:", 14)) {
			cli_say(
			    "api: an Authorization header is never taken from "
			    "the command line (others can read it); the "
			    "stored token is sent");
			return DX_USAGE;
		}
		p = realloc(aa->headers, (aa->nheaders + 2) * sizeof(char *));
		if (!p)
			return DX_LOCAL;
		aa->headers = p;
		aa->headers[aa->nheaders++] = value;
		aa->headers[aa->nheaders] = NULL;
		return 0;
	default:
		p = realloc(aa->queries, (aa->nqueries + 1) * sizeof(char *));
		if (!p)
			return DX_LOCAL;
		aa->queries = p;
		aa->queries[aa->nqueries++] = (char *)value;
		return 0;
	}
}

/* Reads a whole file (or stdin for "-"), at most INPUT_MAX bytes. */
static int read_all(const char *path, struct buf *out)
{
	char chunk[65536];
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC)
				   : STDIN_FILENO;
	ssize_t n;
	int r = 0;

	buf_init(out, INPUT_MAX);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		r = buf_add(out, chunk, (size_t)n);
		if (r)
			break;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

/* Builds PATH?q1&q2 with each key and value percent-encoded. */
static int api_path(struct cli *c, struct api_args *aa, struct buf *out)
{
	const char *p = aa->path;
	size_t base = strlen(c->d.cfg.api_url);
	int r;

	if (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8)) {
		if (strncmp(p, c->d.cfg.api_url, base) || p[base] != '/') {
			cli_say(
			    "api: %s is not under the API URL %s (the token "
			    "is only sent there)",
			    p, c->d.cfg.api_url);
			return DX_USAGE;
		}
		p += base;
	}
	r = buf_printf(out, "%s%s", *p == '/' ? "" : "/", p);
	for (size_t i = 0; i < aa->nqueries && !r; i++) {
		char *eq = strchr(aa->queries[i], '=');
		char *k = strndup(aa->queries[i],
				  eq ? (size_t)(eq - aa->queries[i])
				     : strlen(aa->queries[i]));
		char *ek = k ? api_query_escape(k) : NULL;
		char *ev = eq ? api_query_escape(eq + 1) : NULL;

		if (!ek || (eq && !ev))
			r = -ENOMEM;
		else
			r = buf_printf(out, "%c%s%s%s",
				       strchr(out->data, '?') ? '&' : '?', ek,
				       eq ? "=" : "", eq ? ev : "");
		free(k);
		free(ek);
		free(ev);
	}
	for (size_t i = 0; !r && i < out->len; i++)
		if ((unsigned char)out->data[i] <= 0x20 ||
		    out->data[i] == 0x7f)
			r = -EINVAL;
	if (r == -EINVAL)
		cli_say("api: the path holds spaces or control characters; put "
			"parameters in -q NAME=VALUE");
	return r == -EINVAL ? DX_USAGE : r ? DX_LOCAL : 0;
}

int cmd_api(struct cli *c, int argc, char **argv, int from)
{
	struct api_args aa = { 0 };
	struct http_request rq = { 0 };
	struct http_response resp;
	struct buf path = BUF_INIT, body = BUF_INIT;
	char method[16];
	int r, e;

	r = cli_parse_args(c, argc, argv, from, api_opts, api_opt, &aa);
	if (r || c->help)
		goto out;
	if (!aa.path) {
		cli_say("api: no PATH (e.g. driftctl api /users/list)");
		r = DX_USAGE;
		goto out;
	}
	snprintf(method, sizeof(method), "%s",
		 aa.method ? aa.method : aa.data ? "POST" : "GET");
	for (char *m = method; *m; m++) {
		if (!isalpha((unsigned char)*m)) {
			cli_say("api: bad method '%s'", aa.method);
			r = DX_USAGE;
			goto out;
		}
		*m = (char)toupper((unsigned char)*m);
	}
	r = api_path(c, &aa, &path);
	if (r)
		goto out;
	if (aa.data && aa.data[0] == '@') {
		e = read_all(aa.data + 1, &body);
		if (e) {
			cli_say("api: cannot read %s: %s", aa.data + 1,
				strerror(-e));
			r = e == -EFBIG ? DX_USAGE : DX_LOCAL;
			goto out;
		}
	} else if (aa.data && buf_adds(&body, aa.data)) {
		r = DX_LOCAL;
		goto out;
	}
	if (c->d.cfg.offline) {
		cli_say("api: offline mode: nothing is sent");
		r = DX_API;
		goto out;
	}
	/* Only our own failure lines: the library's would say it twice. */
	cli_set_log_level(c, 1);
	r = cli_open_http(c, 1);
	if (r)
		goto out;
	rq.method = method;
	rq.path = path.data;
	rq.body = aa.data ? (body.data ? body.data : "") : NULL;
	rq.body_len = body.len;
	rq.max_body = (size_t)64 << 20;
	rq.headers = aa.headers;
	e = http_request(c->d.http, &rq, &resp);
	/*
	 * The body byte for byte into a pipe or file (as curl does), but a
	 * terminal gets it through the sanitiser: the API's bytes must not
	 * drive it.
	 */
	if (resp.body.len && isatty(STDOUT_FILENO)) {
		struct buf clean = BUF_INIT;

		if (text_clean_buf(&clean, resp.body.data, resp.body.len,
				   TEXT_LINES) ||
		    fwrite(clean.data ? clean.data : "", 1, clean.len,
			   stdout) != clean.len)
			e = e ? e : -EIO;
		buf_release(&clean);
	} else if (resp.body.len && fwrite(resp.body.data, 1, resp.body.len,
					   stdout) != resp.body.len) {
		e = e ? e : -EIO;
	}
	if (fflush(stdout))
		e = e ? e : -errno;
	if (e == -EINVAL && !resp.status) {
		cli_say("api: bad header line");
		r = DX_USAGE;
	} else if (resp.status >= 200 && resp.status < 300 && e) {
		cli_say("api: cannot write the answer: %s", strerror(-e));
		r = DX_LOCAL;
	} else if (e) {
		if (resp.status)
			cli_say("api: %s %s: HTTP %ld%s%s", method, path.data,
				resp.status, resp.message[0] ? ": " : "",
				resp.message);
		else
			cli_say("api: %s %s: %s", method, path.data,
				resp.message[0] ? resp.message : strerror(-e));
		r = resp.status
			? cli_exit_for_status(resp.status)
			: (e == -EACCES ? DX_AUTH : cli_exit_for_errno(e));
		if (r == DX_REFUSED && !resp.status)
			r = DX_API;
	}
	http_response_release(&resp);
out:
	buf_release(&path);
	buf_release(&body);
	free(aa.headers);
	free(aa.queries);
	return r;
}

const char cli_usage_api[] =
	"usage: driftctl api [-X METHOD] PATH [-H 'Name: value']...\n"
	"                    [-q NAME=VALUE]... [-d BODY | -d @FILE | -d @-]\n"
	"\n"
	"One authenticated call through driftfs's client (rate governor,\n"
	"retries of idempotent calls, token refresh). The response body goes\n"
	"to standard output whatever the status (on a terminal, without\n"
	"escape sequences); the exit status is 0 for\n"
	"2xx, 2 for 401/403, 4 for other 4xx, 5 for 429, 3 for 5xx, a\n"
	"redirect (never followed) or no answer. -d implies POST and\n"
	"Content-Type: application/json.\n";
