// SPDX-License-Identifier: MIT
/* auth.c: credentials file, OAuth token exchange and refresh (see auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "log.h"
#include "secret.h"

/* Refresh this long before expires_at (less for short-lived tokens). */
#define REFRESH_MARGIN_S 60
/* After a refresh failed for a transient reason, wait before the next. */
#define RETRY_REFRESH_MS 10000

static const char *const cred_names[] = { "access_token", "refresh_token",
					  "expires_at", "client_id",
					  "client_secret", "org_id" };

void auth_creds_release(struct auth_creds *c)
{
	if (!c)
		return;
	secret_free(c->access_token);
	secret_free(c->refresh_token);
	secret_free(c->client_id);
	secret_free(c->client_secret);
	memset(c, 0, sizeof(*c));
}


static int cred_index(const char *name)
{
	for (size_t i = 0; i < sizeof(cred_names) / sizeof(cred_names[0]); i++)
		if (!strcmp(name, cred_names[i]))
			return (int)i;
	return -1;
}

static int set_owned(char **slot, const char *v)
{
	char *p = strdup(v);

	if (!p)
		return -ENOMEM;
	secret_free(*slot);
	*slot = p;
	return 0;
}

int auth_creds_read(const char *path, struct auth_creds *c)
{
	char *line = NULL, *bare = NULL;
	struct stat st;
	int r = 0;
	FILE *f;

	memset(c, 0, sizeof(*c));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	line = malloc(AUTH_LINE_MAX);
	if (!line) {
		r = -ENOMEM;
		goto out;
	}
	if (fstat(fileno(f), &st)) {
		r = -errno;
		goto out;
	}
	/* Someone else's file could hold a token of theirs, so that our
	 * writes (and what a mount of theirs reads) go to their account. */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		r = config_trusted(path, &st);
		goto out;
	}
	if (st.st_mode & 077) {
		log_err("%s is readable by other users; refusing to use it "
			"(chmod 600 %s)",
			path, path);
		r = -EACCES;
		goto out;
	}
	while (!r && fgets(line, AUTH_LINE_MAX, f)) {
		char *s = config_trim(line), *eq = strchr(s, '=');
		int i = -1;

		if (!*s || *s == '#')
			continue;
		/* A bare token may hold '=' (base64 padding): only a known
		 * name before the '=' makes a "name = value" line. */
		if (eq) {
			*eq = '\0';
			i = cred_index(config_trim(s));
			if (i < 0)
				*eq = '=';
		}
		if (i < 0) {
			if (!bare)
				r = set_owned(&bare, s);
			continue;
		}
		s = config_trim(eq + 1);
		switch (i) {
		case 0:
			r = set_owned(&c->access_token, s);
			break;
		case 1:
			r = set_owned(&c->refresh_token, s);
			break;
		case 2:
			c->expires_at = strtoll(s, NULL, 10);
			if (c->expires_at < 0)
				c->expires_at = 0;
			break;
		case 3:
			r = set_owned(&c->client_id, s);
			break;
		case 5:
			c->org_id = strtoll(s, NULL, 10);
			if (c->org_id < 0)
				c->org_id = 0;
			break;
		default:
			r = set_owned(&c->client_secret, s);
			break;
		}
	}
	if (r)
		goto out;
	if (!c->access_token && bare) {
		c->access_token = bare;
		bare = NULL;
	}
	/* An empty value is no value. */
	if (c->access_token && !*c->access_token) {
		secret_free(c->access_token);
		c->access_token = NULL;
	}
	if (c->refresh_token && !*c->refresh_token) {
		secret_free(c->refresh_token);
		c->refresh_token = NULL;
	}
	if (!c->access_token && !c->refresh_token)
		r = -ENOKEY;
out:
	if (r)
		auth_creds_release(c);
	if (line) {
		secret_scrub(line, AUTH_LINE_MAX);
		free(line);
	}
	secret_free(bare);
	fclose(f);
	return r;
}

