// SPDX-License-Identifier: MIT
/* test_config.c: unit tests of options, validation and the token (config.h). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "unit.h"

static char tmpdir[64]; /* this run's scratch directory (mkdtemp) */

/* Writes text to tmpdir/leaf with mode; returns the path (static). */
static const char *write_file(const char *leaf, const char *text, mode_t mode)
{
	static char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, leaf);
	unlink(path);
	f = fopen(path, "w");
	if (!f)
		return NULL;
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

static void test_defaults(void)
{
	struct config c;
	char *path, *home;

	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	setenv("XDG_CACHE_HOME", "/cache", 1);
	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_STR(c.api_url, "https://driftapi.com");
	CHECK_EQ_STR(c.credentials, "/cfg/driftfs/credentials");
	CHECK_EQ_STR(c.cache_dir, "/cache/driftfs");
	CHECK(c.ca_file == NULL);
	CHECK_EQ_INT(c.refresh, 60);
	CHECK_EQ_INT(c.timeout, 30);
	CHECK_EQ_INT(c.conns, 4);
	CHECK_EQ_INT(c.offline, 0);
	CHECK(c.rate == 0);
	CHECK_EQ_INT(config_validate(&c), 0);
	config_release(&c);

	/* Without XDG_CONFIG_HOME, the path is under $HOME/.config. */
	unsetenv("XDG_CONFIG_HOME");
	home = getenv("HOME");
	home = home ? strdup(home) : NULL;
	setenv("HOME", "/home/u", 1);
	path = config_default_path();
	CHECK_EQ_STR(path, "/home/u/.config/driftfs/config");
	free(path);
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
}

static void test_set_strings(void)
{
	struct config c;

	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_INT(config_set(&c, "api_url", "https://a.example"), 0);
	CHECK_EQ_STR(c.api_url, "https://a.example");
	CHECK_EQ_INT(config_set(&c, "api-url", "https://b.example/"), 0);
	CHECK_EQ_STR(c.api_url, "https://b.example");
	CHECK_EQ_INT(config_set(&c, "api-url", "http://127.0.0.1:8080///"), 0);
	CHECK_EQ_STR(c.api_url, "http://127.0.0.1:8080");
	CHECK_EQ_INT(config_set(&c, "api_url", "https://c.example/v1/"), 0);
	CHECK_EQ_STR(c.api_url, "https://c.example/v1");
	CHECK_EQ_INT(config_set(&c, "api_url", NULL), -EINVAL);
	CHECK_EQ_STR(c.api_url, "https://c.example/v1");
	CHECK_EQ_INT(config_set(&c, "credentials", "/x/creds"), 0);
	CHECK_EQ_STR(c.credentials, "/x/creds");
	CHECK_EQ_INT(config_set(&c, "cache_dir", "/x/cache"), 0);
	CHECK_EQ_STR(c.cache_dir, "/x/cache");
	CHECK_EQ_INT(config_set(&c, "cache-dir", "/y/cache"), 0);
	CHECK_EQ_STR(c.cache_dir, "/y/cache");
	CHECK_EQ_INT(config_set(&c, "ca_file", "/x/ca.pem"), 0);
	CHECK_EQ_STR(c.ca_file, "/x/ca.pem");
	CHECK_EQ_INT(config_set(&c, "ca-file", "/y/ca.pem"), 0);
	CHECK_EQ_STR(c.ca_file, "/y/ca.pem");
	config_release(&c);
}

