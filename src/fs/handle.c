// SPDX-License-Identifier: MIT
/*
 * handle.c: open files. A handle holds a snapshot of a file's bytes (or the
 * new content a writer builds, or the lines written to .driftfs/ctl), and
 * close() commits a written tree file (handle_commit). The handlers open,
 * read, write, flush, fsync, release. The versions writers took are
 * read_base.c's; reads without a handle are rendered.c's.
 */
#include "fs_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "commit.h"
#include "ctl.h"
#include "http.h"
#include "log.h"
#include "tree.h"

/* A new handle, listed in f->handles. */
struct handle *fs_handle_new(struct fs *f)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->fd = -1;
	h->fs = f;
	pthread_mutex_lock(&f->hlock);
	h->next = f->handles;
	if (h->next)
		h->next->prev = h;
	f->handles = h;
	pthread_mutex_unlock(&f->hlock);
	return h;
}

void fs_handle_free(struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		h->fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&h->fs->hlock);
	buf_release(&h->data);
	buf_release(&h->wbuf);
	buf_release(&h->base);
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->lock);
	tree_node_release(&h->t);
	free(h->path);
	free(h);
}

/*
 * The base of an edit through a new writable descriptor h. Opened without
 * O_TRUNC (seeded), the writer starts from the bytes open loaded (it reads
 * them through an O_RDWR descriptor, and `>>` appends to them), so that is
 * it. With O_TRUNC the writer read the file, if at all, through another
 * descriptor: the commit picks among the versions readers took
 * (fs_read_base_pick); base holds the cache now for when none is kept, which
 * is at least older than anything that comes while the file is open.
 * Without one, the commit compares with the cache at close.
 */
static void handle_take_base(struct fs *f, struct handle *h, int seeded,
			     int readable)
{
	int r;

	buf_init(&h->base, WRITE_MAX);
	if (seeded)
		r = buf_add(&h->base, h->data.data ? h->data.data : "",
			    h->data.len);
	else
		r = tree_content(f->d, &h->t, &h->base);
	h->based = !r;
	h->base_known = seeded;
	h->seed_unread = seeded;
	h->note_read = seeded && readable;
	if (r)
		buf_release(&h->base);
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct handle *h = NULL;
	int acc_mode = fi->flags & O_ACCMODE, r;
	char path[FS_PATH_MAX];
	enum tree_access acc;

	if (f->no_open) {
		fs_reply_err(req, -ENOSYS);
		return;
	}
	r = fs_node_get(f, ino, &t);
	if (r)
		goto fail;
	fs_set_context(f, "open", ino, NULL);
	__atomic_add_fetch(&f->opens, 1, __ATOMIC_RELAXED);
	h = fs_handle_new(f);
	if (!h) {
		r = -ENOMEM;
		goto fail;
	}
	buf_init(&h->wbuf, CTL_MAX);
	buf_init(&h->data, WRITE_MAX);
	h->kind = t.kind;
	if (t.kind == T_SCRATCH) {
		struct scratch *s;

		fs_nodes_lock(f);
		s = fs_scratch_by_ino_locked(f, ino);
		if (s && s->alias.kind)
			r = tree_node_copy(&t, &s->alias);
		else if (!s)
			r = -ENOENT;
		fs_nodes_unlock(f);
		if (r)
			goto fail;
		if (t.kind == T_SCRATCH) {
			h->scratch = ino;
			h->writable = acc_mode != O_RDONLY;
			if (fi->flags & O_TRUNC) {
				fs_nodes_lock(f);
				s = fs_scratch_by_ino_locked(f, ino);
				if (s)
					buf_reset(&s->data);
				fs_nodes_unlock(f);
			}
			fi->fh = (uintptr_t)h;
			fi->direct_io = 1;
			if (fuse_reply_open(req, fi))
				fs_handle_free(h);
			tree_node_release(&t);
			return;
		}
		h->kind = t.kind;
	}
	acc = tree_access(t.kind);
	if (acc == TA_DIR) {
		r = -EISDIR;
		goto fail;
	}
	if (acc_mode != O_RDONLY && (acc == TA_RO || acc == TA_DYNAMIC ||
				     acc == TA_LINK)) {
		r = -EACCES;
		goto fail;
	}
	if (acc_mode != O_RDONLY && (acc == TA_RW || acc == TA_WO)) {
		/* Writes build the new content; close() commits it. */
		h->writable = 1;
		h->proc = fs_caller_proc(req);
		fs_node_path(f, ino, NULL, path, sizeof(path));
		h->path = strdup(path);
		r = h->path ? tree_node_copy(&h->t, &t) : -ENOMEM;
		if (r)
			goto fail;
		/* O_TRUNC alone changes nothing: shells truncate and dup the
		 * descriptor before the first write, and closing the copy
		 * must not commit an empty file. */
		if (!(fi->flags & O_TRUNC) && acc == TA_RW)
			r = tree_content(f->d, &t, &h->data);
		if (r)
			goto fail;
		if (acc == TA_RW)
			handle_take_base(f, h, !(fi->flags & O_TRUNC),
					 acc_mode == O_RDWR);
		fi->direct_io = 1;
	} else if (acc_mode == O_RDONLY) {
		if (acc == TA_DYNAMIC || acc == TA_CTL) {
			r = tree_content(f->d, &t, &h->data);
			if (r)
				goto fail;
			fi->direct_io = 1;
		} else {
			/*
			 * Loaded by the first read that reaches us: with the
			 * pages cached (keep_cache), most opens never read,
			 * and a traversal then costs no query per file.
			 */
			r = tree_node_copy(&h->t, &t);
			if (r)
				goto fail;
			h->unread = 1;
			fi->keep_cache = 1;
			fi->noflush = 1;
		}
	} else {
		fi->direct_io = 1;	/* ctl */
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi))
		fs_handle_free(h);
	tree_node_release(&t);
	return;
