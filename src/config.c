// SPDX-License-Identifier: MIT
/* config.c: options, the config file and the account directory (see config.h). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "secret.h"

const char *config_home(void)
{
	const char *home = getenv("HOME");
	struct passwd *pw;

	if (home && home[0] == '/')
		return home;
	/* No $HOME (a mount from fstab, a system unit): the user's own home
	 * from the password database, never a directory others can write. */
	pw = getpwuid(geteuid());
	if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
		return pw->pw_dir;
	return NULL;
}

/*
 * $var/driftfs/[accounts/ACCOUNT/]leaf, or HOME/fallback/... without an
 * absolute $var (the XDG rule: a relative one is ignored). account NULL is
 * the default account's place. Caller frees; NULL with errno ENOMEM, or
 * ENOENT when there is no home to fall back on.
 */
static char *xdg_path(const char *var, const char *fallback,
		      const char *account, const char *leaf)
{
	const char *base = getenv(var), *home;
	char *root = NULL, *p = NULL;
	int n;

	if (base && base[0] == '/') {
		n = asprintf(&root, "%s/driftfs", base);
	} else {
		home = config_home();
		if (!home) {
			errno = ENOENT;
			return NULL;
		}
		n = asprintf(&root, "%s/%s/driftfs", home, fallback);
	}
	if (n < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (account)
		n = asprintf(&p, "%s/accounts/%s%s%s", root, account,
			     leaf ? "/" : "", leaf ? leaf : "");
	else
		n = asprintf(&p, "%s%s%s", root, leaf ? "/" : "",
			     leaf ? leaf : "");
	free(root);
	if (n < 0) {
		errno = ENOMEM;
		return NULL;
	}
	return p;
}

int config_account_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > 64 || name[0] == '.' || name[0] == '-')
		return -EINVAL;
	if (strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") != n)
		return -EINVAL;
	return 0;
}

const char *config_account_default(void)
{
	const char *e = getenv("DRIFTFS_ACCOUNT");

	return e && *e ? e : "default";
}

/* NULL for the default account, whose files keep their old places. */
static const char *account_leaf(const char *account)
{
	return !account || !strcmp(account, "default") ? NULL : account;
}

char *config_path_for(const char *account)
{
	return xdg_path("XDG_CONFIG_HOME", ".config", account_leaf(account),
			"config");
}

char *config_default_path(void)
{
	return config_path_for(NULL);
}

int config_log_level(const char *name)
{
	static const char *const names[] = { "error", "warning", "info",
					     "debug" };

	if (!name)
		return -1;
	if (!strcasecmp(name, "warn"))
		return LOG_LVL_WARN;
	for (int i = 0; i < 4; i++)
		if (!strcasecmp(name, names[i]))
			return i;
	return -1;
}

int config_defaults_for(struct config *c, const char *account)
{
	const char *leaf;
	int no_home;

	memset(c, 0, sizeof(*c));
	if (account && config_account_valid(account))
		return -EINVAL;
	leaf = account_leaf(account);
	c->account = strdup(leaf ? leaf : "default");
	c->api_url = strdup("https://driftapi.com");
	c->credentials = xdg_path("XDG_CONFIG_HOME", ".config", leaf,
				  "credentials");
	no_home = !c->credentials && errno == ENOENT;
	c->cache_dir = xdg_path("XDG_CACHE_HOME", ".cache", leaf, NULL);
	no_home |= !c->cache_dir && errno == ENOENT;
	c->refresh = 60;
	c->reconcile = 86400;
	c->timeout = 30;
	c->conns = 4;
	c->log_level = -1;
	c->uid = -1;
	c->gid = -1;
	if (!c->account || !c->api_url || !c->credentials || !c->cache_dir) {
		config_release(c);
		return no_home ? -ENOENT : -ENOMEM;
	}
	return 0;
}

int config_defaults(struct config *c)
{
	return config_defaults_for(c, NULL);
}

void config_release(struct config *c)
{
	free(c->account);
	free(c->api_url);
	free(c->credentials);
	free(c->cache_dir);
	free(c->ca_file);
	free(c->client_id);
	secret_free(c->client_secret);
	free(c->redirect_uri);
	memset(c, 0, sizeof(*c));
}