/* Whether v may be written as a value (one line, trimmed the same). */
static int value_ok(const char *v)
{
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* Creates a missing directory 0700 (with its parents), checks an old one. */
static int creds_dir(const char *dir, int tighten)
{
	struct stat st;

	if (stat(dir, &st) && errno == ENOENT)
		return config_private_dir(dir);
	if (tighten)
		return config_private_dir(dir);
	if (stat(dir, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		log_err("%s belongs to another user (uid %ld), who could "
			"replace the credentials file; choose another place",
			dir, (long)st.st_uid);
		return -EACCES;
	}
	if ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)) {
		log_err("%s is writable by other users, who could replace the "
			"credentials file; choose another place (or chmod "
			"go-w it)",
			dir);
		return -EACCES;
	}
	return 0;
}

int auth_creds_write(const char *path, const struct auth_creds *c,
		     int tighten)
{
	const char *vals[5] = { c->access_token, c->refresh_token, NULL,
				c->client_id, c->client_secret };
	char *dir = NULL, *tmp = NULL, *slash;
	struct buf b = BUF_INIT;
	int fd = -1, dfd = -1, r;

	for (size_t i = 0; i < 5; i++)
		if (vals[i] && (!*vals[i] || !value_ok(vals[i])))
			return -EINVAL;
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash) {
		free(dir);
		dir = strdup(".");
		if (!dir)
			return -ENOMEM;
	} else {
		*(slash == dir ? slash + 1 : slash) = '\0';
	}
	r = creds_dir(dir, tighten);
	if (r)
		goto out;
	if (asprintf(&tmp, "%s/.credentials-XXXXXX", dir) < 0) {
		tmp = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = buf_adds(&b, "# Drift credentials, written by driftctl; keep "
			 "this file private (mode 0600).\n");
	for (size_t i = 0; i < 5 && !r; i++) {
		if (i == 2)
			r = c->expires_at ? buf_printf(&b, "expires_at = %lld\n",
						       (long long)c->expires_at)
					  : 0;
		else if (vals[i])
			r = buf_printf(&b, "%s = %s\n", cred_names[i], vals[i]);
	}
	if (!r && c->org_id > 0)
		r = buf_printf(&b, "org_id = %lld\n", (long long)c->org_id);
	if (r)
		goto out;
	fd = mkostemp(tmp, O_CLOEXEC);	/* mode 0600 */
	if (fd < 0) {
		r = -errno;
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (fchmod(fd, 0600)) {
		r = -errno;
		goto out;
	}
	for (size_t off = 0; off < b.len;) {
		ssize_t n = write(fd, b.data + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			goto out;
		}
		off += (size_t)n;
	}
	if (fsync(fd) || close(fd)) {
		fd = -1;
		r = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tmp, path)) {
		r = -errno;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	/* The rename itself must survive a crash too. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	secret_scrub(b.data, b.len);
	buf_release(&b);
	free(dir);
	return r;
}

/*
 * A token answer (api_oauth_token, api.h) as credentials, expiring
 * expires_in seconds after now_s. Takes t's strings; t is left zeroed.
 */
static void creds_from_token(struct api_oauth_token *t, int64_t now_s,
			     struct auth_creds *out)
{
	memset(out, 0, sizeof(*out));
	out->access_token = t->access_token;
	out->refresh_token = t->refresh_token;
	out->org_id = t->org;
	out->lifetime = t->expires_in;
	out->expires_at = t->expires_in ? now_s + t->expires_in : 0;
	memset(t, 0, sizeof(*t));
}

int auth_parse_token_answer(const char *body, size_t len, int64_t now_s,
			    struct auth_creds *out)
{
	struct api_oauth_token t;
	int r = api_parse_oauth_token(body, len, &t);

	memset(out, 0, sizeof(*out));
	if (!r)
		creds_from_token(&t, now_s, out);
	return r;
}

int auth_exchange(struct http *h, const struct auth_grant *g,
		  struct auth_creds *out, char *why, size_t n)
{
	const struct api_oauth_grant ag = {
		.grant_type = g->grant_type,
		.client_id = g->client_id,
		.client_secret = g->client_secret,
		.code = g->code,
		.refresh_token = g->refresh_token,
		.redirect_uri = g->redirect_uri,
	};
	struct api_oauth_token t;
	int r;

	memset(out, 0, sizeof(*out));
	r = api_oauth_token(h, &ag, &t, why, n);
	if (!r)
		creds_from_token(&t, clock_wall_ms() / 1000, out);
	return r;
}

/*
 * The token source. Guarded by lock: everything below it. A refresh holds
 * lock for its whole HTTP exchange, so concurrent callers wait for its
 * result instead of refreshing again.
 */
struct auth {
	pthread_mutex_t lock;
	struct http_auth hooks;
	char *path;		/* credentials file; NULL with DRIFT_TOKEN */
	char *lock_path;	/* path + ".lock": serialises refreshes */
	long lock_wait_ms;	/* how long to wait for another refresher */
	struct auth_creds cur;	/* what we send now */
	unsigned long gen;	/* bumped whenever cur.access_token changes */
	struct stat seen;	/* the file as last read, to notice changes */
	int have_seen;
	int refused;		/* a refresh was refused: until the file
				 * changes, do not try again */
	int64_t retry_after_ms;	/* monotonic: no refresh before this */
	unsigned long warned_gen; /* the gen a 401 was last reported for */
	int64_t pinned;		/* the org whose cache is served; 0 = any */
	int foreign;		/* the file now holds another org's token:
				 * kept out, and never written over */
};

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Takes creds as the current ones (owning them); bumps gen on a change. */
static void adopt(struct auth *a, struct auth_creds *creds)
{
	int64_t lifetime = a->cur.lifetime;

	if (!a->cur.access_token || !creds->access_token ||
	    strcmp(a->cur.access_token, creds->access_token))
		a->gen++;
	auth_creds_release(&a->cur);
	a->cur = *creds;
	if (!a->cur.lifetime)
		a->cur.lifetime = lifetime;
	memset(creds, 0, sizeof(*creds));
}

/* Re-reads the credentials file if it changed (or always, with force). */
static void reload(struct auth *a, int force)
{
	struct auth_creds c;
	struct stat st;

	if (!a->path || stat(a->path, &st))
		return;
	if (!force && a->have_seen && same_file(&st, &a->seen))
		return;
	if (auth_creds_read(a->path, &c))
		return;		/* keep what we have; the reader logged why */
	a->seen = st;
	a->have_seen = 1;
	/* A login to another org while a mount runs: its token would sync
	 * that org into this org's cache. The mount keeps the token it has
	 * and leaves the file to the new login. A file without org_id
	 * (hand-written, --no-verify) cannot be told apart and is taken. */
	if (a->pinned && c.org_id && c.org_id != a->pinned) {
		if (!a->foreign)
			log_error_event("%s now holds a token of Drift org %lld, "
					"and this cache is org %lld's: the "
					"token is not used here (unmount, then "
					"mount again to serve org %lld from a "
					"cache of its own)",
					a->path, (long long)c.org_id,
					(long long)a->pinned,
					(long long)c.org_id);
		a->foreign = 1;
		auth_creds_release(&c);
		return;
	}
	a->foreign = 0;
	a->refused = 0;
	/* The file is written right after a token answer, so its age tells
	 * the token's lifetime, which sets the refresh margin. */
	if (c.expires_at > st.st_mtim.tv_sec)
		c.lifetime = c.expires_at - st.st_mtim.tv_sec;
	adopt(a, &c);
}

static int64_t margin_s(const struct auth *a)
{
	int64_t m = REFRESH_MARGIN_S;

	if (a->cur.lifetime > 0 && a->cur.lifetime / 4 < m)
		m = a->cur.lifetime / 4;
	return m;
}

static int stale(const struct auth *a)
{
	return !a->cur.access_token ||
	       (a->cur.expires_at &&
		clock_wall_ms() / 1000 >= a->cur.expires_at - margin_s(a));
}

static int refreshable(const struct auth *a)
{
	return a->path && a->cur.refresh_token && a->cur.client_id &&
	       a->cur.client_secret;
}

/* Waits (bounded) for the refresh lock; -1 when there is no lock to take. */
static int lock_refresh(struct auth *a)
{
	int64_t until = clock_mono_ms() + a->lock_wait_ms;
	int fd = open(a->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0) {
		log_debug("%s: %s; refreshing without it", a->lock_path,
			  strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		struct timespec ts = { 0, 50 * 1000000 };

		if (errno != EWOULDBLOCK || clock_mono_ms() >= until) {
			log_warn("%s: another process holds it too long; "
				 "refreshing anyway",
				 a->lock_path);
			break;
		}
		nanosleep(&ts, NULL);
	}
	return fd;
}

/*
 * Gets a new access token, the caller holding a->lock. rejected is the
 * token the API refused (NULL when it merely is about to expire). Returns 0
 * when a->cur now holds a token other than rejected.
 */
static int refresh_locked(struct auth *a, struct http *h, const char *rejected)
{
	struct auth_creds fresh;
	struct auth_grant g = { 0 };
	char why[512];
	struct stat st;
	int fd, r;

	fd = lock_refresh(a);
	/* Another process may have refreshed already: its token is good,
	 * and the refresh token we hold has been used up. */
	reload(a, 1);
	if (a->cur.access_token && !stale(a) &&
	    (!rejected || strcmp(rejected, a->cur.access_token))) {
		r = 0;
		goto out;
	}
	if (!refreshable(a)) {
		r = -EACCES;
		goto out;
	}
	g.grant_type = "refresh_token";
	g.client_id = a->cur.client_id;
	g.client_secret = a->cur.client_secret;
	g.refresh_token = a->cur.refresh_token;
	r = auth_exchange(h, &g, &fresh, why, sizeof(why));
	if (r) {
		if (r == -EACCES) {
			a->refused = 1;
			log_err("the Drift access token could not be refreshed "
				"(%s); run `driftctl login` to sign in again",
				why);
		} else {
			a->retry_after_ms = clock_mono_ms() + RETRY_REFRESH_MS;
			log_warn("the Drift access token could not be "
				 "refreshed (%s); trying again later",
				 why);
		}
		goto out;
	}
	/* Keep what the answer leaves out. */
	if (!fresh.refresh_token) {
		fresh.refresh_token = a->cur.refresh_token;
		a->cur.refresh_token = NULL;
	}
	fresh.client_id = a->cur.client_id;
	fresh.client_secret = a->cur.client_secret;
	a->cur.client_id = a->cur.client_secret = NULL;
	if (!fresh.org_id)
		fresh.org_id = a->cur.org_id;
	adopt(a, &fresh);
	/* The file belongs to another org's login now: ours stays here. */
	r = a->foreign ? 0 : auth_creds_write(a->path, &a->cur, 0);
	if (r)
		log_err("cannot save the refreshed token to %s: %s (the old "
			"refresh token is used up: other programs sharing the "
			"file must log in again)",
			a->path, strerror(-r));
	else if (!stat(a->path, &st)) {
		a->seen = st;
		a->have_seen = 1;
	}
	log_info("access token refreshed; it expires in %lld s",
		 (long long)a->cur.lifetime);
	r = 0;
out:
	if (fd >= 0)
		close(fd);	/* releases the flock */
	return r;
}

static int hook_token(void *ctx, struct http *h, char **token,
		      unsigned long *gen)
{
	struct auth *a = ctx;
	int r = 0;

	*token = NULL;
	pthread_mutex_lock(&a->lock);
	reload(a, 0);
	if (stale(a) && refreshable(a) && !a->refused &&
	    clock_mono_ms() >= a->retry_after_ms)
		refresh_locked(a, h, NULL);
	if (!a->cur.access_token) {
		if (a->warned_gen != a->gen + 1) {
			a->warned_gen = a->gen + 1;
			log_err("no Drift access token (the refresh token in "
				"%s could not be used); run `driftctl login`",
				a->path ? a->path : "DRIFT_TOKEN");
		}
		r = -EACCES;
	} else {
		/* A token past expiry that could not be refreshed is sent
		 * anyway: the API decides, and its 401 says what to do. */
		*token = strdup(a->cur.access_token);
		*gen = a->gen;
		if (!*token)
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&a->lock);
	return r;
}

static int hook_refused(void *ctx, struct http *h, unsigned long gen)
{
	struct auth *a = ctx;
	char *rejected = NULL;
	int r = -EACCES;

	pthread_mutex_lock(&a->lock);
	if (!a->path) {
		if (a->warned_gen != gen + 1) {
			a->warned_gen = gen + 1;
			log_err("the Drift API refused the token in DRIFT_TOKEN "
				"(HTTP 401: invalid, revoked or expired); set a "
				"valid one, or unset DRIFT_TOKEN to use the "
				"credentials file");
		}
		goto out;
	}
	reload(a, 0);
	if (a->gen != gen) {
		r = 0;	/* someone else refreshed or logged in meanwhile */
		goto out;
	}
	if (refreshable(a) && !a->refused) {
		rejected = a->cur.access_token ? strdup(a->cur.access_token)
					       : NULL;
		r = refresh_locked(a, h, rejected);
		if (!r && a->gen == gen)
			r = -EACCES;
	}
	if (r && !a->refused && a->warned_gen != gen + 1) {
		a->warned_gen = gen + 1;
		log_err("the Drift API refused the access token in %s (HTTP "
			"401: expired or revoked)%s; run `driftctl login` (or "
			"`driftctl login --token-stdin` for an install token)",
			a->path,
			refreshable(a) ? "" : " and the file holds no refresh "
					       "token");
	}
out:
	pthread_mutex_unlock(&a->lock);
	secret_free(rejected);
	return r;
}

struct auth *auth_new(const struct config *cfg)
{
	const char *env = getenv("DRIFT_TOKEN");
	struct auth *a = calloc(1, sizeof(*a));
	struct stat st;
	int r;

	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	a->hooks.token = hook_token;
	a->hooks.refused = hook_refused;
	a->hooks.ctx = a;
	a->lock_wait_ms = (cfg->timeout > 0 ? cfg->timeout : 30) * 3000 + 5000;
	if (env && *env) {
		a->cur.access_token = strdup(env);
		if (!a->cur.access_token) {
			r = -ENOMEM;
			goto fail;
		}
		return a;
	}
	a->path = strdup(cfg->credentials);
	if (!a->path || asprintf(&a->lock_path, "%s.lock", a->path) < 0) {
		a->lock_path = NULL;
		r = -ENOMEM;
		goto fail;
	}
	if (stat(a->path, &st)) {
		r = -errno;
	} else {
		r = auth_creds_read(a->path, &a->cur);
		a->seen = st;
		a->have_seen = !r;
		if (a->cur.expires_at > st.st_mtim.tv_sec)
			a->cur.lifetime = a->cur.expires_at - st.st_mtim.tv_sec;
	}
	if (r == -ENOENT || r == -ENOKEY) {
		/* The login that fills this account's file names it. */
		int other = cfg->account && strcmp(cfg->account, "default");

		log_err("no token: run `driftctl %s%s%slogin` (or set "
			"DRIFT_TOKEN); the credentials file %s %s",
			other ? "--account " : "", other ? cfg->account : "",
			other ? " " : "",
			cfg->credentials,
			r == -ENOENT ? "does not exist" : "holds no token");
	}
	else if (r && r != -EACCES)
		log_err("%s: %s", cfg->credentials, strerror(-r));
	if (r)
		goto fail;
	return a;
fail:
	auth_free(a);
	errno = -r;
	return NULL;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	auth_creds_release(&a->cur);
	free(a->path);
	free(a->lock_path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

const struct http_auth *auth_http(struct auth *a)
{
	return &a->hooks;
}

int auth_token(struct auth *a, struct http *h, char **token)
{
	unsigned long gen;

	return hook_token(a, h, token, &gen);
}

int64_t auth_org(struct auth *a)
{
	int64_t org;

	pthread_mutex_lock(&a->lock);
	reload(a, 0);
	org = a->cur.org_id;
	pthread_mutex_unlock(&a->lock);
	return org;
}

void auth_pin_org(struct auth *a, int64_t org)
{
	pthread_mutex_lock(&a->lock);
	a->pinned = org;
	pthread_mutex_unlock(&a->lock);
}

void auth_get_info(struct auth *a, struct auth_info *out)
{
	pthread_mutex_lock(&a->lock);
	reload(a, 0);
	out->fixed = !a->path;
	out->refreshable = refreshable(a);
	out->refused = a->refused;
	out->expires_at = a->cur.expires_at;
	pthread_mutex_unlock(&a->lock);
}
