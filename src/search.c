// SPDX-License-Identifier: MIT
/*
 * search.c: a search from the text a user typed to the lines of hits.txt
 * (include/search.h): the lenient query rewrite, the run against the
 * index (store_search.c), the authors named as transcripts name them, the
 * status lines, and the background build's thread.
 */
#include "search.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "render.h"
#include "store.h"
#include "text.h"

static void say(char *why, size_t whylen, const char *s)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", s);
}

/* A character FTS5 takes in a bareword (fts5 sqlite3Fts5IsBareword). */
static int bareword_char(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c == '_' || c == 0x1a;
}

/*
 * The characters of the token a prefix* stands for: the last run of
 * letters and digits of w (len bytes; unicode61 splits on the rest, so
 * "a/b*" is a prefix "b"), a UTF-8 sequence counting as one.
 */
static size_t prefix_chars(const char *w, size_t len)
{
	size_t n = 0;

	while (len > 0) {
		unsigned char c = (unsigned char)w[len - 1];

		if (!bareword_char(c) || c == '_' || c == 0x1a)
			break;
		if (c < 0x80 || c >= 0xc0)
			n++;	/* not a continuation byte */
		len--;
	}
	return n;
}

/* Whether the bareword w (n bytes) is one of FTS5's operators. */
static int operator_word(const char *w, size_t n)
{
	return (n == 2 && !memcmp(w, "OR", 2)) ||
	       (n == 3 && (!memcmp(w, "AND", 3) || !memcmp(w, "NOT", 3))) ||
	       (n == 4 && !memcmp(w, "NEAR", 4));
}

/* Ends a word of the query: what FTS5 reads as syntax between words. */
static int word_end(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' ||
	       c == '(' || c == ')' || c == ',' || c == '+' || c == 0;
}

int search_query_prepare(const char *text, struct buf *out, char *why,
			 size_t whylen)
{
	const char *p = text;
	size_t len = strlen(text);
	int r = 0, words = 0, prefixes = 0;

	if (len > SEARCH_QUERY_MAX) {
		say(why, whylen, "the query is too long");
		return -EINVAL;
	}
	/* Text only: the index's tokenizer gives bytes that are not UTF-8
	 * back as tokens it then reads otherwise (search_expr.h's relaxed
	 * query quotes the tokens; fuzz_search found it). */
	for (size_t i = 0; i < len;) {
		long cp;

		i += text_utf8_decode(text + i, len - i, &cp);
		if (cp < 0) {
			say(why, whylen, "the query is not valid UTF-8 text");
			return -EINVAL;
		}
	}
	while (*p && !r) {
		const char *w = p;
		size_t n, body;
		int bare = 1;

		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			r = buf_addc(out, ' ');
			p++;
			continue;
		}
		if (*p == '(' || *p == ')' || *p == ',' || *p == '+') {
			r = buf_addc(out, *p++);
			continue;
		}
		if (*p == '"') {
			/* A phrase as typed, to its closing quote ("" is
			 * a quote inside it); unterminated: FTS5 says so. */
			const char *q = p + 1;

			while (*q && !(q[0] == '"' && q[1] != '"'))
				q += q[0] == '"' ? 2 : 1;
			/* Each word of the phrase is a term. */
			for (const char *x = p + 1; x < q; x++)
				if (bareword_char((unsigned char)*x) &&
				    (x == p + 1 ||
				     !bareword_char((unsigned char)x[-1])))
					words++;
			if (*q)
				q++;
			/* "a phrase"*: its last word a prefix, counted
			 * with the bare ones; its length is checked on the
			 * token the index's tokenizer makes of it
			 * (store_search_query.c query_open). */
			if (*q == '*' && q - p >= 2 && q[-1] == '"') {
				if (++prefixes > SEARCH_MAX_PREFIXES) {
					snprintf(why, why ? whylen : 0,
						 "more than %d prefix* terms",
						 SEARCH_MAX_PREFIXES);
					return -EINVAL;
				}
				q++;
			}
			r = buf_add(out, p, (size_t)(q - p));
			p = q;
			continue;
		}
		if (*p == '^' && p[1] == '"') {
			r = buf_addc(out, *p++);	/* ^"a phrase" */
			continue;
		}
		while (!word_end((unsigned char)*p))
			p++;
		n = (size_t)(p - w);
		body = n;
		if (body > 1 && w[body - 1] == '*')
			body--;	/* prefix* */
		for (size_t i = w[0] == '^' && body > 1 ? 1 : 0; i < body; i++)
			if (!bareword_char((unsigned char)w[i]))
				bare = 0;
		if (!(bare && body == n && operator_word(w, n)))
			words++;
		if (body < n &&
		    (++prefixes > SEARCH_MAX_PREFIXES ||
		     prefix_chars(w, body) < SEARCH_PREFIX_MIN)) {
			if (prefixes > SEARCH_MAX_PREFIXES)
				snprintf(why, why ? whylen : 0,
					 "more than %d prefix* terms",
					 SEARCH_MAX_PREFIXES);
			else
				snprintf(why, why ? whylen : 0,
					 "a prefix needs %d characters or "
					 "more: %.*s", SEARCH_PREFIX_MIN,
					 (int)(n < 64 ? n : 64), w);
			return -EINVAL;
		}
		if (words > SEARCH_MAX_TERMS) {
			snprintf(why, why ? whylen : 0, "more than %d terms",
				 SEARCH_MAX_TERMS);
			return -EINVAL;
		}
		if (bare) {
			r = buf_add(out, w, n);
			continue;
		}
		/* An email, #1234, a/b: the phrase of its words; not run
		 * into a phrase typed right before it ("a b""x.y" would be
		 * one phrase to FTS5). */
		if (out->len && out->data[out->len - 1] == '"')
			r = buf_addc(out, ' ');
		r = r ? r : buf_addc(out, '"');
		for (size_t i = 0; i < body && !r; i++)
			r = w[i] == '"' ? buf_adds(out, "\"\"")
					: buf_addc(out, w[i]);
		r = r ? r : buf_addc(out, '"');
		if (!r && body < n)
			r = buf_addc(out, '*');
		/* Not run into a phrase typed right after it: "a.b""c d"
		 * would be one phrase to FTS5. */
		if (!r && *p == '"')
			r = buf_addc(out, ' ');
	}
	if (!r && words > SEARCH_MAX_TERMS) {
		snprintf(why, why ? whylen : 0, "more than %d terms",
			 SEARCH_MAX_TERMS);
		return -EINVAL;
	}
	if (!r && !words) {
		say(why, whylen, "the query is empty");
		return -EINVAL;
	}
	return r;
}