static int set_str(char **slot, const char *value)
{
	char *p = strdup(value);

	if (!p)
		return -ENOMEM;
	free(*slot);
	*slot = p;
	return 0;
}

static int parse_long(const char *v, long lo, long hi, long *out)
{
	char *end;
	long n;

	/* strtol would skip leading blanks: "uid= 5" is no number. */
	if (!isdigit((unsigned char)v[0]) && v[0] != '-')
		return -EINVAL;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	if (!v || !*v || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "true") || !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcasecmp(v, "no") ||
		 !strcasecmp(v, "false") || !strcasecmp(v, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

int config_set(struct config *c, const char *name, const char *value)
{
	char key[64];
	size_t i;

	for (i = 0; name[i] && i + 1 < sizeof(key); i++)
		key[i] = name[i] == '-' ? '_' : name[i];
	key[i] = '\0';

	if (!strcmp(key, "offline"))
		return parse_bool(value, &c->offline);
	if (!value)
		return -EINVAL;
	if (!strcmp(key, "api_url")) {
		size_t n = strlen(value);
		int r = set_str(&c->api_url, value);

		while (!r && n > 0 && c->api_url[n - 1] == '/')
			c->api_url[--n] = '\0';
		return r;
	}
	if (!strcmp(key, "credentials"))
		return set_str(&c->credentials, value);
	if (!strcmp(key, "cache_dir"))
		return set_str(&c->cache_dir, value);
	if (!strcmp(key, "ca_file"))
		return set_str(&c->ca_file, value);
	if (!strcmp(key, "client_id"))
		return set_str(&c->client_id, value);
	if (!strcmp(key, "client_secret"))
		return set_str(&c->client_secret, value);
	if (!strcmp(key, "redirect_uri"))
		return set_str(&c->redirect_uri, value);
	if (!strcmp(key, "refresh"))
		return parse_long(value, 0, 86400 * 365, &c->refresh);
	/* 0 would ask for every object on every pass: refused, like any
	 * value that makes no bound. */
	if (!strcmp(key, "reconcile"))
		return parse_long(value, 1, 86400 * 365, &c->reconcile);
	if (!strcmp(key, "timeout"))
		return parse_long(value, 1, 3600, &c->timeout);
	if (!strcmp(key, "conns"))
		return parse_long(value, 1, 32, &c->conns);
	if (!strcmp(key, "log_level")) {
		int l = config_log_level(value);

		if (l < 0)
			return -EINVAL;
		c->log_level = l;
		return 0;
	}
	/* Ids as numbers only: a name would need a lookup that a mount
	 * from fstab (no NSS yet at boot) could not always make. */
	if (!strcmp(key, "uid"))
		return parse_long(value, 0, 0x7ffffffe, &c->uid);
	if (!strcmp(key, "gid"))
		return parse_long(value, 0, 0x7ffffffe, &c->gid);
	if (!strcmp(key, "umask")) {
		char *end;
		long m;

		if (!isdigit((unsigned char)value[0]))
			return -EINVAL;
		errno = 0;
		m = strtol(value, &end, 8);
		if (errno || end == value || *end || m < 0 || m > 0777)
			return -EINVAL;
		c->umask = m;
		return 0;
	}
	if (!strcmp(key, "rate")) {
		char *end;
		double d;

		if (!strcmp(value, "adaptive")) {
			c->rate = 0;
			return 0;
		}
		if (!isdigit((unsigned char)value[0]) && value[0] != '.')
			return -EINVAL;
		d = strtod(value, &end);
		if (end == value || *end || !(d >= 0 && d <= 10000))
			return -EINVAL;
		c->rate = d;
		return 0;
	}
	return -ENOENT;
}

char *config_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Whether s could be an option name (so repeating it shows no value). */
static int key_like(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-");

	return n > 0 && n <= 32 && !s[n];
}

int config_trusted(const char *path, const struct stat *st)
{
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		log_err("%s belongs to another user (uid %ld); refusing to "
			"use it (only yours or root's are trusted)",
			path, (long)st->st_uid);
		return -EACCES;
	}
	/* A sticky directory (/tmp) still lets anyone add a name to it. */
	if (st->st_mode & 022) {
		log_err("%s is writable by other users; refusing to use it "
			"(chmod go-w %s)",
			path, path);
		return -EACCES;
	}
	return 0;
}

int config_load_file(struct config *c, const char *path)
{
	char line[4096];
	int lineno = 0, r = 0;
	struct stat st;
	FILE *f = fopen(path, "re");

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	/* What was opened is what is checked: a file of someone else's
	 * could set api_url and receive the token. */
	if (fstat(fileno(f), &st))
		r = -errno;
	else
		r = config_trusted(path, &st);
	if (r) {
		if (r != -EACCES)
			log_err("%s: %s", path, strerror(-r));
		fclose(f);
		return r;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = config_trim(line), *eq;

		lineno++;
		if (!*s || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (eq)
			*eq = '\0';
		r = config_set(c, config_trim(s), eq ? config_trim(eq + 1) : NULL);
		if (r) {
			/* Without '=' the "key" is the whole line, which may
			 * be a secret ("client_secret: S"): only a name made
			 * of key characters is repeated. */
			if (!eq || !key_like(config_trim(s)))
				log_err("%s:%d: %s", path, lineno,
					eq ? "bad option name"
					   : "no '=' (name = value) in this "
					     "line");
			else
				log_err("%s:%d: %s option '%s'", path, lineno,
					r == -ENOENT ? "unknown"
						     : "bad value for",
					config_trim(s));
			r = -EINVAL;
			break;
		}
		if (!strcmp(config_trim(s), "client_secret") && (st.st_mode & 077)) {
			log_err("%s sets client_secret but other users can "
				"read it; refusing it (chmod 600 %s)",
				path, path);
			r = -EACCES;
			break;
		}
	}
	fclose(f);
	return r;
}

/*
 * Whether the URL's host is a loopback name or address, as curl itself will
 * read the URL (so "http://127.0.0.1.evil.com" or "http://localhost@evil.com"
 * cannot pass). URLs with user info are refused outright.
 */
static int url_is_loopback(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *user = NULL;
	struct in_addr a;
	int ok = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK && user)
		goto out;
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host)
		goto out;
	if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]"))
		ok = 1;
	else if (inet_pton(AF_INET, host, &a) == 1)
		ok = (ntohl(a.s_addr) >> 24) == 127;
