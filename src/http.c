// SPDX-License-Identifier: MIT
/* http.c: pooled libcurl client with deadlines, retries and a rate governor. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "clock.h"
#include "config.h"
#include "json.h"
#include "log.h"
#include "secret.h"
#include "stats.h"
#include "text.h"

#define DEFAULT_MAX_BODY ((size_t)32 << 20)
#define MAX_ATTEMPTS 5
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 8000
#define RETRY_AFTER_CAP_S 60
#define ADAPTIVE_START 20.0
#define ADAPTIVE_MAX 200.0
#define ADAPTIVE_MIN 0.5
/*
 * A streamed body (a request with a sink: an attachment of up to 64 MiB)
 * may take far longer than `timeout` on a slow link and still be healthy,
 * so its attempts are bounded by progress instead: one ends when less than
 * STREAM_LOW_SPEED bytes/s arrived for `timeout` seconds (a stall), or
 * once it has taken `timeout` plus the time max_body needs at
 * STREAM_MIN_RATE (a trickle). 64 MiB at 64 KiB/s is about 17 minutes.
 */
#define STREAM_LOW_SPEED 1024L
#define STREAM_MIN_RATE ((size_t)64 << 10)

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
	char *ca_file;
	long timeout_ms;
	int offline;
	int reachable;
	int64_t last_activity;	/* wall ms, atomically updated */
	struct governor gov;
	pthread_mutex_t pool_lock;
	CURL **pool;		/* idle easy handles */
	size_t pool_len, pool_alloc;
};

static void sleep_ms(int64_t ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (ms > 0 && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void cond_wait_ms(struct governor *g, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&g->cond, &g->lock, &ts);
}

static void gov_init(struct governor *g, double cap, int max_inflight)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->cond, &ca);
	pthread_condattr_destroy(&ca);
	g->cap = cap;
	g->rate = cap > 0 ? cap : ADAPTIVE_START;
	g->burst = g->rate < 2 ? 1 : g->rate / 2;
	g->tokens = g->burst;
	g->refilled_ms = clock_mono_ms();
	g->max_inflight = max_inflight > 0 ? max_inflight : 4;
}

static void gov_refill(struct governor *g, int64_t now)
{
	g->tokens += (double)(now - g->refilled_ms) * g->rate / 1000.0;
	if (g->tokens > g->burst)
		g->tokens = g->burst;
	g->refilled_ms = now;
}

/* Waits for a token and a slot; -ETIMEDOUT if that would pass deadline. */
static int gov_acquire(struct governor *g, int64_t deadline)
{
	int r = 0;

	pthread_mutex_lock(&g->lock);
	for (;;) {
		int64_t now = clock_mono_ms(), wait;

		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		gov_refill(g, now);
		if (now < g->paused_until)
			wait = g->paused_until - now;
		else if (g->inflight >= g->max_inflight)
			wait = deadline - now;
		else if (g->tokens < 1.0)
			wait = (int64_t)((1.0 - g->tokens) * 1000.0 / g->rate) + 1;
		else
			break;
		if (now + wait > deadline && now < g->paused_until) {
			r = -ETIMEDOUT;
			break;
		}
		cond_wait_ms(g, wait < deadline - now ? wait : deadline - now);
	}
	if (!r) {
		g->tokens -= 1.0;
		g->inflight++;
	}
	pthread_mutex_unlock(&g->lock);
	return r;
}

