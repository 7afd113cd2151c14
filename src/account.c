// SPDX-License-Identifier: MIT
/* account.c: the org a token belongs to, and the one cache that serves it. */
#include "account.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "log.h"
#include "secret.h"

/* Orgs named in one message at most. */
#define ORGS_MAX 8

/*
 * The files of a cache, moved when an old one is adopted; cache.db goes
 * last, so that a move cut short is taken up again by the next start (the
 * old cache.db is still there to say so), and <org>.new becomes <org> only
 * once it is gone.
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

/* Only an org id > 0 names a directory: never <host>/0 or <host>/-5. */
static char *org_dir(const char *host, int64_t org, const char *suffix)
{
	char *p = NULL;

	if (org <= 0) {
		errno = EINVAL;
		return NULL;
	}
	if (asprintf(&p, "%s/%lld%s", host, (long long)org, suffix) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

/* The org a directory name names (digits, then suffix), or 0. */
static int64_t org_name(const char *name, const char *suffix)
{
	size_t n = strlen(name), sl = strlen(suffix);
	int64_t v = 0;

	if (n <= sl || n - sl > 18 || strcmp(name + n - sl, suffix))
		return 0;
	for (size_t i = 0; i < n - sl; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		v = v * 10 + (name[i] - '0');
	}
	return v;
}

/*
 * Asks the API once (no retry, ACCOUNT_CHECK_MS) which org the token
 * belongs to: token_info, else, when it answers without one or not at all
 * with 404, the users' orgId (drift-api.md §13). Once: a start must not
 * wait on a network that does not answer, nor an unmount on a gate that
 * asks (the next pass asks again). 0 when it did not say.
 */
static int64_t ask_org(struct http *h, struct auth *a,
		       struct api_token_info *ti)
{
	long ms = ACCOUNT_CHECK_MS;
	char *tok = NULL;
	int64_t org = 0;
	int r;

	memset(ti, 0, sizeof(*ti));
	r = auth_token(a, h, &tok);
	if (!r)
		r = api_token_info(h, tok, ms, ti);
	secret_free(tok);
	org = ti->org;
	if (org <= 0 && (!r || ti->status == 404) &&
	    api_users_org(h, ms, &org))
		org = 0;
	return org > 0 ? org : 0;
}

/* Why the API did not name the org, for a log line. */
static void why_unknown(const struct api_token_info *ti, char *out, size_t n)
{
	if (ti->status >= 200 && ti->status < 300)
		snprintf(out, n, "POST /app/token_info answered without an "
			 "orgId");
	else
		snprintf(out, n, "POST /app/token_info: %s%ld%s%s",
			 ti->status ? "HTTP " : "no answer, ", ti->status,
			 ti->message[0] ? ": " : "", ti->message);
}

/* The org of the token: from the API, else as the credentials record it. */
static void find_org(struct account *acc, const struct config *cfg,
		     struct http *h, struct auth *a)
{
	char why[400];

	if (h && a && !cfg->offline) {
		acc->org = ask_org(h, a, &acc->ti);
		acc->verified = acc->org > 0;
		if (!acc->verified) {
			why_unknown(&acc->ti, why, sizeof(why));
			log_warn("the API did not say which Drift org the "
				 "token belongs to (%s): the cache is served "
				 "unverified, and nothing is synced or sent "
				 "until it does",
				 why);
		}
	}
	if (!acc->org && a)
		acc->org = auth_org(a);
}

/* Renames without replacing: a file already at to stays (-EEXIST). */
static int rename_new(const char *from, const char *to)
{
	if (!renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE))
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* No RENAME_NOREPLACE on this file system: link() never replaces. */
	if (link(from, to))
		return -errno;
	return unlink(from) ? -errno : 0;
}

/*
 * Makes <org>.new <org>, once <host>/cache.db is gone (the move is whole).
 * rename() of a directory replaces only an empty one: a cache made there
 * meanwhile stays, and so does the move (logged).
 */
static int promote(const char *host, int64_t org)
{
	char *tmp = org_dir(host, org, ".new"), *dst = org_dir(host, org, "");
	int r = 0;

	if (!tmp || !dst)
		r = -errno;
	else if (exists(host, "cache.db"))
		r = -EAGAIN;
	else if (rename(tmp, dst))
		r = -errno;
	if (r == -ENOTEMPTY || r == -EEXIST)
		log_warn("the moved cache in %s is left there: %s holds a "
			 "cache already; move one of them aside by hand",
			 tmp, dst);
	free(tmp);
	free(dst);
	return r == -ENOENT || r == -ENOTEMPTY || r == -EEXIST ? 0 : r;
}

/*
 * Finishes the moves a crash cut short after their last file (cache.db)
 * had left <host>: <org>.new becomes <org>. With <host>/cache.db still
 * there, adopt_old() takes the move up again instead. *pending_org: the org
 * of a .new left then (0 if none).
 */
static int finish_moves(const char *host, int64_t *pending_org)
{
	struct dirent *e;
	DIR *d = opendir(host);
	int old = exists(host, "cache.db"), r = 0;

	*pending_org = 0;
	while (d && !r && (e = readdir(d))) {
		int64_t o = org_name(e->d_name, ".new");

		if (!o)
			continue;
		if (old)
			*pending_org = o;
		else
			r = promote(host, o);
	}
	if (d)
		closedir(d);
	return r;
}

/* Moves the old cache's files from host into <host>/<org>. */
static int move_old(const char *host, int64_t org)
{
	char *tmp = org_dir(host, org, ".new"), *from = NULL, *to = NULL;
	int r = 0;

	if (!tmp)
		return -errno;
	r = config_private_dir(tmp);
	for (size_t i = 0; !r && i < sizeof(cache_files) / sizeof(*cache_files);
	     i++) {
		if (asprintf(&from, "%s/%s", host, cache_files[i]) < 0 ||
		    asprintf(&to, "%s/%s", tmp, cache_files[i]) < 0)
			r = -ENOMEM;
		else
			r = rename_new(from, to);
		if (r == -ENOENT)
			r = 0;
		else if (r == -EEXIST)
			log_err("cannot move %s: %s is there already (a "
				"move cut short, then a new file?); compare "
				"them and move one aside by hand",
				from, to);
		free(from);
		free(to);
		from = to = NULL;
	}
	if (!r)
		r = promote(host, org);
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

/* What an old cache says about its org, read without changing it. */
struct old_cache {
	int64_t meta_org;	/* meta "org_id", 0 if none */
	int64_t orgs[ORGS_MAX];	/* the users' orgIds (> 0) */
	size_t k;
	int64_t pending;	/* rows in its outbox(es) */
};

/* Opens path read-only: nothing is created, rebuilt or dropped. */
static int open_ro(const char *path, sqlite3 **db)
{
	if (sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL) !=
		    SQLITE_OK ||
	    sqlite3_busy_timeout(*db, 10000) != SQLITE_OK) {
		log_err("cannot read %s: %s", path,
			*db ? sqlite3_errmsg(*db) : "out of memory");
		return -EIO;
	}
	return 0;
}

/*
 * Runs sql and hands each row's first column to out (n at most). A table
 * the file lacks is no error: nothing is read (*found 0).
 */
static int read_i64s(sqlite3 *db, const char *sql, int64_t *out, size_t n,
		     size_t *found)
{
	sqlite3_stmt *s = NULL;
	int rc;

	*found = 0;
	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		int missing = strstr(sqlite3_errmsg(db), "no such") != NULL;

		sqlite3_finalize(s);
		return missing ? 0 : -EIO;
	}
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *found < n)
		out[(*found)++] = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Reads an old cache's org, users and outbox, read-only. */
