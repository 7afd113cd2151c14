/* SPDX-License-Identifier: MIT */
/*
 * tree: which node a name is, what it contains, and what it looks like.
 *
 * This is DESIGN.md §2 as code: every kind of node in the tree, how its
 * inode number is derived (stable across mounts: from the kind and the
 * object's id), its mode, and where its bytes come from. It knows neither
 * FUSE (src/fs/) nor HTTP: data comes from the store, and objects missing
 * from the cache are fetched through the sync's on-demand fetchers
 * (sync_fetch.c).
 *
 * Inode numbers: the root is 1 and the fixed nodes are small numbers below
 * 32; every other node is (kind << 56) | id when the id is below 2^55,
 * else (kind << 56) | 2^55 | a 55-bit hash of the id or name.
 *
 * Threads and locks, for the functions below that take a struct driftfs:
 * called on FUSE threads (and the notifier, for tree_touch_query), several
 * at once; they hold no lock of their own, read the store (its pool lock,
 * and its outbox lock for .driftfs/outbox) and return 0 or -errno.
 * tree_getattr may be called with the fs node table lock held (a scratch
 * file's alias): it only reads the store. tree_lookup and tree_list may
 * fetch a missing object over HTTP (sync_fetch.c) and so block for a
 * request: their callers hold no lock across them.
 */
#ifndef DRIFTFS_TREE_H
#define DRIFTFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "driftfs.h"

enum tree_kind {
	/* fixed nodes: the kind is the inode number */
	T_ROOT = 1,
	T_CONTACTS,
	T_USERS,
	T_CONVS,
	T_PLAYBOOKS,
	T_ACCOUNTS,
	T_CTLDIR,
	T_BY_EMAIL,
	T_BY_EXTID,
	T_ATTRIBUTES,
	T_UNSUBSCRIBE,
	T_CONTACTS_NEW,
	T_USERS_BY_EMAIL,
	T_BY_STATUS,
	T_STATUS_OPEN,
	T_STATUS_CLOSED,
	T_STATUS_PENDING,
	T_STATUS_BULK,
	T_STATS_JSON,
	T_CONVS_NEW,
	T_CTL_STATUS,
	T_CTL_STATS,
	T_CTL_ERRORS,
	T_OUTBOX,
	T_CTL_CTL,
	T_SEARCH,		/* search/: lists as empty */
	T__FIXED_END,
	/* per-object nodes */
	T_CONTACT = 32,
	T_CONTACT_JSON,
	T_CONTACT_TAGS,
	T_CONTACT_TIMELINE,
	T_CONTACT_CONVS,
	T_CONTACT_CONV_LINK,	/* id: conversation */
	T_EMAIL_LINK,		/* name: encoded email */
	T_EXTID_LINK,		/* name: encoded external id */
	T_USER_JSON,
	T_USER_EMAIL_LINK,	/* name: encoded email + ".json" */
	T_CONV,
	T_CONV_JSON,
	T_TRANSCRIPT,
	T_MESSAGES,
	T_MESSAGE_JSON,		/* id: message */
	T_MESSAGES_NEW,
	T_REPLY,
	T_NOTE,
	T_ATTACHMENTS,
	T_ATTACHMENT,		/* id: attachment */
	T_CONV_CONTACT_LINK,
	T_STATUS_LINK,		/* id: conversation */
	T_PLAYBOOK_JSON,
	T_ACCOUNT_JSON,		/* name: encoded account id + ".json" */
	T_OUTBOX_ITEM,		/* id: outbox sequence number */
	T_SCRATCH,		/* id: src/fs/scratch.c's file number */
	/* search/<query>/ (tree_search.c); name: the query's entry name */
	T_SEARCH_QUERY,
	T_SEARCH_CONVS,
	T_SEARCH_CONTACTS,
	T_SEARCH_HITS,
	T_SEARCH_CONV_LINK,	/* id: conversation */
	T_SEARCH_CONTACT_LINK,	/* id: contact */
	T__END
};

