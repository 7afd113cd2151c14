// SPDX-License-Identifier: MIT
/* account.c: the org a token belongs to, and the one cache that serves it. */
#include "account.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "log.h"

/* Orgs named in one message at most. */
#define ORGS_MAX 8

/*
 * The files of a cache, moved when an old one is adopted; cache.db goes
 * last, so that a move cut short is finished by the next start (the old
 * cache.db is still there to say so).
 */
static const char *const cache_files[] = {
	"outbox.db",	"outbox.db-wal",  "outbox.db-shm", "outbox.db-journal",
	"cache.db-wal", "cache.db-shm",	  "cache.db-journal",
	"cache.db.clean", "cache.db",
};

static int exists(const char *dir, const char *name)
{
	char *p = NULL;
	struct stat st;
	int r;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		return 0;
	r = !stat(p, &st);
	free(p);
	return r;
}

static char *org_dir(const char *host, int64_t org, const char *suffix)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%lld%s", host, (long long)org, suffix) < 0)
		return NULL;
	return p;
}

/* Whether name is an org directory's name: digits only. */
static int64_t org_name(const char *name)
{
	int64_t v = 0;

	if (!*name || strlen(name) > 18)
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		v = v * 10 + (*p - '0');
	}
	return v;
}

/* The org of the token: from the API, else as the credentials record it. */
static void find_org(struct account *acc, const struct config *cfg,
		     struct http *h, struct auth *a)
{
	struct api_token_info ti = { 0 };
	char *tok = NULL;
	int r = -EACCES;

	if (h && a && !cfg->offline) {
		r = auth_token(a, h, &tok);
		if (!r)
			r = api_token_info(h, tok, &ti);
		if (tok) {
			memset(tok, 0, strlen(tok));
			free(tok);
		}
		acc->org = ti.org;
		/* An answer without the org, or no such endpoint: the users
		 * name their org too (drift-api.md §13). */
		if (!acc->org && (!r || ti.status == 404) &&
		    api_users_org(h, &acc->org))
			acc->org = 0;
		acc->verified = acc->org > 0;
		if (!acc->verified && ti.status >= 200 && ti.status < 300)
			log_warn("the API did not say which Drift org the token "
				 "belongs to (POST /app/token_info answered "
				 "without an orgId)");
		else if (!acc->verified)
			log_warn("the API did not say which Drift org the token "
				 "belongs to (POST /app/token_info: %s%ld%s%s)",
				 ti.status ? "HTTP " : "no answer, ", ti.status,
				 ti.message[0] ? ": " : "", ti.message);
	}
	if (!acc->org && a)
		acc->org = auth_org(a);
}

/* Finishes a move into <org>.new cut short by a crash. */
static int finish_move(const char *host, int64_t org)
{
	char *tmp = org_dir(host, org, ".new"), *dst = org_dir(host, org, "");
	struct stat st;
	int r = 0;

	if (!tmp || !dst)
		r = -ENOMEM;
	else if (!stat(tmp, &st) && stat(dst, &st) && rename(tmp, dst))
		r = -errno;
	free(tmp);
	free(dst);
	return r;
}

/* Moves the old cache's files from host into <host>/<org>. */
static int move_old(const char *host, int64_t org)
{
	char *tmp = org_dir(host, org, ".new"), *from = NULL, *to = NULL;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	r = config_private_dir(tmp);
	for (size_t i = 0; !r && i < sizeof(cache_files) / sizeof(*cache_files);
	     i++) {
		if (asprintf(&from, "%s/%s", host, cache_files[i]) < 0 ||
		    asprintf(&to, "%s/%s", tmp, cache_files[i]) < 0)
			r = -ENOMEM;
		else if (rename(from, to) && errno != ENOENT)
			r = -errno;
		free(from);
		free(to);
		from = to = NULL;
	}
	if (!r)
		r = finish_move(host, org);
	free(tmp);
	return r;
}

