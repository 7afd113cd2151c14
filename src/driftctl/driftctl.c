// SPDX-License-Identifier: MIT
/* driftctl.c: the companion command: login, sync, status, api, report. */
#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "api.h"
#include "auth.h"
#include "config.h"
#include "driftfs.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "render.h"
#include "stats.h"
#include "store.h"
#include "sync.h"
#include "text.h"

/* Exit statuses (documented in driftctl(1) and README.md). */
enum {
	DX_OK = 0,
	DX_USAGE = 1,	/* bad command line or config */
	DX_AUTH = 2,	/* no token, token refused, login failed */
	DX_API = 3,	/* API unreachable or failing: network, 5xx */
	DX_REFUSED = 4,	/* the API refused the request: other 4xx */
	DX_RATE = 5,	/* rate limited (429 after retries, report limit) */
	DX_LOCAL = 6,	/* local failure: cache, files, memory */
};

#define AUTHORIZE_URL "https://dev.drift.com/authorize"
#define REPORT_LIMIT 60		/* calls per minute (drift-api.md §3.5) */
#define REPORT_WINDOW_MS 60000
#define INPUT_MAX ((size_t)32 << 20)	/* -d bodies */
#define LINE_MAX_LEN 8192

/* One option of the command line. */
struct opt {
	const char *name;	/* long name, '-' spelling */
	char short_name;	/* or 0 */
	int has_arg;
	int id;
};

/* Options every command takes: all go to config_set(). */
static const struct opt global_opts[] = {
	{ "api-url", 0, 1, 0 },	      { "credentials", 0, 1, 0 },
	{ "cache-dir", 0, 1, 0 },     { "ca-file", 0, 1, 0 },
	{ "rate", 0, 1, 0 },	      { "timeout", 0, 1, 0 },
	{ "conns", 0, 1, 0 },	      { "refresh", 0, 1, 0 },
	{ "offline", 0, 0, 0 },	      { "client-id", 0, 1, 0 },
	{ "redirect-uri", 0, 1, 0 },  { NULL, 0, 0, 0 },
};

/* Everything one run of driftctl holds. */
struct ctl {
	struct driftfs d;	/* cfg, store, http, sync */
	struct auth *auth;	/* NULL offline or before open_http() */
	struct account acc;	/* the org and its cache (open_dir()) */
	const char *dir;	/* acc.dir: the org's cache directory */
	char *host_dir;		/* the API host's directory (report-calls) */
	int verbose;
	int help;		/* COMMAND --help */
	const char *cmd;
};

/* ----------------------------------------------------------------------
 * Small helpers
 * -------------------------------------------------------------------- */

/*
 * Writes one line to f through the sanitiser (text.h): the line may quote
 * the API (an error message, a scope, an outbox entry's last error), and
 * no API value may drive the user's terminal.
 */
static void __attribute__((format(printf, 3, 0)))
put_line(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	struct buf clean = BUF_INIT;

	if (!buf_vprintf(&b, fmt, ap) &&
	    !text_clean_buf(&clean, b.data ? b.data : "", b.len, 0))
		fprintf(f, "%s%s\n", prefix, clean.data ? clean.data : "");
	else
		fprintf(f, "%s(out of memory)\n", prefix);
	buf_release(&b);
	buf_release(&clean);
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line(stderr, "driftctl: ", fmt, ap);
	va_end(ap);
}

/* A line of output on stdout that holds a string from the API. */
static void __attribute__((format(printf, 1, 2))) show(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line(stdout, "", fmt, ap);
	va_end(ap);
}

static void scrub_free(char *s)
{
	if (s) {
		memset(s, 0, strlen(s));
		free(s);
	}
}

/* The exit status for an HTTP answer (0 = none arrived). */
static int exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return DX_OK;
	if (status == 401 || status == 403)
		return DX_AUTH;
	if (status == 429)
		return DX_RATE;
	/* A redirect is not followed: whatever answered is not the API. */
	if (status == 0 || status >= 500 || (status >= 300 && status < 400))
		return DX_API;
	return DX_REFUSED;
}

/* The exit status for an errno from the library. */
static int exit_for_errno(int e)
{
	switch (e < 0 ? -e : e) {
	case 0:
		return DX_OK;
	case EACCES:
	case EPERM:
	case ENOKEY:
		return DX_AUTH;
	case EAGAIN:
		return DX_RATE;
	case ENOMEM:
	case ENOSPC:
	case EROFS:
	case EDQUOT:
	case ENOTDIR:
		return DX_LOCAL;
	case EINVAL:
	case ENOENT:
	case EEXIST:
		return DX_REFUSED;
	default:
		return DX_API;
	}
}

static void fmt_duration(char *out, size_t n, double s)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

static void fmt_size(char *out, size_t n, long long bytes)
{
	if (bytes >= 1 << 30)
		snprintf(out, n, "%.1f GiB", bytes / (double)(1 << 30));
	else if (bytes >= 1 << 20)
		snprintf(out, n, "%.1f MiB", bytes / (double)(1 << 20));
	else if (bytes >= 1 << 10)
		snprintf(out, n, "%.1f KiB", bytes / 1024.0);
	else
		snprintf(out, n, "%lld bytes", bytes);
}

static void fmt_time(char *out, size_t n, int64_t ms)
{
	struct buf b = BUF_INIT;

	if (!ms || render_time(ms, &b) || !b.data)
		snprintf(out, n, "never");
	else
		snprintf(out, n, "%s", b.data);
	buf_release(&b);
}

/*
 * Reads one line from stdin (without its newline) into a new string. With
 * secret set and stdin a terminal, the typing is not echoed. NULL at EOF.
 */
static char *read_line(const char *prompt, int secret)
{
	struct termios old, quiet;
	int tty = isatty(STDIN_FILENO), hidden = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (tty && prompt) {
		fputs(prompt, stderr);
		fflush(stderr);
	}
	if (tty && secret && !tcgetattr(STDIN_FILENO, &old)) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		hidden = !tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	n = getline(&line, &cap, stdin);
	if (hidden) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	if (n < 0 || (size_t)n > LINE_MAX_LEN) {
		if (line)
			memset(line, 0, cap);
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
			 line[n - 1] == ' ' || line[n - 1] == '\t'))
		line[--n] = '\0';
	if (line[0] == ' ' || line[0] == '\t') {
		size_t skip = strspn(line, " \t");

		memmove(line, line + skip, (size_t)n - skip + 1);
	}
	return line;
}