/* A node: kind plus the id or name that picks the object. */
struct tnode {
	int kind;
	int64_t id;
	char *name;		/* for name-keyed kinds; owned by the holder */
};

struct tattr {
	uint64_t ino;
	mode_t mode;		/* type and permission bits */
	int64_t size;
	int64_t mtime_ms;
	/* Below the millisecond: for a dynamic file, a digest of its
	 * content, so that a change moves its mtime and the kernel rereads
	 * it (see src/fs/ops.c, op_init). */
	uint32_t mtime_ns;
	unsigned nlink;
};

/* What a file is for: how src/fs/ opens and caches it. */
enum tree_access {
	TA_DIR,
	TA_LINK,
	TA_RO,		/* read-only, cacheable: invalidated on change */
	TA_RW,		/* readable and writable (writes: a later issue) */
	TA_WO,		/* only writes act (new, reply, note, ...); reads are empty */
	TA_DYNAMIC,	/* generated on every open (.driftfs files) */
	TA_CTL,		/* .driftfs/ctl: commands */
};

uint64_t tree_ino(const struct tnode *n);
/* The id an inode number of a node keyed by a small id (one below the
 * hashed bit, such as a scratch file's) was made from; pure, any thread. */
int64_t tree_ino_id(uint64_t ino);
/* The path of a fixed node from the mount root ("" for the root). */
const char *tree_fixed_path(int kind);
enum tree_access tree_access(int kind);
/* Whether a node of this kind names its object by name (not id). */
int tree_kind_named(int kind);
/* Whether a node of this kind is under search/ (not search/ itself):
 * results that change with every sync, so the kernel keeps them for a
 * moment only (src/fs/). */
int tree_search_kind(int kind);
/*
 * The cache changed (fs_on_change, after the commit; any thread, no lock
 * needed): the query results tree_search.c keeps for a moment are no
 * longer answers.
 */
void tree_search_changed(void);

/*
 * Finds name in directory dir. child->name is allocated when set (release
 * with tree_node_release()). -ENOENT when there is no such entry, -ENOTDIR
 * when dir is not a directory, -EIO/-EAGAIN when fetching it failed.
 */
int tree_lookup(struct driftfs *d, const struct tnode *dir, const char *name,
		struct tnode *child, struct tattr *attr);
int tree_getattr(struct driftfs *d, const struct tnode *n, struct tattr *attr);

typedef int (*tree_list_cb)(void *ctx, const char *name,
			    const struct tnode *child,
			    const struct tattr *attr);
/*
 * Calls cb for every entry of dir (no "." or ".."), on the calling thread;
 * a non-zero return of cb stops the walk and is returned. For
 * .driftfs/outbox cb runs inside store_outbox_each(), with the store's
 * outbox lock held: it must not use the store. name and child are valid
 * for the call only.
 */
int tree_list(struct driftfs *d, const struct tnode *dir, tree_list_cb cb,
	      void *ctx);
int tree_readlink(struct driftfs *d, const struct tnode *n, struct buf *out);
/* The bytes of a file node. */
int tree_content(struct driftfs *d, const struct tnode *n, struct buf *out);
/*
 * A descriptor to pread a file node's bytes from, for the files too big to
 * load whole (attachments, up to 64 MiB): the caller closes it. -ENOTSUP
 * for a node whose bytes are not a file of their own (use tree_content).
 */
int tree_content_fd(struct driftfs *d, const struct tnode *n);

/*
 * For a contact deleted a moment ago: the node that name in dir (a contact
 * directory or its conversations/) was, with placeholder attributes, so
 * "rm -r" can finish what it started. -ENOENT when the name was none.
 */
int tree_lookup_deleted(const struct tnode *dir, const char *name,
			struct tnode *child, struct tattr *attr);
/* Placeholder attributes of such a node (no data behind it). */
void tree_attr_deleted(const struct tnode *n, struct tattr *attr);

void tree_node_release(struct tnode *n);
int tree_node_copy(struct tnode *dst, const struct tnode *src);