static int read_old(const char *host, struct old_cache *oc)
{
	/* The users' orgIds, > 0 only; json may be stored as a BLOB. */
	static const char users_sql[] =
		"SELECT DISTINCT CAST(json_extract(j, '$.orgId') AS INTEGER)"
		" FROM (SELECT CAST(json AS TEXT) AS j FROM users)"
		" WHERE json_valid(j) AND json_type(j, '$.orgId') = 'integer'"
		" AND json_extract(j, '$.orgId') > 0 LIMIT 9";
	sqlite3 *db = NULL;
	char *path = NULL;
	int64_t v[1];
	size_t n;
	int r;

	memset(oc, 0, sizeof(*oc));
	if (asprintf(&path, "%s/cache.db", host) < 0)
		return -ENOMEM;
	r = open_ro(path, &db);
	r = r ? r : read_i64s(db, "SELECT CAST(value AS INTEGER) FROM meta"
			      " WHERE key = 'org_id'", v, 1, &n);
	if (!r && n && v[0] > 0)
		oc->meta_org = v[0];
	r = r ? r : read_i64s(db, users_sql, oc->orgs, ORGS_MAX, &oc->k);
	/* Before outbox.db, the outbox was a table in cache.db. */
	r = r ? r : read_i64s(db, "SELECT count(*) FROM outbox", v, 1, &n);
	if (!r && n)
		oc->pending += v[0];
	sqlite3_close(db);
	db = NULL;
	free(path);
	path = NULL;
	if (!r && exists(host, "outbox.db")) {
		if (asprintf(&path, "%s/outbox.db", host) < 0)
			return -ENOMEM;
		r = open_ro(path, &db);
		r = r ? r : read_i64s(db, "SELECT count(*) FROM outbox", v, 1,
				      &n);
		if (!r && n)
			oc->pending += v[0];
		sqlite3_close(db);
		free(path);
	}
	return r;
}