/* Returns the slot; retry_after_s < 0 means the header was absent. */
static void gov_release(struct governor *g, long status, long retry_after_s)
{
	pthread_mutex_lock(&g->lock);
	g->inflight--;
	if (status == 429) {
		int64_t pause;

		g->total_429++;
		g->consecutive_429++;
		if (retry_after_s >= 0) {
			if (retry_after_s > RETRY_AFTER_CAP_S)
				retry_after_s = RETRY_AFTER_CAP_S;
			pause = retry_after_s * 1000;
		} else {
			unsigned n = g->consecutive_429 < 6 ? g->consecutive_429 : 6;

			pause = (int64_t)BACKOFF_BASE_MS << n;
			if (pause > BACKOFF_CAP_MS)
				pause = BACKOFF_CAP_MS;
		}
		if (clock_mono_ms() + pause > g->paused_until)
			g->paused_until = clock_mono_ms() + pause;
		if (g->rate > ADAPTIVE_MIN)
			g->rate = g->rate / 2 > ADAPTIVE_MIN ? g->rate / 2
							     : ADAPTIVE_MIN;
		g->burst = g->rate < 2 ? 1 : g->rate / 2;
		g->tokens = 0;
	} else if (status > 0) {
		double top = g->cap > 0 ? g->cap : ADAPTIVE_MAX;

		g->consecutive_429 = 0;
		if (g->rate < top) {
			g->rate += 0.5;
			if (g->rate > top)
				g->rate = top;
			g->burst = g->rate < 2 ? 1 : g->rate / 2;
		}
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

int http_governor_render(struct http *h, struct buf *out)
{
	struct governor *g = &h->gov;
	int64_t now = clock_mono_ms();
	int r;

	pthread_mutex_lock(&g->lock);
	r = buf_printf(out,
		       "rate_limit: %.1f req/s (%s), %d in flight, %ld "
		       "throttled (429) answers%s",
		       g->rate, g->cap > 0 ? "capped" : "adaptive",
		       g->inflight, g->total_429,
		       now < g->paused_until ? ", paused by 429" : "");
	if (!r && now < g->paused_until)
		r = buf_printf(out, " for %lld ms",
			       (long long)(g->paused_until - now));
	r = r ? r : buf_addc(out, '\n');
	pthread_mutex_unlock(&g->lock);
	return r;
}

/*
 * scheme://host[:port] of a URL as curl reads it: what error messages name,
 * without any user info or path. A copy of the URL if curl cannot parse it.
 */
static char *url_origin(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
			port = NULL;
		if (asprintf(&out, "%s://%s%s%s", scheme, host, port ? ":" : "",
			     port ? port : "") < 0)
			out = NULL;
	} else {
		out = strdup(url);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

void http_opts_from_config(struct http_opts *o, const struct config *cfg,
			   const struct http_auth *auth)
{
	memset(o, 0, sizeof(*o));
	o->base_url = cfg->api_url;
	o->auth = auth;
	o->ca_file = cfg->ca_file;
	o->timeout = cfg->timeout;
	o->rate = cfg->rate;
	o->max_inflight = (int)cfg->conns;
	o->offline = cfg->offline;
}

struct http *http_new(const struct http_opts *o)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h)
		goto fail;
	h->base_url = strdup(o->base_url);
	h->origin = url_origin(o->base_url);
	h->ca_file = o->ca_file ? strdup(o->ca_file) : NULL;
	h->auth = o->auth;
	h->token = strdup(o->token && !o->auth ? o->token : "");
	if (!h->base_url || !h->origin || !h->token ||
	    (o->ca_file && !h->ca_file))
		goto fail;
	h->timeout_ms = (o->timeout > 0 ? o->timeout : 30) * 1000;
	h->offline = o->offline;
	h->reachable = 1;
	gov_init(&h->gov, o->rate, o->max_inflight);
	pthread_mutex_init(&h->pool_lock, NULL);
	return h;
fail:
	http_free(h);
	errno = ENOMEM;
	return NULL;
}

void http_free(struct http *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->pool_len; i++)
		curl_easy_cleanup(h->pool[i]);
	free(h->pool);
	/* Scrub the token before the memory goes back to malloc. */
	secret_free(h->token);
	free(h->base_url);
	free(h->origin);
	free(h->ca_file);
	free(h);
}

void http_set_offline(struct http *h, int offline)
{
	__atomic_store_n(&h->offline, offline, __ATOMIC_RELAXED);
}

int http_offline(const struct http *h)
{
	return __atomic_load_n(&h->offline, __ATOMIC_RELAXED);
}

int64_t http_last_activity(const struct http *h)
{
	return __atomic_load_n(&h->last_activity, __ATOMIC_RELAXED);
}

int http_reachable(const struct http *h)
{
	return __atomic_load_n(&h->reachable, __ATOMIC_RELAXED);
}

static CURL *pool_get(struct http *h)
{
	CURL *c = NULL;

	pthread_mutex_lock(&h->pool_lock);
	if (h->pool_len)
		c = h->pool[--h->pool_len];
	pthread_mutex_unlock(&h->pool_lock);
	return c ? c : curl_easy_init();
}