static void list_orgs(char *out, size_t n, const int64_t *orgs, size_t k)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < k && used < n; i++) {
		int w = snprintf(out + used, n - used, "%s%lld",
				 i ? (i + 1 == k ? " and " : ", ") : "",
				 (long long)orgs[i]);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/*
 * A cache from before caches were kept per org sits in host itself. Moves
 * it to the org it holds (its users say which), or to org when it holds
 * none. Returns 0 (moved or left), or -errno after logging why not.
 */
static int adopt_old(const char *host, int64_t org)
{
	int64_t orgs[ORGS_MAX], owner;
	struct store *st;
	size_t k = 0;
	char *mnt, names[256], *dst = NULL;
	long pid = 0;
	int r;

	mnt = config_mount_find(host, &pid);
	if (mnt) {
		log_err("the cache in %s is served by the mount at %s (pid %ld) "
			"of an older driftfs; unmount it, then start again "
			"(the cache is then moved to a directory per Drift org)",
			host, mnt, pid);
		free(mnt);
		return -EBUSY;
	}
	st = store_open(host);
	if (!st) {
		r = -errno;
		log_err("cannot open the old cache in %s: %s", host,
			strerror(-r));
		return r;
	}
	owner = store_meta_i64(st, "org_id");
	r = owner ? 0 : store_user_orgs(st, orgs, ORGS_MAX, &k);
	store_close(st);
	if (r) {
		log_err("cannot read the old cache in %s: %s", host,
			strerror(-r));
		return r;
	}
	if (k > 1) {
		list_orgs(names, sizeof(names), orgs, k);
		log_err("the cache in %s holds the data of Drift orgs %s (an "
			"older driftfs synced two logins into it) and cannot be "
			"split; this token is org %lld's. Remove it: `rm %s/"
			"cache.db*` (writes not yet sent are in %s/outbox.db: "
			"`driftctl status` lists them), then start again",
			host, names, (long long)org, host, host);
		return -EEXIST;
	}
	if (!owner)
		owner = k ? orgs[0] : org;
	r = finish_move(host, owner);
	dst = org_dir(host, owner, "");
	if (!r && !dst)
		r = -ENOMEM;
	if (!r && exists(dst, "cache.db")) {
		log_warn("the old cache in %s (Drift org %lld) is left where "
			 "it is: org %lld has a cache of its own in %s",
			 host, (long long)owner, (long long)owner, dst);
		goto out;
	}
	if (!r)
		r = move_old(host, owner);
	if (r)
		log_err("cannot move the old cache in %s to %s: %s", host,
			dst ? dst : "its org's directory", strerror(-r));
	else
		log_info("the cache in %s is Drift org %lld's: moved to %s",
			 host, (long long)owner, dst);
out:
	free(dst);
	return r;
}

/*
 * The org unknown: the one cache there is, whichever org it belongs to.
 * Several: nothing can be chosen without a guess.
 */
static int pick_only(struct account *acc, int old)
{
	int64_t orgs[ORGS_MAX];
	size_t k = 0, total = 0;
	char names[256];
	struct dirent *e;
	DIR *d = opendir(acc->host_dir);

	while (d && (e = readdir(d))) {
		int64_t o = org_name(e->d_name);
		char *dir;

		if (!o)
			continue;
		dir = org_dir(acc->host_dir, o, "");
		if (dir && exists(dir, "cache.db")) {
			if (k < ORGS_MAX)
				orgs[k++] = o;
			total++;
		}
		free(dir);
	}
	if (d)
		closedir(d);
	if (total + (old ? 1 : 0) > 1) {
		list_orgs(names, sizeof(names), orgs, k);
		log_err("which Drift org this token belongs to is not known "
			"(%s), and %s holds the caches of orgs %s%s: run "
			"`driftctl login` (it records the org in the "
			"credentials file), or start again while the API "
			"answers",
			acc->verified ? "" : "offline, or the API did not say",
			acc->host_dir, names,
			old ? " and one from before caches were kept per org"
			    : "");
		return -EEXIST;
	}
	if (total == 1) {
		acc->org = orgs[0];
		acc->dir = org_dir(acc->host_dir, acc->org, "");
		log_warn("the token's Drift org is not known: serving the only "
			 "cache, org %lld's", (long long)acc->org);
	} else {
		/* The old place: adopted by its org once one is known. */
		acc->dir = strdup(acc->host_dir);
	}
	return acc->dir ? 0 : -ENOMEM;
}

int account_open(struct account *acc, const struct config *cfg,
		 struct http *h, struct auth *a, int create)
{
	int r, old;

	memset(acc, 0, sizeof(*acc));
	acc->host_dir = config_account_dir(cfg);
	if (!acc->host_dir)
		return -ENOMEM;
	if (create) {
		r = config_private_dir(cfg->cache_dir);
		r = r ? r : config_private_dir(acc->host_dir);
		if (r)
			return r;
	}
	find_org(acc, cfg, h, a);
	old = exists(acc->host_dir, "cache.db");
	if (!acc->org)
		return pick_only(acc, old);
	if (create) {
		r = finish_move(acc->host_dir, acc->org);
		if (!r && old)
			r = adopt_old(acc->host_dir, acc->org);
		if (r)
			return r;
	}
	acc->dir = org_dir(acc->host_dir, acc->org, "");
	if (!acc->dir)
		return -ENOMEM;
	/* driftctl status reads an old cache where it is until it moves. */
	if (!create && old && !exists(acc->dir, "cache.db")) {
		free(acc->dir);
		acc->dir = strdup(acc->host_dir);
		return acc->dir ? 0 : -ENOMEM;
	}
	return create ? config_private_dir(acc->dir) : 0;
}

int account_check_store(struct account *acc, struct store *st)
{
	int64_t mine = store_meta_i64(st, "org_id");

	if (acc->org && mine && mine != acc->org) {
		log_err("the cache in %s belongs to Drift org %lld, and this "
			"token is org %lld's: refusing to mix them. Use org "
			"%lld's credentials for it (`driftctl login`, or "
			"-o credentials=FILE), or a cache_dir of its own",
			acc->dir, (long long)mine, (long long)acc->org,
			(long long)mine);
		return -EEXIST;
	}
	if (!acc->org) {
		acc->org = mine;
		return 0;
	}
	/* The old place stays unclaimed until its move (adopt_old). */
	if (!mine && strcmp(acc->dir, acc->host_dir))
		return store_meta_set_i64(st, "org_id", acc->org);
	return 0;
}

void account_release(struct account *acc)
{
	free(acc->host_dir);
	free(acc->dir);
	memset(acc, 0, sizeof(*acc));
}
