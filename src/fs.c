// SPDX-License-Identifier: MIT
/* fs.c: FUSE low-level operations and cache invalidation (see fs.h). */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "fs.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "ctl.h"
#include "http.h"
#include "log.h"
#include "stats.h"
#include "store.h"
#include "tree.h"

/* Cached objects are invalidated on change, so the kernel may keep them. */
#define LONG_TIMEOUT 3600.0
#define CTL_MAX ((size_t)64 << 10)

/* A node the kernel knows. */
struct fnode {
	uint64_t ino;
	struct tnode t;
	uint64_t nlookup;
	uint64_t parent;	/* where it was last looked up */
	char *name;		/* its name there */
	struct fnode *next;	/* hash chain */
};

/* A queued invalidation request (a copy of a sync change). */
struct pending {
	struct sync_change c;
	struct pending *next;
};

struct fs {
	struct driftfs *d;
	struct fuse_session *se;

	pthread_mutex_t lock;	/* guards the node table */
	struct fnode **buckets;
	size_t nbuckets, count;

	pthread_mutex_t qlock;	/* guards the queue */
	pthread_cond_t qcond;
	struct pending *queue;
	int stop;
	pthread_t notifier;
	int notifier_started;
};

/* An open file or directory. */
struct handle {
	struct buf data;	/* file bytes, snapshot at open */
	struct buf wbuf;	/* ctl: bytes written, not yet a whole line */
	int kind;
	/* directories: the snapshot of entries */
	struct dirent_snap *ents;
	size_t nents;
};

struct dirent_snap {
	char *name;
	struct tnode t;
	struct tattr a;
};

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static size_t bucket_of(const struct fs *f, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) % f->nbuckets;
}

