// SPDX-License-Identifier: MIT
/*
 * test_tree.c: unit tests of the tree (tree.h) against a temporary cache:
 * inode numbers of each kind, listings and lookups of a few seeded rows,
 * the bytes and attributes of files and links, and which nodes a sync
 * change touches (tree_touch_*). No sync: nothing here may miss the cache
 * (a miss would fetch through d.sync).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "buf.h"
#include "driftfs.h"
#include "store.h"
#include "sync.h"
#include "tree.h"
#include "unit.h"

static char tmpdir[64];		/* this run's scratch directory (mkdtemp) */
static struct driftfs drift;	/* its store is the seeded cache */

#define CONTACT_JSON "{\"id\":5,\"attributes\":{\"email\":\"a@x.io\"}}\n"

/*
 * Seeds the cache: contacts 5 (a@x.io) and 7, conversation 100 of
 * contact 5 (open) with message 1000, and conversation 200 of contact 7
 * (closed).
 */
static int seed(struct store *st)
{
	struct api_contact c5 = { .id = 5, .created = 1000,
				  .email = "a@x.io" };
	struct api_contact c7 = { .id = 7, .created = 2000 };
	struct api_conversation v100 = { .id = 100, .contact_id = 5,
					 .created = 3000, .updated = 4000,
					 .status = "open" };
	struct api_conversation v200 = { .id = 200, .contact_id = 7,
					 .created = 3000, .updated = 5000,
					 .status = "closed" };
	struct api_message m = { .id = 1000, .conversation_id = 100,
				 .created = 4000, .type = "chat" };
	struct buf transcript = BUF_INIT;
	int changed, r;

	buf_adds(&c5.json, CONTACT_JSON);
	buf_adds(&c5.tags, "vip\n");
	buf_adds(&c7.json, "{\"id\":7}\n");
	buf_adds(&v100.json, "{\"id\":100}\n");
	buf_adds(&v200.json, "{\"id\":200}\n");
	buf_adds(&m.json, "{\"id\":1000}\n");
	buf_adds(&transcript, "[t] x (agent, chat):\n\nhello\n");
	r = store_begin(st);
	if (!r)
		r = store_put_contact(st, &c5, &changed);
	if (!r)
		r = store_put_contact(st, &c7, &changed);
	if (!r)
		r = store_put_conversation(st, &v100, &transcript, &changed);
	if (!r)
		r = store_put_conversation(st, &v200, &transcript, &changed);
	if (!r)
		r = store_clear_messages(st, 100);
	if (!r)
		r = store_put_message(st, &m);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
	buf_release(&c5.json);
	buf_release(&c5.tags);
	buf_release(&c7.json);
	buf_release(&v100.json);
	buf_release(&v200.json);
	buf_release(&m.json);
	buf_release(&transcript);
	return r;
}

/* A listing as "name:kind:id name:kind:id ..." (a named node: id 0). */
struct listed {
	char text[1024];
	size_t len;
	int n;
	uint64_t ino_ok;	/* entries whose attr.ino is tree_ino(child) */
};

static int on_entry(void *ctx, const char *name, const struct tnode *child,
		    const struct tattr *a)
{
	struct listed *l = ctx;

	if (l->len < sizeof(l->text))
		l->len += (size_t)snprintf(l->text + l->len,
					   sizeof(l->text) - l->len,
					   "%s%s:%d:%lld", l->n ? " " : "",
					   name, child->kind,
					   (long long)child->id);
	l->n++;
	if (a->ino == tree_ino(child))
		l->ino_ok++;
	return 0;
}

static int list(int kind, int64_t id, struct listed *l)
{
	struct tnode dir = { kind, id, NULL };

	memset(l, 0, sizeof(*l));
	return tree_list(&drift, &dir, on_entry, l);
}

/*
 * Inode numbers: a fixed node is its kind; an object's is (kind << 56) |
 * id, so the kind and id come back out of it; an id too big for that, or
 * a name, is hashed, with the hashed bit set, and stays apart from the
 * same id of another kind.
 */
