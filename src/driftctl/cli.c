// SPDX-License-Identifier: MIT
/*
 * cli.c: the library pieces a command opens, the same ones driftfs uses
 * (HTTP client and token source, the org's cache directory, the store),
 * the log level, and releasing all of it (struct cli). No command lives
 * here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "auth.h"
#include "config.h"
#include "driftctl_int.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "sync.h"

/* The HTTP client; with need_token, a token source too. */
int cli_open_http(struct cli *c, int need_token)
{
	struct http_opts ho;

	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	if (need_token && !c->d.cfg.offline) {
		c->auth = auth_new(&c->d.cfg);
		if (!c->auth)
			return errno == ENOMEM ? DX_LOCAL : DX_AUTH;
	}
	http_opts_from_config(&ho, &c->d.cfg,
			      c->auth ? auth_http(c->auth) : NULL);
	c->d.http = http_new(&ho);
	/* Anything but memory is a ca_file it cannot use (said why). */
	return c->d.http ? 0 : errno == ENOMEM ? DX_LOCAL : DX_USAGE;
}

/* The API host's directory (created 0700 when create is set). */
int cli_open_host_dir(struct cli *c, int create)
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
 * online, after cli_open_http(). With create, directories are made and an old
 * cache is moved into place; without, nothing on disk changes.
 */
int cli_open_dir(struct cli *c, int create)
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

int cli_open_store(struct cli *c)
{
	int r = cli_open_dir(c, 1);

	if (r)
		return r;
	c->d.store = store_open(c->dir);
	if (!c->d.store) {
		cli_say("cannot open the cache in %s: %s", c->dir,
			strerror(errno));
		return DX_LOCAL;
	}
	if (account_check_store(&c->acc, c->d.store))
		return DX_LOCAL;
	c->d.account = &c->acc;
	return 0;
}

/*
 * How much of the library's log to show: with quiet, only errors (the
 * command reports failures itself); --log-level (or log_level in the
 * config file) sets it; -v adds information, -vv debugging.
 */
void cli_set_log_level(struct cli *c, int quiet)
{
	if (c->verbose)
		log_setup(c->verbose > 1 ? LOG_LVL_DEBUG : LOG_LVL_INFO, 0);
	else if (c->d.cfg.log_level >= 0)
		log_setup((enum log_level)c->d.cfg.log_level, 0);
	else
		log_setup(quiet ? LOG_LVL_ERROR : LOG_LVL_WARN, 0);
}

void cli_release(struct cli *c)
{
	sync_free(c->d.sync);
	http_free(c->d.http);
	auth_free(c->auth);
	store_close(c->d.store);
	account_release(&c->acc);
	free(c->host_dir);
	config_release(&c->d.cfg);
}