/* Whether s is usable as a token: printable, no spaces. */
static int token_ok(const char *s)
{
	if (!*s)
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* ----------------------------------------------------------------------
 * Command line
 * -------------------------------------------------------------------- */

static const struct opt *find_long(const struct opt *t, const char *name,
				   size_t n)
{
	for (; t && t->name; t++)
		if (strlen(t->name) == n && !strncmp(t->name, name, n))
			return t;
	return NULL;
}

static const struct opt *find_short(const struct opt *t, char c)
{
	for (; t && t->name; t++)
		if (t->short_name == c)
			return t;
	return NULL;
}

typedef int (*opt_fn)(struct ctl *c, void *cmd, const struct opt *o,
		      const char *value);

/* Applies a global option. */
static int global_opt(struct ctl *c, const struct opt *o, const char *value)
{
	int r = config_set(&c->d.cfg, o->name, value);

	if (r)
		say("bad value for --%s%s%s", o->name, value ? ": " : "",
		    value ? value : "");
	return r ? DX_USAGE : 0;
}

/*
 * Parses argv[from..]: global options, the command's own (table cmd_opts,
 * handled by fn) and positional arguments (fn with o == NULL). "--name=v",
 * "--name v", "-Xv", "-X v"; '_' and '-' are the same in long names.
 * Returns 0 or an exit status.
 */
static int parse_args(struct ctl *c, int argc, char **argv, int from,
		      const struct opt *cmd_opts, opt_fn fn, void *cmd)
{
	int only_pos = 0;

	for (int i = from; i < argc; i++) {
		const char *a = argv[i], *value = NULL;
		const struct opt *o = NULL;
		int global = 0, r;

		if (only_pos || a[0] != '-' || !a[1]) {
			r = fn(c, cmd, NULL, a);
			if (r)
				return r;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (a[1] == '-') {
			char name[64];
			const char *eq = strchr(a + 2, '=');
			size_t n = eq ? (size_t)(eq - a - 2) : strlen(a + 2);

			if (n >= sizeof(name))
				n = sizeof(name) - 1;
			for (size_t k = 0; k < n; k++)
				name[k] = a[2 + k] == '_' ? '-' : a[2 + k];
			name[n] = '\0';
			if (!strcmp(name, "help")) {
				c->help = 1;
				continue;
			}
			if (!strcmp(name, "verbose")) {
				c->verbose++;
				continue;
			}
			if (!strcmp(name, "client-secret")) {
				say("--client-secret is refused: other users can "
				    "read the command line. Use "
				    "--client-secret-stdin, DRIFT_CLIENT_SECRET, "
				    "or client_secret in the config file");
				return DX_USAGE;
			}
			if (!strcmp(name, "token")) {
				say("a token is never accepted on the command "
				    "line (others can read it); use `driftctl "
				    "login --token-stdin` or DRIFT_TOKEN");
				return DX_USAGE;
			}
			o = find_long(cmd_opts, name, n);
			if (!o) {
				o = find_long(global_opts, name, n);
				global = o != NULL;
			}
			if (!o) {
				say("unknown option --%s (see driftctl %s%s--help)",
				    name, c->cmd ? c->cmd : "", c->cmd ? " " : "");
				return DX_USAGE;
			}
			if (eq && !o->has_arg) {
				say("--%s takes no value", name);
				return DX_USAGE;
			}
			value = eq ? eq + 1 : NULL;
		} else {
			if (a[1] == 'h' && !a[2]) {
				c->help = 1;
				continue;
			}
			if (a[1] == 'v' && !a[2]) {
				c->verbose++;
				continue;
			}
			o = find_short(cmd_opts, a[1]);
			if (!o) {
				say("unknown option %s (see driftctl %s%s--help)",
				    a, c->cmd ? c->cmd : "", c->cmd ? " " : "");
				return DX_USAGE;
			}
			if (a[2] && o->has_arg)
				value = a + 2;
			else if (a[2]) {
				say("option -%c takes no value", a[1]);
				return DX_USAGE;
			}
		}
		if (o->has_arg && !value) {
			if (i + 1 >= argc) {
				say("option %s needs a value", a);
				return DX_USAGE;
			}
			value = argv[++i];
		}
		r = global ? global_opt(c, o, value) : fn(c, cmd, o, value);
		if (r)
			return r;
	}
	return 0;
}

/* ----------------------------------------------------------------------
 * Wiring: the same pieces driftfs uses
 * -------------------------------------------------------------------- */

/* The HTTP client; with need_token, a token source too. */
static int open_http(struct ctl *c, int need_token)
{
	struct http_opts ho = { 0 };

	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	if (need_token && !c->d.cfg.offline) {
		c->auth = auth_new(&c->d.cfg);
		if (!c->auth)
			return errno == ENOMEM ? DX_LOCAL : DX_AUTH;
	}
	ho.base_url = c->d.cfg.api_url;
	ho.auth = c->auth ? auth_http(c->auth) : NULL;
	ho.ca_file = c->d.cfg.ca_file;
	ho.timeout = c->d.cfg.timeout;
	ho.rate = c->d.cfg.rate;
	ho.max_inflight = (int)c->d.cfg.conns;
	ho.offline = c->d.cfg.offline;
	c->d.http = http_new(&ho);
	return c->d.http ? 0 : DX_LOCAL;
}

/* The API host's directory (created 0700 when create is set). */
static int open_host_dir(struct ctl *c, int create)
{
	if (!c->host_dir)
		c->host_dir = config_account_dir(&c->d.cfg);
	if (!c->host_dir)
		return DX_LOCAL;
	if (create && (config_private_dir(c->d.cfg.cache_dir) ||
		       config_private_dir(c->host_dir)))
		return DX_LOCAL;
	return 0;
}

/*
 * The cache directory of the token's org, as driftfs picks it (account.h):
 * online, after open_http(). With create, directories are made and an old
 * cache is moved into place; without, nothing on disk changes.
 */
static int open_dir(struct ctl *c, int create)
{
	int r;

	if (c->dir)
		return 0;
	r = account_open(&c->acc, &c->d.cfg, c->d.http, c->auth, create);
	if (r)
		return DX_LOCAL;	/* logged, with what to do */
	c->dir = c->acc.dir;
	if (c->auth && c->acc.org)
		auth_pin_org(c->auth, c->acc.org);
	return 0;
}

static int open_store(struct ctl *c)
{
	int r = open_dir(c, 1);

	if (r)
		return r;
	c->d.store = store_open(c->dir);
	if (!c->d.store) {
		say("cannot open the cache in %s: %s", c->dir, strerror(errno));
		return DX_LOCAL;
	}
	if (account_check_store(&c->acc, c->d.store))
		return DX_LOCAL;
	c->d.account = &c->acc;
	return 0;
}

/*
 * How much of the library's log to show: with quiet, only errors (the
 * command reports failures itself); -v adds information, -vv debugging.
 */
static void set_log_level(struct ctl *c, int quiet)
{
	if (c->verbose)
		log_setup(c->verbose > 1 ? LOG_LVL_DEBUG : LOG_LVL_INFO, 0);
	else
		log_setup(quiet ? LOG_LVL_ERROR : LOG_LVL_WARN, 0);
}

static void ctl_release(struct ctl *c)
{
	sync_free(c->d.sync);
	http_free(c->d.http);
	auth_free(c->auth);
	store_close(c->d.store);
	account_release(&c->acc);
	free(c->host_dir);
	config_release(&c->d.cfg);
}

/* ----------------------------------------------------------------------
 * login
 * -------------------------------------------------------------------- */

struct login_args {
	int token_stdin;
	int secret_stdin;
	int no_verify;
};

enum { O_TOKEN_STDIN = 1, O_SECRET_STDIN, O_NO_VERIFY };

static const struct opt login_opts[] = {
	{ "token-stdin", 0, 0, O_TOKEN_STDIN },
	{ "client-secret-stdin", 0, 0, O_SECRET_STDIN },
	{ "no-verify", 0, 0, O_NO_VERIFY },
	{ NULL, 0, 0, 0 },
};

static int login_opt(struct ctl *c, void *cmd, const struct opt *o,
		     const char *value)
{
	struct login_args *la = cmd;

	(void)c;
	if (!o) {
		say("login: unexpected argument '%s'", value);
		return DX_USAGE;
	}
	if (o->id == O_TOKEN_STDIN)
		la->token_stdin = 1;
	else if (o->id == O_SECRET_STDIN)
		la->secret_stdin = 1;
	else
		la->no_verify = 1;
	return 0;
}

/* Whether the credentials path is the default one (its dir is ours). */
static int default_credentials(const struct config *cfg)
{
	struct config def;
	int same;

	if (config_defaults(&def))
		return 0;
	same = !strcmp(def.credentials, cfg->credentials);
	config_release(&def);
	return same;
}

static int save_creds(struct ctl *c, const struct auth_creds *cr)
{
	int r = auth_creds_write(c->d.cfg.credentials, cr,
				 default_credentials(&c->d.cfg));

	if (r) {
		say("login: cannot write %s: %s", c->d.cfg.credentials,
		    strerror(-r));
		return r == -EINVAL ? DX_AUTH : DX_LOCAL;
	}
	return 0;
}

/*
 * POST /app/token_info for token: fills org (0 if unknown) and expires_in.
 * Returns the HTTP status, 0 without an answer.
 */
static long token_info(struct http *h, const char *token, int64_t *org,
		       int64_t *expires_in, char *scope, size_t scope_n,
		       char *msg, size_t msg_n)
{
	struct api_token_info ti;

	api_token_info(h, token, 0, &ti);
	*org = ti.org;
	*expires_in = ti.expires_in;
	snprintf(scope, scope_n, "%s", ti.scope);
	snprintf(msg, msg_n, "%s", ti.message);
	return ti.status;
}

static int login_token(struct ctl *c, struct login_args *la)
{
	struct auth_creds cr = { 0 };
	char scope[512], msg[256];
	int64_t org = 0, exp = 0;
	char *tok = read_line("Drift token: ", 1);
	int r = DX_OK;

	if (!tok || !token_ok(tok)) {
		say("login: no token on standard input (one line, no spaces)");
		r = DX_USAGE;
		goto out;
	}
	if (!la->no_verify && !c->d.cfg.offline) {
		struct http_opts ho = { 0 };
		struct http *h;
		long st;

		if (config_validate(&c->d.cfg)) {
			r = DX_USAGE;
			goto out;
		}
		ho.base_url = c->d.cfg.api_url;
		ho.token = tok;
		ho.ca_file = c->d.cfg.ca_file;
		ho.timeout = c->d.cfg.timeout;
		h = http_new(&ho);
		if (!h) {
			r = DX_LOCAL;
			goto out;
		}
		st = token_info(h, tok, &org, &exp, scope, sizeof(scope), msg,
				sizeof(msg));
		http_free(h);
		if (st < 200 || st >= 300) {
			if (st == 401 || st == 403 || st == 400)
				say("login: the API refused this token (HTTP "
				    "%ld%s%s); nothing was stored",
				    st, msg[0] ? ": " : "", msg);
			else if (st)
				say("login: could not check the token (HTTP "
				    "%ld%s%s); nothing was stored (--no-verify "
				    "stores it unchecked)",
				    st, msg[0] ? ": " : "", msg);
			else
				say("login: could not check the token (%s); "
				    "nothing was stored (--no-verify stores it "
				    "unchecked)",
				    msg[0] ? msg : "no answer from the API");
			r = st == 400 ? DX_AUTH : exit_for_status(st);
			goto out;
		}
	}
	cr.access_token = tok;
	/* Offline, the org picks the cache (account.h). */
	cr.org_id = org;
	r = save_creds(c, &cr);
	cr.access_token = NULL;
	if (!r) {
		if (org)
			say("token for org %lld stored in %s", (long long)org,
			    c->d.cfg.credentials);
		else
			say("token stored in %s", c->d.cfg.credentials);
	}
out:
	scrub_free(tok);
	return r;
}

/* Decodes %XX and '+' in place. */
static void url_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (*s == '%' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2])) {
			char h[3] = { s[1], s[2], 0 };

			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else {
			*o++ = *s == '+' ? ' ' : *s;
		}
	}
	*o = '\0';
}