static struct fnode *node_find_locked(struct fs *f, uint64_t ino)
{
	for (struct fnode *n = f->buckets[bucket_of(f, ino)]; n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

static void node_grow_locked(struct fs *f)
{
	size_t nb = f->nbuckets * 2;
	struct fnode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
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
static int node_ref(struct fs *f, const struct tnode *t, uint64_t ino,
		    uint64_t parent, const char *name)
{
	struct fnode *n;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	n = node_find_locked(f, ino);
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
		if (parent && strcmp(n->name ? n->name : "", name)) {
			char *nm = strdup(name);

			if (nm) {
				free(n->name);
				n->name = nm;
				n->parent = parent;
			}
		}
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (!n || tree_node_copy(&n->t, t) || !(n->name = strdup(name))) {
		if (n)
			tree_node_release(&n->t);
		free(n);
		r = -ENOMEM;
		goto out;
	}
	n->ino = ino;
	n->nlookup = 1;
	n->parent = parent;
	if (f->count >= f->nbuckets)
		node_grow_locked(f);
	n->next = f->buckets[bucket_of(f, ino)];
	f->buckets[bucket_of(f, ino)] = n;
	f->count++;
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void node_forget(struct fs *f, uint64_t ino, uint64_t nlookup)
{
	struct fnode **p, *n;

	if (ino < T__FIXED_END)
		return;
	pthread_mutex_lock(&f->lock);
	for (p = &f->buckets[bucket_of(f, ino)]; (n = *p); p = &n->next) {
		if (n->ino != ino)
			continue;
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		if (!n->nlookup) {
			*p = n->next;
			tree_node_release(&n->t);
			free(n->name);
			free(n);
			f->count--;
		}
		break;
	}
	pthread_mutex_unlock(&f->lock);
}

/* Copies the tree node of ino; fixed nodes need no table entry. */
static int node_get(struct fs *f, uint64_t ino, struct tnode *out)
{
	struct fnode *n;
	int r = 0;

	if (ino < T__FIXED_END) {
		out->kind = (int)ino;
		out->id = 0;
		out->name = NULL;
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	n = node_find_locked(f, ino);
	if (n)
		r = tree_node_copy(out, &n->t);
	else
		r = -ESTALE;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static double attr_timeout(int kind)
{
	switch (tree_access(kind)) {
	case TA_DYNAMIC:
	case TA_CTL:
		return 0;
	default:
		return LONG_TIMEOUT;
	}
}

static void to_stat(const struct driftfs *d, const struct tattr *a,
		    struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = d->uid;
	st->st_gid = d->gid;
	st->st_size = a->size;
	st->st_blksize = 4096;
	st->st_blocks = (a->size + 511) / 512;
	st->st_mtim.tv_sec = a->mtime_ms / 1000;
	st->st_mtim.tv_nsec = (a->mtime_ms % 1000) * 1000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* Replies with an errno the kernel and users can make sense of. */
static void reply_err(fuse_req_t req, int r)
{
	int e = r < 0 ? -r : r;

	if (e == ETIMEDOUT || e == ENETDOWN)
		e = EAGAIN;
	else if (e == EFBIG)
		e = EIO;	/* an answer too large to accept */
	fuse_reply_err(req, e);
}

/*
 * Sets the thread's error context to "op PATH": the node's path is rebuilt
 * from the names it was looked up by, up to a fixed node.
 */
static void set_context(struct fs *f, const char *op, uint64_t ino,
			const char *name)
{
	const char *parts[16];
	char *copies[16];
	char ctx[1024];
	size_t n = 0, len;
	int i;

	pthread_mutex_lock(&f->lock);
	while (ino >= T__FIXED_END && n < 16) {
		struct fnode *node = node_find_locked(f, ino);

		if (!node || !node->name)
			break;
		copies[n] = strdup(node->name);
		parts[n] = copies[n] ? copies[n] : "?";
		n++;
		ino = node->parent;
	}
	pthread_mutex_unlock(&f->lock);
	len = (size_t)snprintf(ctx, sizeof(ctx), "%s %s", op,
			       ino < T__FIXED_END ? tree_fixed_path((int)ino)
						  : "...");
	for (i = (int)n - 1; i >= 0 && len < sizeof(ctx); i--) {
		len += (size_t)snprintf(ctx + len, sizeof(ctx) - len, "%s%s",
					ctx[len - 1] == ' ' ? "" : "/",
					parts[i]);
		free(copies[i]);
	}
	for (; i >= 0; i--)
		free(copies[i]);
	if (name && len < sizeof(ctx))
		snprintf(ctx + len, sizeof(ctx) - len, "%s%s",
			 ctx[len - 1] == ' ' ? "" : "/", name);
	log_context_set(ctx);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Always readdirplus: one request lists and stats a directory. */
	conn->want |= conn->capable &
		      (FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS |
		       FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS);
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *f = fs_of(req);
	struct fuse_entry_param e;
	struct tnode dir = { 0 }, child = { 0 };
	struct tattr a;
	int r;

	r = node_get(f, parent, &dir);
	if (r)
		goto fail;
	set_context(f, "lookup", parent, name);
	r = tree_lookup(f->d, &dir, name, &child, &a);
	if (r)
		goto fail;
	r = node_ref(f, &child, a.ino, parent, name);
	if (r)
		goto fail;
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.generation = 1;
	e.attr_timeout = attr_timeout(child.kind);
	e.entry_timeout = LONG_TIMEOUT;
	to_stat(f->d, &a, &e.attr);
	if (fuse_reply_entry(req, &e))
		node_forget(f, a.ino, 1);
	goto out;
fail:
	reply_err(req, r);
out:
	tree_node_release(&dir);
	tree_node_release(&child);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct tattr a;
	struct stat st;
	int r;

	(void)fi;
	r = node_get(f, ino, &t);
	if (!r) {
		set_context(f, "getattr", ino, NULL);
		r = tree_getattr(f->d, &t, &a);
	}
	if (r) {
		reply_err(req, r);
	} else {
		to_stat(f->d, &a, &st);
		fuse_reply_attr(req, &st, attr_timeout(t.kind));
	}
	tree_node_release(&t);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct tattr a;
	struct stat st;
	int r;

	(void)attr;
	(void)fi;
	r = node_get(f, ino, &t);
	if (r)
		goto out;
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID |
		      FUSE_SET_ATTR_GID)) {
		r = -EPERM;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		enum tree_access acc = tree_access(t.kind);

		/* Truncating a command or create file is how shells open it. */
		if (acc == TA_RO || acc == TA_DYNAMIC || acc == TA_DIR ||
		    acc == TA_LINK)
			r = -EACCES;
		else if (acc == TA_RW)
			r = -EROFS;
		if (r)
			goto out;
	}
	/* Times are the API's to set; accept and keep ours (like cp -p). */
	r = tree_getattr(f->d, &t, &a);
out:
	if (r) {
		reply_err(req, r);
	} else {
		to_stat(f->d, &a, &st);
		fuse_reply_attr(req, &st, attr_timeout(t.kind));
	}
	tree_node_release(&t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct buf b = BUF_INIT;
	int r = node_get(f, ino, &t);

	r = r ? r : tree_readlink(f->d, &t, &b);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_readlink(req, b.data ? b.data : "");
	buf_release(&b);
	tree_node_release(&t);
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	buf_release(&h->data);
	buf_release(&h->wbuf);
	for (size_t i = 0; i < h->nents; i++) {
		free(h->ents[i].name);
		tree_node_release(&h->ents[i].t);
	}
	free(h->ents);
	free(h);
}

struct snap_ctx {
	struct handle *h;
	size_t alloc;
};

static int snap_add(void *ctx, const char *name, const struct tnode *child,
		    const struct tattr *a)
{
	struct snap_ctx *s = ctx;
	struct dirent_snap *e;

	if (s->h->nents == s->alloc) {
		size_t na = s->alloc ? s->alloc * 2 : 32;
		struct dirent_snap *p = realloc(s->h->ents, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->h->ents = p;
		s->alloc = na;
	}
	e = &s->h->ents[s->h->nents];
	e->name = strdup(name);
	if (!e->name || tree_node_copy(&e->t, child)) {
		free(e->name);
		return -ENOMEM;
	}
	e->a = *a;
	s->h->nents++;
	return 0;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = calloc(1, sizeof(*h));
	struct snap_ctx s = { h, 0 };
	struct tnode t = { 0 };
	int r = h ? node_get(f, ino, &t) : -ENOMEM;

	if (!r) {
		set_context(f, "readdir", ino, NULL);
		h->kind = t.kind;
		r = tree_list(f->d, &t, snap_add, &s);
	}
	if (r) {
		handle_free(h);
		reply_err(req, r);
	} else {
		fi->fh = (uintptr_t)h;
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
		if (fuse_reply_open(req, fi))
			handle_free(h);
	}
	tree_node_release(&t);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, int plus)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < h->nents; i++) {
		struct dirent_snap *e = &h->ents[i];
		struct stat st;
		size_t need;

		to_stat(f->d, &e->a, &st);
		if (plus) {
			struct fuse_entry_param ep;

			memset(&ep, 0, sizeof(ep));
			ep.ino = e->a.ino;
			ep.generation = 1;
			ep.attr = st;
			ep.attr_timeout = attr_timeout(e->t.kind);
			ep.entry_timeout = LONG_TIMEOUT;
			need = fuse_add_direntry_plus(req, buf + used,
						      size - used, e->name,
						      &ep, (off_t)i + 1);
			if (need > size - used)
				break;
			/* The kernel now holds a reference to this entry. */
			if (node_ref(f, &e->t, e->a.ino, ino, e->name))
				break;
		} else {
			need = fuse_add_direntry(req, buf + used, size - used,
						 e->name, &st, (off_t)i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct handle *h = NULL;
	int acc_mode = fi->flags & O_ACCMODE, r;
	enum tree_access acc;

	r = node_get(f, ino, &t);
	if (r)
		goto fail;
	set_context(f, "open", ino, NULL);
	acc = tree_access(t.kind);
	if (acc == TA_DIR) {
		r = -EISDIR;
		goto fail;
	}
	if (acc_mode != O_RDONLY && (acc == TA_RO || acc == TA_DYNAMIC)) {
		r = -EACCES;
		goto fail;
	}
	if (acc_mode != O_RDONLY && acc != TA_CTL) {
		/* Writes through the API arrive with the outbox. */
		log_error_event("writes are not supported yet: open for "
				"writing refused");
		r = -EROFS;
		goto fail;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		r = -ENOMEM;
		goto fail;
	}
	h->kind = t.kind;
	buf_init(&h->wbuf, CTL_MAX);
	if (acc_mode == O_RDONLY) {
		r = tree_content(f->d, &t, &h->data);
		if (r)
			goto fail;
	}
	fi->fh = (uintptr_t)h;
	if (acc == TA_DYNAMIC || acc == TA_CTL) {
		fi->direct_io = 1;
	} else {
		fi->keep_cache = 1;
		fi->noflush = 1;
	}
	if (fuse_reply_open(req, fi))
		handle_free(h);
	tree_node_release(&t);
	return;
fail:
	handle_free(h);
	reply_err(req, r);
	tree_node_release(&t);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *copy;

	(void)ino;
	if (off < 0 || (size_t)off >= h->data.len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > h->data.len - (size_t)off)
		size = h->data.len - (size_t)off;
	/*
	 * Reply from a copy: once the kernel has the reply, the reader may
	 * close the file and another thread free the handle while this one
	 * is still returning from writev().
	 */
	copy = malloc(size);
	if (!copy) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(copy, h->data.data + off, size);
	fuse_reply_buf(req, copy, size);
	free(copy);
}

/* Runs every complete line in the ctl buffer. */
static int ctl_run_lines(struct fs *f, struct handle *h, int all)
{
	char *nl;
	size_t n;
	int r;

	nl = h->wbuf.len ? memrchr(h->wbuf.data, '\n', h->wbuf.len) : NULL;
	n = nl ? (size_t)(nl - h->wbuf.data) + 1 : (all ? h->wbuf.len : 0);
	if (!n)
		return 0;
	r = ctl_command(f->d, h->wbuf.data, n);
	memmove(h->wbuf.data, h->wbuf.data + n, h->wbuf.len - n);
	h->wbuf.len -= n;
	h->wbuf.data[h->wbuf.len] = '\0';
	return r;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r;

	(void)ino;
	(void)off;
	if (h->kind != T_CTL_CTL) {
		fuse_reply_err(req, EROFS);
		return;
	}
	r = buf_add(&h->wbuf, data, size);
	r = r ? r : ctl_run_lines(f, h, 0);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r = 0;

	(void)ino;
	if (h->kind == T_CTL_CTL)
		r = ctl_run_lines(f, h, 1);
	reply_err(req, r);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* Removing: what the API cannot delete is EPERM; the rest arrives with
 * the outbox (writes). */
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)name;
	switch (parent) {
	case T_USERS:
	case T_CONVS:
	case T_PLAYBOOKS:
		fuse_reply_err(req, EPERM);
		return;
	default:
		fuse_reply_err(req, EROFS);
	}
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	op_unlink(req, parent, name);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	(void)parent;
	(void)name;
	(void)mode;
	(void)fi;
	fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	(void)parent;
	(void)name;
	(void)newparent;
	(void)newname;
	(void)flags;
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.statfs = op_statfs,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.create = op_create,
	.mkdir = op_mkdir,
	.rename = op_rename,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &ops;
}

struct fs *fs_new(struct driftfs *d)
{
	struct fs *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->d = d;
	f->nbuckets = 1024;
	f->buckets = calloc(f->nbuckets, sizeof(*f->buckets));
	if (!f->buckets) {
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->qlock, NULL);
	pthread_cond_init(&f->qcond, NULL);
	return f;
}

void fs_free(struct fs *f)
{
	if (!f)
		return;
	fs_stop(f);
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = f->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			tree_node_release(&n->t);
			free(n->name);
			free(n);
		}
	}
	while (f->queue) {
		struct pending *p = f->queue;

		f->queue = p->next;
		free(p->c.key);
		free(p);
	}
	free(f->buckets);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->qlock);
	pthread_cond_destroy(&f->qcond);
	free(f);
}

void fs_on_change(void *ctx, const struct sync_change *c, size_t n)
{
	struct fs *f = ctx;

	pthread_mutex_lock(&f->qlock);
	for (size_t i = 0; i < n; i++) {
		struct pending *p = calloc(1, sizeof(*p));

		if (!p)
			break;
		p->c = c[i];
		p->c.key = c[i].key ? strdup(c[i].key) : NULL;
		p->next = f->queue;
		f->queue = p;
	}
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qlock);
}

/* One invalidation to send once the node table is unlocked. */
struct inval {
	uint64_t ino;		/* inode, or parent for an entry */
	char *name;		/* NULL: invalidate the inode */
};

struct inval_list {
	struct inval *v;
	size_t n, alloc;
};

static void inval_add(struct inval_list *l, uint64_t ino, const char *name)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 64;
		struct inval *p = realloc(l->v, na * sizeof(*p));

		if (!p)
			return;
		l->v = p;
		l->alloc = na;
	}
	l->v[l->n].ino = ino;
	l->v[l->n].name = name ? strdup(name) : NULL;
	if (name && !l->v[l->n].name)
		return;
	l->n++;
}

/* Whether a changed object touches node n, and whether n is gone. */
static int affected(struct fs *f, const struct fnode *n,
		    const struct sync_change *c, int *gone)
{
	struct store_row row;
	int k = n->t.kind;

	*gone = 0;
	switch (c->what) {
	case SO_CONTACT:
		if ((k == T_CONTACT || k == T_CONTACT_JSON ||
		     k == T_CONTACT_TAGS || k == T_CONTACT_CONVS ||
		     k == T_CONTACT_TIMELINE) &&
		    n->t.id == c->id) {
			*gone = k == T_CONTACT &&
				store_one(f->d->store, Q_CONTACT, c->id, NULL,
					  &row) == -ENOENT;
			return 1;
		}
		return k == T_EMAIL_LINK || k == T_EXTID_LINK;
	case SO_CONVERSATION:
		/* Both the old and the new contact's conversations/ list. */
		if (k == T_CONTACT_CONVS &&
		    ((c->old_contact && n->t.id == c->old_contact) ||
		     (c->contact && n->t.id == c->contact)))
			return 1;
		if (k == T_STATUS_LINK || k == T_CONTACT_CONV_LINK) {
			if (n->t.id != c->id)
				return 0;
			/* Moved to another status or contact: old name goes. */
			*gone = 1;
			return 1;
		}
		if (k == T_CONV || k == T_CONV_JSON || k == T_TRANSCRIPT ||
		    k == T_MESSAGES || k == T_ATTACHMENTS ||
		    k == T_CONV_CONTACT_LINK || k == T_MESSAGES_NEW)
			return n->t.id == c->id;
		if (k == T_MESSAGE_JSON || k == T_ATTACHMENT) {
			enum store_query q = k == T_MESSAGE_JSON ? Q_MESSAGE
								 : Q_ATTACHMENT;
			int r = store_one(f->d->store, q, n->t.id, NULL, &row);

			if (r == -ENOENT) {
				*gone = 1;
				return 1;
			}
			return !r && row.id2 == c->id;
		}
		return 0;
	case SO_USER:
		if (k == T_USER_JSON && n->t.id == c->id)
			return 1;
		return k == T_USER_EMAIL_LINK;
	case SO_PLAYBOOK:
		return k == T_PLAYBOOK_JSON && n->t.id == c->id;
	case SO_ACCOUNT:
		return k == T_ACCOUNT_JSON && c->key && n->t.name &&
		       !strcmp(n->t.name, c->key);
	case SO_LISTS:
		/* Objects removed by pruning (users, playbooks, accounts). */
		if (k == T_USER_JSON || k == T_PLAYBOOK_JSON ||
		    k == T_ACCOUNT_JSON) {
			struct tattr a;
			struct tnode t = n->t;

			*gone = tree_getattr(f->d, &t, &a) == -ENOENT;
			return *gone;
		}
		return 0;
	}
	return 0;
}

static void collect(struct fs *f, struct pending *batch,
		    struct inval_list *l)
{
	static const int lists[] = {
		T_CONTACTS,	  T_USERS,	  T_CONVS,	    T_BY_EMAIL,
		T_BY_EXTID,	  T_USERS_BY_EMAIL, T_STATUS_OPEN,  T_STATUS_CLOSED,
		T_STATUS_PENDING, T_STATUS_BULK,    T_STATS_JSON,   T_ATTRIBUTES,
		T_PLAYBOOKS,	  T_ACCOUNTS,
	};
	int any_lists = 0;

