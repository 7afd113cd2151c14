// SPDX-License-Identifier: MIT
/*
 * test_recheck.c: unit tests of the note a removed contact leaves for the
 * next pass (sync_forget_contact's "recheck_contact:<id>" in the meta
 * table, sync_fetch.c), on a temporary cache and a sync with no HTTP at
 * all, so any request would crash. Proves: a contact removed again with
 * the same conversations linked again in between (a 404 fault, then the
 * contact back, then gone again) leaves each conversation once in the
 * note, not once per removal; the note still changes at each removal (so
 * a pass that was checking the first removal keeps the note for the
 * second); the ids a note holds are exactly the conversations that
 * were linked; and a conversation refetched while its contact is known
 * gone joins the note once, without changing a note that holds it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "driftfs.h"
#include "store.h"
#include "../../src/sync_int.h"
#include "unit.h"

static char tmpdir[64];

#define CONTACT 701
#define CONV_1 8001
#define CONV_2 8002
#define CONV_3 8003

static int put_contact(struct store *st)
{
	struct api_contact c = { CONTACT, 1, "k@x.example", NULL, "Kim",
				 BUF_INIT, BUF_INIT };
	int changed, r;

	r = buf_adds(&c.json, "{}");
	r = r ? r : store_begin(st);
	if (r)
		goto out;
	r = store_put_contact(st, &c, &changed);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
out:
	buf_release(&c.json);
	return r;
}

/* Stores conversation conv linked to contact (0: none), no messages. */
static int put_conv(struct store *st, int64_t conv, int64_t contact,
		    int64_t updated)
{
	struct api_conversation c = { conv, contact, 1, updated, "open",
				      BUF_INIT };
	struct buf t = BUF_INIT;
	int changed, r;

	r = buf_adds(&c.json, "{}");
	r = r ? r : store_begin(st);
	if (r)
		goto out;
	r = store_put_conversation(st, &c, &t, &changed);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
out:
	buf_release(&c.json);
	buf_release(&t);
	return r;
}

/* The note's ids, in order, as decimal tokens (a marker, any token that
 * is not a number, is left out). */
static size_t note_ids(const struct buf *val, long long *ids, size_t max)
{
	char tmp[256], *save = NULL, *tok;
	size_t n = 0;

	if (val->len >= sizeof(tmp))
		return (size_t)-1;
	memcpy(tmp, val->data ? val->data : "", val->len);
	tmp[val->len] = 0;
	for (tok = strtok_r(tmp, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *e;
		long long id = strtoll(tok, &e, 10);

		if (*e || id <= 0)
			continue;
		if (n < max)
			ids[n] = id;
		n++;
	}
	return n;
}

static void test_note_holds_each_conversation_once(void)
{
	char dir[128], key[64];
	struct driftfs d;
	struct buf first = BUF_INIT, second = BUF_INIT, third = BUF_INIT;
	long long ids[8];
	struct sync *s;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/once", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	memset(&d, 0, sizeof(d));
	d.store = store_open(dir);
	REQUIRE(d.store);
	s = sync_new(&d, NULL, NULL);
	REQUIRE(s);
	snprintf(key, sizeof(key), "recheck_contact:%d", CONTACT);

	REQUIRE(!put_contact(d.store));
	REQUIRE(!put_conv(d.store, CONV_2, CONTACT, 2));
	REQUIRE(!put_conv(d.store, CONV_1, CONTACT, 2));
	REQUIRE(!put_conv(d.store, CONV_3, 0, 2));
	CHECK(!sync_forget_contact(s, CONTACT));
	REQUIRE(!store_meta_get(d.store, key, &first));
	n = note_ids(&first, ids, 8);
	CHECK_EQ_INT(n, 2);
	CHECK(n == 2 && ids[0] == CONV_1 && ids[1] == CONV_2);

	/* Back, linked again, gone again, before any pass checked. */
	REQUIRE(!put_contact(d.store));
	REQUIRE(!put_conv(d.store, CONV_1, CONTACT, 3));
	REQUIRE(!put_conv(d.store, CONV_2, CONTACT, 3));
	CHECK(!sync_forget_contact(s, CONTACT));
	REQUIRE(!store_meta_get(d.store, key, &second));
	n = note_ids(&second, ids, 8);
	CHECK_EQ_INT(n, 2);
	CHECK(n == 2 && ids[0] == CONV_1 && ids[1] == CONV_2);
	/* Not the same bytes: a pass checking the first removal keeps it. */
	CHECK(first.len != second.len ||
	      memcmp(first.data, second.data, first.len));

	/* Once more, with another conversation linked this time. */
	REQUIRE(!put_contact(d.store));
	REQUIRE(!put_conv(d.store, CONV_3, CONTACT, 4));
	REQUIRE(!put_conv(d.store, CONV_1, CONTACT, 4));
	CHECK(!sync_forget_contact(s, CONTACT));
	REQUIRE(!store_meta_get(d.store, key, &third));
	n = note_ids(&third, ids, 8);
	CHECK_EQ_INT(n, 3);
	CHECK(n == 3 && ids[0] == CONV_1 && ids[1] == CONV_2 &&
	      ids[2] == CONV_3);

	/* A removal that finds nothing linked leaves the note as it is. */
	CHECK(!sync_forget_contact(s, CONTACT));
	second.len = 0;
	REQUIRE(!store_meta_get(d.store, key, &second));
	CHECK_EQ_MEM(second.data, second.len, third.data, third.len);

	/* A refetch while the contact is known gone (removal 0): an id
	 * noted already changes nothing, a new one is added once. */
	{
		int64_t c1 = CONV_1, c4 = 8004;

		REQUIRE(!store_begin(d.store));
		CHECK(!sync_recheck_note(d.store, CONTACT, &c1, 1, 0));
		REQUIRE(!store_commit(d.store));
		second.len = 0;
		REQUIRE(!store_meta_get(d.store, key, &second));
		CHECK_EQ_MEM(second.data, second.len, third.data, third.len);
		REQUIRE(!store_begin(d.store));
		CHECK(!sync_recheck_note(d.store, CONTACT, &c4, 1, 0));
		CHECK(!sync_recheck_note(d.store, CONTACT, &c4, 1, 0));
		REQUIRE(!store_commit(d.store));
		second.len = 0;
		REQUIRE(!store_meta_get(d.store, key, &second));
		n = note_ids(&second, ids, 8);
		CHECK_EQ_INT(n, 4);
		CHECK(n == 4 && ids[3] == c4);
	}

	buf_release(&first);
	buf_release(&second);
	buf_release(&third);
	sync_free(s);
	store_close(d.store);
}

int main(void)
{
	char cmd[128];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/driftfs-recheck-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_note_holds_each_conversation_once);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return r;
}