static void pool_put(struct http *h, CURL *c)
{
	pthread_mutex_lock(&h->pool_lock);
	if (h->pool_len == h->pool_alloc) {
		size_t n = h->pool_alloc ? h->pool_alloc * 2 : 8;
		CURL **p = realloc(h->pool, n * sizeof(*p));

		if (!p) {
			pthread_mutex_unlock(&h->pool_lock);
			curl_easy_cleanup(c);
			return;
		}
		h->pool = p;
		h->pool_alloc = n;
	}
	h->pool[h->pool_len++] = c;
	pthread_mutex_unlock(&h->pool_lock);
}

int http_errno(long status)
{
	switch (status) {
	case 0:
		return -EIO;
	case 400:
	case 422:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
	case 410:
		return -ENOENT;
	case 409:
		return -EEXIST;
	case 413:
		return -EFBIG;
	case 429:
		return -EAGAIN;
	default:
		if (status >= 200 && status < 300)
			return 0;
		/* A redirect is not followed: the answer is not the API's. */
		if (status >= 500 || (status >= 300 && status < 400))
			return -EIO;
		return -EINVAL;
	}
}

int http_transient(long status)
{
	return status == 0 || status == 408 || status == 429 || status >= 500;
}

/* Per-attempt state shared with curl's callbacks. */
struct attempt {
	struct buf *body;
	const struct http_request *rq;	/* its sink, if any */
	CURL *curl;
	size_t sunk;		/* bytes given to the sink */
	int sink_err;		/* the sink's -errno */
	int too_big;
	long retry_after;	/* seconds, -1 when absent */
	/* A 3xx answer's Location (curl's string, valid until the handle is
	 * used again), shown without its query; NULL when absent. */
	const char *location;
	int location_len;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	long status = 0;

	if (a->rq && a->rq->sink) {
		curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
		/* Only a success's body is the object's bytes. */
		if (status >= 200 && status < 300) {
			int r;

			if (size * n > a->body->limit - a->sunk) {
				a->too_big = 1;
				return 0;
			}
			a->sunk += size * n;
			r = a->rq->sink(a->rq->sink_ctx, data, size * n);
			if (r) {
				a->sink_err = r;
				return 0;
			}
			return size * n;
		}
	}
	if (buf_add(a->body, data, size * n)) {
		a->too_big = 1;
		return 0;
	}
	return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) - 1 && !strncasecmp(data, name, sizeof(name) - 1)) {
		const char *v = data + sizeof(name) - 1;
		char *end;
		long s;

		while (*v == ' ' || *v == '\t')
			v++;
		s = strtol(v, &end, 10);
		/* HTTP-dates are rare here; treat them as "absent". */
		if (end != v && s >= 0)
			a->retry_after = s;
	}
	return len;
}

/* How many endpoint names .driftfs/stats counts apart; the rest: "other". */
#define MAX_ENDPOINTS 64

/* The endpoint names seen so far (see stats_endpoint()). */
static pthread_mutex_t endpoints_lock = PTHREAD_MUTEX_INITIALIZER;
static char endpoints[MAX_ENDPOINTS][160];
static size_t n_endpoints;

/*
 * How a path segment shows in an endpoint name: numbers (and n_n, n.n) as
 * {id}; a word of the API's own vocabulary (lowercase ASCII letters,
 * digits and '_', at most 32 bytes: "list", "token_info", "oauth2") as it
 * is; anything else (an account id, a tag, whatever a next link names) as
 * {name}, so that no API value becomes a stats name byte for byte.
 */
static const char *segment_class(const char *seg, size_t n)
{
	int letters = 0, dot = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (c >= 'a' && c <= 'z')
			letters = 1;
		else if (c == '.')
			dot = 1;
		else if (!isdigit(c) && c != '_')
			return "{name}";
	}
	if (!letters)
		return "{id}";
	return dot || n > 32 ? "{name}" : NULL;
}

