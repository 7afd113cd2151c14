/* SPDX-License-Identifier: MIT */
/*
 * config: the options both programs share, the config file, and the token.
 *
 * Precedence, lowest first: built-in defaults, the config file
 * ($XDG_CONFIG_HOME/driftfs/config, "name = value" lines), the command line.
 * The token comes from DRIFT_TOKEN or the credentials file, never from argv.
 */
#ifndef DRIFTFS_CONFIG_H
#define DRIFTFS_CONFIG_H

#include <stdint.h>

struct config {
	char *api_url;		/* base URL without trailing slash */
	char *credentials;	/* path of the credentials file */
	char *cache_dir;	/* directory of the cache (created 0700) */
	char *ca_file;		/* extra CA bundle, or NULL for the system's */
	long refresh;		/* seconds between background syncs, 0 = never */
	int offline;		/* never touch the network */
	double rate;		/* cap on requests per second, 0 = adaptive */
	long timeout;		/* seconds: deadline of one HTTP request */
	long conns;		/* concurrent requests during sync */
};

/* Fills in the defaults (allocated strings). Returns 0 or -errno. */
int config_defaults(struct config *c);
void config_release(struct config *c);

/*
 * Sets one option by name ("api_url" or "api-url" alike). Returns 0,
 * -ENOENT for an unknown name, -EINVAL for a bad value.
 */
int config_set(struct config *c, const char *name, const char *value);

/* Reads the config file if it exists. Errors name the file and line. */
int config_load_file(struct config *c, const char *path);
/* Default path of the config file (caller frees). */
char *config_default_path(void);

/*
 * Checks the final option set: URL scheme (http:// only for loopback
 * hosts), ranges. Returns 0 or -EINVAL after logging why.
 */
int config_validate(const struct config *c);

/* The token: DRIFT_TOKEN, else the credentials file. Caller frees. */
int config_load_token(const struct config *c, char **token);

/*
 * Creates dir (and missing parents) as 0700, and refuses an existing one
 * that others can read or write.
 */
int config_private_dir(const char *dir);

#endif
