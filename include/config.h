/* SPDX-License-Identifier: MIT */
/*
 * config: the options both programs share, the config file, and the
 * account's directory in the cache. A leaf: it knows no other module but
 * log and names.
 *
 * Precedence, lowest first: built-in defaults, the config file
 * ($XDG_CONFIG_HOME/driftfs/config, "name = value" lines), the command line.
 *
 * An ACCOUNT (a profile: "default" unless named) has its own config file,
 * credentials and cache. "default" keeps the paths driftfs always had;
 * another NAME lives under accounts/NAME/ of the same directories:
 *   $XDG_CONFIG_HOME/driftfs/accounts/NAME/{config,credentials}
 *   $XDG_CACHE_HOME/driftfs/accounts/NAME/   (its cache_dir)
 * so that a name can never be taken for a file of the default account's
 * (config, credentials) or for an API host's cache directory.
 * The token is not an option: auth.h reads it from DRIFT_TOKEN or the
 * credentials file, never from argv.
 *
 * Called from the main thread while a program starts, before other threads
 * run; struct config is read-only afterwards, so any thread may read it.
 * No locks, except config_mount_note()'s flock on the note, which the
 * mount holds for its life. Functions return 0 or -errno unless said
 * otherwise.
 */
#ifndef DRIFTFS_CONFIG_H
#define DRIFTFS_CONFIG_H

#include <stdint.h>

struct config {
	char *account;		/* the profile's name ("default") */
	char *api_url;		/* base URL without trailing slash */
	char *credentials;	/* path of the credentials file */
	char *cache_dir;	/* directory of the cache (created 0700) */
	/* CA bundle trusted besides the system's CAs (http.c), or NULL */
	char *ca_file;
	/* seconds between background syncs; 0: one pass at mount, then
	 * only those asked for (.driftfs/ctl, SIGUSR1) */
	long refresh;
	/* seconds within which a deletion in Drift reaches the cache
	 * (sync_reconcile.c), 1 .. a year */
	long reconcile;
	int offline;		/* never touch the network */
	double rate;		/* cap on requests per second, 0 = adaptive */
	long timeout;		/* seconds: deadline of one HTTP request */
	/* most requests in flight at once for the whole process (the
	 * governor's slots), and the sync's worker threads */
	long conns;
	int log_level;		/* enum log_level, or -1: the program's default */
	/* driftfs only: every node's owner and group (-1: the mounting
	 * user's) and the mode bits cleared from every node (0: none) */
	long uid, gid;
	long umask;
	/* OAuth app settings, for driftctl login (NULL when unset). */
	char *client_id;
	char *client_secret;	/* config file only; never from argv */
	char *redirect_uri;
};

/* Fills in the defaults (allocated strings). Returns 0 or -errno. */
int config_defaults(struct config *c);
/*
 * The defaults of an account (NULL or "default": the same as
 * config_defaults()). -EINVAL for a name config_account_valid() refuses;
 * -ENOENT when a path needs a home (no absolute $XDG_CONFIG_HOME or
 * $XDG_CACHE_HOME) and config_home() finds none.
 */
int config_defaults_for(struct config *c, const char *account);
/*
 * Whether name may name an account: 1 to 64 of [A-Za-z0-9._-], not
 * starting with '.' or '-' (so never "..", never a path). 0 or -EINVAL.
 */
int config_account_valid(const char *name);
/*
 * The account a program serves when none is named: $DRIFTFS_ACCOUNT, else
 * "default". Not copied; valid until the environment changes.
 */
const char *config_account_default(void);
/*
 * The effective user's home: $HOME when it is an absolute path, else the
 * password database's entry for geteuid(); NULL when neither has one (never
 * a shared directory such as /tmp). Not copied.
 */
const char *config_home(void);
/*
 * Path of an account's config file (caller frees; NULL with errno ENOMEM,
 * or ENOENT when there is no home: see config_defaults_for()).
 */
char *config_path_for(const char *account);
/* "error", "warning" (or "warn"), "info", "debug": the log level, or -1. */
int config_log_level(const char *name);
void config_release(struct config *c);

/*
 * Sets one option by name ("api_url" or "api-url" alike). Returns 0,
 * -ENOENT for an unknown name, -EINVAL for a bad value.
 */
int config_set(struct config *c, const char *name, const char *value);

/*
 * Reads the config file if it exists. Errors name the file and line. A file
 * that belongs to another user than the effective one or root, or that
 * others may write, is refused (-EACCES, config_trusted()); so is one that
 * sets client_secret if others may read it.
 */
int config_load_file(struct config *c, const char *path);
/*
 * Whether a file or directory that st describes (path names it in the
 * message) may be trusted: it belongs to the effective user or root, and
 * neither its group nor others may write it. 0, or -EACCES after logging
 * why.
 */
struct stat;
int config_trusted(const char *path, const struct stat *st);
/* Strips leading and trailing white space in place; returns the start. */
char *config_trim(char *s);

/* Default path of the default account's config file (caller frees). */
char *config_default_path(void);

/*
 * Checks the final option set: URL scheme (http:// only for loopback
 * hosts), a ca_file that is a readable regular file. Returns 0 or -EINVAL after logging why.
 */
int config_validate(const struct config *c);

/*
 * Unsets the environment variable name after overwriting its value in
 * place, so that /proc/PID/environ no longer shows it either (DRIFT_TOKEN,
 * once the token source holds a copy).
 */
void config_forget_env(const char *name);

/*
 * Makes the process non-dumpable: no core dumps, and no ptrace or
 * /proc/PID/mem, environ reads by other processes of the same user.
 */
void config_harden_process(void);

/*
 * The account's own directory under cache_dir, named after the API host
 * and port ("driftapi.com", "127.0.0.1_8080"), where the orgs' caches
 * live (account.h). A host named accounts, config or credentials (any
 * case) has its first letter written %XX ("%61ccounts"), a name no host
 * otherwise gets, so that it never shares a directory with the profiles
 * (accounts/NAME) or their files. Both programs use it, so they share
 * one cache. Caller frees; NULL on ENOMEM.
 */
char *config_account_dir(const struct config *c);

/*
 * Records in the account directory that a mount at mountpoint (an absolute
 * path) serves it, for as long as the returned descriptor stays open: the
 * file "mount" holds the pid and the path and carries an flock. Returns the
 * descriptor or -errno (harmless: driftctl then just does not know).
 */
int config_mount_note(const char *account_dir, const char *mountpoint);
/*
 * The mountpoint of a live mount of the account directory (caller frees),
 * or NULL when there is none; *pid gets its process id.
 */
char *config_mount_find(const char *account_dir, long *pid);

/*
 * Creates dir (and missing parents) as 0700, and refuses an existing one
 * that belongs to another user than the effective one or root, or that
 * others can read or write (one of ours is made 0700 instead).
 */
int config_private_dir(const char *dir);

#endif
