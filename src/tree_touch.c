// SPDX-License-Identifier: MIT
/*
 * tree_touch.c: which nodes a sync change touches, as tree knowledge with
 * no FUSE in it: the group a node belongs to, the groups and nodes each
 * change reaches and what it does to each, the query that settles a node
 * whose fate the change leaves open, and the fixed listings a change of
 * lists touches. The table of nodes the kernel holds, and the
 * notifications, are src/fs/'s (nodes.c, notify.c).
 */
#include "tree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "sync.h"

int tree_touch_group_needs_parent(int kind)
{
	return kind == T_MESSAGE_JSON || kind == T_ATTACHMENT;
}

int tree_touch_group(const struct tnode *t, const struct tnode *parent,
		     int64_t *id)
{
	*id = t->id;
	switch (t->kind) {
	case T_CONTACT:
	case T_CONTACT_JSON:
	case T_CONTACT_TAGS:
	case T_CONTACT_TIMELINE:
	case T_CONTACT_CONVS:
		return TG_CONTACT;
	case T_CONV:
	case T_CONV_JSON:
	case T_TRANSCRIPT:
	case T_MESSAGES:
	case T_ATTACHMENTS:
	case T_CONV_CONTACT_LINK:
	case T_MESSAGES_NEW:
	case T_STATUS_LINK:
	case T_CONTACT_CONV_LINK:
		return TG_CONV;
	case T_MESSAGE_JSON:
	case T_ATTACHMENT:
		if (parent && (parent->kind == T_MESSAGES ||
			       parent->kind == T_ATTACHMENTS)) {
			*id = parent->id;
			return TG_CONV;
		}
		*id = 0;
		return TG_ORPHAN;
	case T_EMAIL_LINK:
	case T_EXTID_LINK:
	case T_USER_EMAIL_LINK:
	case T_USER_JSON:
	case T_PLAYBOOK_JSON:
	case T_ACCOUNT_JSON:
		*id = t->kind;
		return TG_KIND;
	default:
		return TG_NONE;
	}
}

/* Adds the rule for one node (kind, id) to out[*n]. */
static void rule_node(struct tree_touch_rule *out, size_t *n, int kind,
		      int64_t id)
{
	memset(&out[*n], 0, sizeof(out[*n]));
	out[*n].group = TG_NONE;
	out[*n].node.kind = kind;
	out[*n].node.id = id;
	(*n)++;
}

/* Adds the rule for group (group, id) to out[*n]. */
static void rule_group(struct tree_touch_rule *out, size_t *n, int group,
		       int64_t id, int once)
{
	memset(&out[*n], 0, sizeof(out[*n]));
	out[*n].group = group;
	out[*n].id = id;
	out[*n].once = once;
	(*n)++;
}

size_t tree_touch_rules(const struct sync_change *c,
			struct tree_touch_rule out[TREE_TOUCH_RULES_MAX])
{
	static const int pruned_kind[] = {
		[SO_USER] = T_USER_JSON,
		[SO_PLAYBOOK] = T_PLAYBOOK_JSON,
		[SO_ACCOUNT] = T_ACCOUNT_JSON,
	};
	size_t n = 0;

	switch (c->what) {
	case SO_CONTACT:
		rule_group(out, &n, TG_CONTACT, c->id, 0);
		/*
		 * Which contact an email names may have changed. A removed
		 * contact's links may be gone: those go by query, each link
		 * once a batch (its cmark), but the rules run for every
		 * removed contact, not once a batch.
		 */
		rule_group(out, &n, TG_KIND, T_EMAIL_LINK,
			   c->gone ? 0 : TOUCH_ONCE_CONTACT);
		rule_group(out, &n, TG_KIND, T_EXTID_LINK,
			   c->gone ? 0 : TOUCH_ONCE_CONTACT);
		break;
	case SO_CONVERSATION:
		/* Both the old and the new contact's conversations/ list. */
		if (c->old_contact)
			rule_node(out, &n, T_CONTACT_CONVS, c->old_contact);
		if (c->contact && c->contact != c->old_contact)
			rule_node(out, &n, T_CONTACT_CONVS, c->contact);
		rule_group(out, &n, TG_CONV, c->id, 0);
		/* Once a batch: the query checks each orphan against every
		 * conversation the batch changed. */
		rule_group(out, &n, TG_ORPHAN, 0, TOUCH_ONCE_ORPHANS);
		break;
	case SO_USER:
		rule_node(out, &n, T_USER_JSON, c->id);
		rule_group(out, &n, TG_KIND, T_USER_EMAIL_LINK,
			   TOUCH_ONCE_USERS);
		break;
	case SO_PLAYBOOK:
		rule_node(out, &n, T_PLAYBOOK_JSON, c->id);
		break;
	case SO_ACCOUNT:
		rule_group(out, &n, TG_KIND, T_ACCOUNT_JSON, 0);
		break;
	case SO_PRUNED:
		/* Rows of a full list were removed: which, by query. */
		if (c->id == SO_USER || c->id == SO_PLAYBOOK ||
		    c->id == SO_ACCOUNT)
			rule_group(out, &n, TG_KIND, pruned_kind[c->id], 0);
		/* A removed user's link by email may be gone too. */
		if (c->id == SO_USER)
			rule_group(out, &n, TG_KIND, T_USER_EMAIL_LINK, 0);
		break;
	case SO_LISTS:
		break;
	}
	return n;
}

