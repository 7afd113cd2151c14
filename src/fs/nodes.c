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
#include "stats.h"
#include "tree.h"

_Static_assert(sizeof(struct fnode) == 72,
	       "struct fnode: its size is the daemon's memory a node");
_Static_assert(T__END <= UINT8_MAX, "struct fnode.kind is a byte");

/* The id bits of an inode number (tree.h: (kind << 56) | id). */
#define INO_KIND_SHIFT 56
#define INO_ID_MASK ((UINT64_C(1) << INO_KIND_SHIFT) - 1)

static struct fnode_ext *fnode_ext(const struct fnode *n)
{
	struct fnode_ext *x;

	memcpy(&x, n->area, sizeof(x));
	return x;
}

int64_t fs_fnode_id(const struct fnode *n)
{
	if (n->flags & FN_EXT)
		return fnode_ext(n)->id;
	return (int64_t)(n->ino & INO_ID_MASK);
}

const char *fs_fnode_name(const struct fnode *n)
{
	if (n->flags & FN_EXT)
		return fnode_ext(n)->names;
	return n->area;
}

void fs_fnode_tnode(const struct fnode *n, struct tnode *t)
{
	struct fnode_ext *x = n->flags & FN_EXT ? fnode_ext(n) : NULL;

	t->kind = n->kind;
	t->id = fs_fnode_id(n);
	t->name = x && x->tname ? x->names + x->tname : NULL;
}

/*
 * Stores name and t's id and name in n (whose ino and kind are set), in
 * its area when they fit: an ext only for a long name, an id the inode
 * number does not carry, or a name-keyed node's name. The old ext, if any,
 * is freed only on success. -ENOMEM leaves n as it was.
 */
static int fnode_set_names(struct fnode *n, const char *name, int64_t id,
			   const char *tname)
{
	size_t len = strlen(name), tlen = tname ? strlen(tname) : 0;
	int plain = (uint64_t)id <= INO_ID_MASK &&
		    n->ino == ((uint64_t)n->kind << INO_KIND_SHIFT |
			       (uint64_t)id);
	struct fnode_ext *x = NULL;

	if (plain && !tname && len < FNODE_INLINE) {
		if (n->flags & FN_EXT)
			free(fnode_ext(n));
		n->flags &= (uint8_t)~FN_EXT;
		memcpy(n->area, name, len + 1);
		return 0;
	}
	x = malloc(sizeof(*x) + len + 1 + (tname ? tlen + 1 : 0));
	if (!x)
		return -ENOMEM;
	x->id = id;
	x->tname = tname ? (uint32_t)(len + 1) : 0;
	memcpy(x->names, name, len + 1);
	if (tname)
		memcpy(x->names + len + 1, tname, tlen + 1);
	if (n->flags & FN_EXT)
		free(fnode_ext(n));
	n->flags |= FN_EXT;
	memcpy(n->area, &x, sizeof(x));
	return 0;
}

static void fnode_clear(struct fnode *n)
{
	if (n->flags & FN_EXT)
		free(fnode_ext(n));
	n->flags = 0;
	n->ino = 0;
}

static struct fnode *node_at(const struct fs *f, uint32_t i)
{
	return &f->blocks[i / FNODE_BLOCK][i % FNODE_BLOCK];
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

/* The home slot of ino in a table of nslots (a power of two). Every bit
 * must reach the slot: the nodes of one conversation (its directory,
 * files, links) differ only in the kind, the top byte, and would share a
 * home and make the probe runs long. A 64-bit finalizer (MurmurHash3's)
 * mixes them all. */
static size_t slot_of(size_t nslots, uint64_t ino)
{
	ino ^= ino >> 33;
	ino *= 0xff51afd7ed558ccdULL;
	ino ^= ino >> 33;
	ino *= 0xc4ceb9fe1a85ec53ULL;
	ino ^= ino >> 33;
	return (size_t)ino & (nslots - 1);
}

static size_t ghead_of(size_t nheads, int cls, int64_t id)
{
	return (size_t)(names_hash64(&id, sizeof(id), (uint64_t)cls) &
			(nheads - 1));
}

/* The slot holding ino, or the empty slot where it would go. */
static size_t slot_find(const struct fs *f, uint64_t ino)
{
	size_t mask = f->nslots - 1, i = slot_of(f->nslots, ino);

	while (f->slots[i] != FNODE_NONE &&
	       node_at(f, f->slots[i])->ino != ino)
		i = (i + 1) & mask;
	return i;
}

struct fnode *fs_node_find_locked(struct fs *f, uint64_t ino)
{
	size_t i = slot_find(f, ino);

