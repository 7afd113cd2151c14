// SPDX-License-Identifier: MIT
/*
 * cmd_login.c: driftctl login: the OAuth authorization-code flow, or an
 * install token read from stdin and checked with the API; either way the
 * credentials file is written. The exchange and the refresh are auth.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <termios.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "driftctl_int.h"
#include "http.h"
#include "secret.h"

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
	if (n < 0 || (size_t)n > AUTH_LINE_MAX) {
		secret_scrub(line, cap);
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

static int login_opt(struct cli *c, void *cmd, const struct opt *o,
		     const char *value)
{
	struct login_args *la = cmd;

	(void)c;
	if (!o) {
		cli_say("login: unexpected argument '%s'", value);
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

	if (config_defaults_for(&def, cfg->account))
		return 0;
	same = !strcmp(def.credentials, cfg->credentials);
	config_release(&def);
	return same;
}

static int save_creds(struct cli *c, const struct auth_creds *cr)
{
	int r = auth_creds_write(c->d.cfg.credentials, cr,
				 default_credentials(&c->d.cfg));

	if (r) {
		cli_say("login: cannot write %s: %s", c->d.cfg.credentials,
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

static int login_token(struct cli *c, struct login_args *la)
{
	struct auth_creds cr = { 0 };
	char scope[512], msg[256];
	int64_t org = 0, exp = 0;
	char *tok = read_line("Drift token: ", 1);
	int r = DX_OK;

	if (!tok || !token_ok(tok)) {
		cli_say(
		    "login: no token on standard input (one line, no spaces)");
		r = DX_USAGE;
		goto out;
	}
	if (!la->no_verify && !c->d.cfg.offline) {
		struct http_opts ho;
		struct http *h;
		long st;

		if (config_validate(&c->d.cfg)) {
			r = DX_USAGE;
			goto out;
		}
		/* The token given, not the token source; no rate or
		 * connection limits for this one call. */
		http_opts_from_config(&ho, &c->d.cfg, NULL);
		ho.token = tok;
		ho.rate = 0;
		ho.max_inflight = 0;
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
				cli_say(
				    "login: the API refused this token (HTTP "
				    "%ld%s%s); nothing was stored",
				    st, msg[0] ? ": " : "", msg);
			else if (st)
				cli_say(
				    "login: could not check the token (HTTP "
				    "%ld%s%s); nothing was stored (--no-verify "
				    "stores it unchecked)",
				    st, msg[0] ? ": " : "", msg);
			else
				cli_say(
				    "login: could not check the token (%s); "
				    "nothing was stored (--no-verify stores it "
				    "unchecked)",
				    msg[0] ? msg : "no answer from the API");
			r = st == 400 ? DX_AUTH : cli_exit_for_status(st);
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
			cli_say("token for org %lld stored in %s",
				(long long)org, c->d.cfg.credentials);
		else
			cli_say("token stored in %s", c->d.cfg.credentials);
	}
out:
	secret_free(tok);
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

static int login_oauth(struct cli *c, struct login_args *la)
{
	struct auth_creds old = { 0 }, cr = { 0 };
	struct auth_grant g = { 0 };
	const char *env_id = getenv("DRIFT_CLIENT_ID");
	const char *env_secret = getenv("DRIFT_CLIENT_SECRET");
	char *secret = NULL, *id = NULL, *line = NULL, *code = NULL;
	char *got_state = NULL, *url = NULL;
	char state[33], why[512];
	unsigned char rnd[16];
	int r = DX_OK, e;

	/* What an earlier login stored, as the last fallback. */
	auth_creds_read(c->d.cfg.credentials, &old);
	if (la->secret_stdin) {
		secret = read_line("client secret: ", 1);
		if (!secret || !token_ok(secret)) {
			cli_say("login: no client secret on standard input");
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
		cli_say(
		    "login: the OAuth app's %s is missing: give --client-id "
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
		cli_say("login: no random numbers: %s", strerror(errno));
		r = DX_LOCAL;
		goto out;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(state + 2 * i, 3, "%02x", rnd[i]);
	url = api_oauth_authorize_url(id, c->d.cfg.redirect_uri, state);
	if (!url) {
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
		cli_say("login: no authorization code on standard input");
		r = DX_USAGE;
		goto out;
	}
	if (strchr(line, '=')) {
		const char *q = strchr(line, '?');

		q = q ? q + 1 : line;
		code = query_value(q, "code");
		got_state = query_value(q, "state");
		if (!code) {
			cli_say("login: no code= in the pasted address");
			r = DX_USAGE;
			goto out;
		}
		if (got_state && strcmp(got_state, state)) {
			cli_say(
			    "login: the state in the pasted address is not "
			    "this "
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
	r = cli_open_http(c, 0);
	if (r)
		goto out;
	g.grant_type = "authorization_code";
	g.client_id = id;
	g.client_secret = secret;
	g.code = code;
	g.redirect_uri = c->d.cfg.redirect_uri;
	e = auth_exchange(c->d.http, &g, &cr, why, sizeof(why));
	if (e) {
		cli_say("login: %s (%s); nothing was stored",
			e == -EACCES ? "Drift refused the code"
				     : "the exchange failed",
			why);
		r = e == -EACCES ? DX_AUTH : cli_exit_for_errno(e);
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
		cli_say("logged in%s; tokens stored in %s%s", org,
			c->d.cfg.credentials,
			cr.refresh_token ? " (the access token is refreshed "
					   "automatically)"
					 : "");
	}
out:
	auth_creds_release(&old);
	auth_creds_release(&cr);
	secret_free(secret);
	secret_free(line);
	secret_free(code);
	free(got_state);
	free(id);
	free(url);
	return r;
}

int cmd_login(struct cli *c, int argc, char **argv, int from)
{
	struct login_args la = { 0 };
	int r = cli_parse_args(c, argc, argv, from, login_opts, login_opt, &la);

	if (r || c->help)
		return r;
	/* driftctl says what failed; the library's lines would repeat it. */
	cli_set_log_level(c, 1);
	if (la.token_stdin && la.secret_stdin) {
		cli_say(
		    "login: --token-stdin and --client-secret-stdin both read "
		    "standard input; give the secret in DRIFT_CLIENT_SECRET");
		return DX_USAGE;
	}
	return la.token_stdin ? login_token(c, &la) : login_oauth(c, &la);
}

const char cli_usage_login[] =
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