static void test_inode_numbers(void)
{
	static const int kinds[] = { T_CONTACT, T_CONTACT_JSON, T_CONV,
				     T_MESSAGE_JSON, T_ATTACHMENT,
				     T_OUTBOX_ITEM, T_SCRATCH };
	const uint64_t hashed = UINT64_C(1) << 55;
	struct tnode big = { T_CONTACT, INT64_C(1) << 60, NULL };
	struct tnode big2 = { T_CONTACT_JSON, INT64_C(1) << 60, NULL };
	struct tnode e1 = { T_EMAIL_LINK, 0, "a%40x.io" };
	struct tnode e2 = { T_EMAIL_LINK, 0, "b%40x.io" };
	struct tnode x1 = { T_EXTID_LINK, 0, "a%40x.io" };
	struct tnode copy;

	for (int k = 1; k < T__FIXED_END; k++) {
		struct tnode t = { k, 0, NULL };

		CHECK_EQ_U64(tree_ino(&t), (uint64_t)k);
	}
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct tnode t = { kinds[i], 123456789, NULL };
		uint64_t ino = tree_ino(&t);

		CHECK_EQ_INT((int)(ino >> 56), kinds[i]);
		CHECK_EQ_U64(ino & ((UINT64_C(1) << 56) - 1), 123456789);
	}
	CHECK(tree_ino(&big) & hashed);
	CHECK_EQ_INT((int)(tree_ino(&big) >> 56), T_CONTACT);
	CHECK(tree_ino(&big) != tree_ino(&big2));
	CHECK(tree_ino(&e1) & hashed);
	CHECK(tree_ino(&e1) != tree_ino(&e2));
	CHECK(tree_ino(&e1) != tree_ino(&x1));
	/* The name is part of a named node; a copy owns its own. */
	REQUIRE(!tree_node_copy(&copy, &e1));
	CHECK(copy.name != e1.name);
	CHECK_EQ_U64(tree_ino(&copy), tree_ino(&e1));
	tree_node_release(&copy);
	CHECK(copy.name == NULL);
	CHECK_EQ_STR(tree_fixed_path(T_STATUS_OPEN),
		     "conversations/by-status/open");
	CHECK_EQ_INT(tree_access(T_CONTACT_JSON), TA_RW);
	CHECK_EQ_INT(tree_access(T_STATUS_LINK), TA_LINK);
	CHECK(tree_kind_named(T_ACCOUNT_JSON));
	CHECK(!tree_kind_named(T_CONTACT));
}

/* Listings of the seeded rows: the fixed entries first, then the rows. */
static void test_listings(void)
{
	struct listed l;

	REQUIRE(!list(T_CONTACTS, 0, &l));
	CHECK_EQ_STR(l.text, "by-email:8:0 by-external-id:9:0 "
			     "attributes.json:10:0 unsubscribe:11:0 new:12:0 "
			     "5:32:5 7:32:7");
	CHECK_EQ_INT((int)l.ino_ok, l.n);
	REQUIRE(!list(T_CONTACT, 5, &l));
	CHECK_EQ_STR(l.text, "contact.json:33:5 tags:34:5 timeline:35:5 "
			     "conversations:36:5");
	REQUIRE(!list(T_CONTACT_CONVS, 5, &l));
	CHECK_EQ_STR(l.text, "100:37:100");
	REQUIRE(!list(T_STATUS_OPEN, 0, &l));
	CHECK_EQ_STR(l.text, "100:53:100");
	REQUIRE(!list(T_STATUS_CLOSED, 0, &l));
	CHECK_EQ_STR(l.text, "200:53:200");
	REQUIRE(!list(T_MESSAGES, 100, &l));
	CHECK_EQ_STR(l.text, "1000.json:46:1000 new:47:100");
	CHECK_EQ_INT((int)l.ino_ok, l.n);
	REQUIRE(!list(T_BY_EMAIL, 0, &l));
	CHECK_EQ_INT(l.n, 1);
	CHECK(strstr(l.text, ":38:0") != NULL);
	{
		struct tnode file = { T_CONTACT_JSON, 5, NULL };

		CHECK_EQ_INT(tree_list(&drift, &file, on_entry, &l), -ENOTDIR);
	}
}

