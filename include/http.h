/* SPDX-License-Identifier: MIT */
/*
 * http: the one way driftfs talks to the network.
 *
 * A pool of libcurl easy handles (each keeps its connections alive), a
 * deadline on every request, retries with capped exponential backoff for
 * idempotent calls (honouring Retry-After), and one rate governor that every
 * thread passes before sending. HTTP statuses and curl errors become errno
 * values here and nowhere else (http_errno()).
 *
 * The token lives only in this module's memory and in the Authorization
 * header; it is never logged, and redirects are never followed, so it cannot
 * be carried to another host.
 *
 * Thread-safety: every function may be called from any thread once
 * http_new() has returned. curl_global_init() must run before threads start.
 */
#ifndef DRIFTFS_HTTP_H
#define DRIFTFS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct http;

struct http_opts {
	const char *base_url;	/* e.g. https://driftapi.com, no trailing / */
	const char *token;	/* bearer token (copied) */
	const char *ca_file;	/* extra CA bundle or NULL */
	long timeout;		/* seconds: deadline of one attempt */
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
};

struct http *http_new(const struct http_opts *o);
void http_free(struct http *h);

/*
 * Performs METHOD base_url+path (path starts with '/' and may carry a
 * query). body may be NULL; ctype is its Content-Type. At most max_body
 * response bytes are accepted (0 = 32 MiB). resp is initialised here and must
 * be released with http_response_release() whatever the result.
 *
 * Returns 0 on a 2xx answer, else the errno of http_errno(); the failure has
 * been recorded in the error log with the caller's context.
 */
int http_call(struct http *h, const char *method, const char *path,
	      const char *ctype, const void *body, size_t body_len,
	      size_t max_body, unsigned flags, struct http_response *resp);
void http_response_release(struct http_response *resp);

/* The errno for an HTTP status (0 = transport failure). */
int http_errno(long status);
/* Whether a failure with this status may succeed if tried again later. */
int http_transient(long status);

/* Switches offline mode on or off at run time. */
void http_set_offline(struct http *h, int offline);
int http_offline(const struct http *h);
/* Wall-clock ms when the last request ended (0 = none yet). */
int64_t http_last_activity(const struct http *h);
/* Whether the last request got an HTTP answer at all. */
int http_reachable(const struct http *h);
/* One line describing the governor: rate, pause, 429s seen. */
int http_governor_render(struct http *h, struct buf *out);

/* Milliseconds on a monotonic clock; and wall-clock ms since the epoch. */
int64_t http_now_ms(void);
int64_t http_wall_ms(void);

#endif
