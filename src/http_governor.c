// SPDX-License-Identifier: MIT
/*
 * http_governor.c: the rate governor every request passes before it is
 * sent (a token bucket, a cap on requests in flight, the pause after a 429)
 * and the backoff between retries. Not the retry decision itself: that is
 * http_request()'s, with http_transient().
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "http_int.h"

#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 8000
#define RETRY_AFTER_CAP_S 60
#define ADAPTIVE_START 20.0
#define ADAPTIVE_MAX 200.0
#define ADAPTIVE_MIN 0.5

void http_sleep_ms(int64_t ms)
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

void http_governor_init(struct governor *g, double cap, int max_inflight)
{
	pthread_condattr_t ca;

	/* Every field set here: a governor need not come from calloc. */
	memset(g, 0, sizeof(*g));
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
int http_governor_acquire(struct governor *g, int64_t deadline)
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
void http_governor_release(struct governor *g, long status,
			   long retry_after_s)
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

int64_t http_backoff_ms(int attempt)
{
	int64_t ms = (int64_t)BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);

	if (ms > BACKOFF_CAP_MS)
		ms = BACKOFF_CAP_MS;
	/* Jitter, so retrying threads do not move in lockstep. */
	return ms / 2 + rand() % (ms / 2 + 1);
}
