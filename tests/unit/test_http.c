// SPDX-License-Identifier: MIT
/* test_http.c: unit tests of the status to errno mapping, the client's
 * options (http.h) and the governor's pause after a 429 (http_int.h). */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "clock.h"
#include "config.h"
#include "http.h"
/* The governor is the client's own (no other module sees it): its pause is
 * checked here, white box, rather than by waiting it out on a mount. */
#include "../../src/http_int.h"
#include "unit.h"

static void test_errno(void)
{
	CHECK_EQ_INT(http_errno(200), 0);
	CHECK_EQ_INT(http_errno(201), 0);
	CHECK_EQ_INT(http_errno(204), 0);
	CHECK_EQ_INT(http_errno(404), -ENOENT);
	CHECK_EQ_INT(http_errno(401), -EACCES);
	CHECK_EQ_INT(http_errno(403), -EACCES);
	CHECK_EQ_INT(http_errno(400), -EINVAL);
	CHECK_EQ_INT(http_errno(422), -EINVAL);
	CHECK_EQ_INT(http_errno(409), -EEXIST);
	CHECK_EQ_INT(http_errno(429), -EAGAIN);
	CHECK_EQ_INT(http_errno(500), -EIO);
	CHECK_EQ_INT(http_errno(502), -EIO);
	CHECK_EQ_INT(http_errno(503), -EIO);
	CHECK_EQ_INT(http_errno(504), -EIO);
	/* No answer at all: the transport failed. */
	CHECK_EQ_INT(http_errno(0), -EIO);
}

/* Any status that is not a success maps to some error. */
static void test_errno_never_zero_on_failure(void)
{
	for (long s = 100; s < 600; s++) {
		if (s >= 200 && s < 300)
			continue;
		CHECK(http_errno(s) < 0);
	}
}

static void test_transient(void)
{
	CHECK(http_transient(0));
	CHECK(http_transient(429));
	CHECK(http_transient(500));
	CHECK(http_transient(502));
	CHECK(http_transient(503));
	CHECK(http_transient(504));
	CHECK(!http_transient(400));
	CHECK(!http_transient(401));
	CHECK(!http_transient(403));
	CHECK(!http_transient(404));
	CHECK(!http_transient(409));
	CHECK(!http_transient(422));
}

/* The client's options are the config's, field by field. */
static void test_opts_from_config(void)
{
	static const struct http_auth hooks;
	struct config cfg;
	struct http_opts o;

	REQUIRE(config_defaults(&cfg) == 0);
	REQUIRE(config_set(&cfg, "ca_file", "/etc/ca.pem") == 0);
	REQUIRE(config_set(&cfg, "timeout", "7") == 0);
	REQUIRE(config_set(&cfg, "rate", "2.5") == 0);
	REQUIRE(config_set(&cfg, "conns", "9") == 0);
	REQUIRE(config_set(&cfg, "offline", "yes") == 0);
	memset(&o, 0xa5, sizeof(o));
	http_opts_from_config(&o, &cfg, &hooks);
	CHECK(o.base_url == cfg.api_url);
	CHECK(o.ca_file == cfg.ca_file);
	CHECK(o.auth == &hooks);
	CHECK(o.token == NULL);
	CHECK_EQ_INT(o.timeout, 7);
	CHECK(o.rate == 2.5);
	CHECK_EQ_INT(o.max_inflight, 9);
	CHECK_EQ_INT(o.offline, 1);
	http_opts_from_config(&o, &cfg, NULL);
	CHECK(o.auth == NULL);
	config_release(&cfg);
}

/* How long from now no request may start, in ms. */
static int64_t pause_left(const struct governor *g)
{
	return g->paused_until - clock_mono_ms();
}

/* One answer on a slot: the slot taken first, as acquire() would. */
static void answer(struct governor *g, long status, long retry_after_s)
{
	g->inflight++;
	http_governor_release(g, status, retry_after_s);
}

/*
 * A 429 pauses every request: for its Retry-After (capped at 60 s), or
 * without one for 500 ms doubling with each 429 in a row, capped at 8 s;
 * any other answer ends the row. A shorter pause never cuts a longer one,
 * and the adaptive rate halves down to its floor of 0.5 requests/s.
 */
static void test_pause_after_429(void)
{
	static const int64_t want[] = { 500, 1000, 2000, 4000, 8000, 8000, 8000 };
	struct governor g;
	int64_t left;

	memset(&g, 0xa5, sizeof(g));	/* init must set every field */
	http_governor_init(&g, 0, 4);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		g.paused_until = 0;
		answer(&g, 429, -1);
		left = pause_left(&g);
		CHECK(left <= want[i] && left > want[i] - 200);
	}
	CHECK_EQ_INT(g.total_429, 7);
	CHECK(g.rate == 0.5);
	CHECK_EQ_INT(g.inflight, 0);

	answer(&g, 200, -1);		/* the row of 429s ends */
	CHECK_EQ_INT(g.consecutive_429, 0);
	CHECK(g.rate == 1.0);		/* additive increase */
	g.paused_until = 0;
	answer(&g, 429, -1);
	left = pause_left(&g);
	CHECK(left <= 500 && left > 300);

	g.paused_until = 0;
	answer(&g, 429, 1);
	left = pause_left(&g);
	CHECK(left <= 1000 && left > 800);
	g.paused_until = 0;
	answer(&g, 429, 3600);
	left = pause_left(&g);
	CHECK(left <= 60000 && left > 59800);
	answer(&g, 429, -1);		/* a short pause keeps the long one */
	CHECK(pause_left(&g) > 59000);
	CHECK_EQ_INT(g.total_429, 11);

	pthread_cond_destroy(&g.cond);
	pthread_mutex_destroy(&g.lock);
}

/* The debug request line shows a query's keys, never its values. */
static void test_path_for_log(void)
{
	static const char *const cases[][2] = {
		{ "/users/list", "/users/list" },
		{ "/contacts?email=ann%40example.com",
		  "/contacts?email=***" },
		{ "/contacts?email=a@b.c&limit=5", "/contacts?email=***&limit=***" },
		{ "/x?a=&b=1&flag&c=2", "/x?a=&b=***&flag&c=***" },
		{ "/x?q=a=b#frag&z=9", "/x?q=***" },
		{ "/x?k#frag=1", "/x?k" },
		{ "/x?", "/x?" },
		{ "/x?=secret", "/x?=***" },
	};
	char out[64], tiny[12];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unit_ctx = cases[i][0];
		CHECK_EQ_STR(http_path_for_log(cases[i][0], out, sizeof(out)),
			     cases[i][1]);
	}
	/* Cut to fit, and never a value's head. */
	unit_ctx = "cut";
	CHECK_EQ_STR(http_path_for_log("/c?email=a@b.c", tiny, sizeof(tiny)),
		     "/c?email=**");
	CHECK_EQ_STR(http_path_for_log("/contacts?e=x", tiny, sizeof(tiny)),
		     "/contacts?e");
	CHECK_EQ_STR(http_path_for_log("/x", tiny, 1), "");
}

int main(void)
{
	UNIT_RUN(test_errno);
	UNIT_RUN(test_path_for_log);
	UNIT_RUN(test_errno_never_zero_on_failure);
	UNIT_RUN(test_transient);
	UNIT_RUN(test_opts_from_config);
	UNIT_RUN(test_pause_after_429);
	return unit_summary();
}