/* The value of name in a query string (decoded, caller frees), or NULL. */
static char *query_value(const char *q, const char *name)
{
	size_t n = strlen(name);

	while (q && *q) {
		size_t len = strcspn(q, "&#");

		if (len > n && !strncmp(q, name, n) && q[n] == '=') {
			char *v = strndup(q + n + 1, len - n - 1);

			if (v)
				url_decode(v);
			return v;
		}
		q += len;
		if (*q != '&')
			break;
		q++;
	}
	return NULL;
}

static int login_oauth(struct ctl *c, struct login_args *la)
{
	struct auth_creds old = { 0 }, cr = { 0 };
	struct auth_grant g = { 0 };
	const char *env_id = getenv("DRIFT_CLIENT_ID");
	const char *env_secret = getenv("DRIFT_CLIENT_SECRET");
	char *secret = NULL, *id = NULL, *line = NULL, *code = NULL;
	char *got_state = NULL, *e_id = NULL, *e_uri = NULL, *url = NULL;
	char state[33], why[512];
	unsigned char rnd[16];
	int r = DX_OK, e;

	/* What an earlier login stored, as the last fallback. */
	auth_creds_read(c->d.cfg.credentials, &old);
	if (la->secret_stdin) {
		secret = read_line("client secret: ", 1);
		if (!secret || !token_ok(secret)) {
			say("login: no client secret on standard input");
			r = DX_USAGE;
			goto out;
		}
	} else if (env_secret && *env_secret) {
		secret = strdup(env_secret);
	} else if (c->d.cfg.client_secret) {
		secret = strdup(c->d.cfg.client_secret);
	} else if (old.client_secret) {
		secret = strdup(old.client_secret);
	}
	if (c->d.cfg.client_id)
		id = strdup(c->d.cfg.client_id);
	else if (env_id && *env_id)
		id = strdup(env_id);
	else if (old.client_id)
		id = strdup(old.client_id);
	if (!id || !secret) {
		say("login: the OAuth app's %s is missing: give --client-id "
		    "and DRIFT_CLIENT_SECRET (or --client-secret-stdin, or "
		    "client_id/client_secret in the config file), or use "
		    "--token-stdin for an install token",
		    !id ? "client id" : "client secret");
		r = DX_USAGE;
		goto out;
	}
	if (config_validate(&c->d.cfg)) {
		r = DX_USAGE;
		goto out;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		say("login: no random numbers: %s", strerror(errno));
		r = DX_LOCAL;
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(state + 2 * i, 3, "%02x", rnd[i]);
	e_id = api_query_escape(id);
	e_uri = c->d.cfg.redirect_uri ? api_query_escape(c->d.cfg.redirect_uri)
				      : NULL;
	if (!e_id || (c->d.cfg.redirect_uri && !e_uri) ||
	    asprintf(&url, "%s?response_type=code&client_id=%s%s%s&state=%s",
		     AUTHORIZE_URL, e_id, e_uri ? "&redirect_uri=" : "",
		     e_uri ? e_uri : "", state) < 0) {
		url = NULL;
		r = DX_LOCAL;
		goto out;
	}
	fprintf(stderr,
		"Open this address in a browser and allow access; Drift then "
		"sends you to the\nredirect address with ?code=... in it. "
		"Paste the code (or that whole address) here.\n");
	printf("%s\n", url);
	fflush(stdout);
	line = read_line("code: ", 0);
	if (!line || !*line) {
		say("login: no authorization code on standard input");
		r = DX_USAGE;
		goto out;
	}
	if (strchr(line, '=')) {
		const char *q = strchr(line, '?');

		q = q ? q + 1 : line;
		code = query_value(q, "code");
		got_state = query_value(q, "state");
		if (!code) {
			say("login: no code= in the pasted address");
			r = DX_USAGE;
			goto out;
		}
		if (got_state && strcmp(got_state, state)) {
			say("login: the state in the pasted address is not this "
			    "login's (an old or forged redirect); nothing was "
			    "stored, run driftctl login again");
			r = DX_AUTH;
			goto out;
		}
	} else {
		code = strdup(line);
	}
	if (!code) {
		r = DX_LOCAL;
		goto out;
	}
	r = open_http(c, 0);
	if (r)
		goto out;
	g.grant_type = "authorization_code";
	g.client_id = id;
	g.client_secret = secret;
	g.code = code;
	g.redirect_uri = c->d.cfg.redirect_uri;
	e = auth_exchange(c->d.http, &g, &cr, why, sizeof(why));
	if (e) {
		say("login: %s (%s); nothing was stored",
		    e == -EACCES ? "Drift refused the code" : "the exchange failed",
		    why);
		r = e == -EACCES ? DX_AUTH : exit_for_errno(e);
		goto out;
	}
	cr.client_id = id;
	cr.client_secret = secret;
	r = save_creds(c, &cr);
	cr.client_id = cr.client_secret = NULL;
	if (!r) {
		char org[48] = "";

		if (cr.org_id)
			snprintf(org, sizeof(org), " to org %lld",
				 (long long)cr.org_id);
		say("logged in%s; tokens stored in %s%s", org,
		    c->d.cfg.credentials,
		    cr.refresh_token ? " (the access token is refreshed "
				       "automatically)"
				     : "");
	}
out:
	auth_creds_release(&old);
	auth_creds_release(&cr);
	scrub_free(secret);
	scrub_free(line);
	scrub_free(code);
	free(got_state);
	free(id);
	free(e_id);
	free(e_uri);
	free(url);
	return r;
}

static int cmd_login(struct ctl *c, int argc, char **argv, int from)
{
	struct login_args la = { 0 };
	int r = parse_args(c, argc, argv, from, login_opts, login_opt, &la);

	if (r || c->help)
		return r;
	/* driftctl says what failed; the library's lines would repeat it. */
	set_log_level(c, 1);
	if (la.token_stdin && la.secret_stdin) {
		say("login: --token-stdin and --client-secret-stdin both read "
		    "standard input; give the secret in DRIFT_CLIENT_SECRET");
		return DX_USAGE;
	}
	return la.token_stdin ? login_token(c, &la) : login_oauth(c, &la);
}

/* ----------------------------------------------------------------------
 * Progress of a sync pass (ours, or a mount's)
 * -------------------------------------------------------------------- */

/* Where progress is read from: status text with a "syncing:" line. */
struct progress {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int tty;		/* draw a bar on stderr */
	struct sync *sync;	/* our own pass, or */
	char *status_path;	/* a mount's .driftfs/status */
	int drawn;		/* a bar is on screen */
	char phase[96];
	int64_t phase_start;	/* monotonic ms */
	long phase_done0;	/* done when the phase started */
	int64_t last_line;	/* monotonic ms of the last plain line */
};

static volatile sig_atomic_t bar_on_screen;

/* Fetches the status text the progress comes from. */
static int progress_text(struct progress *p, struct buf *out)
{
	int fd, r = 0;
	char chunk[4096];
	ssize_t n;

	if (p->sync)
		return sync_status_render(p->sync, out);
	fd = open(p->status_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && !r)
		r = buf_add(out, chunk, (size_t)n);
	close(fd);
	return r;
}

/* Parses "syncing: yes (PHASE, DONE/TOTAL)"; 0 when not syncing. */
static int parse_syncing(const char *text, char *phase, size_t n, long *done,
			 long *total)
{
	const char *l = strstr(text, "syncing: yes (");
	const char *comma, *end;

	*done = *total = 0;
	if (!l)
		return 0;
	l += strlen("syncing: yes (");
	end = strchr(l, '\n');
	if (!end)
		end = l + strlen(l);
	comma = end;
	while (comma > l && *comma != ',')
		comma--;
	if (comma == l)
		return 0;
	/* The file is a mount's, not ours: its bytes go to a terminal. */
	text_clean(phase, n, l, (size_t)(comma - l), 0);
	sscanf(comma + 1, " %ld/%ld", done, total);
	return 1;
}

static int term_width(void)
{
	struct winsize ws;

	if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* One look at the pass: a bar on a terminal, a line now and then else. */
static void progress_tick(struct progress *p)
{
	struct buf b = BUF_INIT;
	char phase[96] = "", rate_s[32] = "", eta[32] = "", line[512];
	long done, total;
	int64_t now = http_now_ms();
	double rate = 0, el;

	if (progress_text(p, &b) || !b.data ||
	    !parse_syncing(b.data, phase, sizeof(phase), &done, &total)) {
		buf_release(&b);
		return;
	}
	buf_release(&b);
	if (strcmp(phase, p->phase)) {
		snprintf(p->phase, sizeof(p->phase), "%s", phase);
		p->phase_start = now;
		p->phase_done0 = done;
		if (!p->tty) {
			say("sync: %s", phase);
			p->last_line = now;
		}
	}
	el = (double)(now - p->phase_start) / 1000.0;
	if (el >= 0.5 && done > p->phase_done0) {
		rate = (double)(done - p->phase_done0) / el;
		snprintf(rate_s, sizeof(rate_s), "%.1f/s", rate);
		if (total > done) {
			fmt_duration(eta, sizeof(eta),
				     (double)(total - done) / rate);
		}
	}
	if (!p->tty) {
		if (total > 0 && now - p->last_line >= 5000) {
			say("sync: %s %ld/%ld%s%s%s%s%s", phase, done, total,
			    rate_s[0] ? " (" : "", rate_s,
			    eta[0] ? ", ETA " : "", eta, rate_s[0] ? ")" : "");
			p->last_line = now;
		}
		return;
	}
	if (total > 0) {
		int width = term_width(), bar, fill;
		char counts[96];
		int n = snprintf(counts, sizeof(counts), " %ld/%ld %s%s%s", done,
				 total, rate_s, eta[0] ? " ETA " : "", eta);

		bar = width - (int)strlen(phase) - n - 5;
		if (bar > 40)
			bar = 40;
		if (bar < 5)
			bar = 5;
		fill = (int)((double)bar * (double)(done < total ? done : total) /
			     (double)total);
		snprintf(line, sizeof(line), "%s [%.*s%.*s]%s", phase, fill,
			 "########################################", bar - fill,
			 "----------------------------------------", counts);
	} else if (done > 0) {
		snprintf(line, sizeof(line), "%s: %ld", phase, done);
	} else {
		static const char spin[] = "|/-\\";

		snprintf(line, sizeof(line), "%s %c", phase,
			 spin[(now / 250) % 4]);
	}
	line[term_width() - 1 < (int)sizeof(line) ? term_width() - 1
						  : (int)sizeof(line) - 1] =
		'\0';
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = 1;
	bar_on_screen = 1;
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		int64_t due = http_now_ms() + (p->tty ? 200 : 1000);

		pthread_mutex_unlock(&p->lock);
		progress_tick(p);
		pthread_mutex_lock(&p->lock);
		ts.tv_sec = due / 1000;
		ts.tv_nsec = (due % 1000) * 1000000;
		while (!p->stop && http_now_ms() < due)
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int progress_start(struct progress *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	return pthread_create(&p->thread, NULL, progress_main, p);
}

static void progress_stop(struct progress *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	bar_on_screen = 0;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

/* SIGINT/SIGTERM: clear the bar, say what state the cache is in, die. */
static void on_interrupt(int sig)
{
	static const char msg[] =
		"driftctl: sync interrupted; every conversation already "
		"stored stays, and the next sync carries on from there\n";

	ssize_t w = 0;

	if (bar_on_screen)
		w = write(STDERR_FILENO, "\r\033[K", 4);
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ----------------------------------------------------------------------
 * sync
 * -------------------------------------------------------------------- */

struct sync_args {
	int progress;		/* 1 forced on, 0 forced off, -1 auto */
};

enum { O_PROGRESS = 1, O_NO_PROGRESS };

static const struct opt sync_opts[] = {
	{ "progress", 0, 0, O_PROGRESS },
	{ "no-progress", 0, 0, O_NO_PROGRESS },
	{ NULL, 0, 0, 0 },
};

static int sync_opt(struct ctl *c, void *cmd, const struct opt *o,
		    const char *value)
{
	struct sync_args *sa = cmd;

	(void)c;
	if (!o) {
		say("sync: unexpected argument '%s'", value);
		return DX_USAGE;
	}
	sa->progress = o->id == O_PROGRESS;
	return 0;
}

static const char *const count_names[8] = {
	"contacts", "users",	 "conversations", "messages",
	"attachments", "playbooks", "accounts",	  "outbox"
};

/* Total API requests made so far (from the stats counters). */
static long api_requests(void)
{
	struct buf b = BUF_INIT;
	long total = 0;

	if (!stats_render(&b) && b.data) {
		for (char *l = b.data; l && *l;) {
			char *nl = strchr(l, '\n');
			char *sp;

			if (nl)
				*nl = '\0';
			sp = strrchr(l, ' ');
			if (!strncmp(l, "api ", 4) &&
			    strncmp(l, "api retries", 11) && sp)
				total += strtol(sp + 1, NULL, 10);
			l = nl ? nl + 1 : NULL;
		}
	}
	buf_release(&b);
	return total;
}

/* Reads "NAME: N" of a status text; -1 when absent. */
static long status_number(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l; l = strchr(l, '\n')) {
		if (*l == '\n')
			l++;
		if (!strncmp(l, name, n) && l[n] == ':')
			return strtol(l + n + 1, NULL, 10);
	}
	return -1;
}

/* Polling a signalled mount, at most this long (its ctl waits as long). */
#define SIGNAL_WAIT_MS (10L * 60 * 1000)

/*
 * A read-only mount's ctl cannot be written: it is sent SIGUSR1 instead,
 * and its status read until a pass that started after the signal has
 * ended. Returns 0 or an errno.
 */
static int sync_by_signal(struct progress *p, long pid)
{
	struct buf b = BUF_INIT;
	int64_t deadline = http_now_ms() + SIGNAL_WAIT_MS;
	long want;
	int e = 0;

	if (progress_text(p, &b) || !b.data)
		e = EIO;
	if (!e) {
		want = status_number(b.data, "sync_passes");
		/* A pass under way may have begun before the signal. */
		want += strstr(b.data, "\nsyncing: yes") ? 2 : 1;
		if (want <= 0)
			e = EIO;
	}
	if (!e && kill((pid_t)pid, SIGUSR1))
		e = errno;
	while (!e) {
		struct timespec ts = { 0, 200 * 1000000L };

		nanosleep(&ts, NULL);
		buf_reset(&b);
		if (progress_text(p, &b) || !b.data) {
			e = EIO;
			break;
		}
		if (status_number(b.data, "sync_passes") >= want &&
		    !strstr(b.data, "\nsyncing: yes")) {
			if (!strstr(b.data, "\nlast_result: ok\n"))
				e = EIO;
			break;
		}
		if (http_now_ms() >= deadline)
			e = EAGAIN;
	}
	buf_release(&b);
	return e;
}

/* Asks the mount that serves this cache to sync, and shows its progress. */
static int sync_via_mount(struct ctl *c, const char *mnt, long pid,
			  int progress)
{
	struct progress p = { 0 };
	char *ctl_path = NULL;
	int64_t start = http_now_ms();
	int fd = -1, r = DX_OK, e = 0, started = 0, ro = 0;

	say("sync: the mount at %s (pid %ld) serves this cache; asking it to "
	    "sync",
	    mnt, pid);
	if (asprintf(&ctl_path, "%s/.driftfs/ctl", mnt) < 0 ||
	    asprintf(&p.status_path, "%s/.driftfs/status", mnt) < 0) {
		r = DX_LOCAL;
		goto out;
	}
	fd = open(ctl_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == EROFS) {
		say("sync: the mount is read-only; signalling it (SIGUSR1)");
		ro = 1;
	} else if (fd < 0) {
		e = errno;
		goto out;
	}
	if (progress) {
		p.tty = isatty(STDERR_FILENO);
		started = !progress_start(&p);
	}
	if (ro)
		e = sync_by_signal(&p, pid);
	else if (write(fd, "sync\n", 5) != 5)
		e = errno ? errno : EIO;
	if (started)
		progress_stop(&p);
out:
	if (fd >= 0)
		close(fd);
	if (e) {
		say("sync: the mount at %s could not sync: %s%s", mnt,
		    strerror(e),
		    e == EAGAIN ? " (offline mode, the API rate limit, or a "
				  "pass that took over 10 minutes; see "
				  ".driftfs/errors)"
				: " (see .driftfs/errors there)");
		r = e == EAGAIN ? DX_API : exit_for_errno(e);
	} else if (!r) {
		struct buf b = BUF_INIT;
		char el[32];

		fmt_duration(el, sizeof(el),
			     (double)(http_now_ms() - start) / 1000.0);
		p.sync = NULL;
		if (!progress_text(&p, &b) && b.data) {
			const char *conv = strstr(b.data, "\nconversations: ");
			const char *msgs = strstr(b.data, "\nmessages: ");

			say("sync: done by the mount in %s:%s%.*s%s%.*s", el,
			    conv ? " " : "",
			    conv ? (int)strcspn(conv + 1, "\n") : 0,
			    conv ? conv + 1 : "", msgs ? ", " : "",
			    msgs ? (int)strcspn(msgs + 1, "\n") : 0,
			    msgs ? msgs + 1 : "");
		}
		buf_release(&b);
	}
	(void)c;
	free(ctl_path);
	free(p.status_path);
	return r;
}

static int cmd_sync(struct ctl *c, int argc, char **argv, int from)
{
	struct sync_args sa = { -1 };
	struct progress p = { 0 };
	struct sigaction sact;
	int64_t counts[8], start;
	char *mnt = NULL, *lock_path = NULL;
	long pid = 0;
	int r, e, lock_fd = -1, started = 0, show;

	r = parse_args(c, argc, argv, from, sync_opts, sync_opt, &sa);
	if (r || c->help)
		return r;
	set_log_level(c, 0);
	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	if (c->d.cfg.offline) {
		say("sync: offline mode: there is nothing to sync from");
		return DX_API;
	}
	show = sa.progress >= 0 ? sa.progress : isatty(STDERR_FILENO);
	/* The token's org picks the cache, and the mount serving it. */
	r = open_http(c, 1);
	r = r ? r : open_dir(c, 1);
	if (r)
		goto out;
	/* A mount of this cache does the pass itself: no second writer,
	 * no double work, and its kernel caches stay right. */
	mnt = config_mount_find(c->dir, &pid);
	if (mnt) {
		r = sync_via_mount(c, mnt, pid, show);
		goto out;
	}
	/* Two driftctl syncs of one cache take turns. */
	if (asprintf(&lock_path, "%s/sync.lock", c->dir) < 0) {
		lock_path = NULL;
		r = DX_LOCAL;
		goto out;
	}
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB)) {
		say("sync: another driftctl sync of this cache is running; "
		    "waiting for it");
		flock(lock_fd, LOCK_EX);
	}
	r = open_store(c);
	if (r)
		goto out;
	c->d.started_ms = http_wall_ms();
	c->d.sync = sync_new(&c->d, NULL, NULL);
	if (!c->d.sync) {
		r = DX_LOCAL;
		goto out;
	}
	memset(&sact, 0, sizeof(sact));
	sact.sa_handler = on_interrupt;
	sigaction(SIGINT, &sact, NULL);
	sigaction(SIGTERM, &sact, NULL);
	if (show) {
		p.tty = isatty(STDERR_FILENO);
		p.sync = c->d.sync;
		started = !progress_start(&p);
	}
	start = http_now_ms();
	e = sync_run_once(c->d.sync);
	if (started)
		progress_stop(&p);
	if (e) {
		say("sync: the pass failed: %s; what it stored stays, and the "
		    "next sync retries the rest%s",
		    strerror(-e),
		    e == -EACCES ? " (the token was refused: run driftctl "
				   "login)"
				 : "");
		r = exit_for_errno(e);
		if (r == DX_REFUSED)
			r = DX_API;
		goto out;
	}
	if (!store_counts(c->d.store, counts)) {
		char el[32];

		fmt_duration(el, sizeof(el),
			     (double)(http_now_ms() - start) / 1000.0);
		say("sync: done in %s: %lld conversations, %lld messages, "
		    "%lld contacts, %lld users, %lld attachments (%ld API "
		    "requests)",
		    el, (long long)counts[2], (long long)counts[3],
		    (long long)counts[0], (long long)counts[1],
		    (long long)counts[4], api_requests());
	}
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(lock_path);
	free(mnt);
	return r;
}

/* ----------------------------------------------------------------------
 * status
 * -------------------------------------------------------------------- */

static const struct opt no_opts[] = { { NULL, 0, 0, 0 } };

static int status_opt(struct ctl *c, void *cmd, const struct opt *o,
		      const char *value)
{
	(void)c;
	(void)cmd;
	(void)o;
	say("status: unexpected argument '%s'", value);
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

/* Calls to the report endpoint in the last minute (the limiter's file). */
static int report_calls_recent(const char *dir)
{
	char *path = NULL, line[64];
	int64_t now = http_wall_ms();
	int n = 0;
	FILE *f;

	if (asprintf(&path, "%s/report-calls", dir) < 0)
		return 0;
	f = fopen(path, "re");
	free(path);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		long long t = strtoll(line, NULL, 10);

		if (t > now - REPORT_WINDOW_MS && t <= now + 1000)
			n++;
	}
	fclose(f);
	return n;
}

/* One "outbox_entry:" line per write waiting for the API. */
static int print_outbox_row(void *ctx, const struct outbox_row *o)
{
	char when[64];

	(void)ctx;
	fmt_time(when, sizeof(when), o->created);
	show("outbox_entry: #%lld %s %s: %s %s (%s, %lld attempts%s%s)",
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
				show("mount_%.*s", (int)len, l);
		l += len;
		if (*l)
			l++;
	}
}

static int cmd_status(struct ctl *c, int argc, char **argv, int from)
{
	static const char *const mount_keys[] = { "state: ", "syncing: ",
						  "rate_limit: ", NULL };
	struct auth_info ai = { 0 };
	int64_t counts[8];
	char *db = NULL, *mnt = NULL, tbuf[64], sbuf[32];
	struct stat st;
	long pid = 0;
	int r, result = DX_OK;

	r = parse_args(c, argc, argv, from, no_opts, status_opt, NULL);
	if (r || c->help)
		return r;
	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	r = open_host_dir(c, 0);
	if (r)
		return r;
	/* Failures show up in the lines below. */
	set_log_level(c, 1);
	printf("api_url: %s\n", c->d.cfg.api_url);

	/* Credentials and account. */
	if (!c->d.cfg.offline) {
		int e = open_http(c, 1);

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
			fmt_time(tbuf, sizeof(tbuf), ai.expires_at * 1000);
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
	r = open_dir(c, 0);
	if (c->d.cfg.offline) {
		printf("account: not checked (offline)\n");
	} else if (c->auth) {
		const struct api_token_info *ti = &c->acc.ti;
		long s = ti->status;

		if (s >= 200 && s < 300) {
			printf("account: org %lld\n", (long long)ti->org);
			if (ti->scope[0])
				show("scope: %s", ti->scope);
		} else {
			show("account: unknown (%s%s%s)",
			     s == 401 || s == 403 || s == 400
				     ? "the token was refused: run driftctl "
				       "login"
			     : s ? "HTTP error"
				 : "API unreachable",
			     ti->message[0] && s ? ": " : "",
			     s ? ti->message : "");
			result = s == 400 ? DX_AUTH : exit_for_status(s);
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
		r = open_store(c);
		if (r) {
			result = r;
			goto out;
		}
		fmt_size(sbuf, sizeof(sbuf), dir_size(c->dir));
		printf("cache: %s (%s)\n", c->dir, sbuf);
		fmt_time(tbuf, sizeof(tbuf),
			 store_meta_i64(c->d.store, "last_sync"));
		printf("last_sync: %s\n", tbuf);
		if (!store_counts(c->d.store, counts))
			for (int i = 0; i < 8; i++)
				printf("%s: %lld\n", count_names[i],
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
	       c->host_dir ? report_calls_recent(c->host_dir) : 0,
	       REPORT_LIMIT);
out:
	free(db);
	free(mnt);
	return result;
}

/* ----------------------------------------------------------------------
 * api
 * -------------------------------------------------------------------- */

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

static int api_opt(struct ctl *c, void *cmd, const struct opt *o,
		   const char *value)
{
	struct api_args *aa = cmd;
	void *p;

	(void)c;
	if (!o) {
		if (aa->path) {
			say("api: unexpected argument '%s' (one PATH only)",
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
			say("api: header '%s' is not 'Name: value'", value);
			return DX_USAGE;
		}
		if (!strncasecmp(value, "authorization:", 14)) {
			say("api: an Authorization header is never taken from "
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
static int api_path(struct ctl *c, struct api_args *aa, struct buf *out)
{
	const char *p = aa->path;
	size_t base = strlen(c->d.cfg.api_url);
	int r;

	if (!strncmp(p, "http://", 7) || !strncmp(p, "https://", 8)) {
		if (strncmp(p, c->d.cfg.api_url, base) || p[base] != '/') {
			say("api: %s is not under the API URL %s (the token "
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
		say("api: the path holds spaces or control characters; put "
		    "parameters in -q NAME=VALUE");
	return r == -EINVAL ? DX_USAGE : r ? DX_LOCAL : 0;
}

static int cmd_api(struct ctl *c, int argc, char **argv, int from)
{
	struct api_args aa = { 0 };
	struct http_request rq = { 0 };
	struct http_response resp;
	struct buf path = BUF_INIT, body = BUF_INIT;
	char method[16];
	int r, e;

	r = parse_args(c, argc, argv, from, api_opts, api_opt, &aa);
	if (r || c->help)
		goto out;
	if (!aa.path) {
		say("api: no PATH (e.g. driftctl api /users/list)");
		r = DX_USAGE;
		goto out;
	}
	snprintf(method, sizeof(method), "%s",
		 aa.method ? aa.method : aa.data ? "POST" : "GET");
	for (char *m = method; *m; m++) {
		if (!isalpha((unsigned char)*m)) {
			say("api: bad method '%s'", aa.method);
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
			say("api: cannot read %s: %s", aa.data + 1,
			    strerror(-e));
			r = e == -EFBIG ? DX_USAGE : DX_LOCAL;
			goto out;
		}
	} else if (aa.data && buf_adds(&body, aa.data)) {
		r = DX_LOCAL;
		goto out;
	}
	if (c->d.cfg.offline) {
		say("api: offline mode: nothing is sent");
		r = DX_API;
		goto out;
	}
	/* Only our own failure lines: the library's would say it twice. */
	set_log_level(c, 1);
	r = open_http(c, 1);
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
		say("api: bad header line");
		r = DX_USAGE;
	} else if (resp.status >= 200 && resp.status < 300 && e) {
		say("api: cannot write the answer: %s", strerror(-e));
		r = DX_LOCAL;
	} else if (e) {
		if (resp.status)
			say("api: %s %s: HTTP %ld%s%s", method, path.data,
			    resp.status, resp.message[0] ? ": " : "",
			    resp.message);
		else
			say("api: %s %s: %s", method, path.data,
			    resp.message[0] ? resp.message : strerror(-e));
		r = resp.status ? exit_for_status(resp.status)
				: (e == -EACCES ? DX_AUTH : exit_for_errno(e));
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

/* ----------------------------------------------------------------------
 * report
 * -------------------------------------------------------------------- */

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

static int report_opt(struct ctl *c, void *cmd, const struct opt *o,
		      const char *value)
{
	struct report_args *ra = cmd;

	(void)c;
	if (!o) {
		say("report: unexpected argument '%s'", value);
		return DX_USAGE;
	}
	switch (o->id) {
	case O_FILTER:
		return push(&ra->filters, &ra->nfilters, value);
	case O_METRIC:
		return push(&ra->metrics, &ra->nmetrics, value);
	case O_FORMAT:
		if (strcmp(value, "json") && strcmp(value, "csv")) {
			say("report: --format is json or csv");
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

/*
 * A filter value: an integer becomes a JSON number (its exact digits, as
 * ids may pass 2^53), anything else a string.
 */
static cJSON *filter_value(const char *w)
{
	size_t n = strlen(w);

	if (n && n <= 18 && strspn(w, "0123456789") == n &&
	    (w[0] != '0' || n == 1))
		return cJSON_CreateRaw(w);
	return cJSON_CreateString(w);
}

/* Parses "PROP OP [VALUES...]" into a filter object. */
static int parse_filter(const char *text, cJSON *filters)
{
	struct words ws = { 0 };
	cJSON *f = NULL, *vals = NULL;
	int r = DX_USAGE;

	if (split_words(text, add_word, &ws)) {
		say("report: filter '%s': unbalanced quote", text);
		goto out;
	}
	if (ws.n < 2) {
		say("report: filter '%s' is not 'PROPERTY OPERATION "
		    "[VALUES...]' (e.g. 'status IN closed')",
		    text);
		goto out;
	}
	for (char *p = ws.v[1]; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!strcmp(ws.v[1], "HAS_PROPERTY") && ws.n != 2) {
		say("report: filter '%s': HAS_PROPERTY takes no values", text);
		goto out;
	}
	if (!strcmp(ws.v[1], "BETWEEN") && ws.n != 4) {
		say("report: filter '%s': BETWEEN takes two values", text);
		goto out;
	}
	if (!strcmp(ws.v[1], "IN") && ws.n < 3) {
		say("report: filter '%s': IN needs values", text);
		goto out;
	}
	f = cJSON_CreateObject();
	if (!f || !cJSON_AddStringToObject(f, "property", ws.v[0]) ||
	    !cJSON_AddStringToObject(f, "operation", ws.v[1])) {
		r = DX_LOCAL;
		goto out;
	}
	if (ws.n > 2) {
		vals = cJSON_AddArrayToObject(f, "values");
		for (size_t i = 2; vals && i < ws.n; i++)
			if (!cJSON_AddItemToArray(vals, filter_value(ws.v[i])))
				vals = NULL;
		if (!vals) {
			r = DX_LOCAL;
			goto out;
		}
	}
	cJSON_AddItemToArray(filters, f);
	f = NULL;
	r = 0;
out:
	cJSON_Delete(f);
	words_release(&ws);
	return r;
}

/*
 * Takes one of the REPORT_LIMIT calls a minute allowed, waiting for one
 * to free up (or failing with DX_RATE under no_wait). The calls are kept
 * as wall-clock ms, one a line, in DIR/report-calls under an flock, so
 * every driftctl of this account counts against the same minute.
 */
static int report_slot(const char *dir, int no_wait)
{
	char *path = NULL, line[64];
	int64_t t[REPORT_LIMIT + 1], now;
	struct buf out = BUF_INIT;
	size_t n = 0;
	int fd = -1, r = 0;
	FILE *f = NULL;

	if (asprintf(&path, "%s/report-calls", dir) < 0)
		return DX_LOCAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		say("report: %s: %s", path, strerror(errno));
		r = DX_LOCAL;
		goto out;
	}
	f = fdopen(dup(fd), "r");
	now = http_wall_ms();
	while (f && fgets(line, sizeof(line), f)) {
		int64_t v = strtoll(line, NULL, 10);

		if (v <= now - REPORT_WINDOW_MS || v > now + 1000)
			continue;
		/* Keep the newest REPORT_LIMIT, in order. */
		if (n == REPORT_LIMIT) {
			memmove(t, t + 1, (REPORT_LIMIT - 1) * sizeof(*t));
			n--;
		}
		t[n++] = v;
	}
	if (n >= REPORT_LIMIT) {
		int64_t wait = t[n - REPORT_LIMIT] + REPORT_WINDOW_MS - now;

		if (no_wait) {
			say("report: %d reports in the last minute, Drift's "
			    "limit; the next is allowed in %lld s (without "
			    "--no-wait, driftctl waits)",
			    REPORT_LIMIT, (long long)(wait + 999) / 1000);
			r = DX_RATE;
			goto out;
		}
		say("report: %d reports in the last minute, Drift's limit: "
		    "waiting %lld s",
		    REPORT_LIMIT, (long long)(wait + 999) / 1000);
		if (wait > 0) {
			struct timespec ts = { wait / 1000,
					       (wait % 1000) * 1000000 };

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
		memmove(t, t + 1, (n - 1) * sizeof(*t));
		n--;
		now = http_wall_ms();
	}
	t[n++] = now;
	for (size_t i = 0; i < n && !r; i++)
		r = buf_printf(&out, "%lld\n", (long long)t[i]);
	if (r || ftruncate(fd, 0) ||
	    pwrite(fd, out.data, out.len, 0) != (ssize_t)out.len) {
		say("report: cannot record the call in %s", path);
		r = DX_LOCAL;
	}
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	buf_release(&out);
	free(path);
	return r;
}

/* One CSV field: numbers as they are, strings quoted when needed. */
static int csv_field(const cJSON *v, struct buf *out)
{
	struct buf clean = BUF_INIT;
	const char *s;
	int r;

	if (cJSON_IsRaw(v))
		return buf_adds(out, v->valuestring);
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == (double)(long long)d && d < 9e15 && d > -9e15)
			return buf_printf(out, "%lld", (long long)d);
		return buf_printf(out, "%.17g", d);
	}
	if (cJSON_IsBool(v))
		return buf_adds(out, cJSON_IsTrue(v) ? "true" : "false");
	if (!cJSON_IsString(v))
		return 0;
	/* The API's string, with no escape sequence (text.h); newlines stay
	 * (quoted), the rest of a cell is as the API gave it. */
	r = text_clean_buf(&clean, v->valuestring, strlen(v->valuestring),
			   TEXT_LINES);
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

static int report_csv(const cJSON *answer, char **metrics, size_t nm,
		      struct buf *out)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(answer, "data");
	const cJSON *row;
	int r = buf_adds(out, "conversationId");

	for (size_t i = 0; i < nm && !r; i++) {
		cJSON s = { 0 };

		s.type = cJSON_String;
		s.valuestring = metrics[i];
		r = buf_addc(out, ',');
		r = r ? r : csv_field(&s, out);
	}
	r = r ? r : buf_addc(out, '\n');
	if (!cJSON_IsArray(data))
		return r ? r : -EIO;
	cJSON_ArrayForEach(row, data)
	{
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(
			row, "conversationId");
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(row, "metrics");
		int64_t idv;

		if (r)
			break;
		if (json_i64(id, &idv))
			return -EIO;
		r = buf_printf(out, "%lld", (long long)idv);
		for (size_t i = 0; i < nm && !r; i++) {
			r = buf_addc(out, ',');
			if (!r && cJSON_IsArray(m))
				r = csv_field(cJSON_GetArrayItem(m, (int)i), out);
		}
		r = r ? r : buf_addc(out, '\n');
	}
	return r;
}

/* Appends one metric option's names (commas allowed) to the array. */
static int add_metric(void *ctx, const char *w)
{
	return cJSON_AddItemToArray(ctx, cJSON_CreateString(w)) ? 0 : -ENOMEM;
}

static int cmd_report(struct ctl *c, int argc, char **argv, int from)
{
	struct report_args ra = { 0 };
	struct http_response resp;
	struct buf out = BUF_INIT;
	struct words names = { 0 };
	cJSON *req = NULL, *filters, *metrics, *answer = NULL, *m;
	char *body = NULL;
	int r, e;

	r = parse_args(c, argc, argv, from, report_opts, report_opt, &ra);
	if (r || c->help)
		goto out;
	if (!ra.nmetrics) {
		say("report: give at least one --metric (e.g. --metric "
		    "createdAt)");
		r = DX_USAGE;
		goto out;
	}
	req = cJSON_CreateObject();
	filters = req ? cJSON_AddArrayToObject(req, "filters") : NULL;
	metrics = req ? cJSON_AddArrayToObject(req, "metrics") : NULL;
	if (!filters || !metrics) {
		r = DX_LOCAL;
		goto out;
	}
	for (size_t i = 0; i < ra.nfilters && !r; i++)
		r = parse_filter(ra.filters[i], filters);
	for (size_t i = 0; i < ra.nmetrics && !r; i++)
		if (split_words(ra.metrics[i], add_metric, metrics))
			r = DX_USAGE;
	if (r)
		goto out;
	cJSON_ArrayForEach(m, metrics)
	{
		if (push(&names.v, &names.n, m->valuestring)) {
			r = DX_LOCAL;
			goto out;
		}
	}
	body = cJSON_PrintUnformatted(req);
	if (!body) {
		r = DX_LOCAL;
		goto out;
	}
	if (config_validate(&c->d.cfg)) {
		r = DX_USAGE;
		goto out;
	}
	if (c->d.cfg.offline) {
		say("report: offline mode: reports come from the API only");
		r = DX_API;
		goto out;
	}
	set_log_level(c, 1);
	/* The report limit is the API's, whichever org: one per host. */
	r = open_host_dir(c, 1);
	r = r ? r : open_http(c, 1);
	r = r ? r : report_slot(c->host_dir, ra.no_wait);
	if (r)
		goto out;
	/* Reports change nothing: a 429 is waited out and retried. */
	e = http_call(c->d.http, "POST", "/reports/conversations", NULL, body,
		      strlen(body), 0, HTTP_IDEMPOTENT, &resp);
	if (e) {
		say("report: POST /reports/conversations: %s%s%s",
		    resp.status ? "HTTP error " : "",
		    resp.message[0] ? resp.message : strerror(-e),
		    resp.status == 429 ? " (the limit is 60 reports a minute)"
				       : "");
		r = resp.status ? exit_for_status(resp.status)
				: exit_for_errno(e);
		if (r == DX_REFUSED && !resp.status)
			r = DX_API;
		http_response_release(&resp);
		goto out;
	}
	answer = json_parse(resp.body.data, resp.body.len);
	http_response_release(&resp);
	if (!answer || !cJSON_IsObject(answer)) {
		say("report: the API's answer is not a JSON object");
		r = DX_API;
		goto out;
	}
	if (ra.format && !strcmp(ra.format, "csv"))
		e = report_csv(answer, (char **)names.v, names.n, &out);
	else
		e = json_render(answer, &out);
	if (e) {
		say("report: the answer has an unexpected shape (no data "
		    "array, or a row without conversationId)");
		r = DX_API;
		goto out;
	}
	if (fwrite(out.data, 1, out.len, stdout) != out.len ||
	    fflush(stdout)) {
		say("report: cannot write the report: %s", strerror(errno));
		r = DX_LOCAL;
	}
out:
	free(names.v);
	cJSON_Delete(answer);
	cJSON_Delete(req);
	free(body);
	buf_release(&out);
	free(ra.filters);
	free(ra.metrics);
	return r;
}

/* ----------------------------------------------------------------------
 * Help and main
 * -------------------------------------------------------------------- */

static const char usage_main[] =
	"usage: driftctl [OPTIONS] COMMAND [ARGS]\n"
	"\n"
	"The companion command of driftfs: same client, cache and "
	"credentials.\n"
	"\n"
	"commands:\n"
	"    login     sign in (OAuth) or store an install token\n"
	"    sync      fill or refresh the cache without mounting\n"
	"    status    account, cache, last sync, outbox, rate limits\n"
	"    api       one authenticated API call; the body on stdout\n"
	"    report    the conversation report (POST /reports/conversations)\n"
	"\n"
	"options (also 'name = value' in $XDG_CONFIG_HOME/driftfs/config):\n"
	"    --api-url URL         API base URL (https://driftapi.com)\n"
	"    --credentials FILE    token file (0600)\n"
	"    --cache-dir DIR       cache directory (0700)\n"
	"    --ca-file FILE        extra CA bundle\n"
	"    --rate N              cap on API requests per second\n"
	"    --timeout SECONDS     deadline of one request (30)\n"
	"    --conns N             concurrent requests when syncing (4)\n"
	"    --offline             never touch the network\n"
	"    --client-id ID        OAuth app id (login)\n"
	"    --redirect-uri URI    OAuth redirect URI (login)\n"
	"    -v, --verbose         more log output\n"
	"    -h, --help            this help; COMMAND --help for a command's\n"
	"    -V, --version         print the version\n"
	"\n"
	"exit status: 0 ok, 1 usage, 2 authentication, 3 API unreachable or\n"
	"failing (5xx), 4 refused by the API (other 4xx), 5 rate limited,\n"
	"6 local failure. See driftctl(1).\n";

static const char usage_login[] =
	"usage: driftctl login [--client-id ID] [--client-secret-stdin]\n"
	"                      [--redirect-uri URI]\n"
	"       driftctl login --token-stdin [--no-verify]\n"
	"\n"
	"Without --token-stdin: the OAuth authorization-code flow. Prints the\n"
	"authorize URL, reads the code (or the whole redirect address) from\n"
	"standard input, exchanges it at <api-url>/oauth2/token and stores\n"
	"the access and refresh tokens in the credentials file (0600). The\n"
	"client secret comes from --client-secret-stdin (the first line of\n"
	"standard input), DRIFT_CLIENT_SECRET, client_secret in the config\n"
	"file, or the credentials file; never from the command line.\n"
	"\n"
	"--token-stdin stores an install or personal token read from\n"
	"standard input, after checking it with POST /app/token_info\n"
	"(--no-verify skips the check).\n";

static const char usage_sync[] =
	"usage: driftctl sync [--progress | --no-progress]\n"
	"\n"
	"Runs one sync pass into the cache driftfs uses, without mounting.\n"
	"When a driftfs mount of the same cache is running, that mount is\n"
	"asked to do the pass instead. On a terminal a progress bar shows\n"
	"counts, rate and ETA; --progress on a pipe prints plain lines.\n";

static const char usage_status[] =
	"usage: driftctl status\n"
	"\n"
	"Prints the account (POST /app/token_info), the credentials, the\n"
	"cache's size and counts, the last sync, the outbox, a running mount\n"
	"and the rate-limit state, as 'name: value' lines.\n";

static const char usage_api[] =
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

static const char usage_report[] =
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

struct command {
	const char *name;
	int (*run)(struct ctl *c, int argc, char **argv, int from);
	const char *usage;
};

static const struct command commands[] = {
	{ "login", cmd_login, usage_login },
	{ "sync", cmd_sync, usage_sync },
	{ "status", cmd_status, usage_status },
	{ "api", cmd_api, usage_api },
	{ "report", cmd_report, usage_report },
};

/* Before the command there are only options: nothing else comes here. */
static int main_opt(struct ctl *c, void *cmd, const struct opt *o,
		    const char *value)
{
	(void)c;
	(void)cmd;
	(void)o;
	say("unexpected argument '%s'", value);
	return DX_USAGE;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct ctl c;
	char *conf = NULL;
	int r = DX_USAGE, i, curl_up = 0;

	memset(&c, 0, sizeof(c));
	config_harden_process();
	signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_LVL_WARN, 0);
	if (config_defaults(&c.d.cfg)) {
		say("out of memory");
		return DX_LOCAL;
	}
	conf = config_default_path();
	if (conf && config_load_file(&c.d.cfg, conf))
		goto out;
	/* Global options up to the command word. */
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const struct opt *o;

		if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("driftctl %s (%s, SQLite %s)\n", DRIFTFS_VERSION,
			       curl_version(), sqlite3_libversion());
			r = DX_OK;
			goto out;
		}
		if (a[0] != '-')
			break;
		if (!strncmp(a, "--", 2)) {
			char name[64];
			size_t n = strcspn(a + 2, "=");

			snprintf(name, sizeof(name), "%.*s", (int)n, a + 2);
			for (char *p = name; *p; p++)
				*p = *p == '_' ? '-' : *p;
			o = find_long(global_opts, name, strlen(name));
			if (o && o->has_arg && !a[2 + n])
				i++;
		}
	}
	/* Apply what precedes the command (or everything). */
	r = parse_args(&c, i, argv, 1, no_opts, main_opt, NULL);
	if (r)
		goto out;
	if (i >= argc) {
		fputs(usage_main, c.help ? stdout : stderr);
		r = c.help ? DX_OK : DX_USAGE;
		goto out;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(argv[i], commands[k].name))
			cmd = &commands[k];
	if (!cmd) {
		say("unknown command '%s' (see driftctl --help)", argv[i]);
		r = DX_USAGE;
		goto out;
	}
	c.cmd = cmd->name;
	if (c.help) {
		/* driftctl --help COMMAND */
		fputs(cmd->usage, stdout);
		r = DX_OK;
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		say("libcurl failed to initialise");
		r = DX_LOCAL;
		goto out;
	}
	curl_up = 1;
	r = cmd->run(&c, argc, argv, i + 1);
	if (c.help) {
		fputs(cmd->usage, stdout);
		r = DX_OK;
	}
out:
	ctl_release(&c);
	if (curl_up)
		curl_global_cleanup();
	stats_clear();
	free(conf);
	return r;
}
