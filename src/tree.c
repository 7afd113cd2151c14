// SPDX-License-Identifier: MIT
/*
 * tree.c: the kinds of node of DESIGN.md §2 and what each one is: its
 * inode number (stable across mounts), its path when it is fixed, its
 * access, mode and link count, and copying a node. No query: what a
 * directory holds is tree_dir.c's, a node's bytes and times tree_file.c's.
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "names.h"
#include "tree_int.h"

#define PAYLOAD_BITS 56
#define PAYLOAD_MASK ((UINT64_C(1) << PAYLOAD_BITS) - 1)
#define HASHED_BIT (UINT64_C(1) << (PAYLOAD_BITS - 1))

/* An account's id (store_account_hash()) goes into the payload as it is. */
_Static_assert(STORE_ACCOUNT_HASH_BITS == PAYLOAD_BITS - 1,
	       "an account hash must fit below the hashed bit");

const char *const tree_status_names[T_STATUS_BULK - T_STATUS_OPEN + 1] = {
	STATUS_NAME_OPEN, STATUS_NAME_CLOSED, STATUS_NAME_PENDING,
	STATUS_NAME_BULK
};

const char *tree_fixed_path(int kind)
{
	static const char *const paths[T__FIXED_END] = {
		[T_ROOT] = "",
		[T_CONTACTS] = "contacts",
		[T_USERS] = "users",
		[T_CONVS] = "conversations",
		[T_PLAYBOOKS] = "playbooks",
		[T_ACCOUNTS] = "accounts",
		[T_CTLDIR] = ".driftfs",
		[T_BY_EMAIL] = "contacts/by-email",
		[T_BY_EXTID] = "contacts/by-external-id",
		[T_ATTRIBUTES] = "contacts/attributes.json",
		[T_UNSUBSCRIBE] = "contacts/unsubscribe",
		[T_CONTACTS_NEW] = "contacts/new",
		[T_USERS_BY_EMAIL] = "users/by-email",
		[T_BY_STATUS] = "conversations/by-status",
		[T_STATUS_OPEN] = "conversations/by-status/" STATUS_NAME_OPEN,
		[T_STATUS_CLOSED] =
			"conversations/by-status/" STATUS_NAME_CLOSED,
		[T_STATUS_PENDING] =
			"conversations/by-status/" STATUS_NAME_PENDING,
		[T_STATUS_BULK] = "conversations/by-status/" STATUS_NAME_BULK,
		[T_STATS_JSON] = "conversations/stats.json",
		[T_CONVS_NEW] = "conversations/new",
		[T_CTL_STATUS] = ".driftfs/status",
		[T_CTL_STATS] = ".driftfs/stats",
		[T_CTL_ERRORS] = ".driftfs/errors",
		[T_OUTBOX] = ".driftfs/outbox",
		[T_CTL_CTL] = ".driftfs/ctl",
		[T_SEARCH] = "search",
	};

	return kind > 0 && kind < T__FIXED_END && paths[kind] ? paths[kind]
							       : "?";
}

int tree_kind_named(int kind)
{
	return kind == T_EMAIL_LINK || kind == T_EXTID_LINK ||
	       kind == T_USER_EMAIL_LINK || kind == T_ACCOUNT_JSON ||
	       kind == T_SEARCH_QUERY || kind == T_SEARCH_CONVS ||
	       kind == T_SEARCH_CONTACTS || kind == T_SEARCH_HITS;
}

int tree_search_kind(int kind)
{
	return kind >= T_SEARCH_QUERY && kind <= T_SEARCH_CONTACT_LINK;
}

uint64_t tree_ino(const struct tnode *n)
{
	uint64_t payload;

	if (n->kind < T__FIXED_END)
		return (uint64_t)n->kind;
	if (tree_kind_named(n->kind))
		payload = HASHED_BIT |
			  (names_hash64(n->name, strlen(n->name), 0) &
			   (HASHED_BIT - 1));
	else if (n->id > 0 && (uint64_t)n->id < HASHED_BIT)
		payload = (uint64_t)n->id;
	else
		payload = HASHED_BIT | (names_hash64(&n->id, sizeof(n->id), 1) &
					(HASHED_BIT - 1));
	return ((uint64_t)n->kind << PAYLOAD_BITS) | (payload & PAYLOAD_MASK);
}