/* Lookups find the seeded rows by name, with their attributes. */
static void test_lookups(void)
{
	struct tnode contacts = { T_CONTACTS, 0, NULL };
	struct tnode c5 = { T_CONTACT, 5, NULL };
	struct tnode msgs = { T_MESSAGES, 100, NULL };
	struct tnode closed = { T_STATUS_CLOSED, 0, NULL };
	struct tnode child;
	struct tattr a;

	REQUIRE(!tree_lookup(&drift, &contacts, "5", &child, &a));
	CHECK_EQ_INT(child.kind, T_CONTACT);
	CHECK_EQ_INT(child.id, 5);
	CHECK(S_ISDIR(a.mode));
	CHECK_EQ_U64(a.ino, tree_ino(&child));
	tree_node_release(&child);
	/* Not ids: no fetch is tried, so no sync is needed. */
	CHECK_EQ_INT(tree_lookup(&drift, &contacts, "05", &child, &a),
		     -ENOENT);
	CHECK_EQ_INT(tree_lookup(&drift, &contacts, "x", &child, &a),
		     -ENOENT);
	REQUIRE(!tree_lookup(&drift, &c5, "contact.json", &child, &a));
	CHECK_EQ_INT(child.kind, T_CONTACT_JSON);
	CHECK_EQ_INT((int)a.size, (int)strlen(CONTACT_JSON));
	CHECK_EQ_INT(a.mode, S_IFREG | 0644);
	tree_node_release(&child);
	CHECK_EQ_INT(tree_lookup(&drift, &c5, "nope", &child, &a), -ENOENT);
	REQUIRE(!tree_lookup(&drift, &msgs, "1000.json", &child, &a));
	CHECK_EQ_INT(child.kind, T_MESSAGE_JSON);
	tree_node_release(&child);
	/* Conversation 100 is open, not closed. */
	CHECK_EQ_INT(tree_lookup(&drift, &closed, "100", &child, &a),
		     -ENOENT);
	REQUIRE(!tree_lookup(&drift, &closed, "200", &child, &a));
	CHECK_EQ_INT(child.kind, T_STATUS_LINK);
	tree_node_release(&child);
}

/* The bytes of files and links, and what getattr says of them. */
static void test_rendered_bytes(void)
{
	struct tnode json = { T_CONTACT_JSON, 5, NULL };
	struct tnode tags = { T_CONTACT_TAGS, 5, NULL };
	struct tnode transcript = { T_TRANSCRIPT, 100, NULL };
	struct tnode status = { T_STATUS_LINK, 100, NULL };
	struct tnode owner = { T_CONV_CONTACT_LINK, 100, NULL };
	struct tnode attrs = { T_ATTRIBUTES, 0, NULL };
	struct tnode gone = { T_CONTACT_JSON, 6, NULL };
	struct buf b = BUF_INIT;
	struct tattr a;

	REQUIRE(!tree_content(&drift, &json, &b));
	CHECK_EQ_MEM(b.data, b.len, CONTACT_JSON, strlen(CONTACT_JSON));
	REQUIRE(!tree_getattr(&drift, &json, &a));
	CHECK_EQ_INT((int)a.size, (int)b.len);
	buf_reset(&b);
	REQUIRE(!tree_content(&drift, &tags, &b));
	CHECK_EQ_MEM(b.data, b.len, "vip\n", 4);
	buf_reset(&b);
	REQUIRE(!tree_content(&drift, &transcript, &b));
	CHECK(b.len && strstr(b.data, "hello") != NULL);
	buf_reset(&b);
	REQUIRE(!tree_readlink(&drift, &status, &b));
	CHECK_EQ_STR(b.data, "../../100");
	REQUIRE(!tree_getattr(&drift, &status, &a));
	CHECK_EQ_INT((int)a.size, (int)strlen("../../100"));
	CHECK_EQ_INT((int)a.mtime_ms, 4000);
	buf_reset(&b);
	REQUIRE(!tree_readlink(&drift, &owner, &b));
	CHECK_EQ_STR(b.data, "../../contacts/5");
	buf_reset(&b);
	/* No attributes in the cache yet: an empty object. */
	REQUIRE(!tree_content(&drift, &attrs, &b));
	CHECK_EQ_STR(b.data, "{}\n");
	buf_reset(&b);
	CHECK_EQ_INT(tree_readlink(&drift, &json, &b), -EINVAL);
	CHECK_EQ_INT(tree_getattr(&drift, &gone, &a), -ENOENT);
	CHECK_EQ_INT(tree_content_fd(&drift, &json), -ENOTSUP);
	buf_release(&b);
}

