// SPDX-License-Identifier: MIT
/*
 * test_nodes.c: the FUSE side's node table (src/fs/nodes.c), the inodes
 * the kernel holds, packed to a few dozen bytes a node.
 *
 * Proves, over enough nodes to grow the tables many times and with
 * FORGETs in an order that moves the open-addressed slots around: every
 * node the kernel holds is found, with its kind, id, tree name, name and
 * parent as they were given (inline or not, an id the inode number
 * carries or hashed), in exactly one place of its group's chain; a
 * forgotten one is gone; lookup counts add and a FORGET subtracts, and a
 * count that would overflow pins the node instead of losing it early; a
 * later lookup by another name renames it; and an inode number another
 * object holds is refused.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/fs/fs_int.h"
#include "driftfs.h"
#include "tree.h"
#include "unit.h"

static struct driftfs drift;

static struct fs *setup(void)
{
	memset(&drift, 0, sizeof(drift));
	drift.fs = fs_new(&drift);
	return drift.fs;
}

/* Node number i of the big test: a mix of every storage case. */
struct spec {
	struct tnode t;
	char name[64];
	char tname[64];
	uint64_t parent;
	uint64_t ino;
	int refs;		/* lookups the "kernel" holds */
};

#define NCONV 50
#define NNODES 60000

static void make_spec(struct spec *s, int i)
{
	int64_t conv = 9000000000LL + i % NCONV;

	memset(s, 0, sizeof(*s));
	switch (i % 6) {
	case 0: /* a message under its conversation's messages/: TG_CONV */
	case 1:
		s->t.kind = T_MESSAGE_JSON;
		s->t.id = 5000000000000LL + i;
		snprintf(s->name, sizeof(s->name), "%lld.json",
			 (long long)s->t.id);
		s->parent = tree_ino(&(struct tnode){ T_MESSAGES, conv, NULL });
		break;
	case 2: /* a conversation file: TG_CONV, a short inline name */
		s->t.kind = i % 4 ? T_TRANSCRIPT : T_CONV_JSON;
		s->t.id = conv + NCONV * (i / 6 + 1);
		snprintf(s->name, sizeof(s->name), "t%d", i);
		s->parent = tree_ino(&(struct tnode){ T_CONV, s->t.id, NULL });
		break;
	case 3: /* a name-keyed link, long: an ext with the tree name */
		s->t.kind = T_EMAIL_LINK;
		snprintf(s->tname, sizeof(s->tname),
			 "someone.with.a.long.address%d@example.com", i);
		s->t.name = s->tname;
		snprintf(s->name, sizeof(s->name), "%s", s->tname);
		s->parent = T_BY_EMAIL;
		break;
	case 4: /* an id the inode number hashes (negative) */
		s->t.kind = T_CONTACT_JSON;
		s->t.id = -1 - i;
		snprintf(s->name, sizeof(s->name), "contact.json");
		s->parent = 77;
		break;
	default: /* an attachment whose name is too long to be inline */
		s->t.kind = T_ATTACHMENT;
		s->t.id = 100 + i;
		snprintf(s->name, sizeof(s->name),
			 "%d-a-quarterly-report-with-a-long-name.pdf", i);
		s->parent = i % 12 == 5 ? 0 : 123;	/* some orphans */
		break;
	}
	s->ino = tree_ino(&s->t);
}

/* The chains hold every grouped node exactly once and nothing else; the
 * chain of each group the test made finds all of that group's nodes. */