int search_has(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ids[mid] == id)
			return 1;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void search_result_release(struct search_result *res)
{
	if (!res)
		return;
	free(res->convs);
	free(res->contacts);
	for (size_t i = 0; i < res->nhits; i++) {
		free(res->hits[i].name);
		free(res->hits[i].snippet);
	}
	free(res->hits);
	memset(res, 0, sizeof(*res));
}

/* A hit's row, kept until the statement is done (names need the store). */
struct hit_rows {
	struct search_result *res;
	size_t alloc;
	char **json;		/* each hit's message JSON, NUL-terminated */
};

static int take_hit(void *ctx, int64_t msg, int64_t conv, int64_t created,
		    const char *json, size_t json_len, const char *snippet)
{
	struct hit_rows *h = ctx;
	struct search_result *res = h->res;
	struct search_hit *x;

	if (res->nhits == h->alloc) {
		size_t na = h->alloc ? h->alloc * 2 : 32;
		struct search_hit *p = realloc(res->hits, na * sizeof(*p));
		char **pj;

		if (!p)
			return -ENOMEM;
		res->hits = p;
		pj = realloc(h->json, na * sizeof(*pj));
		if (!pj)
			return -ENOMEM;
		h->json = pj;
		h->alloc = na;
	}
	x = &res->hits[res->nhits];
	memset(x, 0, sizeof(*x));
	x->conv = conv;
	x->msg = msg;
	x->created = created;
	x->snippet = strdup(snippet ? snippet : "");
	h->json[res->nhits] = malloc(json_len + 1);
	if (!x->snippet || !h->json[res->nhits]) {
		free(x->snippet);
		free(h->json[res->nhits]);
		return -ENOMEM;
	}
	memcpy(h->json[res->nhits], json ? json : "", json_len);
	h->json[res->nhits][json_len] = 0;
	res->nhits++;
	return 0;
}

