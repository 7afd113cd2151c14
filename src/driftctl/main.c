// SPDX-License-Identifier: MIT
/*
 * main.c: driftctl's main: the command line (global options, each
 * command's own through its table, "--help"), the config file, and the
 * dispatch to a command (cmd_*.c). No command lives here.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	{ "account", 0, 1, 0 },	      { "log-level", 0, 1, 0 },
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
	int r;

	/* Applied before anything else (account_from_argv()). */
	if (!strcmp(o->name, "account"))
		return 0;
	r = config_set(&c->d.cfg, o->name, value);

	if (r)
		cli_say("bad value for --%s%s%s", o->name, value ? ": " : "",
			value ? value : "");
	return r ? DX_USAGE : 0;
}

/*
 * Whether next, the word after option a, cannot be a's value: a word that
 * starts with "--" is an option (or the end of them), never a value, so
 * that "--limit --account x" does not take "--account" for the limit
 * while account_from_argv() takes x for the account. Says so. A value that
 * starts with "--" is written --name=VALUE (or -XVALUE).
 */
static int takes_no_value(const char *a, const char *next)
{
	if (strncmp(next, "--", 2))
		return 0;
	cli_say("option %s needs a value, and '%s' is an option (a value "
		"starting with \"--\" is written %s%sVALUE)",
		a, next, a, a[1] == '-' ? "=" : "");
	return 1;
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
			if (takes_no_value(a, argv[i + 1]))
				return DX_USAGE;
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
	"    help      this help, or a command's: driftctl help COMMAND\n"
	"\n"
	"options (also 'name = value' in the account's config file,\n"
	"$XDG_CONFIG_HOME/driftfs/config for default):\n"
	"    --api-url URL         API base URL (https://driftapi.com)\n"
	"    --credentials FILE    token file (0600)\n"
	"    --cache-dir DIR       cache directory (0700)\n"
	"    --ca-file FILE        CA bundle trusted besides the system's\n"
	"    --rate N              cap on API requests per second\n"
	"    --timeout SECONDS     deadline of one request (30)\n"
	"    --conns N             most requests in flight at once (4)\n"
	"    --reconcile SECONDS   deletions in Drift reach the cache within\n"
	"                          this (86400)\n"
	"    --refresh SECONDS     a mount's sync interval (config file's;\n"
	"                          unused here)\n"
	"    --offline             never touch the network\n"
	"    --client-id ID        OAuth app id (login)\n"
	"    --redirect-uri URI    OAuth redirect URI (login)\n"
	"    --account NAME        the profile: its own config, credentials\n"
	"                          and cache ($DRIFTFS_ACCOUNT, else default)\n"
	"    --log-level LEVEL     error, warning (default), info or debug\n"
	"    -v, --verbose         more log output (-v info, -vv debug)\n"
	"    -h, --help            this help; driftctl help COMMAND for a\n"
	"                          command's\n"
	"    -V, --version         print the version\n"
	"\n"
	"exit status: 0 ok, 1 usage, 2 authentication, 3 API unreachable or\n"
	"failing (5xx), 4 refused by the API (other 4xx), 5 rate limited,\n"
	"6 local failure; the same for driftfs. See driftctl(1).\n";

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

/* The command of that name, or NULL. */
static const struct command *find_command(const char *name)
{
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (!strcmp(name, commands[k].name))
			return &commands[k];
	return NULL;
}

/*
 * "driftctl help [COMMAND]", as git help: the overview, or the command's
 * own --help text; an unknown command is a usage error.
 */
static int help_command(int argc, char **argv, int from)
{
	const struct command *cmd;

	if (from >= argc) {
		fputs(usage_main, stdout);
		return DX_OK;
	}
	if (from + 1 < argc) {
		cli_say("help takes one command (see driftctl help)");
		return DX_USAGE;
	}
	if (!strcmp(argv[from], "help")) {
		fputs("usage: driftctl help [COMMAND]\n\nPrints the overview "
		      "of driftctl, or COMMAND's help.\n",
		      stdout);
		return DX_OK;
	}
	cmd = find_command(argv[from]);
	if (!cmd) {
		cli_say("no such command '%s' (driftctl help lists them)",
			argv[from]);
		return DX_USAGE;
	}
	fputs(cmd->usage, stdout);
	return DX_OK;
}

/*
 * The account named by --account (anywhere before "--": the option may
 * follow the command, as every global option may), else $DRIFTFS_ACCOUNT,
 * else "default". It decides which config file the other options
 * override, so it is read first. NULL after saying why when a value is
 * missing.
 */
static const char *account_from_argv(int argc, char **argv)
{
	const char *name = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "--account")) {
			if (i + 1 >= argc) {
				cli_say("option --account needs a value");
				return NULL;
			}
			if (takes_no_value(a, argv[i + 1]))
				return NULL;
			name = argv[++i];
		} else if (!strncmp(a, "--account=", 10)) {
			name = a + 10;
		}
	}
	return name ? name : config_account_default();
}

/*
 * Whether the command line asks only for help (-h or --help anywhere
 * before "--", or the help command): help needs no account, so a bad
 * $DRIFTFS_ACCOUNT must not stand in its way.
 */
static int asks_help(int argc, char **argv)
{
	int word = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--"))
			break;
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		if (a[0] != '-' && !word++ && !strcmp(a, "help"))
			return 1;
	}
	return 0;
}

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
	const char *account;
	struct cli c;
	char *conf = NULL;
	int r = DX_USAGE, i, curl_up = 0;

	memset(&c, 0, sizeof(c));
	config_harden_process();
	signal(SIGPIPE, SIG_IGN);
	log_set_program("driftctl");
	log_setup(LOG_LVL_WARN, 0);
	account = account_from_argv(argc, argv);
	if (!account)
		return DX_USAGE;
	if (config_account_valid(account) && asks_help(argc, argv))
		account = "default";
	if (config_account_valid(account)) {
		cli_say("account '%s': 1 to 64 letters, digits, '.', '_' or "
			"'-', not starting with '.' or '-'",
			account);
		return DX_USAGE;
	}
	switch (config_defaults_for(&c.d.cfg, account)) {
	case 0:
		break;
	case -ENOENT:
		cli_say("no home directory: $HOME is unset and the password "
			"database has none for uid %ld; set HOME (or "
			"XDG_CONFIG_HOME and XDG_CACHE_HOME)",
			(long)geteuid());
		return DX_USAGE;
	default:
		cli_say("out of memory");
		return DX_LOCAL;
	}
	conf = config_path_for(account);
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
	if (!strcmp(argv[i], "help")) {
		r = help_command(argc, argv, i + 1);
		goto out;
	}
	cmd = find_command(argv[i]);
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