fail:
	fs_handle_free(h);
	fs_reply_err(req, r);
	tree_node_release(&t);
}

/*
 * Copies size bytes of src from off into *out (NULL and *n 0 past its
 * end), for a reply sent once src's lock is dropped. A read replies from a
 * copy, never from src: a write or truncate of the same descriptor may
 * reallocate src as soon as the lock is free, and once the kernel has the
 * reply, the reader may close the file and a release on another thread
 * free the handle while this one is still returning from writev() (where
 * a sanitizer's interceptor reads the buffer again). Reads that reach the
 * daemon are rare (keep_cache), so the copy costs little.
 */
int fs_slice_copy(const struct buf *src, size_t size, off_t off, char **out,
		  size_t *n)
{
	*out = NULL;
	*n = 0;
	if (off < 0 || (size_t)off >= src->len)
		return 0;
	if (size > src->len - (size_t)off)
		size = src->len - (size_t)off;
	*out = malloc(size);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, src->data + off, size);
	*n = size;
	return 0;
}

/* Replies r, or the n bytes of copy (from fs_slice_copy), and frees copy. */
void fs_reply_copy(fuse_req_t req, int r, char *copy, size_t n)
{
	if (r)
		fs_reply_err(req, r);
	else
		fuse_reply_buf(req, copy, n);
	free(copy);
}

/* As fs_slice_copy, from a file (an attachment's): up to size bytes of fd
 * from off into *out, for fs_reply_copy. */