/* The author of a message as transcript.txt names it (sync_author_of,
 * from the cache as it is: no fetch). */
static char *author_name(struct store *st, const char *json)
{
	cJSON *v = json_parse(json, strlen(json));
	const cJSON *a = v ? cJSON_GetObjectItemCaseSensitive(v, "author")
			   : NULL;
	const char *type = json_get_str(a, "type");
	struct store_row row;
	struct buf clean = BUF_INIT;
	int64_t id = 0;
	char name[RENDER_NAME_MAX];	/* cut where a transcript cuts it */

	if (json_get_i64(a, "id", &id))
		id = 0;
	if (type && !strcmp(type, "contact")) {
		if (!store_one(st, Q_CONTACT_NAME, id, NULL, &row) && row.name)
			snprintf(name, sizeof(name), "%s", row.name);
		else
			snprintf(name, sizeof(name), "Contact %lld",
				 (long long)id);
	} else if (!store_one(st, Q_USER_NAME, id, NULL, &row) && row.name) {
		snprintf(name, sizeof(name), "%s", row.name);
	} else {
		snprintf(name, sizeof(name), "User %lld", (long long)id);
	}
	cJSON_Delete(v);
	/* Cleaned as render_transcript_block cleans it. */
	if (text_clean_buf(&clean, name, strlen(name), 0)) {
		buf_release(&clean);
		return NULL;
	}
	return clean.data ? clean.data : strdup("");	/* the caller's */
}

int search_run(struct store *st, const char *text, unsigned what,
	       size_t limit, struct search_result *res, char *why,
	       size_t whylen)
{
	struct buf q = BUF_INIT;
	struct hit_rows h = { res, 0, NULL };
	int r;

	memset(res, 0, sizeof(*res));
	if (!limit || limit > SEARCH_MAX_HITS)
		limit = SEARCH_MAX_HITS;
	r = search_query_prepare(text, &q, why, whylen);
	if (!r && (what & SEARCH_CHECK))
		r = store_search_check(st, q.data, why, whylen);
	if (!r && (what & SEARCH_CONVS))
		r = store_search_convs(st, q.data, SEARCH_MAX_CONVS,
				       &res->convs, &res->nconvs, why,
				       whylen);
	if (!r && (what & SEARCH_CONTACTS))
		r = store_search_contacts(st, q.data, SEARCH_MAX_CONTACTS,
					  &res->contacts, &res->ncontacts,
					  why, whylen);
	if (!r && (what & SEARCH_HITS))
		r = store_search_hits(st, q.data, limit, take_hit, &h, why,
				      whylen);
	for (size_t i = 0; i < res->nhits; i++) {
		if (!r) {
			res->hits[i].name = author_name(st, h.json[i]);
			if (!res->hits[i].name)
				r = -ENOMEM;
		}
		free(h.json[i]);
	}
	free(h.json);
	buf_release(&q);
	if (r)
		search_result_release(res);
	return r;
}

int search_hits_text(const struct search_result *res, struct buf *out)
{
	int r = 0;

	for (size_t i = 0; i < res->nhits && !r; i++) {
		const struct search_hit *x = &res->hits[i];

		r = buf_printf(out, "conversations/%lld/messages/%lld.json\t[",
			       (long long)x->conv, (long long)x->msg);
		r = r ? r : render_time(x->created, out);
		r = r ? r : buf_printf(out, "] %s: %s\n", x->name, x->snippet);
	}
	return r;
}

/*
 * The build's last error (an errno; 0: none), for the status. Written by
 * the build thread, read by any: an atomic. One build a process.
 */
static int build_failing;

int search_status(struct store *st, struct buf *out)
{
	int64_t done, total, ib, tb;
	int ready, r;

	int failing = __atomic_load_n(&build_failing, __ATOMIC_ACQUIRE);

	r = store_search_progress(st, &done, &total, &ready, &ib, &tb);
	if (r)
		return buf_adds(out, "search_index: unknown\n");
	if (ready)
		r = buf_adds(out, "search_index: ready\n");
	else if (store_meta_i64(st, "search_rebuild") > 0)
		/* Found out of step by a process not alone with the cache;
		 * the index is emptied and built again by the next process
		 * that opens the cache alone (a mount, driftctl sync). */
		r = buf_adds(out, "search_index: rebuild pending (at the next "
				  "mount or driftctl sync alone with the "
				  "cache)\n");
	else if (failing)
		r = buf_printf(out, "search_index: failing: %s\n",
			       strerror(failing));
	else
		r = buf_printf(out, "search_index: building %lld/%lld messages\n",
			       (long long)done, (long long)total);
	return r ? r : buf_printf(out, "search_index_bytes: %lld\n"
				       "search_text_bytes: %lld\n",
				  (long long)ib, (long long)tb);
}