/*
 * Whether a process that does not know the per-org layout may be using the
 * cache in host: a mount (its note), a driftctl sync (its lock). Logs who.
 */
static int old_cache_busy(const char *host)
{
	char *mnt, *lock = NULL;
	long pid = 0;
	int fd, busy = 0;

	mnt = config_mount_find(host, &pid);
	if (mnt) {
		log_err("the cache in %s is served by the mount at %s (pid "
			"%ld); unmount it, then start again (the cache is then "
			"moved to its Drift org's directory)",
			host, mnt, pid);
		free(mnt);
		return -EBUSY;
	}
	if (asprintf(&lock, "%s/sync.lock", host) < 0)
		return -ENOMEM;
	/* Opened, never created: no file is made in host. */
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) && errno == EWOULDBLOCK)
		busy = 1;
	if (fd >= 0)
		close(fd);
	if (busy)
		log_err("the cache in %s is being synced by a driftctl (it "
			"holds %s); start again once it has ended (the cache "
			"is then moved to its Drift org's directory)",
			host, lock);
	free(lock);
	return busy ? -EBUSY : 0;
}

/*
 * A cache from before caches were kept per org sits in host itself. Moves
 * it to the org it holds (its users say which), or to org when it holds
 * none and no write waits in its outbox. Returns 0 (moved or left), or
 * -errno after logging why not. The caller holds <host>/.migrate.
 */
static int adopt_old(const char *host, int64_t org, int64_t pending_org)
{
	struct old_cache oc;
	int64_t owner;
	char names[256], *dst = NULL;
	int r;

	r = old_cache_busy(host);
	if (r)
		return r;
	r = read_old(host, &oc);
	if (r) {
		log_err("cannot read the old cache in %s: %s", host,
			strerror(-r));
		return r;
	}
	if (oc.k > 1) {
		list_orgs(names, sizeof(names), oc.orgs, oc.k);
		log_err("the cache in %s holds the data of Drift orgs %s (an "
			"older driftfs synced two logins into it) and cannot be "
			"split; this token is org %lld's. Remove it: `rm %s/"
			"cache.db*` (writes not yet sent are in %s/outbox.db: "
			"`driftctl status` lists them), then start again",
			host, names, (long long)org, host, host);
		return -EEXIST;
	}
	owner = oc.meta_org ? oc.meta_org : oc.k ? oc.orgs[0] : pending_org;
	if (!owner && oc.pending) {
		log_err("the cache in %s holds %lld write%s not yet sent, and "
			"no cached user says which Drift org made them; this "
			"token is org %lld's, and they are not sent with it. "
			"Start with the credentials of the org that made them "
			"(the cache then moves to its directory and they go "
			"out), or drop them: `rm %s/outbox.db* %s/cache.db*`",
			host, (long long)oc.pending,
			oc.pending == 1 ? "" : "s", (long long)org, host, host);
		return -EEXIST;
	}
	if (!owner)
		owner = org;
	dst = org_dir(host, owner, "");
	if (!dst)
		return -errno;
	if (exists(dst, "cache.db")) {
		log_warn("the old cache in %s (Drift org %lld) is left where "
			 "it is: org %lld has a cache of its own in %s",
			 host, (long long)owner, (long long)owner, dst);
		goto out;
	}
	r = move_old(host, owner);
	if (r)
		log_err("cannot move the old cache in %s to %s: %s", host, dst,
			strerror(-r));
	else
		log_info("the cache in %s is Drift org %lld's: moved to %s",
			 host, (long long)owner, dst);
out:
	free(dst);
	return r;
}

