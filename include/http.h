/* SPDX-License-Identifier: MIT */
/*
 * http: the one way driftfs talks to the network.
 *
 * A pool of libcurl easy handles (each keeps its connections alive), a
 * deadline on every request, retries with capped exponential backoff for
 * idempotent calls (honouring Retry-After), and one rate governor that every
 * thread passes before sending. HTTP statuses and curl errors become -errno
 * values in this module only: http_errno() (http_error.c) maps a finished
 * request, and http.c's request loop turns its own failures (no handle,
 * a deadline passed, an answer too large) into -errno too.
 *
 * The token lives only in this module's memory (or in the token source's,
 * see struct http_auth) and in the Authorization header; it is never logged,
 * and redirects are never followed, so it cannot be carried to another host.
 *
 * Files: http.c (the client, one request), http_governor.c (the rate
 * governor, retry backoff), http_error.c (statuses to -errno, the redacted
 * error message), http_endpoint.c (stats names); src/http_int.h is what they
 * share. http knows only leaf modules below it (buf, clock, config, json,
 * log, secret, stats, text): the token source reaches it as hooks.
 *
 * Threads and locks: the mains (src/fs/main.c, driftctl) make and free the
 * client on their main thread, after curl_global_init() and before any
 * other thread starts, or after all have stopped. Every other function may
 * be called from any thread at once: FUSE workers (api.c, commit.c), the
 * sync and outbox threads, the token source (auth.c) while it refreshes.
 * Inside, a request takes the pool lock and the governor lock for a moment
 * each, and never holds either while it calls a token source hook or a
 * sink, or when it returns; callers may hold their own locks, so long as
 * those are never taken inside a hook or a sink (auth.h: lock order).
 *
 * Errors: functions return 0 or -errno; http_new() returns NULL and sets
 * errno; predicates (http_transient(), http_offline(), http_reachable())
 * return 0 or 1.
 */
#ifndef DRIFTFS_HTTP_H
#define DRIFTFS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct http;
struct config;

/*
 * A token source for tokens that change (OAuth access tokens, auth.c).
 * http asks it for the token before every attempt, outside every lock of
 * its own and before taking a governor slot, so the source may itself call
 * http_call() (with HTTP_NO_AUTH) to refresh. Both hooks may be called from
 * any thread at once.
 */
struct http_auth {
	/*
	 * Sets *token to the bearer token to send now (the caller scrubs and
	 * frees it) and *gen to a number that names that token. Returns 0 or
	 * -errno; the call then fails with that error.
	 */
	int (*token)(void *ctx, struct http *h, char **token,
		     unsigned long *gen);
	/*
	 * The API answered 401 to the token named gen. Returns 0 when another
	 * token is available now (someone refreshed it, or this hook did), so
	 * the request is worth one more try; else -errno, after logging what
	 * the user should do.
	 */
	int (*refused)(void *ctx, struct http *h, unsigned long gen);
	void *ctx;
};

struct http_opts {
	const char *base_url;	/* e.g. https://driftapi.com, no trailing / */
	const char *token;	/* fixed bearer token (copied); unused with auth */
	const struct http_auth *auth; /* token source, or NULL; must outlive
				       * the client */
	const char *ca_file;	/* extra CA bundle or NULL */
	long timeout;		/* seconds: deadline of one attempt; for a
				 * streamed body (a sink), the longest it
				 * may make no progress */
	double rate;		/* requests/s cap, 0 = adaptive */
	int max_inflight;	/* concurrent requests at most */
	int offline;		/* refuse every call */
};

struct http_response {
	long status;		/* HTTP status; 0 when no response arrived */
	struct buf body;	/* the response body (bounded) */
	char message[256];	/* the API's own error message, if any */
	int attempts;		/* tries made, retries included */
};

enum http_flags {
	/* Safe to resend after a failure (GET is always). */
	HTTP_IDEMPOTENT = 1 << 0,
	/* Give up after the first failure (interactive lookups). */
	HTTP_NO_RETRY = 1 << 1,
	/* Send no Authorization header (the OAuth token endpoint). */
	HTTP_NO_AUTH = 1 << 2,
	/* The caller says what a definite refusal (a 4xx but 408 and 429)
	 * means in a line of its own (the outbox: "refused", "gone
	 * already"), so no line of the HTTP layer repeats or contradicts it.
	 * Failures that may pass are still logged here. */
	HTTP_REFUSAL_LOGGED = 1 << 3,
};

/* The most bytes an answer's body may hold unless a request says otherwise
 * (max_body 0); the API layer's JSON answers use it too. */
#define HTTP_MAX_BODY ((size_t)32 << 20)

