// SPDX-License-Identifier: MIT
/*
 * test_stats_shape: GET /conversations/stats (drift-api.md V4, shape
 * unconfirmed) gives a total for the shapes we can make sense of, and
 * -ENODATA, never a crash or a wrong number, for any other: the first
 * sync's progress is only left without a total.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "api.h"
#include "unit.h"

struct row {
	const char *body;
	int err;
	int64_t total;
};

static const struct row rows[] = {
	/* The emulator's (and GOD25's guess). */
	{ "{\"conversationCount\":{\"OPEN\":3,\"CLOSED\":4,\"PENDING\":5}}", 0,
	  12 },
	{ "{\"data\":{\"conversationCount\":{\"OPEN\":7}}}", 0, 7 },
	{ "{\"conversationCount\":42}", 0, 42 },
	{ "{\"conversationCount\":\"42\"}", 0, 42 },
	/* Members of other kinds are skipped, not counted. */
	{ "{\"conversationCount\":{\"OPEN\":2,\"note\":\"x\",\"x\":null}}", 0,
	  2 },
	{ "{\"conversationCount\":{\"OPEN\":0}}", 0, 0 },
	/* Big exact integers stay exact, up to 2^40 (no account is larger;
	 * the time left divides by the total). */
	{ "{\"conversationCount\":{\"A\":1099511627775,\"B\":1}}", 0,
	  1099511627776LL },
	{ "{\"conversationCount\":{\"A\":1099511627776,\"B\":1}}",
	  -ENODATA, 0 },
	{ "{\"conversationCount\":9007199254740993}", -ENODATA, 0 },
	/* Nothing we know. */
	{ "{\"conversationCount\":{}}", -ENODATA, 0 },
	{ "{\"conversationCount\":{\"note\":\"x\"}}", -ENODATA, 0 },
	{ "{\"conversationCount\":-1}", -ENODATA, 0 },
	{ "{\"conversationCount\":{\"OPEN\":-1,\"CLOSED\":5}}", -ENODATA, 0 },
	{ "{\"conversationCount\":{\"A\":9223372036854775807,\"B\":1}}",
	  -ENODATA, 0 },
	{ "{\"conversationCount\":1.5}", -ENODATA, 0 },
	{ "{\"conversationCount\":[1,2]}", -ENODATA, 0 },
	{ "{\"data\":{\"conversations\":\"many\"}}", -ENODATA, 0 },
	{ "{\"data\":[]}", -ENODATA, 0 },
	{ "[]", -ENODATA, 0 },
	{ "null", -ENODATA, 0 },
	{ "", -ENODATA, 0 },
	{ "{\"conversationCount\":{\"OPEN\":3", -ENODATA, 0 },
	{ "<html>502</html>", -ENODATA, 0 },
};

static void test_shapes(void)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t total = -7;
		int err;

		unit_ctx = rows[i].body;
		err = api_parse_conversation_stats(rows[i].body,
						   strlen(rows[i].body),
						   &total);
		CHECK_EQ_INT(err, rows[i].err);
		CHECK_EQ_INT(total, rows[i].total);
	}
}

static void test_null_body(void)
{
	int64_t total = -7;

	CHECK_EQ_INT(api_parse_conversation_stats(NULL, 0, &total), -ENODATA);
	CHECK_EQ_INT(total, 0);
}

int main(void)
{
	UNIT_RUN(test_shapes);
	UNIT_RUN(test_null_body);
	return unit_summary();
}