/* ---- The background build ---------------------------------------------- */

/* Rows a chunk indexes: a short hold of the write lock (tens of ms). */
#define BUILD_CHUNK 500
/* The pause between chunks, so waiting writers get the lock. */
#define BUILD_PAUSE_MS 20
/* After a failed chunk (a busy lock, a full disk): doubled after each
 * failure in a row, up to BUILD_RETRY_MAX_MS. */
#define BUILD_RETRY_MS 5000
#define BUILD_RETRY_MAX_MS 300000

/*
 * Rows a chunk takes: BUILD_CHUNK, or DRIFTFS_TEST_SEARCH_CHUNK (the
 * upgrade test makes the build slow enough to watch). Like
 * DRIFTFS_TEST_BUSY_MS it is read in every build: it only makes the
 * build take longer or shorter, never index anything else.
 */
static size_t build_chunk(void)
{
	const char *v = getenv("DRIFTFS_TEST_SEARCH_CHUNK");
	long n = v && *v ? strtol(v, NULL, 10) : 0;

	return n > 0 && n <= 100000 ? (size_t)n : BUILD_CHUNK;
}

struct search_build {
	struct store *st;
	pthread_t thread;
	pthread_mutex_t lock;	/* guards stop; a leaf */
	pthread_cond_t cond;
	int stop;
};

/* Waits ms, or until stopped: whether to stop. */
static int build_wait(struct search_build *b, long ms)
{
	struct timespec ts;
	int stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&b->lock);
	if (!b->stop)
		pthread_cond_timedwait(&b->cond, &b->lock, &ts);
	stop = b->stop;
	pthread_mutex_unlock(&b->lock);
	return stop;
}

static void *build_main(void *arg)
{
	struct search_build *b = arg;
	int64_t start = clock_mono_ms();
	size_t chunk = build_chunk();
	long retry = BUILD_RETRY_MS;
	int r;

	log_info("search: indexing the cache in the background");
	for (;;) {
		r = store_search_build_step(b->st, chunk);
		__atomic_store_n(&build_failing, r < 0 ? -r : 0,
				 __ATOMIC_RELEASE);
		if (r == 0) {
			log_info("search: index complete (%lld ms)",
				 (long long)(clock_mono_ms() - start));
			break;
		}
		if (r == -EACCES || r == -EROFS) {
			log_warn("search: cannot index the cache: %s",
				 strerror(-r));
			break;
		}
		if (r < 0)
			log_warn("search: indexing: %s; trying again in %ld s",
				 strerror(-r), retry / 1000);
		if (build_wait(b, r < 0 ? retry : BUILD_PAUSE_MS))
			break;
		if (r < 0)
			retry = retry * 2 < BUILD_RETRY_MAX_MS
					? retry * 2
					: BUILD_RETRY_MAX_MS;
		else
			retry = BUILD_RETRY_MS;
	}
	return NULL;
}

struct search_build *search_build_start(struct store *st)
{
	struct search_build *b;
	int64_t done, total, ib, tb;
	int ready, r;

	if (store_search_progress(st, &done, &total, &ready, &ib, &tb) ||
	    ready)
		return NULL;
	b = calloc(1, sizeof(*b));
	if (!b) {
		log_err("search: cannot start the index build: %s",
			strerror(ENOMEM));
		return NULL;
	}
	b->st = st;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	r = pthread_create(&b->thread, NULL, build_main, b);
	if (r) {
		log_err("search: cannot start the index build: %s",
			strerror(r));
		pthread_mutex_destroy(&b->lock);
		pthread_cond_destroy(&b->cond);
		free(b);
		return NULL;
	}
	return b;
}

void search_build_stop(struct search_build *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}
