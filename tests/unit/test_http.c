// SPDX-License-Identifier: MIT
/* test_http.c: unit tests of the status to errno mapping and the client's
 * options (http.h). */
#include <errno.h>
#include <string.h>

#include "config.h"
#include "http.h"
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

int main(void)
{
	UNIT_RUN(test_errno);
	UNIT_RUN(test_errno_never_zero_on_failure);
	UNIT_RUN(test_transient);
	UNIT_RUN(test_opts_from_config);
	return unit_summary();
}
