// SPDX-License-Identifier: MIT
/*
 * cmd_search.c: driftctl search QUERY: the hits of search/<QUERY>/hits.txt
 * (search.h), or a JSON array of them, from the cache alone: no network,
 * no token (the credentials file, when there is one, only picks the
 * org's cache, as driftctl status does offline).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth.h"
#include "buf.h"
#include "config.h"
#include "driftctl_int.h"
#include "json.h"
#include "render.h"
#include "search.h"
#include "store.h"

struct search_args {
	const char *query;
	int json;
	long limit;
};

enum { O_JSON = 1, O_LIMIT };

static const struct opt search_opts[] = {
	{ "json", 0, 0, O_JSON },
	{ "limit", 'n', 1, O_LIMIT },
	{ NULL, 0, 0, 0 },
};

static int search_opt(struct cli *c, void *cmd, const struct opt *o,
		      const char *value)
{
	struct search_args *sa = cmd;
	char *end;

	(void)c;
	if (!o) {
		if (sa->query) {
			cli_say("search: one QUERY (quote it: driftctl search "
				"'refund invoice')");
			return DX_USAGE;
		}
		sa->query = value;
		return 0;
	}
	if (o->id == O_JSON) {
		sa->json = 1;
		return 0;
	}
	errno = 0;
	sa->limit = strtol(value, &end, 10);
	if (errno || *end || end == value || sa->limit < 1 ||
	    sa->limit > SEARCH_MAX_HITS) {
		cli_say("search: --limit is a number from 1 to %d",
			SEARCH_MAX_HITS);
		return DX_USAGE;
	}
	return 0;
}

/* The hits as a JSON array of objects, on stdout. */
static int print_json(const struct search_result *res)
{
	cJSON *a = cJSON_CreateArray();
	struct buf out = BUF_INIT, t = BUF_INIT;
	char path[96];
	int r = a ? 0 : -ENOMEM;

	for (size_t i = 0; i < res->nhits && !r; i++) {
		const struct search_hit *x = &res->hits[i];
		cJSON *o = cJSON_CreateObject();
		char id[24];

		if (!o || !cJSON_AddItemToArray(a, o)) {
			cJSON_Delete(o);
			r = -ENOMEM;
			break;
		}
		snprintf(path, sizeof(path),
			 "conversations/%lld/messages/%lld.json",
			 (long long)x->conv, (long long)x->msg);
		buf_reset(&t);
		r = render_time(x->created, &t);
		/* Ids as raw integers: a double cannot hold every one. */
		snprintf(id, sizeof(id), "%lld", (long long)x->conv);
		if (!r && !cJSON_AddRawToObject(o, "conversationId", id))
			r = -ENOMEM;
		snprintf(id, sizeof(id), "%lld", (long long)x->msg);
		if (!r && !cJSON_AddRawToObject(o, "messageId", id))
			r = -ENOMEM;
		snprintf(id, sizeof(id), "%lld", (long long)x->created);
		if (!r && (!cJSON_AddRawToObject(o, "createdAt", id) ||
			   !cJSON_AddStringToObject(o, "time", t.data) ||
			   !cJSON_AddStringToObject(o, "author", x->name) ||
			   !cJSON_AddStringToObject(o, "snippet", x->snippet) ||
			   !cJSON_AddStringToObject(o, "path", path)))
			r = -ENOMEM;
	}
	r = r ? r : json_render(a, &out);
	if (!r)
		fwrite(out.data, 1, out.len, stdout);
	cJSON_Delete(a);
	buf_release(&out);
	buf_release(&t);
	return r;
}

int cmd_search(struct cli *c, int argc, char **argv, int from)
{
	struct search_args sa = { NULL, 0, 0 };
	struct search_result res;
	struct buf out = BUF_INIT;
	char why[SEARCH_WHY_MAX] = "", *db = NULL;
	struct stat st;
	int r;

	r = cli_parse_args(c, argc, argv, from, search_opts, search_opt, &sa);
	if (r || c->help)
		return r;
	if (!sa.query) {
		cli_say("search: a QUERY is needed (driftctl search --help)");
		return DX_USAGE;
	}
	/* From the cache alone: nothing here may touch the network. */
	c->d.cfg.offline = 1;
	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	cli_set_log_level(c, 1);
	r = cli_open_host_dir(c, 0);
	if (r)
		return r;
	/* The credentials file's org picks the cache, if there is one. */
	if (!stat(c->d.cfg.credentials, &st))
		c->auth = auth_new(&c->d.cfg);
	r = cli_open_dir(c, 0);
	if (r)
		return r;
	if (asprintf(&db, "%s/cache.db", c->dir) < 0)
		return DX_LOCAL;
	r = stat(db, &st);
	free(db);
	if (r) {
		cli_say("search: no cache in %s (run driftctl sync)", c->dir);
		return DX_LOCAL;
	}
	/* A reader: an index found out of step is left to a writer. */
	search_open_read_only(1);
	r = cli_open_store(c);
	if (r)
		return r;
	/* An index still building would answer from part of the cache:
	 * no answer, and why (driftctl sync or a mount finishes it). */
	{
		int64_t done, total, ib, tb;
		int ready;

		r = store_search_progress(c->d.store, &done, &total, &ready,
					  &ib, &tb);
		if (r) {
			cli_say("search: %s", strerror(-r));
			return cli_exit_for_errno(r);
		}
		if (!ready && store_meta_i64(c->d.store, "search_rebuild") > 0) {
			cli_say("search index out of step with the cache: it is"
				" built again by the next mount, or driftctl"
				" sync, alone with the cache");
			return DX_LOCAL;
		}
		if (!ready) {
			cli_say("search index building %lld/%lld; run driftctl"
				" sync (or mount) to finish it",
				(long long)done, (long long)total);
			return DX_LOCAL;
		}
	}
	r = search_run(c->d.store, sa.query, SEARCH_HITS, (size_t)sa.limit,
		       &res, why, sizeof(why));
	if (r == -EINVAL) {
		cli_say("search: invalid query: %s", why);
		return DX_USAGE;
	}
	if (r == -ETIMEDOUT) {
		/* Stopped at its deadline (search.h): say so, as the mount's
		 * errors line does, not "Connection timed out". */
		cli_say("search: %s", why);
		return cli_exit_for_errno(r);
	}
	if (r) {
		cli_say("search: %s", strerror(-r));
		return cli_exit_for_errno(r);
	}
	if (sa.json)
		r = print_json(&res);
	else if (!(r = search_hits_text(&res, &out)) && out.len)
		fwrite(out.data, 1, out.len, stdout);
	buf_release(&out);
	search_result_release(&res);
	if (r) {
		cli_say("search: %s", strerror(-r));
		return DX_LOCAL;
	}
	return DX_OK;
}

const char cli_usage_search[] =
	"usage: driftctl search [--json] [--limit N] QUERY\n"
	"\n"
	"Prints the messages that match QUERY, best match first, one a line:\n"
	"    conversations/<cid>/messages/<mid>.json<TAB>[time] Name: snippet\n"
	"as search/QUERY/hits.txt of a mount does, from the cache alone (no\n"
	"network, no token). QUERY is FTS5 syntax: words (all of them must\n"
	"match), \"a phrase\", OR, NOT, prefix*, NEAR(a b, 10); case and\n"
	"accents do not matter. --json prints an array of objects instead;\n"
	"--limit N stops after N hits (at most and by default 1000).\n"
	"An invalid query exits with status 1; an index not complete yet\n"
	"(a cache of an older version: driftctl sync or a mount builds it)\n"
	"exits with status 6 and says how far it is.\n";