	for (struct pending *p = batch; p; p = p->next)
		if (p->c.what == SO_LISTS)
			any_lists = 1;
	if (any_lists)
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
			inval_add(l, (uint64_t)lists[i], NULL);

	pthread_mutex_lock(&f->lock);
	for (size_t b = 0; b < f->nbuckets; b++) {
		for (struct fnode *n = f->buckets[b]; n; n = n->next) {
			for (struct pending *p = batch; p; p = p->next) {
				int gone;

				if (!affected(f, n, &p->c, &gone))
					continue;
				inval_add(l, n->ino, NULL);
				if (gone && n->parent && n->name)
					inval_add(l, n->parent, n->name);
				break;
			}
		}
	}
	pthread_mutex_unlock(&f->lock);
}

static void *notifier(void *arg)
{
	struct fs *f = arg;

	pthread_mutex_lock(&f->qlock);
	while (!f->stop) {
		struct pending *batch;
		struct inval_list l = { 0 };

		if (!f->queue) {
			pthread_cond_wait(&f->qcond, &f->qlock);
			continue;
		}
		batch = f->queue;
		f->queue = NULL;
		pthread_mutex_unlock(&f->qlock);

		collect(f, batch, &l);
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].name)
				fuse_lowlevel_notify_inval_entry(
					f->se, l.v[i].ino, l.v[i].name,
					strlen(l.v[i].name));
			else
				fuse_lowlevel_notify_inval_inode(f->se,
								 l.v[i].ino, 0,
								 0);
			free(l.v[i].name);
		}
		stats_add("kernel invalidations", (long)l.n);
		free(l.v);
		while (batch) {
			struct pending *p = batch;

			batch = p->next;
			free(p->c.key);
			free(p);
		}
		pthread_mutex_lock(&f->qlock);
	}
	pthread_mutex_unlock(&f->qlock);
	return NULL;
}

int fs_start(struct fs *f, struct fuse_session *se)
{
	int r;

	f->se = se;
	r = pthread_create(&f->notifier, NULL, notifier, f);
	if (r)
		return -r;
	f->notifier_started = 1;
	return 0;
}

void fs_stop(struct fs *f)
{
	if (!f->notifier_started)
		return;
	pthread_mutex_lock(&f->qlock);
	f->stop = 1;
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qlock);
	pthread_join(f->notifier, NULL);
	f->notifier_started = 0;
}
