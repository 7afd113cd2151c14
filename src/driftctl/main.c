// SPDX-License-Identifier: MIT
/*
 * main.c: driftctl's main: the command line (global options, each
 * command's own through its table, "--help"), the config file, and the
 * dispatch to a command (cmd_*.c). No command lives here.
 */
#include <curl/curl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "driftctl_int.h"
#include "log.h"
#include "stats.h"

/* Options every command takes: all go to config_set(). */
static const struct opt global_opts[] = {
	{ "api-url", 0, 1, 0 },	      { "credentials", 0, 1, 0 },
	{ "cache-dir", 0, 1, 0 },     { "ca-file", 0, 1, 0 },
	{ "rate", 0, 1, 0 },	      { "timeout", 0, 1, 0 },
	{ "conns", 0, 1, 0 },	      { "refresh", 0, 1, 0 },
	{ "offline", 0, 0, 0 },	      { "client-id", 0, 1, 0 },
	{ "redirect-uri", 0, 1, 0 },  { "reconcile", 0, 1, 0 },
	{ NULL, 0, 0, 0 },
};

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

/* Applies a global option. */
static int global_opt(struct cli *c, const struct opt *o, const char *value)
{
	int r = config_set(&c->d.cfg, o->name, value);

	if (r)
		cli_say("bad value for --%s%s%s", o->name, value ? ": " : "",
			value ? value : "");
	return r ? DX_USAGE : 0;
}

/*
 * Parses argv[from..]: global options, the command's own (table cmd_opts,
 * handled by fn) and positional arguments (fn with o == NULL). "--name=v",
 * "--name v", "-Xv", "-X v"; '_' and '-' are the same in long names.
 * Returns 0 or an exit status.
 */
int cli_parse_args(struct cli *c, int argc, char **argv, int from,
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
				cli_say("--client-secret is refused: other "
					"users can "
					"read the command line. Use "
					"--client-secret-stdin, "
					"DRIFT_CLIENT_SECRET, "
					"or client_secret in the config file");
				return DX_USAGE;
			}
			if (!strcmp(name, "token")) {
				cli_say(
				    "a token is never accepted on the command "
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
				cli_say("unknown option --%s (see driftctl "
					"%s%s--help)",
					name, c->cmd ? c->cmd : "",
					c->cmd ? " " : "");
				return DX_USAGE;
			}
			if (eq && !o->has_arg) {
				cli_say("--%s takes no value", name);
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
				cli_say("unknown option %s (see driftctl "
					"%s%s--help)",
					a, c->cmd ? c->cmd : "",
					c->cmd ? " " : "");
				return DX_USAGE;
			}
			if (a[2] && o->has_arg)
				value = a + 2;
			else if (a[2]) {
				cli_say("option -%c takes no value", a[1]);
				return DX_USAGE;
			}
		}
		if (o->has_arg && !value) {
			if (i + 1 >= argc) {
				cli_say("option %s needs a value", a);
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
const struct opt cli_no_opts[] = {{NULL, 0, 0, 0}};

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
	"    search    full-text search of the cache (no network)\n"
	"\n"
	"options (also 'name = value' in $XDG_CONFIG_HOME/driftfs/config):\n"
	"    --api-url URL         API base URL (https://driftapi.com)\n"
	"    --credentials FILE    token file (0600)\n"
	"    --cache-dir DIR       cache directory (0700)\n"
	"    --ca-file FILE        extra CA bundle\n"
	"    --rate N              cap on API requests per second\n"
	"    --timeout SECONDS     deadline of one request (30)\n"
	"    --conns N             concurrent requests when syncing (4)\n"
	"    --reconcile SECONDS   deletions in Drift reach the cache within\n"
	"                          this (86400)\n"
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

struct command {
	const char *name;
	int (*run)(struct cli *c, int argc, char **argv, int from);
	const char *usage;
};

static const struct command commands[] = {
	{ "login", cmd_login, cli_usage_login },
	{ "sync", cmd_sync, cli_usage_sync },
	{ "status", cmd_status, cli_usage_status },
	{ "api", cmd_api, cli_usage_api },
	{ "report", cmd_report, cli_usage_report },
	{ "search", cmd_search, cli_usage_search },
};

/* Before the command there are only options: nothing else comes here. */
static int main_opt(struct cli *c, void *cmd, const struct opt *o,
		    const char *value)
{
	(void)c;
	(void)cmd;
	(void)o;
	cli_say("unexpected argument '%s'", value);
	return DX_USAGE;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct cli c;
	char *conf = NULL;
	int r = DX_USAGE, i, curl_up = 0;

	memset(&c, 0, sizeof(c));
	config_harden_process();
	signal(SIGPIPE, SIG_IGN);
	log_setup(LOG_LVL_WARN, 0);
	if (config_defaults(&c.d.cfg)) {
		cli_say("out of memory");
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
	r = cli_parse_args(&c, i, argv, 1, cli_no_opts, main_opt, NULL);
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
		cli_say("unknown command '%s' (see driftctl --help)", argv[i]);
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
		cli_say("libcurl failed to initialise");
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
	cli_release(&c);
	if (curl_up)
		curl_global_cleanup();
	stats_clear();
	free(conf);
	return r;
}