int64_t tree_ino_id(uint64_t ino)
{
	return (int64_t)(ino & (HASHED_BIT - 1));
}

enum tree_access tree_access(int kind)
{
	switch (kind) {
	case T_ROOT:
	case T_CONTACTS:
	case T_USERS:
	case T_CONVS:
	case T_PLAYBOOKS:
	case T_ACCOUNTS:
	case T_CTLDIR:
	case T_BY_EMAIL:
	case T_BY_EXTID:
	case T_USERS_BY_EMAIL:
	case T_BY_STATUS:
	case T_STATUS_OPEN:
	case T_STATUS_CLOSED:
	case T_STATUS_PENDING:
	case T_STATUS_BULK:
	case T_OUTBOX:
	case T_CONTACT:
	case T_CONTACT_CONVS:
	case T_CONV:
	case T_MESSAGES:
	case T_ATTACHMENTS:
	case T_SEARCH:
	case T_SEARCH_QUERY:
	case T_SEARCH_CONVS:
	case T_SEARCH_CONTACTS:
		return TA_DIR;
	case T_SEARCH_CONV_LINK:
	case T_SEARCH_CONTACT_LINK:
	case T_CONTACT_CONV_LINK:
	case T_EMAIL_LINK:
	case T_EXTID_LINK:
	case T_USER_EMAIL_LINK:
	case T_CONV_CONTACT_LINK:
	case T_STATUS_LINK:
		return TA_LINK;
	case T_CONTACT_JSON:
	case T_CONTACT_TAGS:
	case T_USER_JSON:
	case T_MESSAGE_JSON:
	case T_ACCOUNT_JSON:
		return TA_RW;
	case T_UNSUBSCRIBE:
	case T_CONTACTS_NEW:
	case T_CONVS_NEW:
	case T_CONTACT_TIMELINE:
	case T_MESSAGES_NEW:
	case T_REPLY:
	case T_NOTE:
		return TA_WO;
	case T_CTL_STATUS:
	case T_CTL_STATS:
	case T_CTL_ERRORS:
	case T_STATS_JSON:
	case T_OUTBOX_ITEM:
	case T_SEARCH_HITS:
		return TA_DYNAMIC;
	case T_CTL_CTL:
		return TA_CTL;
	default:
		return TA_RO;
	}
}

mode_t tree_kind_mode(int kind)
{
	if (kind == T_SEARCH || tree_search_kind(kind))
		return tree_access(kind) == TA_DIR ? S_IFDIR | 0555
		       : tree_access(kind) == TA_LINK ? S_IFLNK | 0777
						     : S_IFREG | 0444;
	switch (tree_access(kind)) {
	case TA_DIR:
		return S_IFDIR | 0755;
	case TA_LINK:
		return S_IFLNK | 0777;
	case TA_RW:
		return S_IFREG | 0644;
	case TA_WO:
	case TA_CTL:
		/*
		 * Readable (and empty) although only writes mean anything:
		 * a 0200 file makes every "grep -r" and "rsync -a" of the
		 * mount fail with EACCES.
		 */
		return S_IFREG | 0644;
	default:
		return S_IFREG | 0444;
	}
}

/*
 * Directories holding subdirectories say nlink 1 ("not counted"), as btrfs
 * does: 2 would tell find(1) and others that there are none, and counting
 * them would cost a query per stat.
 */
unsigned tree_kind_nlink(int kind)
{
	switch (kind) {
	case T_ROOT:
	case T_CONTACTS:
	case T_USERS:
	case T_CONVS:
	case T_CTLDIR:
	case T_BY_STATUS:
	case T_CONTACT:
	case T_CONV:
		return 1;
	default:
		return tree_access(kind) == TA_DIR ? 2 : 1;
	}
}

void tree_node_release(struct tnode *n)
{
	free(n->name);
	n->name = NULL;
}

int tree_node_copy(struct tnode *dst, const struct tnode *src)
{
	*dst = *src;
	dst->name = NULL;
	if (src->name) {
		dst->name = strdup(src->name);
		if (!dst->name)
			return -ENOMEM;
	}
	return 0;
}