int fs_pread_copy(int fd, size_t size, off_t off, char **out, size_t *n)
{
	int r = 0;

	*n = 0;
	*out = malloc(size ? size : 1);
	if (!*out)
		return -ENOMEM;
	while (*n < size) {
		ssize_t got = pread(fd, *out + *n, size - *n, off + (off_t)*n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			r = -errno;
		if (got <= 0)
			break;
		*n += (size_t)got;
	}
	return r;
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *copy = NULL;
	size_t n = 0;
	int r = 0;

	if (!h) {
		fs_read_unopened(f, req, ino, size, off);
		return;
	}
	if (h->scratch) {
		struct scratch *s;

		fs_nodes_lock(f);
		s = fs_scratch_by_ino_locked(f, h->scratch);
		if (s)
			r = fs_slice_copy(&s->data, size, off, &copy, &n);
		fs_nodes_unlock(f);
		fs_reply_copy(req, r, copy, n);
		return;
	}
	/*
	 * A snapshot taken by the first read; later reads share it. Copied
	 * under the lock: a write or truncate of this descriptor on another
	 * thread reallocates h->data under it.
	 */
	pthread_mutex_lock(&h->lock);
	if (h->unread && h->t.kind == T_ATTACHMENT && h->fd < 0) {
		fs_set_context(f, "read", ino, NULL);
		r = tree_content_fd(f->d, &h->t);
		if (r >= 0) {
			h->fd = r;
			r = 0;
		}
	}
	if (h->fd >= 0) {
		r = fs_pread_copy(h->fd, size, off, &copy, &n);
		pthread_mutex_unlock(&h->lock);
		fs_reply_copy(req, r, copy, n);
		return;
	}
	if (h->unread && !r) {
		fs_set_context(f, "read", ino, NULL);
		r = tree_content(f->d, &h->t, &h->data);
		if (!r)
			h->unread = 0;
		else
			buf_reset(&h->data);
		if (!r && tree_access(h->t.kind) == TA_RW)
			fs_read_base_note(
			    f, tree_ino(&h->t), fs_caller_proc(req), 0,
			    h->data.data ? h->data.data : "", h->data.len);
	} else if (h->writable) {
		h->seed_unread = 0;
		if (h->note_read && !h->dirty) {
			/* A reader here may save through another descriptor
			 * or a scratch file: it read this version. */
			h->note_read = 0;
			fs_read_base_note(
			    f, tree_ino(&h->t), fs_caller_proc(req), 0,
			    h->data.data ? h->data.data : "", h->data.len);
		}
	}
	if (!r)
		r = fs_slice_copy(&h->data, size, off, &copy, &n);
	pthread_mutex_unlock(&h->lock);
	fs_reply_copy(req, r, copy, n);
}

/*
 * Runs every complete line in the ctl buffer (all of it when all is set).
 * The lines are taken out under the handle's lock and run outside it: a
 * "sync" can take minutes.
 */
static int ctl_run_lines(struct fs *f, struct handle *h, int all)
{
	char *nl, *lines = NULL;
	size_t n;
	int r = 0;

	pthread_mutex_lock(&h->lock);
	nl = h->wbuf.len ? memrchr(h->wbuf.data, '\n', h->wbuf.len) : NULL;
	n = nl ? (size_t)(nl - h->wbuf.data) + 1 : (all ? h->wbuf.len : 0);
	if (n) {
		lines = malloc(n);
		if (lines) {
			memcpy(lines, h->wbuf.data, n);
			memmove(h->wbuf.data, h->wbuf.data + n,
				h->wbuf.len - n);
			h->wbuf.len -= n;
			h->wbuf.data[h->wbuf.len] = '\0';
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (lines)
		r = ctl_command(f->d, lines, n);
	free(lines);
	/* What the sync changed reaches the kernel's caches before the
	 * write returns: a read right after `echo sync > ctl` would
	 * otherwise get the old size's bytes of a file that grew. */
	if (lines && !f->single_thread)
		fs_notifier_drain(f, CTL_DRAIN_MS);
	return r;
}

/* Writes data at off into b, zero-filling any gap. */
int fs_buf_write_at(struct buf *b, const char *data, size_t size, off_t off)
{
	size_t end;
	int r;

	if (off < 0)
		return -EINVAL;
	end = (size_t)off + size;
	if (end > b->len) {
		r = buf_grow(b, end - b->len);
		if (r)
			return r;
		memset(b->data + b->len, 0, end - b->len);
		b->len = end;
		b->data[end] = '\0';
	}
	memcpy(b->data + off, data, size);
	return 0;
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
		 off_t off, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/*
	 * An append (O_APPEND, also when set later by fcntl: the kernel sends
	 * the descriptor's flags with each write) goes at the end of the
	 * bytes this file holds, not at off: the kernel takes off from the
	 * size it last saw, and that is not the buffer's length for a file
	 * whose size shows something else (a `new` file shows the id of what
	 * it last created, and its buffer starts empty) or that another
	 * descriptor changed. NUL bytes at the front made the JSON invalid.
	 */
	int append = (fi->flags & O_APPEND) != 0;
	int r;

	(void)ino;
	if (h->kind == T_CTL_CTL) {
		pthread_mutex_lock(&h->lock);
		r = buf_add(&h->wbuf, data, size);
		pthread_mutex_unlock(&h->lock);
		r = r ? r : ctl_run_lines(f, h, 0);
	} else if (h->scratch) {
		struct scratch *s;

		fs_nodes_lock(f);
		s = fs_scratch_by_ino_locked(f, h->scratch);
		r = s ? fs_buf_write_at(&s->data, data, size,
					append ? (off_t)s->data.len : off)
		      : -ENOENT;
		if (s)
			s->mtime_ms = clock_wall_ms();
		fs_nodes_unlock(f);
	} else if (h->writable) {
		pthread_mutex_lock(&h->lock);
		r = fs_buf_write_at(&h->data, data, size,
				    append ? (off_t)h->data.len : off);
		h->dirty = 1;
		pthread_mutex_unlock(&h->lock);
	} else {
		r = -EBADF;
	}
	/* Past WRITE_MAX: EFBIG itself, not the EIO fs_reply_err makes of it.
	 */
	if (r == -EFBIG)
		fuse_reply_err(req, EFBIG);
	else if (r)
		fs_reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

/* Commits a written tree file once: close() and fsync() both come here.
 * *ran (may be NULL): set when a commit ran. */
static int handle_commit(struct fs *f, struct handle *h, int *ran)
{
	struct buf picked = BUF_INIT;
	const struct buf *base;
	int r, queued;

	if (!h->writable || h->scratch)
		return 0;
	/* Held through the commit: a concurrent write waits for it. */
	pthread_mutex_lock(&h->lock);
	if (!h->dirty) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	h->dirty = 0;
	if (ran)
		*ran = 1;
	base = h->based ? &h->base : NULL;
	buf_init(&picked, WRITE_MAX);
	if (h->based && !h->base_known &&
	    !fs_read_base_pick(f, tree_ino(&h->t), h->proc,
			       h->data.data ? h->data.data : "", h->data.len,
			       &picked))
		base = &picked;
	r = commit_write(f->d, &h->t, h->path, h->data.data ? h->data.data : "",
			 h->data.len, base, &queued);
	if (!r && tree_access(h->t.kind) == TA_RW)
		/* The writer's next save, through another descriptor,
		 * starts from what it wrote (an undo of it is a change). */
		fs_read_base_note(f, tree_ino(&h->t), h->proc, queued,
				  h->data.data ? h->data.data : "",
				  h->data.len);
	if (!r && h->based && !queued) {
		/* The API took it: a later commit of this descriptor (an
		 * fsync, then more) is the writer's change on top of that.
		 * Queued, the outbox may still refuse it, and the writer's
		 * version stays what it read: a later commit sends again
		 * what this one changed. */
		buf_reset(&h->base);
		h->based = !buf_add(&h->base, h->data.data ? h->data.data : "",
				    h->data.len);
		h->base_known = 1;
	}

	buf_release(&picked);
	pthread_mutex_unlock(&h->lock);
	if (r)
		log_context_set(NULL);
	return r;
}

/*
 * close() (flush) and fsync() commit a written file. What the commit
 * changed in the tree (a reply's refetched conversation, or, answered
 * 404, its object removed) reaches the kernel's caches before close()
 * returns, as a ctl write's sync does: otherwise a lookup right after it
 * could still find the removed conversation's cached entry. Waited for
 * with h->lock released (handle_commit), only when the commit queued
 * changes. Not in fsync: the kernel holds the file's inode lock across
 * it, and an invalidation may wait on a directory lock whose holder waits
 * for that one; the close() after it waits instead (undrained).
 */
static void flush_commit(fuse_req_t req, struct fuse_file_info *fi, int sync)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r = 0;

	if (!h) {
		/* Unopened (op_init): once ENOSYS, the kernel stops asking. */
		fs_reply_err(req, -ENOSYS);
		return;
	}
	if (h->kind == T_CTL_CTL) {
		r = ctl_run_lines(f, h, 1);
	} else {
		uint64_t before = fs_notifier_queued(f);
		int ran = 0, wait;

		r = handle_commit(f, h, &ran);
		wait = ran && fs_notifier_queued(f) != before;
		if (sync && wait)
			__atomic_store_n(&h->undrained, 1, __ATOMIC_RELAXED);
		else if (!sync && !f->single_thread &&
			 (__atomic_exchange_n(&h->undrained, 0,
					      __ATOMIC_RELAXED) ||
			  wait))
			fs_notifier_drain(f, CTL_DRAIN_MS);
	}
	fs_reply_err(req, r);
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	flush_commit(req, fi, 0);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	flush_commit(req, fi, 1);
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)ino;
	if (!h) {
		fuse_reply_err(req, 0);
		return;
	}
	/* Normally flush() has committed already; this is the last chance. */
	handle_commit(fs_of(req), h, NULL);
	fs_handle_free(h);
	fuse_reply_err(req, 0);
}