static void check_groups(struct fs *f)
{
	unsigned char *seen;
	static const struct {
		int cls;
		int64_t id;
	} some[] = { { TG_CONV, 9000000000LL }, { TG_CONV, 9000000008LL },
		     { TG_ORPHAN, 0 }, { TG_KIND, T_EMAIL_LINK } };

	fs_nodes_lock(f);
	seen = calloc(f->nused + 1, 1);
	if (!seen) {
		fs_nodes_unlock(f);
		REQUIRE(seen);
	}
	for (size_t h = 0; h < f->ngheads; h++)
		for (uint32_t i = f->gheads[h]; i != FNODE_NONE;
		     i = f->blocks[i / FNODE_BLOCK][i % FNODE_BLOCK].gnext)
			if (i < f->nused && seen[i] < 255)
				seen[i]++;
	for (uint32_t i = 0; i < f->nused; i++) {
		struct fnode *n = &f->blocks[i / FNODE_BLOCK][i % FNODE_BLOCK];

		CHECK_EQ_INT(seen[i], n->ino && n->gcls != TG_NONE ? 1 : 0);
	}
	for (size_t k = 0; k < sizeof(some) / sizeof(some[0]); k++) {
		size_t want = 0, got = 0;

		for (uint32_t i = 0; i < f->nused; i++) {
			struct fnode *n =
			    &f->blocks[i / FNODE_BLOCK][i % FNODE_BLOCK];

			want += n->ino && n->gcls == some[k].cls &&
				n->gid == some[k].id;
		}
		for (struct fnode *g = fs_group_first_locked(f, some[k].cls,
							     some[k].id);
		     g; g = fs_group_next_locked(f, g))
			got += g->gcls == some[k].cls && g->gid == some[k].id;
		unit_ctx = k == 0 ? "conv0" : k == 1 ? "conv8" : k == 2 ? "orphan" : "email";
		CHECK(want > 0);
		CHECK_EQ_U64(got, want);
	}
	unit_ctx = NULL;
	fs_nodes_unlock(f);
	free(seen);
}

static void check_node(struct fs *f, const struct spec *s)
{
	struct tnode got = { 0 };
	struct fnode *n;
	int64_t gid = -1;
	int gcls = -1;

	CHECK_EQ_INT(fs_node_get(f, s->ino, &got), 0);
	CHECK_EQ_INT(got.kind, s->t.kind);
	CHECK_EQ_U64((uint64_t)got.id, (uint64_t)s->t.id);
	if (s->t.name)
		CHECK_EQ_STR(got.name, s->t.name);
	else
		CHECK(!got.name);
	tree_node_release(&got);
	fs_nodes_lock(f);
	n = fs_node_find_locked(f, s->ino);
	if (n) {
		CHECK_EQ_STR(fs_fnode_name(n), s->name);
		CHECK_EQ_U64(n->parent, s->parent);
		CHECK_EQ_U64(n->nlookup, (uint64_t)s->refs);
		gcls = n->gcls;
		gid = n->gid;
	}
	fs_nodes_unlock(f);
	REQUIRE(n);
	if (s->t.kind == T_MESSAGE_JSON) {
		CHECK_EQ_INT(gcls, TG_CONV);
		CHECK_EQ_U64((uint64_t)gid,
			     (uint64_t)(9000000000LL + (s->t.id - 5000000000000LL) % NCONV));
	} else if (s->t.kind == T_ATTACHMENT) {
		CHECK_EQ_INT(gcls, TG_ORPHAN);	/* parent 123 is not held */
	} else if (s->t.kind == T_EMAIL_LINK) {
		CHECK_EQ_INT(gcls, TG_KIND);
	}
}

