// SPDX-License-Identifier: MIT
/*
 * cmd_report.c: driftctl report: the conversation report, its filters and
 * metrics read from the command line, its answer as JSON or CSV. The
 * request's body, the endpoint and the answer's shape are api_report.c's;
 * the minute limit is report_limit.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "buf.h"
#include "config.h"
#include "driftctl_int.h"
#include "http.h"
#include "text.h"

struct report_args {
	char **filters;
	size_t nfilters;
	char **metrics;
	size_t nmetrics;
	const char *format;
	int no_wait;
};

enum { O_FILTER = 1, O_METRIC, O_FORMAT, O_NO_WAIT };

static const struct opt report_opts[] = {
	{ "filter", 'f', 1, O_FILTER },	 { "metric", 'm', 1, O_METRIC },
	{ "format", 0, 1, O_FORMAT },	 { "no-wait", 0, 0, O_NO_WAIT },
	{ NULL, 0, 0, 0 },
};

static int push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(char *));

	if (!p)
		return DX_LOCAL;
	*v = p;
	(*v)[(*n)++] = (char *)s;
	return 0;
}

static int report_opt(struct cli *c, void *cmd, const struct opt *o,
		      const char *value)
{
	struct report_args *ra = cmd;

	(void)c;
	if (!o) {
		cli_say("report: unexpected argument '%s'", value);
		return DX_USAGE;
	}
	switch (o->id) {
	case O_FILTER:
		return push(&ra->filters, &ra->nfilters, value);
	case O_METRIC:
		return push(&ra->metrics, &ra->nmetrics, value);
	case O_FORMAT:
		if (strcmp(value, "json") && strcmp(value, "csv")) {
			cli_say("report: --format is json or csv");
			return DX_USAGE;
		}
		ra->format = value;
		return 0;
	default:
		ra->no_wait = 1;
		return 0;
	}
}

/*
 * Splits s into words at blanks and commas; quotes ('..' or "..") keep
 * them together. Calls add for each word. Returns 0 or -EINVAL (an open
 * quote).
 */
static int split_words(const char *s, int (*add)(void *ctx, const char *w),
		       void *ctx)
{
	struct buf w = BUF_INIT;
	int r = 0, have = 0;
	char q = 0;

	for (;; s++) {
		if (!*s || (!q && (isspace((unsigned char)*s) || *s == ','))) {
			if (have)
				r = add(ctx, w.data ? w.data : "");
			buf_reset(&w);
			have = 0;
			if (r || !*s)
				break;
			continue;
		}
		if (!q && (*s == '\'' || *s == '"')) {
			q = *s;
			have = 1;
			continue;
		}
		if (q && *s == q) {
			q = 0;
			continue;
		}
		have = 1;
		r = buf_addc(&w, *s);
		if (r)
			break;
	}
	buf_release(&w);
	return r ? r : q ? -EINVAL : 0;
}

/* Collects the words of a filter. */
struct words {
	char **v;
	size_t n;
};

static int add_word(void *ctx, const char *w)
{
	struct words *ws = ctx;
	char *d = strdup(w);

	if (!d || push(&ws->v, &ws->n, d)) {
		free(d);
		return -ENOMEM;
	}
	return 0;
}

static void words_release(struct words *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->v[i]);
	free(ws->v);
	memset(ws, 0, sizeof(*ws));
}

/* Parses "PROP OP [VALUES...]" into a filter of the report. */
static int parse_filter(const char *text, struct api_report *rp)
{
	struct words ws = { 0 };
	int r = DX_USAGE;

	if (split_words(text, add_word, &ws)) {
		cli_say("report: filter '%s': unbalanced quote", text);
		goto out;
	}
	if (ws.n < 2) {
		cli_say("report: filter '%s' is not 'PROPERTY OPERATION "
			"[VALUES...]' (e.g. 'status IN closed')",
			text);
		goto out;
	}
	for (char *p = ws.v[1]; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!strcmp(ws.v[1], "HAS_PROPERTY") && ws.n != 2) {
		cli_say("report: filter '%s': HAS_PROPERTY takes no values",
			text);
		goto out;
	}
	if (!strcmp(ws.v[1], "BETWEEN") && ws.n != 4) {
		cli_say("report: filter '%s': BETWEEN takes two values", text);
		goto out;
	}
	if (!strcmp(ws.v[1], "IN") && ws.n < 3) {
		cli_say("report: filter '%s': IN needs values", text);
		goto out;
	}
	if (api_report_add_filter(rp, ws.v[0], ws.v[1], ws.v + 2, ws.n - 2)) {
		r = DX_LOCAL;
		goto out;
	}
	r = 0;
out:
	words_release(&ws);
	return r;
}

/* One CSV field: numbers as they are, strings quoted when needed. */
static int csv_field(const struct api_report_value *v, struct buf *out)
{
	struct buf clean = BUF_INIT;
	const char *s;
	int r;

	if (!v->text)
		return 0;
	if (!v->is_string)
		return buf_adds(out, v->text);
	/* The API's string, with no escape sequence (text.h); newlines stay
	 * (quoted), the rest of a cell is as the API gave it. */
	r = text_clean_buf(&clean, v->text, strlen(v->text), TEXT_LINES);
	s = clean.data ? clean.data : "";
	if (r || !strpbrk(s, ",\"\r\n")) {
		r = r ? r : buf_adds(out, s);
		goto out;
	}
	r = buf_addc(out, '"');
	for (; *s && !r; s++)
		if ((*s == '"' && buf_addc(out, '"')) || buf_addc(out, *s))
			r = -ENOMEM;
	r = r ? r : buf_addc(out, '"');
out:
	buf_release(&clean);
	return r;
}