static void test_set_numbers(void)
{
	static const char *const bad[] = { "", "abc", "10x", "-1", "1.5" };
	struct config c;

	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_INT(config_set(&c, "refresh", "0"), 0);
	CHECK_EQ_INT(c.refresh, 0);
	CHECK_EQ_INT(config_set(&c, "refresh", "120"), 0);
	CHECK_EQ_INT(c.refresh, 120);
	/* reconcile is a bound: 0 would be none, so it is refused. */
	CHECK_EQ_INT(c.reconcile, 86400);
	CHECK_EQ_INT(config_set(&c, "reconcile", "0"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "reconcile", "1"), 0);
	CHECK_EQ_INT(c.reconcile, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		CHECK_EQ_INT(config_set(&c, "refresh", bad[i]), -EINVAL);
		CHECK_EQ_INT(config_set(&c, "timeout", bad[i]), -EINVAL);
		CHECK_EQ_INT(config_set(&c, "conns", bad[i]), -EINVAL);
	}
	unit_ctx = NULL;
	/* A refused value leaves the old one. */
	CHECK_EQ_INT(c.refresh, 120);
	CHECK_EQ_INT(config_set(&c, "refresh", NULL), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "refresh", "99999999999999999999"),
		     -EINVAL);

	CHECK_EQ_INT(config_set(&c, "timeout", "0"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "timeout", "1"), 0);
	CHECK_EQ_INT(c.timeout, 1);
	CHECK_EQ_INT(config_set(&c, "timeout", "3601"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "timeout", "3600"), 0);
	CHECK_EQ_INT(c.timeout, 3600);

	CHECK_EQ_INT(config_set(&c, "conns", "0"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "conns", "33"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "conns", "8"), 0);
	CHECK_EQ_INT(c.conns, 8);

	CHECK_EQ_INT(config_set(&c, "rate", "2.5"), 0);
	CHECK(c.rate == 2.5);
	CHECK_EQ_INT(config_set(&c, "rate", "adaptive"), 0);
	CHECK(c.rate == 0);
	CHECK_EQ_INT(config_set(&c, "rate", "10"), 0);
	CHECK(c.rate == 10);
	CHECK_EQ_INT(config_set(&c, "rate", "-1"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "rate", "nan"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "rate", "inf"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "rate", "fast"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "rate", ""), -EINVAL);
	CHECK(c.rate == 10);
	config_release(&c);
}

static void test_set_offline_and_unknown(void)
{
	struct config c;

	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_INT(config_set(&c, "offline", NULL), 0);
	CHECK_EQ_INT(c.offline, 1);
	CHECK_EQ_INT(config_set(&c, "offline", "off"), 0);
	CHECK_EQ_INT(c.offline, 0);
	CHECK_EQ_INT(config_set(&c, "offline", "yes"), 0);
	CHECK_EQ_INT(c.offline, 1);
	CHECK_EQ_INT(config_set(&c, "offline", "0"), 0);
	CHECK_EQ_INT(c.offline, 0);
	CHECK_EQ_INT(config_set(&c, "offline", "TRUE"), 0);
	CHECK_EQ_INT(c.offline, 1);
	CHECK_EQ_INT(config_set(&c, "offline", "maybe"), -EINVAL);
	CHECK_EQ_INT(c.offline, 1);

	CHECK_EQ_INT(config_set(&c, "nope", "1"), -ENOENT);
	CHECK_EQ_INT(config_set(&c, "token", "secret"), -ENOENT);
	CHECK_EQ_INT(config_set(&c, "api_url_x", "https://x"), -ENOENT);
	CHECK_EQ_INT(config_set(&c, "", "1"), -ENOENT);
	CHECK_EQ_STR(c.api_url, "https://driftapi.com");
	config_release(&c);
}

static int validate(const char *url)
{
	struct config c;
	int r;

	if (config_defaults(&c))
		return -ENOMEM;
	free(c.api_url);
	c.api_url = strdup(url);
	unit_quiet(1);
	r = config_validate(&c);
	unit_quiet(0);
	config_release(&c);
	return r;
}