static void test_many_nodes_grow_forget_and_groups(void)
{
	struct fs *f = setup();
	struct spec *v = calloc(NNODES, sizeof(*v));
	struct tnode tmp;

	REQUIRE(f && v);
	/* The messages/ directories, so that messages join their
	 * conversation's group. */
	for (int c = 0; c < NCONV; c++) {
		struct tnode m = { T_MESSAGES, 9000000000LL + c, NULL };

		CHECK_EQ_INT(fs_node_ref(f, &m, tree_ino(&m),
					 tree_ino(&(struct tnode){ T_CONV, m.id,
								   NULL }),
					 "messages"),
			     0);
	}
	for (int i = 0; i < NNODES; i++) {
		make_spec(&v[i], i);
		CHECK_EQ_INT(fs_node_ref(f, &v[i].t, v[i].ino, v[i].parent,
					 v[i].name),
			     0);
		v[i].refs = 1;
		if (i % 7 == 0) {
			CHECK_EQ_INT(fs_node_ref(f, &v[i].t, v[i].ino,
						 v[i].parent, v[i].name),
				     0);
			v[i].refs++;
		}
	}
	for (int i = 0; i < NNODES; i += 997)
		check_node(f, &v[i]);
	check_groups(f);

	/* FORGETs in a scattered order, some in two steps. */
	for (int i = 0; i < NNODES; i++) {
		int k = (int)(((uint64_t)i * 7919) % NNODES);

		if ((k / 6) % 3 == 0)
			continue;	/* a third stays, of each kind */
		if (v[k].refs == 2) {
			fs_node_forget(f, v[k].ino, 1);
			v[k].refs = 1;
			check_node(f, &v[k]);
		}
		fs_node_forget(f, v[k].ino, 1);
		v[k].refs = 0;
	}
	for (int i = 0; i < NNODES; i++) {
		if (v[i].refs) {
			check_node(f, &v[i]);
		} else {
			CHECK_EQ_INT(fs_node_get(f, v[i].ino, &tmp), -ESTALE);
		}
	}
	check_groups(f);
	/* Freed slots are used again, and the table still finds all. */
	for (int i = 0; i < NNODES; i++) {
		if (v[i].refs)
			continue;
		CHECK_EQ_INT(fs_node_ref(f, &v[i].t, v[i].ino, v[i].parent,
					 v[i].name),
			     0);
		v[i].refs = 1;
	}
	CHECK(f->nused <= NNODES + NCONV + FNODE_BLOCK);
	for (int i = 0; i < NNODES; i += 13)
		check_node(f, &v[i]);
	check_groups(f);
	free(v);
	fs_free(f);
}

static void test_rename_collision_and_pinning(void)
{
	struct fs *f = setup();
	struct tnode t = { T_CONV_JSON, 42, NULL };
	struct tnode other = { T_TRANSCRIPT, 42, NULL };
	uint64_t ino = tree_ino(&t);
	char path[FS_PATH_MAX];
	const char *longname = "a-name-longer-than-the-inline-area.json";
	struct fnode *n;

	REQUIRE(f);
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, 1000, "conversation.json"), 0);
	/* Found again by a long name elsewhere: renamed, moved. */
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, 2000, longname), 0);
	fs_nodes_lock(f);
	n = fs_node_find_locked(f, ino);
	REQUIRE(n);
	CHECK_EQ_STR(fs_fnode_name(n), longname);
	CHECK_EQ_U64(n->parent, 2000);
	CHECK_EQ_U64((uint64_t)fs_fnode_id(n), 42);
	fs_nodes_unlock(f);
	/* And back to a short one. */
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, T_CONVS, "x.json"), 0);
	fs_node_path(f, ino, NULL, path, sizeof(path));
	CHECK_EQ_STR(path, "conversations/x.json");
	/* Another object on the same inode number: refused. */
	CHECK_EQ_INT(fs_node_ref(f, &other, ino, 1000, "transcript.txt"),
		     -EIO);

	/* A count about to overflow saturates and pins the node. */
	fs_nodes_lock(f);
	fs_node_find_locked(f, ino)->nlookup = FNODE_PINNED - 1;
	fs_nodes_unlock(f);
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, T_CONVS, "x.json"), 0);
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, T_CONVS, "x.json"), 0);
	fs_node_forget(f, ino, UINT64_MAX);
	CHECK_EQ_INT(fs_node_get(f, ino, &other), 0);
	tree_node_release(&other);

	/* A FORGET of more than the count (a 64-bit one) drops the node. */
	t.id = 43;
	ino = tree_ino(&t);
	CHECK_EQ_INT(fs_node_ref(f, &t, ino, T_CONVS, "y.json"), 0);
	fs_node_forget(f, ino, (uint64_t)1 << 40);
	CHECK_EQ_INT(fs_node_get(f, ino, &other), -ESTALE);
	fs_free(f);
}

int main(void)
{
	UNIT_RUN(test_many_nodes_grow_forget_and_groups);
	/* its refused collision logs an error line */
	unit_quiet(1);
	UNIT_RUN(test_rename_collision_and_pinning);
	return unit_summary();
}
