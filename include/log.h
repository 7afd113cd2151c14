/* SPDX-License-Identifier: MIT */
/*
 * log: the daemon's log and the ring of recent errors behind .driftfs/errors.
 *
 * Messages go to stderr while the daemon runs in the foreground and to syslog
 * (identifier "driftfs", facility daemon) once it has daemonized; on a
 * stderr that is journald's stream ($JOURNAL_STREAM, a systemd unit) each
 * line carries its priority as a "<N>" prefix. The level is the
 * log_level option (config.h); -d means debug. Errors are also kept in a bounded in-memory ring so
 * that a user can read the last ones from the mount itself.
 *
 * Each thread has an "operation context": the tree path (or sync step) it is
 * working for. Lower layers that fail, such as the HTTP client, record the
 * context with their error, so a line in .driftfs/errors names both the path
 * and the API call that failed without threading the path through every API.
 *
 * Secrets never reach this module: callers pass no tokens, and the HTTP layer
 * logs request lines only, never headers.
 *
 * Every line, error and context passes the sanitiser (text.h) as one line
 * before it is kept or written, so an API value quoted in a message (an
 * error text, a name) cannot send escape sequences to the terminal that
 * shows the log or .driftfs/errors.
 */
#ifndef DRIFTFS_LOG_H
#define DRIFTFS_LOG_H

#include <stddef.h>

#include "buf.h"

enum log_level { LOG_LVL_ERROR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/*
 * Names the program its lines come from ("driftfs" unless set: driftctl
 * sets "driftctl"): the prefix on a plain stderr, and the syslog
 * identifier. name is kept, not copied: a string literal. Main thread,
 * before log_setup() and before any other thread runs.
 */
void log_set_program(const char *name);
/* Sets the threshold and where messages go; safe to call again later. */
void log_setup(enum log_level level, int use_syslog);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/*
 * Records an error: logged at LOG_LVL_WARN and appended to the ring with a
 * timestamp and the calling thread's context.
 */
void log_error_event(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/* The calling thread's context; the string is copied (truncated to 511). */
void log_context_set(const char *ctx);
/*
 * A context written only when an error needs it: fn(arg, out, size) fills
 * it in then. For callers that set a context on every request, where
 * formatting it each time would cost more than the request. arg must stay
 * valid until the next log_context_set/_defer on this thread; fn must not
 * take locks the thread may hold when it records an error.
 */
typedef void (*log_context_fn)(const void *arg, char *out, size_t size);
void log_context_defer(log_context_fn fn, const void *arg);
const char *log_context(void);

/* Appends the ring, oldest first, one error a line. Returns 0 or -errno. */
int log_errors_render(struct buf *out);
/* Number of errors recorded since start (not just those still in the ring). */
unsigned long log_errors_total(void);
/* Wall-clock ms of the last error recorded (0 = none). */
long long log_errors_last_ms(void);

#endif
