// SPDX-License-Identifier: MIT
/* test_idset.c: unit tests of the sync's id set (sync_idset.c): what it
 * holds after adds and deletes always equals a plain array's answer, also
 * across growth and the backward shift of deletes in long probe runs. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/sync_int.h"
#include "unit.h"

#define N 5000

static void test_basics(void)
{
	struct idset s = { 0 };

	CHECK_EQ_INT(idset_has(&s, 7), 0);
	idset_del(&s, 7);	/* empty: harmless */
	CHECK_EQ_INT(idset_add(&s, 7), 1);
	CHECK_EQ_INT(idset_add(&s, 7), 0);
	CHECK_EQ_INT(idset_add(&s, 0), -EINVAL);
	CHECK_EQ_INT(idset_add(&s, -3), -EINVAL);
	CHECK_EQ_INT(idset_has(&s, 7), 1);
	CHECK_EQ_INT((int)s.n, 1);
	idset_del(&s, 7);
	CHECK_EQ_INT(idset_has(&s, 7), 0);
	CHECK_EQ_INT((int)s.n, 0);
	idset_release(&s);
	idset_release(&s);
}

/* Adds and deletes at random against a model (in[i]: id i+1 is in). */
static void test_model(void)
{
	static char in[N];
	struct idset s = { 0 };
	unsigned seed = 12;
	size_t n = 0;

	memset(in, 0, sizeof(in));
	for (int round = 0; round < 200000; round++) {
		int64_t id = (int64_t)(rand_r(&seed) % N) + 1;

		if (rand_r(&seed) % 3) {
			CHECK_EQ_INT(idset_add(&s, id), !in[id - 1]);
			n += !in[id - 1];
			in[id - 1] = 1;
		} else {
			idset_del(&s, id);
			n -= in[id - 1];
			in[id - 1] = 0;
		}
		if (round % 20000 == 0)
			for (int64_t j = 1; j <= N; j++)
				CHECK_EQ_INT(idset_has(&s, j), in[j - 1]);
	}
	CHECK_EQ_INT((int)s.n, (int)n);
	for (int64_t j = 1; j <= N; j++)
		CHECK_EQ_INT(idset_has(&s, j), in[j - 1]);
	/* A large set gives its memory back when emptied. */
	idset_clear(&s);
	CHECK_EQ_INT((int)s.n, 0);
	CHECK(s.v == NULL);
	CHECK_EQ_INT(idset_has(&s, 1), 0);
	CHECK_EQ_INT(idset_add(&s, 1), 1);
	idset_release(&s);
}

int main(void)
{
	UNIT_RUN(test_basics);
	UNIT_RUN(test_model);
	return unit_summary();
}