/* The endpoint name for stats: the path with ids replaced by {id}. */
static void endpoint_name(const char *method, const char *path, char *out,
			  size_t size)
{
	size_t o = (size_t)snprintf(out, size, "%s ", method);
	const char *p = path;

	while (*p && *p != '?' && o + 8 < size) {
		const char *seg = p + 1, *end = seg + strcspn(seg, "/?");
		const char *cls = end > seg ? segment_class(seg, end - seg)
					    : NULL;

		if (cls) {
			o += (size_t)snprintf(out + o, size - o, "/%s", cls);
		} else {
			size_t n = (size_t)(end - p);

			if (o + n >= size)
				n = size - o - 1;
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	out[o < size ? o : size - 1] = '\0';
}

/*
 * Bounds the endpoint names .driftfs/stats keeps apart: the first
 * MAX_ENDPOINTS distinct ones are themselves, any later one is "other",
 * since a counter is never freed and paths can come from the API (next
 * links). Far more than the API's own endpoints.
 */
static void stats_endpoint(char *name, size_t size)
{
	size_t i;

	pthread_mutex_lock(&endpoints_lock);
	for (i = 0; i < n_endpoints; i++)
		if (!strcmp(endpoints[i], name))
			break;
	if (i == n_endpoints && n_endpoints < MAX_ENDPOINTS)
		snprintf(endpoints[n_endpoints++], sizeof(endpoints[0]), "%s",
			 name);
	else if (i == n_endpoints)
		snprintf(name, size, "other");
	pthread_mutex_unlock(&endpoints_lock);
}

/*
 * Appends the API's own message from an error body, if it has one: the
 * JSON error's type and message, else the body as it is. Whole, so that
 * the token is redacted before anything is cut (set_message()).
 */
static int error_message(const struct buf *body, struct buf *out)
{
	cJSON *v, *e;
	const char *msg = NULL, *type = NULL;
	int r = 0;

	if (!body->len)
		return 0;
	v = json_parse(body->data, body->len);
	if (!v)
		return buf_add(out, body->data, body->len);
	e = cJSON_GetObjectItemCaseSensitive(v, "error");
	if (cJSON_IsObject(e)) {
		msg = json_get_str(e, "message");
		type = json_get_str(e, "type");
	} else if (cJSON_IsString(e)) {
		msg = e->valuestring;
	} else {
		e = cJSON_GetObjectItemCaseSensitive(v, "errors");
		if (cJSON_IsArray(e) && cJSON_GetArraySize(e) > 0) {
			msg = json_get_str(cJSON_GetArrayItem(e, 0), "message");
			type = json_get_str(cJSON_GetArrayItem(e, 0), "type");
		} else {
			msg = json_get_str(v, "message");
		}
	}
	if (msg)
		r = buf_printf(out, "%s%s%s", type ? type : "",
			       type ? ": " : "", msg);
	cJSON_Delete(v);
	return r;
}

/* The longest one attempt at a streamed body of at most max_body bytes
 * may take (see STREAM_MIN_RATE). */
static long stream_cap_ms(const struct http *h, size_t max_body)
{
	return h->timeout_ms + (long)(max_body / STREAM_MIN_RATE) * 1000;
}

static int perform_once(struct http *h, CURL *c, const char *method,
			const char *url, struct curl_slist *hdrs,
			const void *body, size_t body_len,
			struct attempt *a, long *status, char *curl_err)
{
	long t = a->rq->timeout_ms > 0 ? a->rq->timeout_ms : h->timeout_ms;
	CURLcode rc;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	/* Redirects are never followed, so the Authorization header cannot
	 * go to another host (and were they followed, curl would drop it on
	 * a change of host, since UNRESTRICTED_AUTH stays off). */
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (a->rq && a->rq->sink) {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
				 stream_cap_ms(h, a->body->limit));
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, STREAM_LOW_SPEED);
		curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
				 t >= 2000 ? t / 1000 : 1L);
		/* Refused from its Content-Length, before a byte is sunk. */
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
				 (curl_off_t)a->body->limit);
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
	}
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t < 10000 ? t : 10000L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "driftfs/" DRIFTFS_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	/* Verification is never turned off; ca_file only says whom to
	 * trust. */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body_len);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	}
	curl_err[0] = '\0';
	rc = curl_easy_perform(c);
	*status = 0;
	if (rc == CURLE_OK) {
		char *loc = NULL;

		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
		a->location = NULL;
		if (*status >= 300 && *status < 400 &&
		    !curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) && loc) {
			a->location = loc;
			a->location_len = (int)strcspn(loc, "?#");
		}
		return 0;
	}
	/* The same refusal as on_body's, only sooner: not worth a retry. */
	if (rc == CURLE_FILESIZE_EXCEEDED)
		a->too_big = 1;
	if (!curl_err[0])
		snprintf(curl_err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	return (int)rc;
}

/*
 * Whether a curl error says the server's certificate was not accepted.
 * Retrying cannot help, and the user must be told plainly.
 */
static int tls_refused(int rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return 1;
	default:
		return 0;
	}
}