/*
 * Moves of old caches, one process at a time: a mount and a driftctl sync
 * started together would otherwise move the same files. Returns the locked
 * descriptor (close() unlocks), or -errno.
 */
static int migrate_lock(const char *host)
{
	char *p = NULL;
	int fd;

	if (asprintf(&p, "%s/.migrate", host) < 0)
		return -ENOMEM;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		int e = errno;

		log_err("cannot lock %s: %s", p, strerror(e));
		if (fd >= 0)
			close(fd);
		fd = -e;
	}
	free(p);
	return fd;
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
		int64_t o = org_name(e->d_name, "");
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
	int64_t pending_org = 0;
	int r, old, fd;

	memset(acc, 0, sizeof(*acc));
	acc->h = h;
	acc->auth = a;
	if (pthread_mutex_init(&acc->gate_lock, NULL))
		return -ENOMEM;
	acc->lock_ready = 1;
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
	if (acc->verified)
		__atomic_store_n(&acc->api_org, acc->org, __ATOMIC_RELEASE);
	if (create) {
		fd = migrate_lock(acc->host_dir);
		if (fd < 0)
			return fd;
		r = finish_moves(acc->host_dir, &pending_org);
		if (!r && acc->org > 0 && exists(acc->host_dir, "cache.db"))
			r = adopt_old(acc->host_dir, acc->org, pending_org);
		close(fd);
		if (r)
			return r;
	}
	old = exists(acc->host_dir, "cache.db");
	if (!acc->org)
		return pick_only(acc, old);
	acc->dir = org_dir(acc->host_dir, acc->org, "");
	if (!acc->dir)
		return -errno;
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

	acc->st = st;
	if (acc->org && mine > 0 && mine != acc->org) {
		log_err("the cache in %s belongs to Drift org %lld, and this "
			"token is org %lld's: refusing to mix them. Use org "
			"%lld's credentials for it (`driftctl login`, or "
			"-o credentials=FILE), or a cache_dir of its own",
			acc->dir, (long long)mine, (long long)acc->org,
			(long long)mine);
		return -EEXIST;
	}
	if (!acc->org)
		acc->org = mine > 0 ? mine : 0;
	if (acc->verified)
		__atomic_store_n(&acc->state, ACC_VERIFIED, __ATOMIC_RELEASE);
	/* The old place stays unclaimed until its move (adopt_old). */
	if (acc->org && !mine && strcmp(acc->dir, acc->host_dir))
		return store_meta_set_i64(st, "org_id", acc->org);
	return 0;
}

/*
 * Whether the cache holds another org's data than org: its recorded org,
 * else (the old place, unclaimed) its users' orgs. Sets *theirs.
 */
static int other_org(struct account *acc, int64_t org, int64_t *theirs)
{
	int64_t orgs[ORGS_MAX];
	size_t k = 0;

	*theirs = acc->org;
	if (acc->org)
		return acc->org != org;
	if (!acc->st || store_user_orgs(acc->st, orgs, ORGS_MAX, &k))
		return 0;
	for (size_t i = 0; i < k; i++)
		if (orgs[i] != org) {
			*theirs = orgs[i];
			return 1;
		}
	return 0;
}