/* Finds rule (group, id) in r[0..n); its index or -1. */
static int find_rule(const struct tree_touch_rule *r, size_t n, int group,
		     int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].group == group &&
		    (group == TG_NONE ? r[i].node.id : r[i].id) == id)
			return (int)i;
	return -1;
}

/* Which nodes a change touches, and what it does to each. */
static void test_touch(void)
{
	struct tree_touch_rule r[TREE_TOUCH_RULES_MAX];
	struct sync_change contact = { .what = SO_CONTACT, .id = 5 };
	struct sync_change moved = { .what = SO_CONVERSATION, .id = 100,
				     .contact = 7, .old_contact = 5 };
	struct sync_change account = { .what = SO_ACCOUNT, .key = "acc1" };
	struct sync_change lists = { .what = SO_LISTS };
	struct sync_change pruned = { .what = SO_PRUNED, .id = SO_CONTACT };
	struct tnode cdir = { T_CONTACT, 5, NULL };
	struct tnode cjson = { T_CONTACT_JSON, 5, NULL };
	struct tnode link = { T_STATUS_LINK, 100, NULL };
	struct tnode msg = { T_MESSAGE_JSON, 1000, NULL };
	struct tnode msgs = { T_MESSAGES, 100, NULL };
	struct tnode acc1 = { T_ACCOUNT_JSON, 0, "acc1" };
	struct tnode acc2 = { T_ACCOUNT_JSON, 0, "acc2" };
	struct tnode user = { T_USER_JSON, 3, NULL };
	struct tnode root = { T_ROOT, 0, NULL };
	const int *kinds = NULL;
	int64_t convs[] = { 300, 100, 200 };
	int64_t id = -1;
	size_t n;
	int gone = -1;

	/* Groups: a message belongs to the conversation it was found in. */
	CHECK_EQ_INT(tree_touch_group(&cjson, NULL, &id), TG_CONTACT);
	CHECK_EQ_INT(id, 5);
	CHECK_EQ_INT(tree_touch_group(&msg, &msgs, &id), TG_CONV);
	CHECK_EQ_INT(id, 100);
	CHECK_EQ_INT(tree_touch_group(&msg, NULL, &id), TG_ORPHAN);
	CHECK_EQ_INT(id, 0);
	CHECK_EQ_INT(tree_touch_group(&user, NULL, &id), TG_KIND);
	CHECK_EQ_INT(id, T_USER_JSON);
	CHECK_EQ_INT(tree_touch_group(&root, NULL, &id), TG_NONE);
	/* The node table looks a parent up only for the kinds that say they
	 * need one: any kind whose group a parent changes must say so. */
	for (int k = T__FIXED_END + 1; k < T__END; k++) {
		struct tnode t = { k, 7, "x" };
		struct tnode parents[] = { { T_MESSAGES, 100, NULL },
					   { T_ATTACHMENTS, 100, NULL } };
		int64_t alone, with;
		int g = tree_touch_group(&t, NULL, &alone);

		for (size_t i = 0; i < 2; i++)
			if (tree_touch_group(&t, &parents[i], &with) != g ||
			    with != alone)
				CHECK(tree_touch_group_needs_parent(k));
	}
	CHECK(tree_touch_group_needs_parent(T_MESSAGE_JSON));
	CHECK(!tree_touch_group_needs_parent(T_CONV_JSON));

	/* A contact: its group, and once a batch the links by email/id. */
	n = tree_touch_rules(&contact, r);
	CHECK_EQ_INT((int)n, 3);
	CHECK(find_rule(r, n, TG_CONTACT, 5) >= 0);
	CHECK(find_rule(r, n, TG_KIND, T_EMAIL_LINK) >= 0 &&
	      r[find_rule(r, n, TG_KIND, T_EMAIL_LINK)].once);
	CHECK_EQ_INT(tree_touch_node(&contact, TG_CONTACT, &cdir),
		     TOUCH_INODE | TOUCH_QUERY);
	CHECK_EQ_INT(tree_touch_node(&contact, TG_CONTACT, &cjson),
		     TOUCH_INODE);

	/* A conversation moved from contact 5 to 7: both conversations/,
	 * its group, and the orphans once. */
	n = tree_touch_rules(&moved, r);
	CHECK_EQ_INT((int)n, 4);
	CHECK(find_rule(r, n, TG_NONE, 5) >= 0);
	CHECK(find_rule(r, n, TG_NONE, 7) >= 0);
	CHECK_EQ_INT(r[0].node.kind, T_CONTACT_CONVS);
	CHECK(find_rule(r, n, TG_CONV, 100) >= 0);
	CHECK(find_rule(r, n, TG_ORPHAN, 0) >= 0);
	CHECK_EQ_INT(tree_touch_node(&moved, TG_CONV, &link),
		     TOUCH_INODE | TOUCH_ENTRY);
	CHECK_EQ_INT(tree_touch_node(&moved, TG_CONV, &msg),
		     TOUCH_INODE | TOUCH_QUERY);
	CHECK_EQ_INT(tree_touch_node(&moved, TG_ORPHAN, &msg), TOUCH_QUERY);

	/* An account: only the file of that account. */
	n = tree_touch_rules(&account, r);
	CHECK_EQ_INT((int)n, 1);
	CHECK_EQ_INT(tree_touch_node(&account, TG_KIND, &acc1), TOUCH_INODE);
	CHECK_EQ_INT(tree_touch_node(&account, TG_KIND, &acc2), 0);

	/* Lists: no node by rule, but the fixed listings. */
	CHECK_EQ_INT((int)tree_touch_rules(&lists, r), 0);
	n = tree_touch_lists(&lists, &kinds);
	CHECK_EQ_INT((int)n, 14);
	CHECK(n && kinds[0] == T_CONTACTS);
	CHECK_EQ_INT((int)tree_touch_lists(&contact, &kinds), 0);
	CHECK_EQ_INT((int)tree_touch_rules(&pruned, r), 0);

	/* The query: an orphan message is changed when its conversation is
	 * one the batch changed; one gone from the cache is changed too. */
	tree_touch_sort(convs, 3);
	CHECK(convs[0] == 100 && convs[1] == 200 && convs[2] == 300);
	CHECK_EQ_INT(tree_touch_query(&drift, &msg, 1, convs, 3, &gone), 1);
	CHECK_EQ_INT(gone, 0);
	CHECK_EQ_INT(tree_touch_query(&drift, &msg, 1, convs + 1, 2, &gone),
		     0);
	CHECK_EQ_INT(tree_touch_query(&drift, &msg, 1, NULL, 0, &gone), 1);
	CHECK_EQ_INT(tree_touch_query(&drift, &cdir, 0, NULL, 0, &gone), 0);
	CHECK_EQ_INT(gone, 0);
	msg.id = 999;
	CHECK_EQ_INT(tree_touch_query(&drift, &msg, 0, NULL, 0, &gone), 1);
	CHECK_EQ_INT(gone, 1);
}

int main(void)
{
	char cmd[100];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_tree.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	memset(&drift, 0, sizeof(drift));
	drift.started_ms = 1000;
	drift.store = store_open(tmpdir);
	if (!drift.store || seed(drift.store)) {
		fprintf(stderr, "test_tree: cannot seed a cache in %s\n",
			tmpdir);
		return 1;
	}
	UNIT_RUN(test_inode_numbers);
	UNIT_RUN(test_listings);
	UNIT_RUN(test_lookups);
	UNIT_RUN(test_rendered_bytes);
	UNIT_RUN(test_touch);
	r = unit_summary();
	store_close(drift.store);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	return r;
}