/*
 * Replaces every copy of secret in the len bytes of s with "***" and
 * returns the new length (NUL bytes in s are no hiding place).
 */
static size_t redact(char *s, size_t len, const char *secret)
{
	size_t n = strlen(secret), at = 0;
	char *p;

	if (n < 4)
		return len;
	while ((p = memmem(s + at, len - at, secret, n))) {
		size_t i = (size_t)(p - s);

		memcpy(p, "***", 3);
		memmove(p + 3, p + n, len - i - n);
		len -= n - 3;
		at = i + 3;
	}
	s[len] = '\0';
	return len;
}

/*
 * Redacts secret from the len bytes of s as it is and as a form body or a
 * query carries it, percent-encoded like api_query_escape() does (an error
 * page that echoes the request shows it so). Returns the new length.
 */
static size_t redact_forms(char *s, size_t len, const char *secret)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf enc = BUF_INIT;
	int r = 0;

	len = redact(s, len, secret);
	for (const unsigned char *p = (const unsigned char *)secret; *p && !r;
	     p++) {
		if (isalnum(*p) || strchr("-._~", *p)) {
			r = buf_addc(&enc, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			r = buf_add(&enc, e, 3);
		}
	}
	if (!r && enc.data && strcmp(enc.data, secret))
		len = redact(s, len, enc.data);
	secret_scrub(enc.data, enc.len);
	buf_release(&enc);
	return len;
}

/* The secrets one message must not show (see set_message()). */
struct secrets {
	const char *token;		/* the token this attempt sent */
	const char *refused;		/* one a 401 refused, or NULL */
	const char *const *extra;	/* the request's own (http.h) */
};

static size_t redact_secrets(char *s, size_t len, const struct secrets *sec)
{
	if (sec->token)
		len = redact(s, len, sec->token);
	if (sec->refused)
		len = redact(s, len, sec->refused);
	for (const char *const *e = sec->extra; e && *e; e++)
		len = redact_forms(s, len, *e);
	return len;
}

/*
 * Sets resp->message from the whole text of why (consumed): the secrets
 * are redacted from all of it, the sanitiser (text.h) makes it one line
 * with no escape sequence, and only then is it cut to fit, at a character
 * boundary. Cut first, a token straddling the cut would keep its head.
 * The redaction runs again after cleaning, since dropping a control byte
 * can join a token that one split ("tok\x01en").
 */
static void set_message(struct http_response *resp, struct buf *why,
			const struct secrets *sec)
{
	resp->message[0] = '\0';
	if (!why->data)
		return;
	why->len = redact_secrets(why->data, why->len, sec);
	why->len = text_clean(why->data, why->len + 1, why->data, why->len, 0);
	why->len = redact_secrets(why->data, why->len, sec);
	text_clean(resp->message, sizeof(resp->message), why->data, why->len,
		   0);
	buf_release(why);
}

static int64_t backoff_ms(int attempt)
{
	int64_t ms = (int64_t)BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);

	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Jitter, so retrying threads do not move in lockstep. */
	return ms / 2 + rand() % (ms / 2 + 1);
}

/* Whether header line hdr is named name (case-insensitively). */
static int header_named(const char *hdr, const char *name)
{
	size_t n = strlen(name);

	return !strncasecmp(hdr, name, n) && hdr[n] == ':';
}

/* Whether one of the caller's extra lines is named name. */
static int extra_has(const char *const *extra, const char *name)
{
	for (; extra && *extra; extra++)
		if (header_named(*extra, name))
			return 1;
	return 0;
}

/* Builds the header lines every attempt shares (all but Authorization). */
static int base_headers(const struct http_request *rq,
			struct curl_slist **out)
{
	struct curl_slist *l = NULL, *t;
	char ct[160];

	*out = NULL;
	for (const char *const *e = rq->headers; e && *e; e++)
		if (header_named(*e, "Authorization") || strpbrk(*e, "\r\n") ||
		    !strchr(*e, ':'))
			return -EINVAL;
	if (!extra_has(rq->headers, "Accept")) {
		l = curl_slist_append(l, "Accept: application/json");
		if (!l)
			return -ENOMEM;
	}
	t = curl_slist_append(l, "Expect:");
	if (!t)
		goto nomem;
	l = t;
	if (rq->body && !extra_has(rq->headers, "Content-Type")) {
		snprintf(ct, sizeof(ct), "Content-Type: %s",
			 rq->ctype ? rq->ctype : "application/json");
		t = curl_slist_append(l, ct);
		if (!t)
			goto nomem;
		l = t;
	}
	for (const char *const *e = rq->headers; e && *e; e++) {
		t = curl_slist_append(l, *e);
		if (!t)
			goto nomem;
		l = t;
	}
	*out = l;
	return 0;
nomem:
	curl_slist_free_all(l);
	return -ENOMEM;
}

