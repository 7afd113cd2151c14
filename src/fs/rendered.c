// SPDX-License-Identifier: MIT
/*
 * rendered.c: reads without a handle, on a read-only mount whose kernel
 * opens files without asking (op_init): the file is rendered for its first
 * piece and kept a moment in a few slots for the pieces after it, until
 * it changes (fs_rendered_drop, from the notifier). Guarded by fs.rlock.
 */
#include "fs_int.h"

#include <stdlib.h>
#include <unistd.h>

#include "clock.h"
#include "http.h"
#include "tree.h"

/* Forgets what a read-only mount rendered of ino (it changed). */
void fs_rendered_drop(struct fs *f, uint64_t ino)
{
	if (!f->no_open)
		return;
	pthread_mutex_lock(&f->rlock);
	f->rgen++;
	for (size_t i = 0; i < RENDERED_SLOTS; i++)
		if (f->rendered[i].ino == ino) {
			f->rendered[i].ino = 0;
			buf_release(&f->rendered[i].data);
		}
	pthread_mutex_unlock(&f->rlock);
}

/*
 * A read without a handle (a read-only mount, see op_init). The first
 * piece renders the file; the pieces after it come from that rendering
 * while it is fresh. Dynamic files are rendered for every read.
 */
void fs_read_unopened(struct fs *f, fuse_req_t req, fuse_ino_t ino, size_t size,
		      off_t off)
{
	struct buf data = BUF_INIT;
	struct tnode t = { 0 };
	struct rendered *slot = NULL;
	int64_t now = clock_mono_ms();
	unsigned long gen;
	char *copy = NULL;
	size_t n = 0;
	int r, keep;

	r = fs_node_get(f, ino, &t);
	if (r) {
		fs_reply_err(req, r);
		return;
	}
	if (t.kind == T_ATTACHMENT) {
		/* Read from its file, never rendered whole into a slot. */
		int fd;

		fs_set_context(f, "read", ino, NULL);
		fd = tree_content_fd(f->d, &t);

		tree_node_release(&t);
		if (fd < 0) {
			fs_reply_err(req, fd);
			return;
		}
		__atomic_add_fetch(&f->unopened_reads, 1, __ATOMIC_RELAXED);
		r = fs_pread_copy(fd, size, off, &copy, &n);
		close(fd);
		fs_reply_copy(req, r, copy, n);
		return;
	}
	keep = tree_access(t.kind) != TA_DYNAMIC &&
	       tree_access(t.kind) != TA_CTL;
	pthread_mutex_lock(&f->rlock);
	gen = f->rgen;
	for (size_t i = 0; i < RENDERED_SLOTS && keep && off > 0 && !slot; i++)
		if (f->rendered[i].ino == ino &&
		    now - f->rendered[i].at_ms < RENDERED_TTL_MS)
			slot = &f->rendered[i];
	/* Copied under the lock, replied after it: fs_rendered_drop() (the
	 * notifier) waits on rlock, and must not wait on the kernel taking
	 * a reply. */
	if (slot)
		r = fs_slice_copy(&slot->data, size, off, &copy, &n);
	pthread_mutex_unlock(&f->rlock);
	if (slot) {
		tree_node_release(&t);
		fs_reply_copy(req, r, copy, n);
		return;
	}
	fs_set_context(f, "read", ino, NULL);
	__atomic_add_fetch(&f->unopened_reads, 1, __ATOMIC_RELAXED);
	r = tree_content(f->d, &t, &data);
	tree_node_release(&t);
	if (r) {
		fs_reply_err(req, r);
		buf_release(&data);
		return;
	}
	r = fs_slice_copy(&data, size, off, &copy, &n);
	fs_reply_copy(req, r, copy, n);
	pthread_mutex_lock(&f->rlock);
	if (keep && data.len > size && data.len <= RENDERED_MAX &&
	    f->rgen == gen) {
		slot = &f->rendered[f->rnext++ % RENDERED_SLOTS];
		for (size_t i = 0; i < RENDERED_SLOTS; i++)
			if (f->rendered[i].ino == ino)
				slot = &f->rendered[i];
		buf_release(&slot->data);
		slot->data = data;
		slot->ino = ino;
		slot->at_ms = now;
	} else {
		buf_release(&data);
	}
	pthread_mutex_unlock(&f->rlock);
}
