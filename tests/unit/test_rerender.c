// SPDX-License-Identifier: MIT
/*
 * test_rerender.c: unit tests of transcripts following renames
 * (sync_rerender.c, store_authors.c) on a temporary cache and a sync with
 * no HTTP at all, so any request would crash: a renamed user's and a
 * renamed contact's conversations are rendered again from the cache, byte
 * for byte as a fresh fetch renders them, only those are reported, and
 * the note of renamed users is cleared once they are done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "driftfs.h"
#include "render.h"
#include "store.h"
#include "../../src/sync_int.h"
#include "unit.h"

static char tmpdir[64];

#define USER_A 101
#define USER_B 102
#define CONTACT 501
#define CONV_A 9001	/* user A and the contact wrote */
#define CONV_B 9002	/* user B only */
#define CONV_C 9003	/* a contact whose id is user A's: not user A */

/* What the change callback saw. */
struct seen {
	int64_t convs[16];
	size_t n;
	/* Set: the next call stores this name of USER_A and notes it, as
	 * another thread would while the re-render's batches run. */
	struct sync *s;
	const char *rename_a;
};

static int put_user(struct sync *s, int64_t id, const char *name, int bot);

static void on_change(void *ctx, const struct sync_change *c, size_t n)
{
	struct seen *sn = ctx;

	if (sn->rename_a) {
		int64_t ua = USER_A;
		const char *name = sn->rename_a;

		sn->rename_a = NULL;
		REQUIRE(!store_begin(sn->s->d->store));
		REQUIRE(!put_user(sn->s, USER_A, name, 0));
		REQUIRE(!sync_rerender_note_users(sn->s, &ua, 1));
		REQUIRE(!store_commit(sn->s->d->store));
	}

	for (size_t i = 0; i < n; i++)
		if (c[i].what == SO_CONVERSATION && sn->n < 16)
			sn->convs[sn->n++] = c[i].id;
}

static int seen_has(const struct seen *sn, int64_t id)
{
	for (size_t i = 0; i < sn->n; i++)
		if (sn->convs[i] == id)
			return 1;
	return 0;
}

/* A conversation's messages as one API page. */
static const char *page(int64_t conv)
{
	switch (conv) {
	case CONV_A:
		return "{\"data\":{\"messages\":["
		       "{\"id\":2,\"conversationId\":9001,"
		       "\"body\":\"<p>hi</p>\","
		       "\"author\":{\"type\":\"contact\",\"id\":501,"
		       "\"bot\":false},\"type\":\"chat\","
		       "\"createdAt\":1700000000000},"
		       "{\"id\":1,\"conversationId\":9001,\"body\":\"Hello\","
		       "\"author\":{\"type\":\"user\",\"id\":\"101\","
		       "\"bot\":false},\"type\":\"chat\","
		       "\"createdAt\":1700000000000},"
		       "{\"id\":3,\"conversationId\":9001,\"body\":\"note\","
		       "\"author\":{\"type\":\"user\",\"id\":102,"
		       "\"bot\":false},\"type\":\"private_note\","
		       "\"createdAt\":1700000005000}]}}";
	case CONV_B:
		return "{\"data\":{\"messages\":["
		       "{\"id\":4,\"conversationId\":9002,\"body\":\"B here\","
		       "\"author\":{\"type\":\"user\",\"id\":102,"
		       "\"bot\":false},\"createdAt\":1700000001000}]}}";
	default:
		return "{\"data\":{\"messages\":["
		       "{\"id\":5,\"conversationId\":9003,\"body\":\"other\","
		       "\"author\":{\"type\":\"contact\",\"id\":101},"
		       "\"createdAt\":1700000002000}]}}";
	}
}

struct msgs {
	struct api_message v[8];
	size_t n;
};