/*
 * The "Authorization: Bearer ..." line for one attempt (caller scrubs and
 * frees), from the token source or the fixed token. *gen names the token.
 */
static int auth_line(struct http *h, char **line, unsigned long *gen)
{
	char *tok = NULL;
	int r = 0;

	*line = NULL;
	*gen = 0;
	if (h->auth) {
		r = h->auth->token(h->auth->ctx, h, &tok, gen);
		if (r)
			return r;
	}
	if (asprintf(line, "Authorization: Bearer %s", tok ? tok : h->token) <
	    0) {
		*line = NULL;
		r = -ENOMEM;
	}
	secret_free(tok);
	return r;
}

int http_request(struct http *h, const struct http_request *rq,
		 struct http_response *resp)
{
	const char *method = rq->method, *path = rq->path;
	char *url = NULL, *authl = NULL, *refused = NULL, endpoint[160];
	char stat[200], curl_err[CURL_ERROR_SIZE];
	struct secrets sec = { .extra = rq->secrets };
	struct curl_slist *hdrs = NULL;
	int idempotent = !strcmp(method, "GET") || !strcmp(method, "HEAD") ||
			 !strcmp(method, "PUT") || !strcmp(method, "DELETE") ||
			 (rq->flags & HTTP_IDEMPOTENT);
	int max_attempts = (rq->flags & HTTP_NO_RETRY) || !idempotent
				   ? 1
				   : MAX_ATTEMPTS;
	int reauth = h->auth && !(rq->flags & HTTP_NO_AUTH);
	long per_try = rq->timeout_ms > 0 ? rq->timeout_ms : h->timeout_ms;
	size_t max_body = rq->max_body ? rq->max_body : DEFAULT_MAX_BODY;
	/* A streamed body gets the time one slow whole transfer takes on
	 * top, so that a retry after a long attempt can still start. */
	int64_t deadline = clock_mono_ms() + per_try * 3 +
			   (rq->sink ? stream_cap_ms(h, max_body) - per_try : 0);
	CURL *c = NULL;
	int r = -EIO;

	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, max_body);
	endpoint_name(method, path, endpoint, sizeof(endpoint));
	stats_endpoint(endpoint, sizeof(endpoint));

	if (http_offline(h)) {
		log_error_event("%s %s: offline mode: not sent", method, path);
		return -EIO;
	}
	if (asprintf(&url, "%s%s", h->base_url, path) < 0) {
		url = NULL;
		r = -ENOMEM;
		goto out;
	}
	r = base_headers(rq, &hdrs);
	if (r)
		goto out;
	c = pool_get(h);
	if (!c) {
		r = -ENOMEM;
		goto out;
	}

	for (int attempt = 0; attempt < max_attempts; attempt++) {
		struct attempt a = { .body = &resp->body, .rq = rq, .curl = c,
				     .retry_after = -1 };
		struct buf why = BUF_INIT;	/* the failure, whole */
		/* The Authorization line goes first, in a node of our own, so
		 * the shared list never holds the token. */
		struct curl_slist auth_node = { NULL, hdrs };
		unsigned long gen = 0;
		long status = 0;
		int rc;

		buf_reset(&resp->body);
		resp->message[0] = '\0';
		if (rq->sink) {
			r = rq->sink(rq->sink_ctx, NULL, 0);
			if (r)
				break;
		}
		secret_free(authl);
		authl = NULL;
		sec.token = NULL;
		if (!(rq->flags & HTTP_NO_AUTH)) {
			/* Before the governor: a refresh needs a slot too. */
			r = auth_line(h, &authl, &gen);
			if (r) {
				snprintf(resp->message, sizeof(resp->message),
					 "no usable access token");
				break;
			}
			auth_node.data = authl;
			sec.token = authl + strlen("Authorization: Bearer ");
		}
		r = gov_acquire(&h->gov, deadline);
		if (r) {
			snprintf(resp->message, sizeof(resp->message),
				 "deadline passed while rate limited");
			r = -EAGAIN;
			break;
		}
		resp->attempts++;
		rc = perform_once(h, c, method, url,
				  authl ? &auth_node : hdrs, rq->body,
				  rq->body_len, &a, &status, curl_err);
		gov_release(&h->gov, status, a.retry_after);
		__atomic_store_n(&h->reachable,
				 rc == 0 || a.too_big || a.sink_err,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&h->last_activity, clock_wall_ms(),
				 __ATOMIC_RELAXED);
		resp->status = status;
		snprintf(stat, sizeof(stat), "api %s %ld", endpoint, status);
		stats_add(stat, 1);
		if (attempt > 0)
			stats_add("api retries", 1);

		if (rc == 0 && status >= 200 && status < 300) {
			r = 0;
			break;
		}
		if (a.sink_err) {
			snprintf(resp->message, sizeof(resp->message),
				 "storing the answer: %s", strerror(-a.sink_err));
			r = a.sink_err;
			break;
		}
		if (a.too_big) {
			snprintf(resp->message, sizeof(resp->message),
				 "response larger than %zu bytes: refused",
				 resp->body.limit);
			resp->status = 0;
			r = -EFBIG;
			break;
		}
		if (tls_refused(rc)) {
			buf_printf(&why, "TLS certificate verification failed "
				   "for %s: %s", h->origin, curl_err);
			set_message(resp, &why, &sec);
			stats_add("api tls failures", 1);
			r = -EIO;
			break;
		}
		if (rc == CURLE_SSL_CONNECT_ERROR)
			buf_printf(&why, "TLS handshake with %s failed: %s",
				   h->origin, curl_err);
		else if (rc)
			buf_adds(&why, curl_err);
		else if (status >= 300 && status < 400 && a.location)
			buf_printf(&why, "redirect to %.*s not followed "
				   "(driftfs never follows redirects; check "
				   "api_url)",
				   a.location_len, a.location);
		else if (status >= 300 && status < 400)
			buf_adds(&why, "redirect to (no Location) not followed "
				 "(driftfs never follows redirects; check "
				 "api_url)");
		else
			error_message(&resp->body, &why);
		/* The API's own words could quote the token back. */
		set_message(resp, &why, &sec);
		r = http_errno(status);
		/* A refused token: the API did nothing, so even a POST may
		 * go again, once, with a fresh token. The next answer may
		 * still quote the refused one. */
		if (status == 401 && reauth) {
			int ar;

			reauth = 0;
			refused = sec.token ? strdup(sec.token) : NULL;
			sec.refused = refused;
			ar = h->auth->refused(h->auth->ctx, h, gen);
			if (!ar) {
				max_attempts++;
				continue;
			}
			/*
			 * The token endpoint failed for now (5xx, no answer):
			 * not a refusal of this call, which may go through
			 * once a token can be had. A queued write must stay.
			 */
			if (ar != -EACCES && ar != -EPERM) {
				snprintf(resp->message, sizeof(resp->message),
					 "the access token expired and could "
					 "not be refreshed for now");
				r = -EAGAIN;
			}
			break;
		}
		if (!http_transient(status) || attempt + 1 >= max_attempts)
			break;
		/* 429s already paused the governor for everyone. */
		if (status != 429) {
			int64_t wait = backoff_ms(attempt);

			if (clock_mono_ms() + wait >= deadline)
				break;
			sleep_ms(wait);
		}
	}
	if (r && resp->status)
		log_error_event("%s %s: HTTP %ld%s%s", method, path,
				resp->status, resp->message[0] ? ": " : "",
				resp->message);
	else if (r)
		log_error_event("%s %s: %s", method, path,
				resp->message[0] ? resp->message
						 : "no response");
out:
	if (c)
		pool_put(h, c);
	secret_free(authl);
	secret_free(refused);
	curl_slist_free_all(hdrs);
	free(url);
	return r;
}

int http_call(struct http *h, const char *method, const char *path,
	      const char *ctype, const void *body, size_t body_len,
	      size_t max_body, unsigned flags, struct http_response *resp)
{
	struct http_request rq = {
		.method = method,
		.path = path,
		.ctype = ctype,
		.body = body,
		.body_len = body_len,
		.max_body = max_body,
		.flags = flags,
	};

	return http_request(h, &rq, resp);
}

void http_response_release(struct http_response *resp)
{
	buf_release(&resp->body);
}