out:
	curl_free(host);
	curl_free(user);
	curl_url_cleanup(u);
	return ok;
}

int config_validate(const struct config *c)
{
	/* Caught here, a missing CA file is one clear line at start, not
	 * a TLS error on every request. */
	if (c->ca_file) {
		struct stat st;

		if (stat(c->ca_file, &st) || access(c->ca_file, R_OK)) {
			log_err("ca_file %s: %s", c->ca_file, strerror(errno));
			return -EINVAL;
		}
		/* A directory would pass as readable, and then be no CA
		 * bundle: every handshake would fail. */
		if (!S_ISREG(st.st_mode)) {
			log_err("ca_file %s: not a regular file (a PEM bundle "
				"of CA certificates)",
				c->ca_file);
			return -EINVAL;
		}
	}
	if (!strncmp(c->api_url, "https://", 8))
		return 0;
	if (!strncmp(c->api_url, "http://", 7)) {
		if (url_is_loopback(c->api_url))
			return 0;
		log_err("api_url %s: plain http:// is accepted only for "
			"loopback hosts; use https://",
			c->api_url);
		return -EINVAL;
	}
	log_err("api_url %s: must start with https://", c->api_url);
	return -EINVAL;
}

int config_private_dir(const char *dir)
{
	char *tmp = strdup(dir);
	struct stat st;
	int r = 0;

	if (!tmp)
		return -ENOMEM;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) && errno != EEXIST)
			r = -errno;
		*p = '/';
		if (r)
			goto out;
	}
	if (mkdir(tmp, 0700) && errno != EEXIST) {
		r = -errno;
		goto out;
	}
	if (stat(tmp, &st)) {
		r = -errno;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		r = -ENOTDIR;
		goto out;
	}
	/* Someone else's directory, even a private one, could hold a cache
	 * they swap under us. */
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		log_err("%s belongs to another user (uid %ld); refusing to "
			"keep account data there",
			tmp, (long)st.st_uid);
		r = -EACCES;
		goto out;
	}
	if (st.st_mode & 077) {
		/* Ours and too open: tighten it; someone else's: refuse. */
		if (st.st_uid == geteuid() && !chmod(tmp, 0700))
			goto out;
		log_err("%s is accessible to other users; refusing to keep "
			"account data there (chmod 700 it)",
			tmp);
		r = -EACCES;
	}
