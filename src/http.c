// SPDX-License-Identifier: MIT
/*
 * http.c: the client (pooled libcurl easy handles, offline switch) and one
 * request with its attempts: headers, the token, deadlines, retries. The
 * governor is http_governor.c's, the errno and message of a failure
 * http_error.c's, the stats names http_endpoint.c's.
 */
#include "http.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "clock.h"
#include "config.h"
#include "http_int.h"
#include "log.h"
#include "secret.h"
#include "stats.h"

#define MAX_ATTEMPTS 5
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

/* Appends the file at path to *blob (a PEM bundle). 0 or -errno (EFBIG
 * past 16 MiB, EISDIR for a directory). */
static int blob_add_file(char **blob, size_t *len, const char *path)
{
	FILE *f = fopen(path, "re");
	char chunk[16384];
	size_t n;
	int r = 0;

	if (!f)
		return -errno;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		char *p;

		/* A CA bundle is a few hundred KiB; 16 MiB is not one. */
		if (*len + n + 2 > ((size_t)16 << 20)) {
			r = -EFBIG;
			break;
		}
		p = realloc(*blob, *len + n + 2);
		if (!p) {
			r = -ENOMEM;
			break;
		}
		*blob = p;
		memcpy(p + *len, chunk, n);
		*len += n;
	}
	if (!r && ferror(f))
		r = errno == EISDIR ? -EISDIR : -EIO;
	fclose(f);
	/* PEM blocks need a line break between two files. */
	if (!r && *len && (*blob)[*len - 1] != '\n')
		(*blob)[(*len)++] = '\n';
	return r;
}

/*
 * Sets the CAs http_ca_setup() chose on c (nothing without ca_file).
 * Returns curl's result: a libcurl whose TLS backend does not take
 * CAINFO_BLOB (GnuTLS builds before 8.x) says CURLE_NOT_BUILT_IN or
 * CURLE_UNKNOWN_OPTION.
 */
static CURLcode ca_apply(const struct http *h, CURL *c)
{
	CURLcode rc = CURLE_OK;

	if (h->ca_blob) {
		/* curl copies the struct; NOCOPY: the bytes stay ours, and
		 * outlive every handle (http_free()). */
		struct curl_blob b = { h->ca_blob, h->ca_blob_len,
				       CURL_BLOB_NOCOPY };

		rc = curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &b);
	} else if (h->ca_file) {
		rc = curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(c, CURLOPT_CAPATH, h->ca_path);
	}
	return rc;
}

/*
 * Whether this libcurl takes the CAs chosen: once, at start, so that a
 * ca_file it cannot use is one clear refusal, not a mount that trusts
 * only the default CAs. 0, -ENOMEM or -ENOTSUP after logging why.
 */
static int ca_probe(const struct http *h)
{
	CURL *c = curl_easy_init();
	CURLcode rc;

	if (!c)
		return -ENOMEM;
	rc = ca_apply(h, c);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	if (rc == CURLE_OUT_OF_MEMORY)
		return -ENOMEM;
	log_err("ca_file %s: this libcurl (%s) cannot use it: %s",
		h->ca_file, curl_version(), curl_easy_strerror(rc));
	return -ENOTSUP;
}

/*
 * Where the system's CAs are, so that ca_file adds to them instead of
 * replacing them: CURLOPT_CAINFO alone would replace libcurl's bundle
 * file. OpenSSL's variables win when set ($SSL_CERT_DIR, $SSL_CERT_FILE),
 * else libcurl's built-in CA path and bundle (/etc/ssl/certs and its
 * ca-certificates.crt on Debian). With a CA directory, it stays the
 * handles' CAPATH (looked up by hash, loaded only when needed); without
 * one, the bundle and ca_file are joined once into a blob. 0 or -errno.
 */
