// SPDX-License-Identifier: MIT
/* test_fetch_order.c: unit tests of the fetches in flight (sync.c,
 * sync_fetch_begin and after): a fetch whose window holds another fetch's
 * store of the same object is told it was overtaken, one of another
 * object or kind never is, a new window forgets older stores, a lookup's
 * entry sees every contact stored while it lives, and entries go with
 * their last ticket. The store transactions around the checks are the
 * callers' (tests/mount/test_fetch_order.py runs them on a mount). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/sync_int.h"
#include "unit.h"

static size_t entries(const struct sync *s)
{
	size_t n = 0;

	for (const struct fetch_entry *e = s->fetches; e; e = e->next)
		n++;
	return n;
}

/* A asks first, B asks later and stores first: A must not store. */
static void test_overlap(void)
{
	struct sync *s = sync_new(NULL, NULL, NULL);
	struct fetch_ticket a, b;

	REQUIRE(s);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONVERSATION, 7, &a), 0);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONVERSATION, 7, &b), 0);
	CHECK_EQ_INT((int)entries(s), 1);	/* shared by the two */
	CHECK_EQ_INT(sync_fetch_overtaken(s, &b, 7), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &a, 7), 1);
	/* Its next try's window starts after B's store: it may store. */
	sync_fetch_window(s, &a);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &a, 7), 0);
	/* B's next try (a write overtook it, say) sees A's store. */
	CHECK_EQ_INT(sync_fetch_overtaken(s, &b, 7), 1);
	sync_fetch_end(s, &a);
	CHECK(a.e == NULL);
	CHECK_EQ_INT((int)entries(s), 1);
	sync_fetch_end(s, &b);
	CHECK_EQ_INT((int)entries(s), 0);
	sync_fetch_end(s, &b);	/* ended: a no-op */
	sync_free(s);
}

/* Windows that do not hold the other's store, and other objects. */
static void test_no_overlap(void)
{
	struct sync *s = sync_new(NULL, NULL, NULL);
	struct fetch_ticket a, b, c, d, e, f;

	REQUIRE(s);
	/* A stores and ends before B begins. */
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 5, &a), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &a, 5), 0);
	sync_fetch_end(s, &a);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 5, &b), 0);
	/* Same id, other kinds; same kind, other id. */
	CHECK_EQ_INT(sync_fetch_begin(s, SO_USER, 5, &c), 0);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 6, &d), 0);
	CHECK_EQ_INT((int)entries(s), 3);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &c, 5), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &d, 6), 0);
	/* A conversation 5 stored is no contact 5. */
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONVERSATION, 5, &e), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &e, 5), 0);
	sync_fetch_end(s, &e);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &b, 5), 0);
	/* A store by a lookup's entry (the users list) overtakes it. */
	sync_fetch_window(s, &c);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_USER, 0, &f), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &f, 5), 0);
	sync_fetch_end(s, &f);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &c, 5), 1);
	sync_fetch_end(s, &b);
	sync_fetch_end(s, &c);
	sync_fetch_end(s, &d);
	CHECK_EQ_INT((int)entries(s), 0);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_USER, -1, &a), -EINVAL);
	CHECK(a.e == NULL);
	sync_free(s);
}

/* A lookup (id 0) against keyed fetches of the contacts it answers. */
static void test_lookup(void)
{
	struct sync *s = sync_new(NULL, NULL, NULL);
	struct fetch_ticket l, m, k, u;

	REQUIRE(s);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 0, &l), 0);
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 0, &m), 0);
	CHECK_EQ_INT((int)entries(s), 2);	/* each its own */
	CHECK_EQ_INT(sync_fetch_begin(s, SO_CONTACT, 9, &k), 0);
	/* A keyed fetch of 9 stores: the lookups must not store 9. */
	CHECK_EQ_INT(sync_fetch_overtaken(s, &k, 9), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &l, 9), 1);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &l, 10), 0);
	/* l stored 10: m sees it, l itself does not count it twice. */
	CHECK_EQ_INT(sync_fetch_overtaken(s, &m, 10), 1);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &l, 10), 0);
	/* m stores 11, which k's next try of 9 does not care about, but a
	 * store of 9 by m does overtake k. */
	sync_fetch_window(s, &k);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &m, 11), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &k, 9), 0);
	sync_fetch_window(s, &k);
	/* A user 9 is no contact 9; m saw k's store of contact 9. */
	CHECK_EQ_INT(sync_fetch_begin(s, SO_USER, 9, &u), 0);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &u, 9), 0);
	sync_fetch_end(s, &u);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &m, 9), 1);
	CHECK_EQ_INT(sync_fetch_overtaken(s, &k, 9), 0);
	sync_fetch_end(s, &l);
	sync_fetch_end(s, &m);
	sync_fetch_end(s, &k);
	CHECK_EQ_INT((int)entries(s), 0);
	sync_free(s);
}

int main(void)
{
	UNIT_RUN(test_overlap);
	UNIT_RUN(test_no_overlap);
	UNIT_RUN(test_lookup);
	return unit_summary();
}
