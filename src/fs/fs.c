// SPDX-License-Identifier: MIT
/*
 * fs.c: struct fs from fs_new to fs_free, and what every request handler
 * shares: the replies (fs_reply_err, fs_reply_entry, fs_to_stat) and the error
 * context of a request. The handlers live with what they act on (ops.c,
 * handle.c, listing.c, scratch.c, rendered.c); the kernel's invalidations
 * in notify.c.
 */
#include "fs_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tree.h"

double fs_attr_timeout(int kind)
{
	switch (tree_access(kind)) {
	case TA_DYNAMIC:
	case TA_CTL:
		return 0;
	default:
		return tree_search_kind(kind) ? SEARCH_TIMEOUT : LONG_TIMEOUT;
	}
}

double fs_entry_timeout(int kind)
{
	return tree_search_kind(kind) ? SEARCH_TIMEOUT : LONG_TIMEOUT;
}

void fs_to_stat(struct fs *f, const struct tattr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	/* -o umask= (config.h); a link's mode means nothing. */
	st->st_mode = S_ISLNK(a->mode) ? a->mode
				       : a->mode & ~(mode_t)f->d->cfg.umask;
	st->st_nlink = a->nlink;
	st->st_uid = f->d->uid;
	st->st_gid = f->d->gid;
	st->st_size = a->size;
	st->st_blksize = 4096;
	st->st_blocks = (a->size + 511) / 512;
	st->st_mtim.tv_sec = a->mtime_ms / 1000;
	st->st_mtim.tv_nsec = (a->mtime_ms % 1000) * 1000000 + a->mtime_ns;
	if (S_ISDIR(a->mode))
		st->st_mtim.tv_nsec += fs_dir_gen(f, a->ino) % 1000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/*
 * Replies with an errno the kernel and users can make sense of. r is 0 or
 * -errno, as every function of driftfs returns: a positive r is a caller's
 * bug, caught here (the only handler reply that bypasses this is fs_op_write's
 * EFBIG, which must not become EIO).
 */
void fs_reply_err(fuse_req_t req, int r)
{
	int e;

	assert(r <= 0);
	e = -r;
	if (e == ETIMEDOUT || e == ENETDOWN)
		e = EAGAIN;
	else if (e == EFBIG)
		e = EIO;	/* an answer too large to accept */
	fuse_reply_err(req, e);
}

/* What a request works on, for its error lines (see fs_set_context). */
struct req_context {
	struct fs *f;
	const char *op;
	uint64_t ino;
	int has_name;
	char name[256];
};

static __thread struct req_context req_ctx;

static void ctx_format(const void *arg, char *out, size_t size)
{
	const struct req_context *c = arg;
	char path[FS_PATH_MAX];

	/* An error may be recorded with the node table held. */
	fs_node_path_of(c->f, c->ino, c->has_name ? c->name : NULL, path,
			sizeof(path), 1);
	snprintf(out, size, "%s %s", c->op, path);
}

/*
 * Sets the thread's error context to "op PATH". The path is only built if
 * an error is recorded: most requests succeed, and building it costs more
 * than answering them.
 */
void fs_set_context(struct fs *f, const char *op, uint64_t ino,
		    const char *name)
{
	req_ctx.f = f;
	req_ctx.op = op;
	req_ctx.ino = ino;
	req_ctx.has_name = name != NULL;
	if (name)
		snprintf(req_ctx.name, sizeof(req_ctx.name), "%s", name);
	log_context_defer(ctx_format, &req_ctx);
}

void fs_reply_entry(fuse_req_t req, struct fs *f, const struct tnode *t,
		    const struct tattr *a)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	e.generation = 1;
	e.attr_timeout = t->kind == T_SCRATCH ? 0 : fs_attr_timeout(t->kind);
	e.entry_timeout = t->kind == T_SCRATCH ? 0 : fs_entry_timeout(t->kind);
	fs_to_stat(f, a, &e.attr);
	if (fuse_reply_entry(req, &e))
		fs_node_forget(f, a->ino, 1);
}

struct fs *fs_new(struct driftfs *d)
{
	struct fs *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->d = d;
	if (fs_nodes_init(f)) {
		fs_nodes_release(f);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->llock, NULL);
	pthread_mutex_init(&f->qlock, NULL);
	pthread_mutex_init(&f->hlock, NULL);
	pthread_mutex_init(&f->rlock, NULL);
	pthread_mutex_init(&f->bllock, NULL);
	pthread_cond_init(&f->qcond, NULL);
	{
		/* Drains wait on the monotonic clock (a step of the wall
		 * clock does not stretch them). */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->qdone, &ca);
		pthread_condattr_destroy(&ca);
	}
	return f;
}

void fs_free(struct fs *f)
{
	if (!f)
		return;
	fs_stop(f);
	while (f->queue) {
		struct pending *p = f->queue;

		f->queue = p->next;
		free(p->c.key);
		free(p);
	}
	while (f->listings) {
		struct listing *l = f->listings;

		f->listings = l->next;
		fs_listing_free(l);
	}
	while (f->handles)
		fs_handle_free(f->handles);
	fs_queries_release(f);
	/* Scratch files still named at the end (the kernel never forgets
	 * those: it sends no FORGET once the session ends). */
	while (f->scratch) {
		struct scratch *s = f->scratch;

		f->scratch = s->next;
		fs_scratch_free(s);
	}
	for (size_t i = 0; i < RENDERED_SLOTS; i++)
		buf_release(&f->rendered[i].data);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		buf_release(&f->bases[i].data);
	fs_nodes_release(f);
	pthread_mutex_destroy(&f->bllock);
	pthread_mutex_destroy(&f->rlock);
	pthread_mutex_destroy(&f->hlock);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->llock);
	pthread_mutex_destroy(&f->qlock);
	pthread_cond_destroy(&f->qcond);
	pthread_cond_destroy(&f->qdone);
	free(f);
}