int account_gate(struct account *acc)
{
	struct api_token_info ti;
	int64_t org, theirs;
	char why[400];
	int state;

	if (!acc)
		return 0;
	state = __atomic_load_n(&acc->state, __ATOMIC_ACQUIRE);
	if (state != ACC_UNVERIFIED)
		return state == ACC_VERIFIED ? 0 : -EACCES;
	pthread_mutex_lock(&acc->gate_lock);
	/* Another thread may have asked while this one waited. */
	state = __atomic_load_n(&acc->state, __ATOMIC_ACQUIRE);
	if (state != ACC_UNVERIFIED || !acc->h || !acc->auth)
		goto out;
	org = ask_org(acc->h, acc->auth, &ti);
	if (!org && (ti.status == 401 || ti.status == 403)) {
		/* Not a network failure: no org is named while the token is
		 * refused, and only a new login helps. */
		if (!acc->warned)
			log_error_event("POST /app/token_info: HTTP %ld: the "
					"token was refused; run driftctl "
					"login", ti.status);
		acc->warned = 1;
		pthread_mutex_unlock(&acc->gate_lock);
		return -EACCES;
	}
	if (!org) {
		why_unknown(&ti, why, sizeof(why));
		if (!acc->warned)
			log_warn("the token's Drift org is not verified yet "
				 "(%s): the cache of org %lld is served, and "
				 "nothing is synced or sent until the API "
				 "names the org",
				 why, (long long)acc->org);
		acc->warned = 1;
		goto out;
	}
	__atomic_store_n(&acc->api_org, org, __ATOMIC_RELEASE);
	if (other_org(acc, org, &theirs)) {
		state = ACC_FOREIGN;
		log_err("the token is Drift org %lld's, and this mount "
			"serves the cache of org %lld (%s): syncing and "
			"sending writes are stopped for good on this mount, so "
			"that org %lld's data never enters it and its writes "
			"never go out with another org's token. Unmount, then "
			"mount with org %lld's credentials (`driftctl login`, "
			"or -o credentials=FILE); org %lld gets a cache of its "
			"own when mounted with its own",
			(long long)org, (long long)theirs, acc->dir,
			(long long)org, (long long)theirs, (long long)org);
		log_error_event("the token is Drift org %lld's, not org "
				"%lld's whose cache this is: sync and outbox "
				"stopped; mount again with org %lld's "
				"credentials",
				(long long)org, (long long)theirs,
				(long long)theirs);
	} else {
		state = ACC_VERIFIED;
		log_info("the API names Drift org %lld: syncing and sending "
			 "resume", (long long)org);
	}
	__atomic_store_n(&acc->state, state, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&acc->gate_lock);
	return state == ACC_VERIFIED ? 0 : state == ACC_FOREIGN ? -EACCES
								: -ENETDOWN;
}

int account_verified(struct account *acc)
{
	return !acc || __atomic_load_n(&acc->state, __ATOMIC_ACQUIRE) ==
			       ACC_VERIFIED;
}

int account_status_render(struct account *acc, struct buf *out)
{
	int state;
	int64_t api;

	if (!acc)
		return 0;
	state = __atomic_load_n(&acc->state, __ATOMIC_ACQUIRE);
	api = __atomic_load_n(&acc->api_org, __ATOMIC_ACQUIRE);
	if (state == ACC_VERIFIED)
		return buf_printf(out, "org: %lld\n",
				  (long long)(acc->org ? acc->org : api));
	if (state == ACC_FOREIGN)
		return buf_printf(out, "org: %lld (the token is org %lld's: "
				  "sync and outbox stopped; mount again with "
				  "org %lld's credentials)\n",
				  (long long)acc->org, (long long)api,
				  (long long)acc->org);
	return buf_printf(out, "org: %lld (not verified: the API has not "
			  "named the token's org yet; nothing is synced or "
			  "sent until it does)\n", (long long)acc->org);
}

void account_release(struct account *acc)
{
	free(acc->host_dir);
	free(acc->dir);
	if (acc->lock_ready)
		pthread_mutex_destroy(&acc->gate_lock);
	memset(acc, 0, sizeof(*acc));
}
