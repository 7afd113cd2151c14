// SPDX-License-Identifier: MIT
/*
 * nodes.c: the node table, the inodes the kernel holds (lookup count > 0)
 * and the tree node each one is, with their groups for the notifier, the
 * listing generations of directories, the paths of nodes for error lines,
 * and the tombstones of contacts this mount deleted. No request handler
 * and no FUSE call: the handlers (ops.c, ...) and the notifier use it.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "tree.h"

void fs_fnode_free(struct fnode *n)
{
	tree_node_release(&n->t);
	if (n->name != n->first_name)
		free(n->name);
	free(n);
}

/* Whether this thread holds fs.lock (an error line then cannot name the
 * path: building it needs the lock). */
__thread int fs_nodes_locked;

void fs_nodes_lock(struct fs *f)
{
	pthread_mutex_lock(&f->lock);
	fs_nodes_locked = 1;
}

void fs_nodes_unlock(struct fs *f)
{
	fs_nodes_locked = 0;
	pthread_mutex_unlock(&f->lock);
}

static size_t bucket_of(const struct fs *f, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) % f->nbuckets;
}

struct fnode *fs_node_find_locked(struct fs *f, uint64_t ino)
{
	for (struct fnode *n = f->buckets[bucket_of(f, ino)]; n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

static size_t group_bucket(size_t nb, int cls, int64_t id)
{
	return (size_t)(names_hash64(&id, sizeof(id), (uint64_t)cls) % nb);
}

/* The group of t (tree_touch_group), found as a child of parent. */
static int group_of(struct fs *f, const struct tnode *t, uint64_t parent,
		    int64_t *id)
{
	const struct fnode *p = NULL;

	if (parent && tree_touch_group_needs_parent(t->kind))
		p = fs_node_find_locked(f, parent);

	return tree_touch_group(t, p ? &p->t : NULL, id);
}

static void group_link_locked(struct fs *f, struct fnode *n, size_t nb)
{
	struct fnode **head = &f->groups[group_bucket(nb, n->gcls, n->gid)];

	n->gnext = *head;
	if (*head)
		(*head)->gpprev = &n->gnext;
	*head = n;
	n->gpprev = head;
}

static void group_unlink_locked(struct fnode *n)
{
	if (!n->gpprev)
		return;
	*n->gpprev = n->gnext;
	if (n->gnext)
		n->gnext->gpprev = n->gpprev;
	n->gnext = NULL;
	n->gpprev = NULL;
}

/* The first node of group (cls, id)'s bucket; follow gnext, and check
 * gcls and gid (a bucket holds other groups too). */
struct fnode *fs_group_first_locked(struct fs *f, int cls, int64_t id)
{
	return f->groups[group_bucket(f->nbuckets, cls, id)];
}

static void node_grow_locked(struct fs *f)
{
	size_t nb = f->nbuckets * 2;
	struct fnode **b = calloc(nb, sizeof(*b));
	struct fnode **g = calloc(nb, sizeof(*g));
	struct fnode **old_groups = f->groups;

	if (!b || !g) {
		free(b);
		free(g);
		return;
	}
	f->groups = g;
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = old_groups[i], *next;

		for (; n; n = next) {
			next = n->gnext;
			group_link_locked(f, n, nb);
		}
	}
	free(old_groups);
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = f->buckets[i], *next;

		for (; n; n = next) {
			size_t k;

			next = n->next;
			k = (size_t)((n->ino * 0x9e3779b97f4a7c15ULL) >> 20) % nb;
			n->next = b[k];
			b[k] = n;
		}
	}
	free(f->buckets);
	f->buckets = b;
	f->nbuckets = nb;
}

/*
 * Records one more kernel reference to t (found as name in parent).
 * Returns 0, or -EIO when another object already holds this inode number
 * (a hash collision: refused rather than confused).
 */
int fs_node_ref(struct fs *f, const struct tnode *t, uint64_t ino,
		uint64_t parent, const char *name)
{
	struct fnode *n;
	int r = 0;

	fs_nodes_lock(f);
	n = fs_node_find_locked(f, ino);
	if (n) {
		if (n->t.kind != t->kind || n->t.id != t->id ||
		    (t->name && (!n->t.name || strcmp(t->name, n->t.name)))) {
			log_error_event("inode %llu: two objects share it; "
					"%s refused",
					(unsigned long long)ino, name);
			r = -EIO;
			goto out;
		}
		n->nlookup++;
		if (parent && strcmp(n->name, name)) {
			char *nm = strdup(name);

			if (nm) {
				if (n->name != n->first_name)
					free(n->name);
				n->name = nm;
				n->parent = parent;
			}
		}
		goto out;
	}
	n = calloc(1, sizeof(*n) + strlen(name) + 1);
	if (!n || tree_node_copy(&n->t, t)) {
		free(n);
		r = -ENOMEM;
		goto out;
	}
	strcpy(n->first_name, name);
	n->name = n->first_name;
	n->ino = ino;
	n->nlookup = 1;
	n->parent = parent;
	if (f->count >= f->nbuckets)
		node_grow_locked(f);
	n->next = f->buckets[bucket_of(f, ino)];
	f->buckets[bucket_of(f, ino)] = n;
	f->count++;
	n->gcls = (uint8_t)group_of(f, t, parent, &n->gid);
	if (n->gcls != TG_NONE)
		group_link_locked(f, n, f->nbuckets);
out:
	fs_nodes_unlock(f);
	return r;
}