static int http_ca_setup(struct http *h)
{
	const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
	const char *dir = getenv("SSL_CERT_DIR");
	const char *file = getenv("SSL_CERT_FILE");
	struct stat st;
	int r;

	if (!h->ca_file)
		return 0;
	if (!dir || !*dir)
		dir = v->age >= CURLVERSION_SEVENTH ? v->capath : NULL;
	if (dir && !stat(dir, &st) && S_ISDIR(st.st_mode)) {
		h->ca_path = strdup(dir);
		return h->ca_path ? ca_probe(h) : -ENOMEM;
	}
	if (!file || !*file)
		file = v->age >= CURLVERSION_SEVENTH ? v->cainfo : NULL;
	if (file && blob_add_file(&h->ca_blob, &h->ca_blob_len, file) == -ENOMEM)
		return -ENOMEM;
	if (!h->ca_blob_len)
		log_warn("no system CA bundle found: only %s is trusted",
			 h->ca_file);
	r = blob_add_file(&h->ca_blob, &h->ca_blob_len, h->ca_file);
	if (r == -EFBIG)
		log_err("ca_file %s: larger than 16 MiB, so no CA bundle",
			h->ca_file);
	else if (r && r != -ENOMEM)
		log_err("ca_file %s: %s", h->ca_file, strerror(-r));
	return r ? r : ca_probe(h);
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
	{
		int r = http_ca_setup(h);

		if (r) {
			http_free(h);
			errno = -r;
			return NULL;
		}
	}
	h->timeout_ms = (o->timeout > 0 ? o->timeout : 30) * 1000;
	h->offline = o->offline;
	h->reachable = 1;
	http_governor_init(&h->gov, o->rate, o->max_inflight);
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
	free(h->ca_path);
	free(h->ca_blob);
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

long http_failing(const struct http *h)
{
	return __atomic_load_n(&h->failing, __ATOMIC_RELAXED);
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

/* The longest one attempt at a streamed body of at most max_body bytes
 * may take (see STREAM_MIN_RATE). */
static long stream_cap_ms(const struct http *h, size_t max_body)
{
	return h->timeout_ms + (long)(max_body / STREAM_MIN_RATE) * 1000;
}

/*
 * One attempt of a request on c. Returns curl's result, not an errno:
 * CURLE_OK when an answer arrived (its status in *status, whatever it is),
 * else the transfer's failure, described in curl_err.
 */
static CURLcode perform_once(struct http *h, CURL *c, const char *method,
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
	/*
	 * A write goes on a connection of its own: on a kept-alive one that
	 * the server closes without an answer, libcurl sends the request
	 * again by itself on a new connection (its retry of a "dead" reused
	 * connection), POSTs included, and the server may have carried out
	 * the first: a message posted twice, behind the outbox's back. A
	 * fresh connection is never retried so. It is closed after the
	 * write, or each write would leave one more idle connection (and
	 * descriptor) in the handle's cache.
	 */
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	}
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
	} else {
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, t);
	}
	/* Refused from its Content-Length, before a byte is stored or sunk:
	 * an answer past the cap was read up to the cap first, 32 MiB in
	 * the time of one call (and past the deadline on a slow link, which
	 * then said "timed out" instead of "too large"). Without a
	 * Content-Length the write callback still stops it at the cap. */
	if (a->body->limit)
		curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
				 (curl_off_t)a->body->limit);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, t < 10000 ? t : 10000L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "driftfs/" DRIFTFS_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
	/* Verification is never turned off; ca_file only adds whom to
	 * trust (http_ca_setup()). */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* ca_probe() took these at start; a refusal now is memory. Sent
	 * without them, the request would trust other CAs than asked. */
	rc = ca_apply(h, c);
	if (rc != CURLE_OK) {
		snprintf(curl_err, CURL_ERROR_SIZE, "CA setup: %s",
			 curl_easy_strerror(rc));
		return rc;
	}
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
		return CURLE_OK;
	}
	/* The same refusal as on_body's, only sooner: not worth a retry. */
	if (rc == CURLE_FILESIZE_EXCEEDED)
		a->too_big = 1;
	if (!curl_err[0])
		snprintf(curl_err, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	return rc;
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
	struct http_secrets sec = { .extra = rq->secrets };
	struct curl_slist *hdrs = NULL;
	int idempotent = !strcmp(method, "GET") || !strcmp(method, "HEAD") ||
			 !strcmp(method, "PUT") || !strcmp(method, "DELETE") ||
			 (rq->flags & HTTP_IDEMPOTENT);
	int max_attempts = (rq->flags & HTTP_NO_RETRY) || !idempotent
				   ? 1
				   : MAX_ATTEMPTS;
	int reauth = h->auth && !(rq->flags & HTTP_NO_AUTH);
	long per_try = rq->timeout_ms > 0 ? rq->timeout_ms : h->timeout_ms;
	size_t max_body = rq->max_body ? rq->max_body : HTTP_MAX_BODY;
	/* A streamed body gets the time one slow whole transfer takes on
	 * top, so that a retry after a long attempt can still start. */
	int64_t deadline = clock_mono_ms() + per_try * 3 +
			   (rq->sink ? stream_cap_ms(h, max_body) - per_try : 0);
	CURL *c = NULL;
	int r = -EIO;

	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, max_body);
	http_endpoint_name(method, path, endpoint, sizeof(endpoint));
	http_stats_endpoint(endpoint, sizeof(endpoint));

	if (http_offline(h)) {
		char shown[512];

		/* Query values (an email) stay out of the journal. */
		log_error_event("%s %s: offline mode: not sent", method,
				http_path_for_log(path, shown, sizeof(shown)));
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
		int64_t started;
		CURLcode rc;

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
		r = http_governor_acquire(&h->gov, deadline);
		if (r) {
			snprintf(resp->message, sizeof(resp->message),
				 "deadline passed while rate limited");
			r = -EAGAIN;
			break;
		}
		resp->attempts++;
		started = clock_mono_ms();
		rc = perform_once(h, c, method, url,
				  authl ? &auth_node : hdrs, rq->body,
				  rq->body_len, &a, &status, curl_err);
		/* The request line and its outcome, never a header: the
		 * token is in Authorization only. The query's values are the
		 * user's data (contacts?email=...): shown as "***", keys
		 * kept. curl's text goes through the redaction error
		 * messages get, as curl may quote what it was given. */
		{
			char line[1024], shown[512];
			int n;

			/* First alone: a cut of the whole line below must
			 * not keep a secret's head. */
			http_redact(curl_err, strlen(curl_err), &sec);
			if (rc == CURLE_OK)
				n = snprintf(line, sizeof(line),
					     "%s %s: HTTP %ld in %lld ms "
					     "(attempt %d)",
					     method,
					     http_path_for_log(path, shown,
							       sizeof(shown)),
					     status,
					     (long long)(clock_mono_ms() -
							 started),
					     attempt + 1);
			else
				n = snprintf(line, sizeof(line),
					     "%s %s: no answer after %lld ms "
					     "(attempt %d): %s",
					     method,
					     http_path_for_log(path, shown,
							       sizeof(shown)),
					     (long long)(clock_mono_ms() -
							 started),
					     attempt + 1, curl_err);
			if (n > 0) {
				size_t len = (size_t)n < sizeof(line)
						     ? (size_t)n
						     : sizeof(line) - 1;

				http_redact(line, len, &sec);
				log_debug("%s", line);
			}
		}
		http_governor_release(&h->gov, status, a.retry_after);
		__atomic_store_n(&h->reachable,
				 rc == CURLE_OK || a.too_big || a.sink_err,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&h->last_activity, clock_wall_ms(),
				 __ATOMIC_RELAXED);
		resp->status = status;
		snprintf(stat, sizeof(stat), "api %s %ld", endpoint, status);
		stats_add(stat, 1);
		if (attempt > 0)
			stats_add("api retries", 1);

		if (rc == CURLE_OK && status >= 200 && status < 300) {
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
		if (http_tls_refused(rc)) {
			buf_printf(&why, "TLS certificate verification failed "
				   "for %s: %s", h->origin, curl_err);
			http_set_message(resp, &why, &sec);
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
			http_error_message(&resp->body, &why);
		/* The API's own words could quote the token back. */
		http_set_message(resp, &why, &sec);
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
			int64_t wait = http_backoff_ms(attempt);

			if (clock_mono_ms() + wait >= deadline)
				break;
			http_sleep_ms(wait);
		}
	}
	/* The API failing (5xx, 429 after the retries) or answering again:
	 * .driftfs/status says which. No answer at all is reachable's. */
	if (resp->status >= 500 || resp->status == 429)
		__atomic_store_n(&h->failing, resp->status, __ATOMIC_RELAXED);
	else if (resp->status)
		__atomic_store_n(&h->failing, 0L, __ATOMIC_RELAXED);
	if (r && !((rq->flags & HTTP_REFUSAL_LOGGED) && r != -EAGAIN &&
		   resp->status >= 400 && !http_transient(resp->status))) {
		char shown[512];

		/* Query values (an email) stay out of the journal and
		 * .driftfs/errors, as in the debug line. */
		http_path_for_log(path, shown, sizeof(shown));
		if (resp->status)
			log_error_event("%s %s: HTTP %ld%s%s", method, shown,
					resp->status,
					resp->message[0] ? ": " : "",
					resp->message);
		else
			log_error_event("%s %s: %s", method, shown,
					resp->message[0] ? resp->message
							 : "no response");
	}
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