/* One request, for callers that need more than http_call() offers. */
struct http_request {
	const char *method;
	const char *path;	/* starts with '/', may carry a query */
	const char *ctype;	/* Content-Type of body; NULL = JSON */
	const void *body;	/* NULL for none */
	size_t body_len;
	size_t max_body;	/* 0 = HTTP_MAX_BODY */
	unsigned flags;		/* enum http_flags */
	/* Deadline of one attempt in ms, 0 = the client's (http_opts) */
	long timeout_ms;
	/*
	 * Extra "Name: value" header lines, NULL-terminated, or NULL. A line
	 * named Accept or Content-Type replaces the default one; lines named
	 * Authorization, or holding CR or LF, are refused (-EINVAL).
	 */
	const char *const *headers;
	/*
	 * Where a 2xx answer's body goes, piece by piece as it arrives,
	 * instead of into resp->body (NULL: into resp->body). Called with
	 * data NULL before every attempt: start over, a retry follows. The
	 * max_body holds (a Content-Length above it is refused before a
	 * byte is sunk), but not the whole-transfer timeout: an attempt
	 * fails when under 1 KiB/s arrived for `timeout` seconds, or after
	 * `timeout` plus max_body's time at 64 KiB/s; the call's deadline
	 * grows by as much. An error body still goes to resp->body. A
	 * sink's -errno ends the call with that error, with no retry.
	 * Called on the calling thread, with no lock held.
	 */
	int (*sink)(void *ctx, const void *data, size_t len);
	void *sink_ctx;
	/*
	 * Secrets the request carries besides the token (a client secret,
	 * a refresh token, an authorization code in a form body),
	 * NULL-terminated, or NULL. An error answer may echo the request,
	 * so each is redacted from resp->message as it is and
	 * percent-encoded, like the token; strings under 4 bytes are not
	 * (they would redact ordinary words). Borrowed for the call.
	 */
	const char *const *secrets;
};

/*
 * Fills all of *o from the options of cfg (api_url, ca_file, timeout, rate,
 * conns as max_inflight, offline) with auth as the token source (NULL: none;
 * set o->token then). o borrows cfg's strings: cfg must outlive o, not the
 * client, which copies them. What driftfs and driftctl build their client
 * from.
 */
void http_opts_from_config(struct http_opts *o, const struct config *cfg,
			   const struct http_auth *auth);

/*
 * A client for o: copies every string (base_url, token, ca_file) and keeps
 * o->auth, which must outlive the client. NULL with errno ENOMEM, or
 * another errno after logging why ca_file cannot be used (EFBIG, EISDIR,
 * ENOTSUP: this libcurl does not take it, ...).
 */
struct http *http_new(const struct http_opts *o);
/* Frees the client and scrubs its token; no request may be in flight. NULL
 * is accepted. */
void http_free(struct http *h);

/*
 * Performs METHOD base_url+path (path starts with '/' and may carry a
 * query). body may be NULL; ctype is its Content-Type. At most max_body
 * response bytes are accepted (0 = HTTP_MAX_BODY). resp is initialised
 * here and must be released with http_response_release() whatever the
 * result.
 *
 * Returns 0 on a 2xx answer, else -errno (http_errno() of the status for an
 * HTTP answer); the failure has been recorded in the error log with the
 * caller's context.
 */
int http_call(struct http *h, const char *method, const char *path,
	      const char *ctype, const void *body, size_t body_len,
	      size_t max_body, unsigned flags, struct http_response *resp);
/*
 * The same, described by a struct http_request. With a token source, a 401
 * answer makes it ask the source for a new token once and, if there is one,
 * send the request once more (a 401 means the API did not act on it, so this
 * holds for POSTs too). When the source could not get one for a transient
 * reason (the token endpoint answered 5xx, or not at all), the call fails
 * with -EAGAIN and resp->status 401: the API did not act, and the call may
 * be tried again later; -EACCES only when the token was refused for good.
 * The refused token stays redacted from the messages of the attempts
 * after it.
 */
int http_request(struct http *h, const struct http_request *rq,
		 struct http_response *resp);
/* Frees resp->body (the caller's, after either call above, whatever it
 * returned). Again on a released resp is harmless. */
void http_response_release(struct http_response *resp);

/*
 * 0 for a 2xx status, else the -errno it maps to (status 0, no answer at
 * all: -EIO). The one place HTTP statuses become errno values.
 */
int http_errno(long status);
/* Whether a failure with this status may succeed if tried again later. */
int http_transient(long status);

/*
 * Switches offline mode on or off at run time (ctl.c, for .driftfs/ctl);
 * a request already on the wire finishes. These four are atomic reads and
 * writes: no lock.
 */
void http_set_offline(struct http *h, int offline);
int http_offline(const struct http *h);
/* Wall-clock ms when the last request ended (0 = none yet). */
int64_t http_last_activity(const struct http *h);
/* Whether the last request got an HTTP answer at all. */
int http_reachable(const struct http *h);
/*
 * The status (5xx or 429) that the last request the API answered ended
 * with after its retries, or 0 when that one succeeded or failed for
 * another reason (the API works). Not a predicate: the status, for
 * .driftfs/status. Atomic: no lock.
 */
long http_failing(const struct http *h);
/*
 * Appends one line describing the governor (rate, pause, 429s seen) to out,
 * under the governor's lock (.driftfs/status, driftctl status). 0 or -errno.
 */
int http_governor_render(struct http *h, struct buf *out);

#endif