/*
 * What a sync change touches (tree_touch.c): which of the nodes the kernel
 * holds a change of the cache makes stale. The holder of those nodes
 * (src/fs/: a table of every node the kernel knows) files each one under
 * its group, walks the groups and nodes tree_touch_rules names for each
 * change, and asks tree_touch_node what the change does to each node it
 * finds there; a node answered TOUCH_QUERY is settled afterwards, with no
 * lock of the holder's held, by tree_touch_query. Pure functions but
 * tree_touch_query (which queries the store); any thread.
 */
struct sync_change;

/* The groups of nodes one kind of change can touch. */
enum tree_group {
	TG_NONE,	/* in no group: found by inode (a rule's node) */
	TG_CONTACT,	/* id: the contact; its directory and files */
	TG_CONV,	/* id: the conversation; its directory, files and
			 * links, and the messages and attachments found
			 * under it */
	TG_KIND,	/* id: the kind; links by email or external id,
			 * users, playbooks, accounts: small sets */
	TG_ORPHAN,	/* id 0: messages and attachments found with no
			 * known conversation (settled by query) */
};

/*
 * The group of node t, with its id in *id. parent: the node t was found
 * in, if the holder knows it (else NULL): a message or an attachment
 * belongs to the conversation of the directory it was found in.
 */
int tree_touch_group(const struct tnode *t, const struct tnode *parent,
		     int64_t *id);
/* Whether tree_touch_group() of a node of this kind reads parent: the
 * holder looks its parent up only then (node creation is a hot path). */
int tree_touch_group_needs_parent(int kind);

/* What a change does to a node (tree_touch_node): a mask of these. */
#define TOUCH_INODE 1	/* its attributes or bytes changed */
#define TOUCH_ENTRY 2	/* its name in its parent may be gone */
#define TOUCH_QUERY 4	/* changed or gone, perhaps: tree_touch_query */

/* A rule's once bits: what a batch of changes needs once only. */
#define TOUCH_ONCE_CONTACT 1	/* the contact links (by email, id) */
#define TOUCH_ONCE_USERS 2	/* the user links (by email) */
#define TOUCH_ONCE_ORPHANS 4	/* the orphans */

#define TREE_TOUCH_RULES_MAX 4

/* Where a change reaches: a group, or one node. */
struct tree_touch_rule {
	int group;		/* enum tree_group; TG_NONE: node */
	int64_t id;		/* the group's id */
	struct tnode node;	/* TG_NONE: the node (no name); the holder
				 * checks its kind and id */
	int once;		/* TOUCH_ONCE_*: skipped when a rule with
				 * that bit applied to an earlier change of
				 * the batch; 0: always */
};

/* Fills out with the rules of change c, in the order to apply them;
 * returns how many (0 to TREE_TOUCH_RULES_MAX). */
size_t tree_touch_rules(const struct sync_change *c,
			struct tree_touch_rule out[TREE_TOUCH_RULES_MAX]);
/* What change c does to node t, found in group (a rule's group): a mask
 * of TOUCH_*, 0 for nothing. */
unsigned tree_touch_node(const struct sync_change *c, int group,
			 const struct tnode *t);
/* Sorts ids ascending, as tree_touch_query wants convs. */
void tree_touch_sort(int64_t *ids, size_t n);
/*
 * Settles node t, answered TOUCH_QUERY (orphan: found in TG_ORPHAN): 1
 * when the batch changed it, else 0; *gone is set when its object is gone
 * from the cache. convs (nconvs long, sorted) are the conversations the
 * batch changed; NULL: unknown, and every orphan found is changed.
 */
int tree_touch_query(struct driftfs *d, const struct tnode *t, int orphan,
		     const int64_t *convs, size_t nconvs, int *gone);
/* The fixed directories whose listings change c touches: their kinds in
 * *kinds (static), and how many (0: none). */
size_t tree_touch_lists(const struct sync_change *c, const int **kinds);

/* A whole decimal id as the tree names objects (no sign, no leading zero,
 * > 0, nothing after it): 0, or -ENOENT for any other name. */
int tree_parse_id(const char *name, int64_t *out);

#endif
