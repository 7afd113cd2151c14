/* SPDX-License-Identifier: MIT */
/*
 * driftctl_int.h: what driftctl's files share: the exit statuses, the
 * command line's option tables and parser, struct cli (everything one run
 * holds), output helpers, the progress of a sync pass, the report limit
 * and the commands main.c dispatches to. Private to src/driftctl/.
 *
 * Threads: everything runs on the main thread except the progress thread
 * (progress_start()), which only reads the status text and writes stderr.
 * Functions returning int return 0 or an exit status (DX_*) unless their
 * comment says -errno; none takes a lock of its own except struct
 * progress's.
 */
#ifndef DRIFTFS_DRIFTCTL_INT_H
#define DRIFTFS_DRIFTCTL_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "account.h"
#include "api.h"
#include "buf.h"
#include "driftfs.h"

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

/* Report calls a minute: Drift's limit (api.h). */
#define REPORT_LIMIT API_REPORT_LIMIT

/* One option of the command line. */
struct opt {
	const char *name;	/* long name, '-' spelling */
	char short_name;	/* or 0 */
	int has_arg;
	int id;
};

/*
 * Everything one run of driftctl holds. main() zeroes it and releases it
 * with cli_release(); a command opens the pieces it needs (cli.c).
 */
struct cli {
	struct driftfs d;	/* cfg, store, http, sync */
	struct auth *auth;	/* NULL offline or before cli_open_http() */
	struct account acc;	/* the org and its cache (cli_open_dir()) */
	const char *dir;	/* acc.dir: the org's cache directory */
	char *host_dir;		/* the API host's directory (report-calls) */
	int verbose;
	int help;		/* COMMAND --help */
	const char *cmd;
};

/* ---- main.c: the command line ---- */

/*
 * A command's option handler: o is the option (value its argument, or
 * NULL), or NULL for a positional argument (value). cmd is the command's
 * own argument struct. Returns 0 or an exit status.
 */
typedef int (*opt_fn)(struct cli *c, void *cmd, const struct opt *o,
		      const char *value);

/* The table of a command without options of its own. */
extern const struct opt cli_no_opts[];

/*
 * Parses argv[from..]: global options (to config_set()), -h/--help and
 * -v/--verbose (into c), the command's own from cmd_opts (to fn), and
 * positional arguments (fn with o == NULL). Refuses --token and
 * --client-secret. Returns 0 or an exit status, having said why.
 */
int cli_parse_args(struct cli *c, int argc, char **argv, int from,
		   const struct opt *cmd_opts, opt_fn fn, void *cmd);

/* ---- output.c: lines, exit statuses, formats ---- */

/* "driftctl: " and a line on stderr, through the sanitiser (text.h). */
void __attribute__((format(printf, 1, 2))) cli_say(const char *fmt, ...);
/* A line on stdout that holds a string from the API, sanitised. */
void __attribute__((format(printf, 1, 2))) cli_show(const char *fmt, ...);
/* The exit status for an HTTP answer (0 = none arrived). */
int cli_exit_for_status(long status);
/* The exit status for a library result: 0 or -errno. */
int cli_exit_for_errno(int e);
/* "M:SS" or "H:MM:SS"; "N bytes", "N.N KiB"...; a time or "never". */
void cli_fmt_duration(char *out, size_t n, double s);
void cli_fmt_size(char *out, size_t n, long long bytes);
void cli_fmt_time(char *out, size_t n, int64_t ms);

/* ---- cli.c: the library's pieces for a command ---- */

/*
 * The HTTP client in c->d.http; with need_token (and online), the token
 * source in c->auth too. Validates the config first.
 */
int cli_open_http(struct cli *c, int need_token);
/* c->host_dir: the API host's directory, made 0700 with create. */
int cli_open_host_dir(struct cli *c, int create);
/*
 * c->dir: the cache directory of the token's org, as driftfs picks it
 * (account.h); online, after cli_open_http(). With create, directories are
 * made and an old cache is moved into place; without, nothing on disk
 * changes.
 */
int cli_open_dir(struct cli *c, int create);
/* c->d.store: the org's cache, after cli_open_dir(c, 1) (called here). */
int cli_open_store(struct cli *c);
/* The library's log level: quiet shows only errors; -v, -vv add more. */
void cli_set_log_level(struct cli *c, int quiet);
/* Frees and closes all that the cli_open_*() calls made; c->d.cfg too. */
void cli_release(struct cli *c);

/* ---- progress.c: the progress of a sync pass ---- */

/*
 * Where progress is read from: status text with a "syncing:" line. Zero
 * it, set tty and one of sync or status_path, then progress_start();
 * progress_stop() joins the thread. The thread takes lock to wait; the
 * rest belongs to it until progress_stop().
 */
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

/* Appends the status text (p->sync's, else p->status_path's); -errno. */
int progress_text(struct progress *p, struct buf *out);
/* Starts the drawing thread. Returns 0, or -errno when it could not
 * (no bar then; the caller goes on without one). */
int progress_start(struct progress *p);
/* Stops and joins it, and clears the bar. */
void progress_stop(struct progress *p);
/* SIGINT/SIGTERM handler of a sync: clears the bar, says, dies. */
void progress_on_interrupt(int sig);

/* ---- report_limit.c: REPORT_LIMIT reports a minute ---- */

/*
 * Takes one report call of the minute for the API host whose directory
 * is dir, waiting for a free one, or DX_RATE under no_wait.
 */
int report_limit_slot(const char *dir, int no_wait);
/* Report calls in dir's last minute (0 when unknown). */
int report_limit_calls_recent(const char *dir);

/* ---- cmd_*.c: the commands, and their --help text ---- */

int cmd_login(struct cli *c, int argc, char **argv, int from);
int cmd_sync(struct cli *c, int argc, char **argv, int from);
int cmd_status(struct cli *c, int argc, char **argv, int from);
int cmd_api(struct cli *c, int argc, char **argv, int from);
int cmd_report(struct cli *c, int argc, char **argv, int from);
int cmd_search(struct cli *c, int argc, char **argv, int from);

extern const char cli_usage_login[];
extern const char cli_usage_sync[];
extern const char cli_usage_status[];
extern const char cli_usage_api[];
extern const char cli_usage_report[];
extern const char cli_usage_search[];

#endif