	return f->slots[i] == FNODE_NONE ? NULL : node_at(f, f->slots[i]);
}

/* Empties slot i, moving back the entries after it that their home slot
 * lets move (linear probing's deletion: no tombstones). */
static void slot_remove(struct fs *f, size_t i)
{
	size_t mask = f->nslots - 1, j = i;

	for (;;) {
		size_t home;

		j = (j + 1) & mask;
		if (f->slots[j] == FNODE_NONE)
			break;
		home = slot_of(f->nslots, node_at(f, f->slots[j])->ino);
		/* The entry at j stays when its home lies cyclically in
		 * (i, j]: moving it to i would put it before its home. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		f->slots[i] = f->slots[j];
		i = j;
	}
	f->slots[i] = FNODE_NONE;
}

/* The group of t (tree_touch_group), found as a child of parent. */
static int group_of(struct fs *f, const struct tnode *t, uint64_t parent,
		    int64_t *id)
{
	const struct fnode *p = NULL;
	struct tnode pt;

	if (parent && tree_touch_group_needs_parent(t->kind))
		p = fs_node_find_locked(f, parent);
	if (p)
		fs_fnode_tnode(p, &pt);
	return tree_touch_group(t, p ? &pt : NULL, id);
}

static void group_link_locked(struct fs *f, struct fnode *n, uint32_t idx)
{
	uint32_t *head = &f->gheads[ghead_of(f->ngheads, n->gcls, n->gid)];

	n->gnext = *head;
	n->gprev = FNODE_NONE;
	if (*head != FNODE_NONE)
		node_at(f, *head)->gprev = idx;
	*head = idx;
}

static void group_unlink_locked(struct fs *f, struct fnode *n)
{
	if (n->gcls == TG_NONE)
		return;
	if (n->gprev != FNODE_NONE)
		node_at(f, n->gprev)->gnext = n->gnext;
	else
		f->gheads[ghead_of(f->ngheads, n->gcls, n->gid)] = n->gnext;
	if (n->gnext != FNODE_NONE)
		node_at(f, n->gnext)->gprev = n->gprev;
	n->gnext = n->gprev = FNODE_NONE;
	n->gcls = TG_NONE;
}

struct fnode *fs_group_first_locked(struct fs *f, int cls, int64_t id)
{
	uint32_t i = f->gheads[ghead_of(f->ngheads, cls, id)];

	return i == FNODE_NONE ? NULL : node_at(f, i);
}

struct fnode *fs_group_next_locked(struct fs *f, const struct fnode *n)
{
	return n->gnext == FNODE_NONE ? NULL : node_at(f, n->gnext);
}

/* Tables of nslots and nslots / 4 group chains, filled from the blocks;
 * -ENOMEM keeps the old ones (which still work, only fuller). */
static int tables_build(struct fs *f, size_t nslots)
{
	size_t ngheads = nslots / 4, mask = nslots - 1;
	uint32_t *slots = malloc(nslots * sizeof(*slots));
	uint32_t *gheads = malloc(ngheads * sizeof(*gheads));

	if (!slots || !gheads) {
		free(slots);
		free(gheads);
		return -ENOMEM;
	}
	memset(slots, 0xff, nslots * sizeof(*slots));
	memset(gheads, 0xff, ngheads * sizeof(*gheads));
	free(f->slots);
	free(f->gheads);
	f->slots = slots;
	f->nslots = nslots;
	f->gheads = gheads;
	f->ngheads = ngheads;
	for (uint32_t i = 0; i < f->nused; i++) {
		struct fnode *n = node_at(f, i);
		size_t k;

		if (!n->ino)
			continue;
		k = slot_of(nslots, n->ino);
		while (slots[k] != FNODE_NONE)
			k = (k + 1) & mask;
		slots[k] = i;
		if (n->gcls != TG_NONE)
			group_link_locked(f, n, i);
	}
	return 0;
}

int fs_nodes_init(struct fs *f)
{
	f->free_head = FNODE_NONE;
	return tables_build(f, 1024);
}

void fs_nodes_release(struct fs *f)
{
	for (uint32_t i = 0; i < f->nused; i++)
		fnode_clear(node_at(f, i));
	for (uint32_t b = 0; b < f->nblocks; b++)
		free(f->blocks[b]);
	free(f->blocks);
	free(f->slots);
	free(f->gheads);
	f->blocks = NULL;
	f->slots = f->gheads = NULL;
	f->nblocks = f->nused = 0;
	f->count = 0;
}

/* A free slot of the blocks (a new block when none is), or FNODE_NONE. */
static uint32_t node_alloc_locked(struct fs *f)
{
	uint32_t i = f->free_head;

	if (i != FNODE_NONE) {
		f->free_head = node_at(f, i)->gnext;
		return i;
	}
	if (f->nused == f->nblocks * FNODE_BLOCK) {
		struct fnode **bl, *b;

		if (f->nblocks >= (FNODE_NONE - 1) / FNODE_BLOCK)
			return FNODE_NONE;
		bl = realloc(f->blocks, (f->nblocks + 1) * sizeof(*bl));
		if (!bl)
			return FNODE_NONE;
		f->blocks = bl;
		b = calloc(FNODE_BLOCK, sizeof(*b));
		if (!b)
			return FNODE_NONE;
		f->blocks[f->nblocks++] = b;
	}
	return f->nused++;
}

static void node_free_locked(struct fs *f, struct fnode *n, uint32_t i)
{
	fnode_clear(n);
	n->gnext = f->free_head;
	f->free_head = i;
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
	struct tnode nt;
	uint32_t i;
	size_t k;
	int r = 0;

	fs_nodes_lock(f);
	n = fs_node_find_locked(f, ino);
	if (n) {
		fs_fnode_tnode(n, &nt);
		if (nt.kind != t->kind || nt.id != t->id ||
		    (t->name && (!nt.name || strcmp(t->name, nt.name)))) {
			log_error_event("inode %llu: two objects share it; "
					"%s refused",
					(unsigned long long)ino, name);
			r = -EIO;
			goto out;
		}
		if (n->nlookup != FNODE_PINNED)
			n->nlookup++;
		/* A new name that cannot be stored (no memory) leaves the
		 * old one: an error line's path may then be stale. */
		if (parent && strcmp(fs_fnode_name(n), name) &&
		    !fnode_set_names(n, name, nt.id, nt.name))
			n->parent = parent;
		goto out;
	}
	if (ino == 0 || t->kind < 0 || t->kind >= T__END) {
		r = -EINVAL;
		goto out;
	}
	if ((f->count + 1) * 4 > f->nslots * 3)
		tables_build(f, f->nslots * 2);
	if ((f->count + 1) * 8 > f->nslots * 7) {
		/* could not grow: refuse rather than fill the table */
		r = -ENOMEM;
		goto out;
	}
	i = node_alloc_locked(f);
	if (i == FNODE_NONE) {
		r = -ENOMEM;
		goto out;
	}
	n = node_at(f, i);
	memset(n, 0, sizeof(*n));
	n->ino = ino;
	n->kind = (uint8_t)t->kind;
	if (fnode_set_names(n, name, t->id, t->name)) {
		node_free_locked(f, n, i);
		r = -ENOMEM;
		goto out;
	}
	n->nlookup = 1;
	n->parent = parent;
	n->gnext = n->gprev = FNODE_NONE;
	k = slot_find(f, ino);
	f->slots[k] = i;
	f->count++;
	n->gcls = (uint8_t)group_of(f, t, parent, &n->gid);
	if (n->gcls != TG_NONE)
		group_link_locked(f, n, i);
	if (tree_search_kind(t->kind))
		stats_add("search nodes", 1);	/* held now (queries.c) */
out:
	fs_nodes_unlock(f);
	return r;
}

void fs_node_forget(struct fs *f, uint64_t ino, uint64_t nlookup)
{
	struct fnode *n;
	size_t k;
	uint32_t i;

	if (ino < T__FIXED_END)
		return;
	fs_nodes_lock(f);
	k = slot_find(f, ino);
	i = f->slots[k];
	if (i == FNODE_NONE)
		goto out;
	n = node_at(f, i);
	if (n->nlookup == FNODE_PINNED)
		goto out;
	n->nlookup = n->nlookup > nlookup ? n->nlookup - (uint32_t)nlookup : 0;
	if (n->nlookup)
		goto out;
	slot_remove(f, k);
	group_unlink_locked(f, n);
	if (n->kind == T_SCRATCH)
		fs_scratch_forget_locked(f, ino);
	if (tree_search_kind(n->kind))
		stats_add("search nodes", -1);
	node_free_locked(f, n, i);
	f->count--;
out:
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
	if (n) {
		struct tnode t;

		fs_fnode_tnode(n, &t);
		r = tree_node_copy(out, &t);
	} else {
		r = -ESTALE;
	}
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

		if (!node)
			break;
		parts[n] = strdup(fs_fnode_name(node));
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
	f->tombs[oldest].until_ms = clock_mono_ms() + FS_TOMB_MS;
	fs_nodes_unlock(f);
}

/* rmdir of the contact's directory: rm -r is done with it, and the path
 * answers ENOENT from now on. */
void fs_tomb_end(struct fs *f, int64_t id)
{
	fs_nodes_lock(f);
	for (size_t i = 0; i < sizeof(f->tombs) / sizeof(f->tombs[0]); i++)
		if (f->tombs[i].id == id) {
			f->tombs[i].id = 0;
			f->tombs[i].until_ms = 0;
		}
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

/* Whether name in dir is (part of) a contact this mount just deleted.
 * Not its contact.json: that is the contact, gone at once (rm -r does not
 * look it up again after unlinking it). */
int fs_in_tomb(struct fs *f, const struct tnode *dir, const char *name)
{
	int64_t id = 0;

	if (dir->kind == T_CONTACT && !strcmp(name, "contact.json"))
		return 0;
	if (dir->kind == T_CONTACT || dir->kind == T_CONTACT_CONVS)
		return fs_tomb_has(f, dir->id);
	if (dir->kind == T_CONTACTS && !tree_parse_id(name, &id))
		return fs_tomb_has(f, id);
	return 0;
}
