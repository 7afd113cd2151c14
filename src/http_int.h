/* SPDX-License-Identifier: MIT */
/*
 * http_int.h: what the files of the HTTP client (src/http*.c) share and no
 * other module sees: the client's and the governor's structs, and the
 * functions one of those files calls in another. Other modules use http.h.
 */
#ifndef DRIFTFS_HTTP_INT_H
#define DRIFTFS_HTTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "buf.h"
#include "http.h"

/*
 * The rate governor. Every request takes one token from a bucket that refills
 * at `rate` tokens a second (holding at most `burst`), and at most
 * `max_inflight` requests are on the wire at once. A 429 pauses everyone
 * until `paused_until` (Retry-After if given, else backoff) and, in adaptive
 * mode, halves the rate; every success adds a little back (AIMD), never above
 * `cap` when the user set one.
 */
struct governor {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	double rate;		/* tokens per second now */
	double cap;		/* user's cap, 0 = adaptive up to ADAPTIVE_MAX */
	double tokens;		/* tokens in the bucket */
	double burst;		/* bucket size */
	int64_t refilled_ms;	/* monotonic time of the last refill */
	int64_t paused_until;	/* monotonic ms; no request starts before */
	int inflight;		/* requests on the wire */
	int max_inflight;	/* at most this many on the wire */
	unsigned consecutive_429; /* for backoff when Retry-After is absent */
	long total_429;		/* 429 answers seen */
};

/*
 * The client. Easy handles are pooled so their connection caches, and so
 * kept-alive connections, survive from one request to the next.
 */
struct http {
	char *base_url;
	char *origin;		/* scheme://host[:port] of base_url, for errors */
	char *token;		/* the fixed bearer token, when auth is NULL */
	const struct http_auth *auth; /* token source, or NULL */
	/*
	 * ca_file is trusted besides the system's CAs: with ca_path (the
	 * system's hashed CA directory) each handle gets CAINFO=ca_file and
	 * CAPATH=ca_path; without one, ca_blob holds the system bundle and
	 * ca_file in one PEM (CAINFO_BLOB). See http_ca_setup() in http.c.
	 */
	char *ca_file;
	char *ca_path;
	char *ca_blob;
	size_t ca_blob_len;
	long timeout_ms;
	int offline;
	int reachable;
	long failing;		/* 5xx/429 that ended the last answered
				 * request, 0 = none; atomically updated */
	int64_t last_activity;	/* wall ms, atomically updated */
	struct governor gov;
	pthread_mutex_t pool_lock;
	CURL **pool;		/* idle easy handles */
	size_t pool_len, pool_alloc;
};

/*
 * http_governor.c: the rate governor and the pace of retries. Any thread;
 * the governor's lock is taken inside and never held on return.
 */
void http_governor_init(struct governor *g, double cap, int max_inflight);
/* Waits for a token and a slot; -ETIMEDOUT if that would pass deadline. */
int http_governor_acquire(struct governor *g, int64_t deadline);
/* Returns the slot; retry_after_s < 0 means the header was absent. */
void http_governor_release(struct governor *g, long status,
			   long retry_after_s);
/* The wait before retry number attempt + 1, with jitter. */
int64_t http_backoff_ms(int attempt);
/* Sleeps ms milliseconds, through signals. */
void http_sleep_ms(int64_t ms);

/*
 * http_error.c: what a failed attempt becomes, an errno and a message
 * that shows no secret. No shared state: any thread, no locks.
 */
/* The secrets one message must not show (see http_set_message()). */
struct http_secrets {
	const char *token;		/* the token this attempt sent */
	const char *refused;		/* one a 401 refused, or NULL */
	const char *const *extra;	/* the request's own (http.h) */
};

/* Whether curl error rc says the server's certificate was refused. */
int http_tls_refused(int rc);
/* Appends the API's own message from an error body; 0 or -errno. */
int http_error_message(const struct buf *body, struct buf *out);
/*
 * Replaces every secret of sec in the len bytes of s (NUL-terminated at
 * len) with "***", in place; returns the new length (never longer).
 */
size_t http_redact(char *s, size_t len, const struct http_secrets *sec);
/*
 * Copies path into out (size >= 1 bytes, always NUL-terminated, cut if it
 * does not fit) for a log line, with the value of every query parameter
 * replaced by "***": "/contacts?email=a@b.c&limit=5" becomes
 * "/contacts?email=***&limit=***". The keys are the api's own words; the
 * values are the user's data (an email, a search term). Returns out.
 */
char *http_path_for_log(const char *path, char *out, size_t size);
/* Sets resp->message from why (released here), sec redacted. */
void http_set_message(struct http_response *resp, struct buf *why,
		      const struct http_secrets *sec);

/*
 * http_endpoint.c: the names requests are counted under in
 * .driftfs/stats. Any thread; http_stats_endpoint() takes its own lock.
 */
/* The endpoint name for stats: the path with ids replaced by {id}. */
void http_endpoint_name(const char *method, const char *path, char *out,
			size_t size);
/* Makes name "other" once 64 other names are kept (MAX_ENDPOINTS). */
void http_stats_endpoint(char *name, size_t size);

#endif