out:
	free(tmp);
	return r;
}

void config_forget_env(const char *name)
{
	char *v = getenv(name);

	if (!v)
		return;
	/* The bytes themselves: /proc/PID/environ shows the block the
	 * process started with, whatever environ points to later. */
	secret_scrub(v, strlen(v));
	unsetenv(name);
}

void config_harden_process(void)
{
	/* No core file (the token is in memory), and another process of the
	 * same user can neither ptrace us nor read /proc/PID/{mem,environ}.
	 * A debugger started as our parent, or root, still can. */
	prctl(PR_SET_DUMPABLE, 0L, 0L, 0L, 0L);
}

/*
 * The names a host's directory must not take: the default account's
 * cache_dir holds the profiles' caches in accounts/ (a host "accounts"
 * would make a profile's cache its org directory), and where
 * $XDG_CACHE_HOME is $XDG_CONFIG_HOME, config and credentials too.
 * Compared without case, for a file system that folds it.
 */
static const char *const host_reserved[] = { "accounts", "config",
					     "credentials" };

char *config_account_dir(const struct config *c)
{
	const char *h = strstr(c->api_url, "://");
	char name[NAMES_MAX + 1], *out = NULL;
	size_t n;

	h = h ? h + 3 : c->api_url;
	n = strcspn(h, "/?#");
	n = names_encode(h, n, 200, name);
	for (char *p = name; *p; p++)
		if (*p == ':')
			*p = '_';
	/* Such a host's first letter goes as %XX: a name the encoding of a
	 * host never makes (it writes letters as they are), so no host, and
	 * no profile, can share the directory. */
	for (size_t i = 0; i < sizeof(host_reserved) / sizeof(*host_reserved);
	     i++) {
		static const char hex[] = "0123456789ABCDEF";
		unsigned char first = (unsigned char)name[0];

		if (strcasecmp(name, host_reserved[i]))
			continue;
		/* The rest of the name, and its NUL. */
		memmove(name + 3, name + 1, n);
		name[0] = '%';
		name[1] = hex[first >> 4];
		name[2] = hex[first & 15];
		break;
	}
	if (asprintf(&out, "%s/%s", c->cache_dir, name) < 0)
		return NULL;
	return out;
}

int config_mount_note(const char *account_dir, const char *mountpoint)
{
	char *path = NULL, *text = NULL;
	int fd = -1, n, r = 0;

	if (asprintf(&path, "%s/mount", account_dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* A second mount of the same cache leaves the first one's note. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		r = -errno;
		goto out;
	}
	n = asprintf(&text, "%ld\n%s\n", (long)getpid(), mountpoint);
	if (n < 0) {
		text = NULL;
		r = -ENOMEM;
		goto out;
	}
	if (ftruncate(fd, 0) || pwrite(fd, text, (size_t)n, 0) != n)
		r = -errno;
out:
	if (r && fd >= 0) {
		close(fd);
		fd = -1;
	}
	free(text);
	free(path);
	return r ? r : fd;
}

char *config_mount_find(const char *account_dir, long *pid)
{
	char *path = NULL, buf[4200], *nl, *out = NULL;
	ssize_t n;
	int fd;

	*pid = 0;
	if (asprintf(&path, "%s/mount", account_dir) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	/* Free to lock: nobody holds it, so no mount is alive. */
	if (!flock(fd, LOCK_SH | LOCK_NB) || errno != EWOULDBLOCK)
		goto out;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		goto out;
	buf[n] = '\0';
	nl = strchr(buf, '\n');
	if (!nl || nl[1] != '/')
		goto out;
	*nl = '\0';
	*pid = strtol(buf, NULL, 10);
	nl[1 + strcspn(nl + 1, "\n")] = '\0';
	out = strdup(nl + 1);
out:
	close(fd);
	return out;
}