static int take(void *ctx, struct api_message *m)
{
	struct msgs *ms = ctx;

	if (ms->n == 8)
		return -E2BIG;
	ms->v[ms->n++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

static void msgs_release(struct msgs *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		api_message_release(&ms->v[i]);
	ms->n = 0;
}

/* What a fresh fetch of conv renders now (sync_conversation's steps:
 * parse the page, sort, name from the cache). */
static int fresh(struct sync *s, int64_t conv, struct msgs *ms,
		 struct buf *out)
{
	struct sync_author who = { s, NULL, NULL };
	const char *p = page(conv);
	char *next = NULL;
	int r;

	r = api_parse_messages_page("test", p, strlen(p), conv, take, ms,
				    &next);
	free(next);
	if (r)
		return r;
	qsort(ms->v, ms->n, sizeof(ms->v[0]), render_message_order);
	return render_transcript(ms->v, ms->n, sync_author_of, &who, out);
}

/* Fetches conv as the sync would: messages, conversation, transcript. */
static int store_conv(struct sync *s, int64_t conv, int64_t contact)
{
	struct api_conversation c = { conv, contact, 1, 2, "open", BUF_INIT };
	struct msgs ms = { .n = 0 };
	struct buf t = BUF_INIT;
	int changed, r;

	r = fresh(s, conv, &ms, &t);
	r = r ? r : buf_adds(&c.json, "{}");
	r = r ? r : store_begin(s->d->store);
	if (r)
		goto out;
	r = store_clear_messages(s->d->store, conv);
	for (size_t i = 0; i < ms.n && !r; i++)
		r = store_put_message(s->d->store, &ms.v[i]);
	r = r ? r : store_put_conversation(s->d->store, &c, &t, &changed);
	if (r)
		store_rollback(s->d->store);
	else
		r = store_commit(s->d->store);
out:
	msgs_release(&ms);
	buf_release(&t);
	buf_release(&c.json);
	return r;
}

static int put_user(struct sync *s, int64_t id, const char *name, int bot)
{
	struct api_user u = { id, 1, NULL, (char *)name, bot, 0, BUF_INIT };
	int changed, r;

	r = buf_printf(&u.json, "{\"id\":%lld,\"name\":\"%s\"}", (long long)id,
		       name);
	r = r ? r : store_put_user(s->d->store, &u, 1, &changed);
	buf_release(&u.json);
	return r;
}

static int stored(struct store *st, int64_t conv, struct buf *out)
{
	out->len = 0;
	return store_blob(st, Q_TRANSCRIPT, conv, NULL, out);
}

/* The stored transcript of conv is what a fresh fetch renders now. */
static void check_fresh(struct sync *s, int64_t conv)
{
	struct msgs ms = { .n = 0 };
	struct buf a = BUF_INIT, b = BUF_INIT;

	REQUIRE(!stored(s->d->store, conv, &a));
	REQUIRE(!fresh(s, conv, &ms, &b));
	CHECK_EQ_MEM(a.data, a.len, b.data, b.len);
	msgs_release(&ms);
	buf_release(&a);
	buf_release(&b);
}

static int contains(const struct buf *b, const char *s)
{
	return b->data && memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static void test_renames(void)
{
	char dir[128];
	struct driftfs d;
	struct seen sn = { .n = 0 };
	struct buf t = BUF_INIT, before = BUF_INIT, val = BUF_INIT;
	struct api_contact c = { CONTACT, 1, "c@x.example", NULL, "Carla",
				 BUF_INIT, BUF_INIT };
	struct changes ch = { 0 };
	struct api_user renamed = { USER_A, 2, NULL, "Alice Newname", 0, 0,
				    BUF_INIT };
	struct sync *s;
	int64_t *convs = NULL, ua = USER_A;
	size_t n = 0;
	int changed;

	snprintf(dir, sizeof(dir), "%s/renames", tmpdir);
	REQUIRE(!mkdir(dir, 0700));
	memset(&d, 0, sizeof(d));
	d.store = store_open(dir);
	REQUIRE(d.store);
	s = sync_new(&d, on_change, &sn);
	REQUIRE(s);
	REQUIRE(!put_user(s, USER_A, "Alice Old", 0));
	REQUIRE(!put_user(s, USER_B, "Bob", 0));
	REQUIRE(!buf_adds(&c.json, "{}"));
	REQUIRE(!store_begin(d.store));
	REQUIRE(!store_put_contact(d.store, &c, &changed));
	REQUIRE(!store_commit(d.store));
	REQUIRE(!store_conv(s, CONV_A, CONTACT));
	REQUIRE(!store_conv(s, CONV_B, 0));
	REQUIRE(!store_conv(s, CONV_C, 0));
	REQUIRE(!stored(d.store, CONV_A, &t));
	CHECK(contains(&t, "Alice Old (agent, chat)"));
	CHECK(contains(&t, "Carla (contact, chat)"));

	/* The conversations user A wrote in: not C, whose author 101 is a
	 * contact; the quoted id counts. */
	REQUIRE(!store_user_conversations(d.store, &ua, 1, &convs, &n));
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && convs[0] == CONV_A);
	free(convs);

	/* A user renamed: only CONV_A changes, from the cache alone. */
	CHECK(!sync_user_naming_changed(s, &(struct api_user){
		USER_B, 9, NULL, "Bob", 0, 0, BUF_INIT }));
	CHECK(sync_user_naming_changed(s, &renamed));
	REQUIRE(!buf_adds(&renamed.json, "{}"));
	REQUIRE(!stored(d.store, CONV_B, &before));
	REQUIRE(!store_begin(d.store));
	REQUIRE(!store_put_user(d.store, &renamed, 2, &changed));
	REQUIRE(!sync_rerender_note_users(s, &ua, 1));
	REQUIRE(!store_commit(d.store));
	/* What a prune of the list of generation 2 would delete. */
	REQUIRE(!store_users_unseen(d.store, 2, &convs, &n));
	CHECK(n == 1 && convs[0] == USER_B);
	free(convs);
	CHECK(!sync_rerender_pending(s));
	CHECK_EQ_INT(sn.n, 1);
	CHECK(seen_has(&sn, CONV_A));
	REQUIRE(!stored(d.store, CONV_A, &t));
	CHECK(contains(&t, "Alice Newname (agent, chat)"));
	CHECK(!contains(&t, "Alice Old"));
	check_fresh(s, CONV_A);
	REQUIRE(!stored(d.store, CONV_B, &t));
	CHECK_EQ_MEM(t.data, t.len, before.data, before.len);
	/* The note is cleared: a second call finds nothing to do. */
	REQUIRE(!store_meta_get(d.store, "rerender_users", &val));
	CHECK_EQ_INT(val.len, 0);
	sn.n = 0;
	CHECK(!sync_rerender_pending(s));
	CHECK_EQ_INT(sn.n, 0);

	/* Renamed again while the batches of the first re-render ran: the
	 * note keeps it (the batch rendered the name before), and the next
	 * call renders the new name. */
	REQUIRE(!store_begin(d.store));
	REQUIRE(!put_user(s, USER_A, "Alice Second", 0));
	REQUIRE(!sync_rerender_note_users(s, &ua, 1));
	REQUIRE(!store_commit(d.store));
	sn.s = s;
	sn.rename_a = "Alice Third";
	CHECK(!sync_rerender_pending(s));
	CHECK(!sn.rename_a);
	REQUIRE(!stored(d.store, CONV_A, &t));
	CHECK(contains(&t, "Alice Second (agent, chat)"));
	val.len = 0;
	REQUIRE(!store_meta_get(d.store, "rerender_users", &val));
	CHECK(val.len > 0);
	CHECK(!sync_rerender_pending(s));
	REQUIRE(!stored(d.store, CONV_A, &t));
	CHECK(contains(&t, "Alice Third (agent, chat)"));
	check_fresh(s, CONV_A);
	val.len = 0;
	REQUIRE(!store_meta_get(d.store, "rerender_users", &val));
	CHECK_EQ_INT(val.len, 0);
	sn.n = 0;

	/* User B turned bot: the role follows. */
	REQUIRE(!store_begin(d.store));
	REQUIRE(!put_user(s, USER_B, "Bob", 1));
	REQUIRE(!sync_rerender_note_users(s, (int64_t[]){ USER_B }, 1));
	REQUIRE(!store_commit(d.store));
	CHECK(!sync_rerender_pending(s));
	CHECK(seen_has(&sn, CONV_A) && seen_has(&sn, CONV_B));
	REQUIRE(!stored(d.store, CONV_B, &t));
	CHECK(contains(&t, "Bob (bot, chat)"));
	check_fresh(s, CONV_B);

	/* A contact renamed: its conversation, in the same transaction. */
	c.name = NULL;	/* now shown by email */
	REQUIRE(!store_begin(d.store));
	REQUIRE(!sync_put_contact(s, &c, &changed, &ch));
	REQUIRE(!store_commit(d.store));
	CHECK_EQ_INT(ch.n, 1);
	CHECK(ch.n == 1 && ch.v[0].what == SO_CONVERSATION &&
	      ch.v[0].id == CONV_A && ch.v[0].contact == CONTACT &&
	      !strcmp(ch.v[0].old_status, "open"));
	REQUIRE(!stored(d.store, CONV_A, &t));
	CHECK(contains(&t, "c@x.example (contact, chat)"));
	check_fresh(s, CONV_A);
	/* Stored again unchanged: nothing to render. */
	sync_changes_release(&ch);
	REQUIRE(!store_begin(d.store));
	REQUIRE(!sync_put_contact(s, &c, &changed, &ch));
	REQUIRE(!store_commit(d.store));
	CHECK_EQ_INT(ch.n, 0);

	sync_changes_release(&ch);
	sync_free(s);
	store_close(d.store);
	buf_release(&t);
	buf_release(&before);
	buf_release(&val);
	buf_release(&c.json);
	buf_release(&renamed.json);
}

/*
 * A write of one kind of object never counts as a write of another: the
 * soak found a conversation (5790887170) whose fetch removed its own
 * deleted contact (17043677532), whose write slot it shared among 256;
 * each of its fetches took itself for overtaken, three times a pass,
 * every pass. Each kind now has slots of its own.
 */
static void test_write_kinds_apart(void)
{
	struct driftfs d;
	struct sync *s;
	struct gens g;

	memset(&d, 0, sizeof(d));
	s = sync_new(&d, NULL, NULL);
	REQUIRE(s);
	sync_gens_take(s, &g);
	sync_note_write(s, SO_CONTACT, 17043677532LL);
	CHECK(sync_written_since(s, &g, SO_CONTACT, 17043677532LL));
	CHECK(!sync_written_since(s, &g, SO_CONVERSATION, 5790887170LL));
	/* Every contact of a range against every conversation of it. */
	for (int64_t c = 1; c <= 300; c++) {
		sync_gens_take(s, &g);
		sync_note_write(s, SO_CONTACT, c);
		for (int64_t v = 1; v <= 300; v++)
			CHECK(!sync_written_since(s, &g, SO_CONVERSATION, v));
	}
	sync_note_write(s, SO_CONVERSATION, 5790887170LL);
	CHECK(sync_written_since(s, &g, SO_CONVERSATION, 5790887170LL));
	sync_free(s);
}

int main(void)
{
	char cmd[128];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/driftfs-rerender-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	UNIT_RUN(test_renames);
	UNIT_RUN(test_write_kinds_apart);
	r = unit_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return r;
}
