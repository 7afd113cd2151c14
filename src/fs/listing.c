// SPDX-License-Identifier: MIT
/*
 * listing.c: directory listings, the entries one pass of readdir reads,
 * kept by inode between requests, and the directory handlers (opendir,
 * readdir, readdirplus, releasedir). The entries come from tree_list;
 * listings are guarded by fs.llock, taken alone.
 */
#include "fs_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tree.h"

#define LISTINGS_MAX 8

void fs_listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->ents[i].name);
		tree_node_release(&l->ents[i].t);
	}
	free(l->ents);
	free(l);
}

static int listing_add(void *ctx, const char *name, const struct tnode *child,
		       const struct tattr *a)
{
	struct listing *l = ctx;
	struct dirent_snap *e;

	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 32;
		struct dirent_snap *p = realloc(l->ents, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->ents = p;
		l->alloc = na;
	}
	e = &l->ents[l->n];
	e->name = strdup(name);
	if (!e->name || tree_node_copy(&e->t, child)) {
		free(e->name);
		return -ENOMEM;
	}
	e->a = *a;
	l->n++;
	return 0;
}

/* Takes l out of fs.listings (under llock); freed once nobody reads it. */
static void listing_detach_locked(struct fs *f, struct listing *l)
{
	for (struct listing **pp = &f->listings; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			f->nlistings--;
			break;
		}
	}
	l->attached = 0;
	if (!l->refs)
		fs_listing_free(l);
}

/*
 * The listing of dir (inode ino) that a read from off goes on with: a new
 * one at offset 0 (a new pass: rewinddir, or a new ls), else the one this
 * pass started, rebuilt only if it was dropped. Referenced; see listing_put.
 */
static int listing_get(struct fs *f, uint64_t ino, const struct tnode *dir,
		       off_t off, struct listing **out)
{
	struct listing *l, *old = NULL;
	int r;

	if (off > 0) {
		pthread_mutex_lock(&f->llock);
		for (l = f->listings; l; l = l->next)
			if (l->ino == ino)
				break;
		if (l)
			l->refs++;
		pthread_mutex_unlock(&f->llock);
		if (l) {
			*out = l;
			return 0;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ino = ino;
	r = tree_list(f->d, dir, listing_add, l);
	if (r) {
		fs_listing_free(l);
		return r;
	}
	l->refs = 1;
	l->attached = 1;
	pthread_mutex_lock(&f->llock);
	for (struct listing *o = f->listings; o; o = o->next)
		if (o->ino == ino)
			old = o;
	if (old)
		listing_detach_locked(f, old);
	l->next = f->listings;
	f->listings = l;
	f->nlistings++;
	/* Over the limit: drop the oldest passes nobody is reading now. */
	while (f->nlistings > LISTINGS_MAX) {
		struct listing *victim = NULL;

		for (struct listing *o = f->listings->next; o; o = o->next)
			if (!o->refs)
				victim = o;
		if (!victim)
			break;
		listing_detach_locked(f, victim);
	}
	pthread_mutex_unlock(&f->llock);
	*out = l;
	return 0;
}

/* Drops a reference; a pass read to its end drops the listing too. */
static void listing_put(struct fs *f, struct listing *l, int finished)
{
	pthread_mutex_lock(&f->llock);
	l->refs--;
	if (finished && l->attached)
		listing_detach_locked(f, l);
	else if (!l->refs && !l->attached)
		fs_listing_free(l);
	pthread_mutex_unlock(&f->llock);
}

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	int r;

	/* Telling the kernel that opendir is not needed makes every later
	 * opendir and closedir free: directories then have no handle. */
	if (f->no_opendir) {
		fs_reply_err(req, -ENOSYS);
		return;
	}
	r = fs_node_get(f, ino, &t);
	if (r) {
		fs_reply_err(req, r);
		return;
	}
	/* The outbox and search results change without sync changes:
	 * never cached. */
	fi->fh = 0;
	fi->cache_readdir = t.kind != T_OUTBOX && !tree_search_kind(t.kind);
	fi->keep_cache = fi->cache_readdir;
	fuse_reply_open(req, fi);
	tree_node_release(&t);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       int plus)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 };
	struct listing *l = NULL;
	char *buf = NULL;
	size_t used = 0, i = 0;
	int r;

	if (off < 0) {
		fs_reply_err(req, -EINVAL);
		return;
	}
	r = fs_node_get(f, ino, &dir);
	if (!r) {
		fs_set_context(f, "readdir", ino, NULL);
		r = listing_get(f, ino, &dir, off, &l);
	}
	tree_node_release(&dir);
	if (!r) {
		buf = malloc(size ? size : 1);
		if (!buf)
			r = -ENOMEM;
	}
	if (r) {
		if (l)
			listing_put(f, l, 0);
		fs_reply_err(req, r);
		return;
	}
	for (i = (size_t)off; i < l->n; i++) {
		struct dirent_snap *e = &l->ents[i];
		struct stat st;
		size_t need;

		fs_to_stat(f, &e->a, &st);
		if (plus) {
			struct fuse_entry_param ep;

			memset(&ep, 0, sizeof(ep));
			ep.ino = e->a.ino;
			ep.generation = 1;
			ep.attr = st;
			ep.attr_timeout = fs_attr_timeout(e->t.kind);
			ep.entry_timeout = fs_entry_timeout(e->t.kind);
			need = fuse_add_direntry_plus(req, buf + used,
						      size - used, e->name,
						      &ep, (off_t)i + 1);
			if (need > size - used)
				break;
			/* The kernel now holds a reference to this entry. */
			if (fs_node_ref(f, &e->t, e->a.ino, ino, e->name))
				break;
		} else {
			need = fuse_add_direntry(req, buf + used, size - used,
						 e->name, &st, (off_t)i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	/*
	 * The pass ends with the read past the last entry (the kernel asks
	 * once more after the last one, and must not make us list again).
	 */
	listing_put(f, l, (size_t)off >= l->n);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}
