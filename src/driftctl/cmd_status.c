// SPDX-License-Identifier: MIT
/*
 * cmd_status.c: driftctl status: 'name: value' lines on the credentials,
 * the account, the cache and its outbox, a mount of it and the rate
 * limits. It reads; it changes nothing on disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "auth.h"
#include "buf.h"
#include "config.h"
#include "driftctl_int.h"
#include "http.h"
#include "search_index.h"
#include "store.h"

static int status_opt(struct cli *c, void *cmd, const struct opt *o,
		      const char *value)
{
	(void)c;
	(void)cmd;
	(void)o;
	cli_say("status: unexpected argument '%s'", value);
	return DX_USAGE;
}

/* Bytes of the regular files in dir (the cache and its WAL). */
static long long dir_size(const char *dir)
{
	long long total = 0;
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		struct stat st;

		if (!fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISREG(st.st_mode))
			total += (long long)st.st_size;
	}
	closedir(d);
	return total;
}

/* One "outbox_entry:" line per write waiting for the API. */
static int print_outbox_row(void *ctx, const struct outbox_row *o)
{
	char when[64];

	(void)ctx;
	cli_fmt_time(when, sizeof(when), o->created);
	cli_show("outbox_entry: #%lld %s %s: %s %s (%s, %lld attempts%s%s)",
		 (long long)o->seq, when, o->path ? o->path : "?",
		 o->method ? o->method : "?", o->api_path ? o->api_path : "?",
		 o->state ? o->state : "?", (long long)o->attempts,
		 o->last_error && *o->last_error ? ", last error: " : "",
		 o->last_error ? o->last_error : "");
	return 0;
}

/* Copies the lines of text starting with one of keys to stdout. */
static void print_lines(const char *text, const char *const *keys)
{
	for (const char *l = text; l && *l;) {
		size_t len = strcspn(l, "\n");

		for (const char *const *k = keys; *k; k++)
			if (!strncmp(l, *k, strlen(*k)))
				cli_show("mount_%.*s", (int)len, l);
		l += len;
		if (*l)
			l++;
	}
}

int cmd_status(struct cli *c, int argc, char **argv, int from)
{
	static const char *const mount_keys[] = { "state: ", "syncing: ",
						  "rate_limit: ", NULL };
	struct auth_info ai = { 0 };
	int64_t counts[STORE_COUNTS];
	char *db = NULL, *mnt = NULL, tbuf[64], sbuf[32];
	struct stat st;
	long pid = 0;
	int r, result = DX_OK;

	r = cli_parse_args(c, argc, argv, from, cli_no_opts, status_opt, NULL);
	if (r || c->help)
		return r;
	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	r = cli_open_host_dir(c, 0);
	if (r)
		return r;
	/* Failures show up in the lines below. */
	cli_set_log_level(c, 1);
	printf("api_url: %s\n", c->d.cfg.api_url);

	/* Credentials and account. */
	if (!c->d.cfg.offline) {
		int e = cli_open_http(c, 1);

		if (e == DX_LOCAL || e == DX_USAGE)
			return e;
	}
	/* Offline, the credentials file's org picks the cache. */
	if (c->d.cfg.offline && !c->auth) {
		struct stat cst;

		if (!stat(c->d.cfg.credentials, &cst))
			c->auth = auth_new(&c->d.cfg);
	}
	if (c->auth) {
		auth_get_info(c->auth, &ai);
		if (ai.fixed)
			printf("credentials: DRIFT_TOKEN (a fixed token)\n");
		else if (ai.expires_at) {
			cli_fmt_time(tbuf, sizeof(tbuf), ai.expires_at * 1000);
			printf("credentials: %s (OAuth, access token expires "
			       "%s, %s)\n",
			       c->d.cfg.credentials, tbuf,
			       ai.refused ? "refresh refused: run driftctl "
					    "login"
			       : ai.refreshable ? "refreshed automatically"
						: "no refresh token");
		} else {
			printf("credentials: %s (a token without expiry)\n",
			       c->d.cfg.credentials);
		}
	} else if (c->d.cfg.offline) {
		printf("credentials: not read (offline)\n");
	} else {
		printf("credentials: none (run driftctl login)\n");
		result = DX_AUTH;
	}
	/* The cache of the token's org; its token_info answer is the one
	 * shown below (asked once). */
	r = cli_open_dir(c, 0);
	if (c->d.cfg.offline) {
		printf("account: not checked (offline)\n");
	} else if (c->auth) {
		const struct api_token_info *ti = &c->acc.ti;
		long s = ti->status;

		if (s >= 200 && s < 300) {
			printf("account: org %lld\n", (long long)ti->org);
			if (ti->scope[0])
				cli_show("scope: %s", ti->scope);
		} else {
			cli_show("account: unknown (%s%s%s)",
				 s == 401 || s == 403 || s == 400
				     ? "the token was refused: run driftctl "
				       "login"
				 : s ? "HTTP error"
				     : "API unreachable",
				 ti->message[0] && s ? ": " : "",
				 s ? ti->message : "");
			result = s == 400 ? DX_AUTH : cli_exit_for_status(s);
		}
	}
	if (r) {
		result = r;
		goto out;
	}
	if (c->acc.org)
		printf("cache_org: %lld\n", (long long)c->acc.org);
	if (asprintf(&db, "%s/cache.db", c->dir) < 0) {
		db = NULL;
		result = DX_LOCAL;
		goto out;
	}
	if (stat(db, &st)) {
		printf("cache: %s (empty: run driftctl sync)\n", c->dir);
	} else {
		/* A status only reads: it never resets the search index. */
		search_open_read_only(1);
		r = cli_open_store(c);
		if (r) {
			result = r;
			goto out;
		}
		cli_fmt_size(sbuf, sizeof(sbuf), dir_size(c->dir));
		printf("cache: %s (%s)\n", c->dir, sbuf);
		cli_fmt_time(tbuf, sizeof(tbuf),
			     store_meta_i64(c->d.store, "last_sync"));
		printf("last_sync: %s\n", tbuf);
		if (!store_counts(c->d.store, counts))
			for (int i = 0; i < STORE_COUNTS; i++)
				printf("%s: %lld\n", store_count_names[i],
				       (long long)counts[i]);
		store_outbox_each(c->d.store, print_outbox_row, NULL);
	}

	/* A mount of this cache, and the rate limits. */
	mnt = config_mount_find(c->dir, &pid);
	if (mnt) {
		struct progress p = { 0 };
		struct buf b = BUF_INIT;

		printf("mount: %s (pid %ld)\n", mnt, pid);
		if (asprintf(&p.status_path, "%s/.driftfs/status", mnt) >= 0 &&
		    !progress_text(&p, &b) && b.data)
			print_lines(b.data, mount_keys);
		free(p.status_path);
		buf_release(&b);
	} else {
		printf("mount: none\n");
	}
	if (c->d.http) {
		struct buf b = BUF_INIT;

		if (!http_governor_render(c->d.http, &b) && b.data)
			fputs(b.data, stdout);
		buf_release(&b);
	}
	printf("report_calls: %d in the last minute (limit %d)\n",
	       c->host_dir ? report_limit_calls_recent(c->host_dir) : 0,
	       REPORT_LIMIT);
out:
	free(db);
	free(mnt);
	return result;
}

const char cli_usage_status[] =
	"usage: driftctl status\n"
	"\n"
	"Prints the account (POST /app/token_info), the credentials, the\n"
	"cache's size and counts, the last sync, the outbox, a running mount\n"
	"and the rate-limit state, as 'name: value' lines.\n";