static void test_validate(void)
{
	static const char *const good[] = {
		"https://x",		    "https://driftapi.com",
		"http://127.0.0.1:8080",    "http://localhost",
		"http://[::1]:5",	    "http://localhost:8080/api",
		"http://127.0.0.1",	    "http://LOCALHOST:1",
	};
	static const char *const bad[] = {
		"http://example.com",	 "http://localhost.evil.com",
		"http://localhost@evil.com", "ftp://x",
		"",			 "localhost",
		"http://",		 "http://[::2]:5",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unit_ctx = good[i];
		CHECK_EQ_INT(validate(good[i]), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		CHECK_EQ_INT(validate(bad[i]), -EINVAL);
	}
}

/*
 * Hosts that only look like loopback: libcurl would connect to evil.com
 * (checked with curl_url_get(CURLUPART_HOST)) and send the token there in
 * clear text.
 */
static void test_validate_fake_loopback(void)
{
	static const char *const bad[] = {
		"http://127.0.0.1.evil.com",	 "http://127.evil.com/",
		"http://localhost:pw@evil.com/", "http://127.0.0.1:80@evil.com",
		"http://[::1]@evil.com",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		CHECK_EQ_INT(validate(bad[i]), -EINVAL);
	}
}

static void test_load_file(void)
{
	const char *path;
	struct config c;

	REQUIRE(config_defaults(&c) == 0);
	path = write_file("config",
			  "# comment\n\n  api-url = http://localhost:1/ \n"
			  "refresh=5\noffline\nconns = 2\n",
			  0600);
	REQUIRE(path);
	CHECK_EQ_INT(config_load_file(&c, path), 0);
	CHECK_EQ_STR(c.api_url, "http://localhost:1");
	CHECK_EQ_INT(c.refresh, 5);
	CHECK_EQ_INT(c.offline, 1);
	CHECK_EQ_INT(c.conns, 2);
	path = write_file("config", "refresh = 7\nbogus = 1\n", 0600);
	unit_quiet(1);
	CHECK_EQ_INT(config_load_file(&c, path), -EINVAL);
	path = write_file("config", "timeout = never\n", 0600);
	CHECK_EQ_INT(config_load_file(&c, path), -EINVAL);
	unit_quiet(0);
	CHECK_EQ_INT(c.timeout, 30);
	unlink(path);
	/* A missing config file is not an error. */
	CHECK_EQ_INT(config_load_file(&c, path), 0);
	config_release(&c);
}

/* Loads the config file holding text; what it logged goes to out. */
static int load_logged(const char *text, char *out, size_t size)
{
	char tmpl[] = "/tmp/test_config_log.XXXXXX";
	struct config c;
	const char *path = write_file("config", text, 0600);
	int fd = mkstemp(tmpl), saved, r;
	ssize_t n;

	if (!path || fd < 0 || config_defaults(&c))
		return -EIO;
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	r = config_load_file(&c, path);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, size - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	config_release(&c);
	return r;
}

/*
 * A line without '=' is no "name = value": its text may be the value the
 * user meant ("client_secret: S"), so the log names the line, not its
 * content; a key-like name before a '=' is still quoted.
 */
static void test_bad_line_not_echoed(void)
{
	char log[2048];

	CHECK_EQ_INT(load_logged("client_secret: s3cr3t-VALUE\n", log,
				 sizeof(log)),
		     -EINVAL);
	CHECK(!strstr(log, "s3cr3t-VALUE"));
	CHECK(strstr(log, ":1: no '=' (name = value) in this line") != NULL);
	CHECK_EQ_INT(load_logged("\nclient secret s3cr3t-VALUE = x\n", log,
				 sizeof(log)),
		     -EINVAL);
	CHECK(!strstr(log, "s3cr3t-VALUE"));
	CHECK(strstr(log, ":2: bad option name") != NULL);
	CHECK_EQ_INT(load_logged("bogus = 1\n", log, sizeof(log)), -EINVAL);
	CHECK(strstr(log, ":1: unknown option 'bogus'") != NULL);
}

static void test_private_dir(void)
{
	char dir[128];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/a/b/c", tmpdir);
	CHECK_EQ_INT(config_private_dir(dir), 0);
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
	/* Ours and too open: tightened. */
	chmod(dir, 0755);
	CHECK_EQ_INT(config_private_dir(dir), 0);
	CHECK(stat(dir, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
	/* Not a directory. */
	write_file("plain", "x", 0600);
	snprintf(dir, sizeof(dir), "%s/plain", tmpdir);
	CHECK_EQ_INT(config_private_dir(dir), -ENOTDIR);
}

static void remove_tree(void)
{
	static const char *const leaves[] = { "credentials", "config", "plain",
					      "a/b/c", "a/b", "a" };
	char path[128];

	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, leaves[i]);
		if (unlink(path))
			rmdir(path);
	}
	rmdir(tmpdir);
}

/*
 * ACCOUNT profiles: "default" keeps the paths driftfs always had, another
 * name gets its own config, credentials and cache under accounts/NAME,
 * and a name that could leave that directory is refused.
 */
static void test_accounts(void)
{
	static const char *const bad[] = { "", ".", "..", "../x", "a/b", "-o",
					   ".hidden", "a b", "a\nb", "é",
					   "x234567890123456789012345678901"
					   "234567890123456789012345678901"
					   "23456" };
	static const char *const good[] = { "default", "work", "acme.eu",
					    "Org_2", "a-b", "x" };
	struct config c;
	char *path;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(config_account_valid(bad[i]), -EINVAL);
		CHECK_EQ_INT(config_defaults_for(&c, bad[i]), -EINVAL);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK_EQ_INT(config_account_valid(good[i]), 0);
	CHECK_EQ_INT(config_account_valid(NULL), -EINVAL);

	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	setenv("XDG_CACHE_HOME", "/cache", 1);
	REQUIRE(config_defaults_for(&c, "default") == 0);
	CHECK_EQ_STR(c.account, "default");
	CHECK_EQ_STR(c.credentials, "/cfg/driftfs/credentials");
	CHECK_EQ_STR(c.cache_dir, "/cache/driftfs");
	config_release(&c);
	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_STR(c.account, "default");
	config_release(&c);
	REQUIRE(config_defaults_for(&c, "work") == 0);
	CHECK_EQ_STR(c.account, "work");
	CHECK_EQ_STR(c.credentials, "/cfg/driftfs/accounts/work/credentials");
	CHECK_EQ_STR(c.cache_dir, "/cache/driftfs/accounts/work");
	config_release(&c);
	path = config_path_for("work");
	CHECK_EQ_STR(path, "/cfg/driftfs/accounts/work/config");
	free(path);
	path = config_path_for("default");
	CHECK_EQ_STR(path, "/cfg/driftfs/config");
	free(path);

	unsetenv("DRIFTFS_ACCOUNT");
	CHECK_EQ_STR(config_account_default(), "default");
	setenv("DRIFTFS_ACCOUNT", "work", 1);
	CHECK_EQ_STR(config_account_default(), "work");
	unsetenv("DRIFTFS_ACCOUNT");
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	setenv("XDG_CACHE_HOME", tmpdir, 1);
}

/*
 * An API host's cache directory never shares a name with the profiles'
 * accounts/ (nor with config or credentials, where the cache and config
 * homes are one directory): a host "accounts" made a profile's cache the
 * default account's org directory (default's <cache>/accounts/<org>/ is
 * profile <org>'s cache_dir).
 */
static void test_host_dirs_apart(void)
{
	static const char *const cases[][2] = {
		{ "https://driftapi.com", "/cache/driftfs/driftapi.com" },
		{ "http://127.0.0.1:8080/", "/cache/driftfs/127.0.0.1_8080" },
		{ "https://accounts", "/cache/driftfs/%61ccounts" },
		{ "https://accounts/v1?x", "/cache/driftfs/%61ccounts" },
		{ "https://Accounts", "/cache/driftfs/%41ccounts" },
		{ "https://accounts:443", "/cache/driftfs/accounts_443" },
		{ "https://accounts.example", "/cache/driftfs/accounts.example" },
		{ "https://config", "/cache/driftfs/%63onfig" },
		{ "https://CREDENTIALS", "/cache/driftfs/%43REDENTIALS" },
	};
	struct config c, w;
	char *dir, *prof;

	setenv("XDG_CONFIG_HOME", "/cfg", 1);
	setenv("XDG_CACHE_HOME", "/cache", 1);
	REQUIRE(config_defaults(&c) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unit_ctx = cases[i][0];
		CHECK_EQ_INT(config_set(&c, "api_url", cases[i][0]), 0);
		dir = config_account_dir(&c);
		CHECK_EQ_STR(dir, cases[i][1]);
		free(dir);
	}
	/* Profile 42's cache is no org directory of the default account's. */
	REQUIRE(config_defaults_for(&w, "42") == 0);
	CHECK_EQ_INT(config_set(&c, "api_url", "https://accounts"), 0);
	dir = config_account_dir(&c);
	prof = NULL;
	REQUIRE(asprintf(&prof, "%s/42", dir) > 0);
	CHECK(strcmp(prof, w.cache_dir) != 0);
	free(prof);
	free(dir);
	config_release(&w);
	config_release(&c);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	setenv("XDG_CACHE_HOME", tmpdir, 1);
}

/* log_level, uid, gid and umask: their spellings, ranges and defaults. */
static void test_log_level_and_owner(void)
{
	struct config c;

	REQUIRE(config_defaults(&c) == 0);
	CHECK_EQ_INT(c.log_level, -1);
	CHECK_EQ_INT(c.uid, -1);
	CHECK_EQ_INT(c.gid, -1);
	CHECK_EQ_INT(c.umask, 0);
	CHECK_EQ_INT(config_set(&c, "log_level", "debug"), 0);
	CHECK_EQ_INT(c.log_level, LOG_LVL_DEBUG);
	CHECK_EQ_INT(config_set(&c, "log-level", "ERROR"), 0);
	CHECK_EQ_INT(c.log_level, LOG_LVL_ERROR);
	CHECK_EQ_INT(config_set(&c, "log_level", "warn"), 0);
	CHECK_EQ_INT(c.log_level, LOG_LVL_WARN);
	CHECK_EQ_INT(config_set(&c, "log_level", "info"), 0);
	CHECK_EQ_INT(c.log_level, LOG_LVL_INFO);
	CHECK_EQ_INT(config_set(&c, "log_level", "loud"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "log_level", NULL), -EINVAL);
	CHECK_EQ_INT(c.log_level, LOG_LVL_INFO);

	CHECK_EQ_INT(config_set(&c, "uid", "1000"), 0);
	CHECK_EQ_INT(c.uid, 1000);
	CHECK_EQ_INT(config_set(&c, "gid", "0"), 0);
	CHECK_EQ_INT(c.gid, 0);
	CHECK_EQ_INT(config_set(&c, "uid", "root"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "uid", "-1"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "gid", "4294967295"), -EINVAL);
	CHECK_EQ_INT(c.uid, 1000);

	CHECK_EQ_INT(config_set(&c, "umask", "022"), 0);
	CHECK_EQ_INT(c.umask, 022);
	CHECK_EQ_INT(config_set(&c, "umask", "77"), 0);
	CHECK_EQ_INT(c.umask, 077);
	CHECK_EQ_INT(config_set(&c, "umask", "0"), 0);
	CHECK_EQ_INT(c.umask, 0);
	CHECK_EQ_INT(config_set(&c, "umask", "8"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "umask", "1000"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "umask", ""), -EINVAL);
	/* strtol skips leading blanks; a value does not start with one. */
	CHECK_EQ_INT(config_set(&c, "uid", " 5"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "gid", "\t5"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "umask", " 22"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "timeout", " 5"), -EINVAL);
	CHECK_EQ_INT(config_set(&c, "rate", " 5"), -EINVAL);
	CHECK_EQ_INT(c.uid, 1000);
	config_release(&c);
}

/*
 * Without $HOME (a mount from fstab, a system unit), the paths are under
 * the password database's home of the effective user, never /tmp; a
 * relative $HOME or $XDG_* counts as unset.
 */
static void test_home_without_env(void)
{
	struct passwd *pw = getpwuid(geteuid());
	char *home = getenv("HOME"), *want = NULL;
	struct config c;

	home = home ? strdup(home) : NULL;
	if (!pw || !pw->pw_dir || pw->pw_dir[0] != '/') {
		printf("SKIP: uid %ld has no home in the password database\n",
		       (long)geteuid());
		free(home);
		return;
	}
	unsetenv("XDG_CONFIG_HOME");
	setenv("XDG_CACHE_HOME", "relative/cache", 1);
	unsetenv("HOME");
	CHECK_EQ_STR(config_home(), pw->pw_dir);
	REQUIRE(config_defaults(&c) == 0);
	REQUIRE(asprintf(&want, "%s/.config/driftfs/credentials",
			 pw->pw_dir) > 0);
	CHECK_EQ_STR(c.credentials, want);
	free(want);
	REQUIRE(asprintf(&want, "%s/.cache/driftfs", pw->pw_dir) > 0);
	CHECK_EQ_STR(c.cache_dir, want);
	free(want);
	CHECK(strncmp(c.cache_dir, "/tmp/", 5) != 0);
	config_release(&c);
	setenv("HOME", "not/absolute", 1);
	CHECK_EQ_STR(config_home(), pw->pw_dir);
	setenv("HOME", "/home/u", 1);
	CHECK_EQ_STR(config_home(), "/home/u");
	if (home)
		setenv("HOME", home, 1);
	else
		unsetenv("HOME");
	free(home);
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	setenv("XDG_CACHE_HOME", tmpdir, 1);
}

/*
 * Files and directories of another user, or writable by others, are
 * refused: a planted config file could send the token elsewhere
 * (api_url), a planted cache directory swap the cache.
 */
static void test_untrusted_files_refused(void)
{
	struct config c;
	const char *path;
	char dir[128];

	REQUIRE(config_defaults(&c) == 0);
	path = write_file("config", "api_url = https://evil.example\n",
			  0600);
	REQUIRE(path);
	CHECK_EQ_INT(config_load_file(&c, path), 0);
	CHECK_EQ_STR(c.api_url, "https://evil.example");
	REQUIRE(config_set(&c, "api_url", "https://driftapi.com") == 0);
	chmod(path, 0620);
	CHECK_EQ_INT(config_load_file(&c, path), -EACCES);
	chmod(path, 0602);
	CHECK_EQ_INT(config_load_file(&c, path), -EACCES);
	CHECK_EQ_STR(c.api_url, "https://driftapi.com");
	chmod(path, 0644);	/* readable is fine without client_secret */
	CHECK_EQ_INT(config_load_file(&c, path), 0);
	config_release(&c);

	snprintf(dir, sizeof(dir), "%s/a", tmpdir);
	REQUIRE(config_private_dir(dir) == 0);
	if (geteuid() != 0) {
		printf("SKIP: files of another user need root to make\n");
		return;
	}
	REQUIRE(config_defaults(&c) == 0);
	chmod(path, 0600);
	REQUIRE(chown(path, 65534, 65534) == 0);
	CHECK_EQ_INT(config_load_file(&c, path), -EACCES);
	CHECK_EQ_STR(c.api_url, "https://driftapi.com");
	config_release(&c);
	/* Someone else's private directory is no place for our cache. */
	REQUIRE(chown(dir, 65534, 65534) == 0);
	CHECK_EQ_INT(config_private_dir(dir), -EACCES);
	REQUIRE(chown(dir, 0, 0) == 0);
	CHECK_EQ_INT(config_private_dir(dir), 0);
}

/* ca_file must be a regular file: a directory passes access(R_OK). */
static void test_ca_file_is_a_file(void)
{
	struct config c;
	const char *path = write_file("plain", "x", 0600);

	REQUIRE(config_defaults(&c) == 0);
	REQUIRE(config_set(&c, "ca_file", tmpdir) == 0);
	CHECK_EQ_INT(config_validate(&c), -EINVAL);
	REQUIRE(config_set(&c, "ca_file", path) == 0);
	CHECK_EQ_INT(config_validate(&c), 0);
	config_release(&c);
}

int main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/driftfs-unit-XXXXXX",
		 t && *t && strlen(t) < 32 ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	unsetenv("DRIFT_TOKEN");
	setenv("XDG_CONFIG_HOME", tmpdir, 1);
	setenv("XDG_CACHE_HOME", tmpdir, 1);
	UNIT_RUN(test_defaults);
	UNIT_RUN(test_set_strings);
	UNIT_RUN(test_set_numbers);
	UNIT_RUN(test_set_offline_and_unknown);
	UNIT_RUN(test_validate);
	UNIT_RUN(test_validate_fake_loopback);
	UNIT_RUN(test_load_file);
	UNIT_RUN(test_bad_line_not_echoed);
	UNIT_RUN(test_private_dir);
	UNIT_RUN(test_accounts);
	UNIT_RUN(test_host_dirs_apart);
	UNIT_RUN(test_log_level_and_owner);
	UNIT_RUN(test_home_without_env);
	UNIT_RUN(test_untrusted_files_refused);
	UNIT_RUN(test_ca_file_is_a_file);
	remove_tree();
	return unit_summary();
}