void fs_node_forget(struct fs *f, uint64_t ino, uint64_t nlookup)
{
	struct fnode **p, *n;

	if (ino < T__FIXED_END)
		return;
	fs_nodes_lock(f);
	for (p = &f->buckets[bucket_of(f, ino)]; (n = *p); p = &n->next) {
		if (n->ino != ino)
			continue;
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		if (!n->nlookup) {
			*p = n->next;
			group_unlink_locked(n);
			if (n->t.kind == T_SCRATCH)
				fs_scratch_forget_locked(f, ino);
			fs_fnode_free(n);
			f->count--;
		}
		break;
	}
	fs_nodes_unlock(f);
}

/* Copies the tree node of ino; fixed nodes need no table entry. */
int fs_node_get(struct fs *f, uint64_t ino, struct tnode *out)
{
	struct fnode *n;
	int r = 0;

	if (ino < T__FIXED_END) {
		out->kind = (int)ino;
		out->id = 0;
		out->name = NULL;
		return 0;
	}
	fs_nodes_lock(f);
	n = fs_node_find_locked(f, ino);
	if (n)
		r = tree_node_copy(out, &n->t);
	else
		r = -ESTALE;
	fs_nodes_unlock(f);
	return r;
}

/*
 * How many times the listing of directory ino was invalidated. The kernel
 * keeps a directory's listing while its mtime stays the same (an empty
 * listing has no pages for an invalidation to drop), so each invalidation
 * also moves the mtime on by a nanosecond, below the millisecond the API's
 * times have.
 */
uint32_t fs_dir_gen(struct fs *f, uint64_t ino)
{
	struct fnode *n;
	int held = fs_nodes_locked; /* a caller with the table locked */
	uint32_t g;

	if (!held)
		fs_nodes_lock(f);
	if (ino < T__FIXED_END) {
		g = f->fixed_gen[ino];
	} else {
		n = fs_node_find_locked(f, ino);
		g = n ? n->gen : 0;
	}
	if (!held)
		fs_nodes_unlock(f);
	return g;
}

/*
 * Writes "PATH" of ino (and "/name" when name is given) into out: the path
 * is rebuilt from the names the kernel looked nodes up by, up to a fixed
 * node. With try set, a node table this thread holds gives "inode N"
 * instead of a deadlock (see ctx_format).
 */
void fs_node_path_of(struct fs *f, uint64_t ino, const char *name, char *out,
		     size_t size, int try)
{
	char *parts[16];
	size_t n = 0, len;
	int i;

	if (try && fs_nodes_locked) {
		len = (size_t)snprintf(out, size, "inode %llu",
				       (unsigned long long)ino);
		if (name && len < size)
			snprintf(out + len, size - len, "/%s", name);
		return;
	}
	fs_nodes_lock(f);
	while (ino >= T__FIXED_END && n < 16) {
		struct fnode *node = fs_node_find_locked(f, ino);

		if (!node || !node->name)
			break;
		parts[n] = strdup(node->name);
		if (!parts[n])
			break;
		n++;
		ino = node->parent;
	}
	fs_nodes_unlock(f);
	len = (size_t)snprintf(out, size, "%s",
			       ino < T__FIXED_END ? tree_fixed_path((int)ino)
						  : "...");
	for (i = (int)n - 1; i >= 0; i--) {
		if (len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s",
						len ? "/" : "", parts[i]);
		free(parts[i]);
	}
	if (name && len < size)
		snprintf(out + len, size - len, "%s%s", len ? "/" : "", name);
}

void fs_node_path(struct fs *f, uint64_t ino, const char *name, char *out,
		  size_t size)
{
	fs_node_path_of(f, ino, name, out, size, 0);
}

void fs_tomb_add(struct fs *f, int64_t id)
{
	size_t oldest = 0;

	fs_nodes_lock(f);
	for (size_t i = 1; i < sizeof(f->tombs) / sizeof(f->tombs[0]); i++)
		if (f->tombs[i].until_ms < f->tombs[oldest].until_ms)
			oldest = i;
	f->tombs[oldest].id = id;
	f->tombs[oldest].until_ms = clock_mono_ms() + 60000;
	fs_nodes_unlock(f);
}

int fs_tomb_has(struct fs *f, int64_t id)
{
	int found = 0;

	fs_nodes_lock(f);
	for (size_t i = 0; i < sizeof(f->tombs) / sizeof(f->tombs[0]); i++)
		if (f->tombs[i].id == id &&
		    f->tombs[i].until_ms > clock_mono_ms())
			found = 1;
	fs_nodes_unlock(f);
	return found;
}

/* Whether name in dir is (part of) a contact this mount just deleted. */
int fs_in_tomb(struct fs *f, const struct tnode *dir, const char *name)
{
	int64_t id = 0;

	if (dir->kind == T_CONTACT || dir->kind == T_CONTACT_CONVS)
		return fs_tomb_has(f, dir->id);
	if (dir->kind == T_CONTACTS &&
	    sscanf(name, "%" SCNd64, &id) == 1 && id > 0)
		return fs_tomb_has(f, id);
	return 0;
}