/* Where report_csv() writes, and the values in a row. */
struct csv {
	struct buf *out;
	size_t nm;
};

/* One line of the CSV: the row's conversation and its values. */
static int csv_row(void *ctx, const struct api_report_row *row)
{
	struct csv *csv = ctx;
	int r = buf_printf(csv->out, "%lld", (long long)row->conversation_id);

	for (size_t i = 0; i < csv->nm && !r; i++) {
		r = buf_addc(csv->out, ',');
		r = r ? r : csv_field(&row->values[i], csv->out);
	}
	return r ? r : buf_addc(csv->out, '\n');
}

static int report_csv(const struct api_report *rp, struct buf *out)
{
	struct csv csv = { out, api_report_metric_count(rp) };
	int r = buf_adds(out, "conversationId");

	for (size_t i = 0; i < csv.nm && !r; i++) {
		struct api_report_value s = { 0 };

		s.text = api_report_metric_name(rp, i);
		s.is_string = 1;

		r = buf_addc(out, ',');
		r = r ? r : csv_field(&s, out);
	}
	r = r ? r : buf_addc(out, '\n');
	return r ? r : api_report_rows(rp, csv_row, &csv);
}

/* Adds one metric option's names (commas allowed) to the report. */
static int add_metric(void *ctx, const char *w)
{
	return api_report_add_metric(ctx, w);
}

int cmd_report(struct cli *c, int argc, char **argv, int from)
{
	struct report_args ra = { 0 };
	struct http_response resp;
	struct buf out = BUF_INIT;
	struct api_report *rp = NULL;
	char *body = NULL;
	int r, e;

	r = cli_parse_args(c, argc, argv, from, report_opts, report_opt, &ra);
	if (r || c->help)
		goto out;
	if (!ra.nmetrics) {
		cli_say("report: give at least one --metric (e.g. --metric "
			"createdAt)");
		r = DX_USAGE;
		goto out;
	}
	rp = api_report_new();
	if (!rp) {
		r = DX_LOCAL;
		goto out;
	}
	for (size_t i = 0; i < ra.nfilters && !r; i++)
		r = parse_filter(ra.filters[i], rp);
	for (size_t i = 0; i < ra.nmetrics && !r; i++)
		if (split_words(ra.metrics[i], add_metric, rp))
			r = DX_USAGE;
	if (r)
		goto out;
	body = api_report_body(rp);
	if (!body) {
		r = DX_LOCAL;
		goto out;
	}
	if (config_validate(&c->d.cfg)) {
		r = DX_USAGE;
		goto out;
	}
	if (c->d.cfg.offline) {
		cli_say("report: offline mode: reports come from the API only");
		r = DX_API;
		goto out;
	}
	cli_set_log_level(c, 1);
	/* The report limit is the API's, whichever org: one per host. */
	r = cli_open_host_dir(c, 1);
	r = r ? r : cli_open_http(c, 1);
	r = r ? r : report_limit_slot(c->host_dir, ra.no_wait);
	if (r)
		goto out;
	e = api_report_post(c->d.http, body, &resp);
	if (e) {
		cli_say("report: " API_REPORT_REQUEST ": %s%s%s",
			resp.status ? "HTTP error " : "",
			resp.message[0] ? resp.message : strerror(-e),
			resp.status == 429
			    ? " (the limit is 60 reports a minute)"
			    : "");
		r = resp.status ? cli_exit_for_status(resp.status)
				: cli_exit_for_errno(e);
		if (r == DX_REFUSED && !resp.status)
			r = DX_API;
		http_response_release(&resp);
		goto out;
	}
	e = api_report_parse(rp, resp.body.data, resp.body.len);
	http_response_release(&resp);
	if (e) {
		cli_say("report: the API's answer is not a JSON object");
		r = DX_API;
		goto out;
	}
	if (ra.format && !strcmp(ra.format, "csv"))
		e = report_csv(rp, &out);
	else
		e = api_report_render(rp, &out);
	if (e) {
		cli_say("report: the answer has an unexpected shape (no data "
			"array, or a row without conversationId)");
		r = DX_API;
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len ||
	    fflush(stdout)) {
		cli_say("report: cannot write the report: %s", strerror(errno));
		r = DX_LOCAL;
	}
out:
	api_report_free(rp);
	free(body);
	buf_release(&out);
	free(ra.filters);
	free(ra.metrics);
	return r;
}

const char cli_usage_report[] =
	"usage: driftctl report --filter 'PROPERTY OP [VALUES...]'...\n"
	"                       --metric NAME... [--format json|csv] "
	"[--no-wait]\n"
	"\n"
	"POST /reports/conversations. OP is IN, HAS_PROPERTY or BETWEEN;\n"
	"values are separated by blanks or commas (quote to keep them\n"
	"together); all-digit values are sent as numbers. --metric takes one\n"
	"name or a comma-separated list. CSV output has a header\n"
	"conversationId,METRIC... and one line per conversation. Drift\n"
	"allows 60 reports a minute: driftctl counts them per account and\n"
	"waits for a free slot, or fails with status 5 under --no-wait.\n";