unsigned tree_touch_node(const struct sync_change *c, int group,
			 const struct tnode *t)
{
	switch (c->what) {
	case SO_CONTACT:
		if (group != TG_CONTACT)	/* links by email or id */
			return c->gone ? TOUCH_INODE | TOUCH_QUERY : TOUCH_INODE;
		if (t->id != c->id)
			return 0;
		/* A deleted contact's directory goes: by query. */
		return t->kind == T_CONTACT ? TOUCH_INODE | TOUCH_QUERY
					    : TOUCH_INODE;
	case SO_CONVERSATION:
		if (group == TG_ORPHAN)
			return TOUCH_QUERY;
		if (group != TG_CONV)
			return TOUCH_INODE;	/* a contact's conversations/ */
		switch (t->kind) {
		case T_STATUS_LINK:
		case T_CONTACT_CONV_LINK:
			/* Moved to another status or contact: the old name
			 * goes. */
			return TOUCH_INODE | TOUCH_ENTRY;
		case T_CONV:
			/* Gone from Drift: its name in conversations/ goes
			 * (and the kernel's entries below it). */
			return c->gone ? TOUCH_INODE | TOUCH_ENTRY : TOUCH_INODE;
		case T_CONV_CONTACT_LINK:
			/* Its contact changed or was removed: the link may
			 * be gone. */
			return c->contact != c->old_contact
				       ? TOUCH_INODE | TOUCH_ENTRY
				       : TOUCH_INODE;
		case T_MESSAGE_JSON:
		case T_ATTACHMENT:
			/* Changed, and perhaps gone: by query. */
			return TOUCH_INODE | TOUCH_QUERY;
		default:
			return TOUCH_INODE;
		}
	case SO_ACCOUNT:
		return t->kind == T_ACCOUNT_JSON && c->key && t->name &&
				       !strcmp(t->name, c->key)
			       ? TOUCH_INODE
			       : 0;
	case SO_PRUNED:
		return TOUCH_QUERY;
	default:
		return TOUCH_INODE;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

void tree_touch_sort(int64_t *ids, size_t n)
{
	qsort(ids, n, sizeof(*ids), cmp_i64);
}

int tree_touch_query(struct driftfs *d, const struct tnode *t, int orphan,
		     const int64_t *convs, size_t nconvs, int *gone)
{
	struct store_row row = { 0 };
	struct tattr a;
	int k = t->kind, r;

	if (k == T_CONTACT) {
		r = store_one(d->store, Q_CONTACT, t->id, NULL, &row);
	} else if (k == T_MESSAGE_JSON || k == T_ATTACHMENT) {
		r = store_one(d->store,
			      k == T_MESSAGE_JSON ? Q_MESSAGE : Q_ATTACHMENT,
			      t->id, NULL, &row);
	} else {
		r = tree_getattr(d, t, &a);
	}
	*gone = r == -ENOENT;
	/* An orphan changed if its row names any conversation the batch
	 * changed, not only the one that found it. */
	return *gone ||
	       (!r && orphan &&
		(!convs ||
		 bsearch(&row.id2, convs, nconvs, sizeof(*convs), cmp_i64)));
}

size_t tree_touch_lists(const struct sync_change *c, const int **kinds)
{
	static const int lists[] = {
		T_CONTACTS,	  T_USERS,	  T_CONVS,	    T_BY_EMAIL,
		T_BY_EXTID,	  T_USERS_BY_EMAIL, T_STATUS_OPEN,  T_STATUS_CLOSED,
		T_STATUS_PENDING, T_STATUS_BULK,    T_STATS_JSON,   T_ATTRIBUTES,
		T_PLAYBOOKS,	  T_ACCOUNTS,
	};

	*kinds = lists;
	if (c->what != SO_LISTS && c->what != SO_PRUNED)
		return 0;
	return sizeof(lists) / sizeof(lists[0]);
}
