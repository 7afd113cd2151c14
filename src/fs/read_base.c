// SPDX-License-Identifier: MIT
/*
 * read_base.c: the versions of writable files that processes took (struct
 * read_base in struct fs): the bytes a read gave a process and what it
 * committed, so an edit saved through another descriptor or a scratch file
 * is compared with the version its writer had (DESIGN §4), not the cache.
 * Also who a request's process is (fs_caller_proc). Guarded by fs.bllock.
 */
#include "fs_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "commit.h"

/*
 * The process that made request req, as one number: FUSE gives the
 * calling thread's id, and an editor may read on one thread and save on
 * another, so its thread group's id; with the group's start time, so that
 * a pid used again later is another process. 0 when /proc cannot say.
 */
uint64_t fs_caller_proc(fuse_req_t req)
{
	pid_t tid = fuse_req_ctx(req)->pid;
	unsigned long long start = 0;
	long tgid = 0;
	char path[64], line[512], *p;
	FILE *fp;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fp = fopen(path, "re");
	while (fp && fgets(line, sizeof(line), fp))
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = strtol(line + 5, NULL, 10);
			break;
		}
	if (fp)
		fclose(fp);
	if (tgid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", tgid);
	fp = fopen(path, "re");
	p = fp && fgets(line, sizeof(line), fp) ? strrchr(line, ')') : NULL;
	/* Field 22, counted after the ')' that ends the command name. */
	if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			"%*u %*u %*d %*d %*d %*d %*d %*d %llu", &start) != 1)
		start = 0;
	if (fp)
		fclose(fp);
	return ((uint64_t)start << 22) ^ (uint64_t)tgid;
}

/* Frees the version in b (bllock held). */
static void read_base_drop_locked(struct fs *f, struct read_base *b)
{
	f->bbytes -= b->data.len;
	b->ino = 0;
	buf_release(&b->data);
}

/*
 * Notes data as the version of the file ino that process pid took last
 * (see fs.bases). ino is the tree's inode of the file (tree_ino), not the
 * kernel's: a scratch file renamed over it stays an alias of it.
 */
void fs_read_base_note(struct fs *f, uint64_t ino, uint64_t proc, int queued,
		       const char *data, size_t len)
{
	struct read_base *slot = NULL, *mine = NULL, *lru = NULL, *b;
	size_t n = 0;

	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
		b = &f->bases[i];
		if (b->ino == ino && b->proc == proc) {
			if (b->data.len == len &&
			    !memcmp(b->data.data ? b->data.data : "", data,
				    len)) {
				/* Read again: now the most recent. */
				b->used = ++f->bclock;
				b->queued = queued;
				goto out;
			}
			n++;
			if (!mine || b->used < mine->used)
				mine = b;
		}
		if (!b->ino && !slot)
			slot = b;
		if (b->ino && (!lru || b->used < lru->used))
			lru = b;
	}
	if (len > READ_BASE_MAX) {
		/* The writer may start from this one, which is not kept:
		 * the older ones are not it, and would be taken for it. */
		for (size_t i = 0; i < READ_BASE_SLOTS; i++)
			if (f->bases[i].ino == ino && f->bases[i].proc == proc)
				read_base_drop_locked(f, &f->bases[i]);
		goto out;
	}
	if (n >= READ_BASE_PER_FILE)
		slot = mine;
	else if (!slot)
		slot = lru;
	if (slot->ino)
		read_base_drop_locked(f, slot);
	/* Within the budget: the least recently used go. */
	while (f->bbytes + len > READ_BASE_BUDGET) {
		lru = NULL;
		for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
			b = &f->bases[i];
			if (b->ino && (!lru || b->used < lru->used))
				lru = b;
		}
		read_base_drop_locked(f, lru);
	}
	if (!buf_add(&slot->data, data, len)) {
		slot->ino = ino;
		slot->proc = proc;
		slot->queued = queued;
		slot->used = ++f->bclock;
		f->bbytes += len;
	} else {
		buf_release(&slot->data);	/* no memory: not kept */
	}
out:
	pthread_mutex_unlock(&f->bllock);
}

/*
 * Copies into out the version of ino that the writer of data, process
 * pid, read: the one that process took last (it read it, or committed it),
 * else, as its read may have been served from the kernel's page cache, the
 * version any process took that is closest to data (commit_base_distance;
 * the most recent of those as close). None when data is exactly a version
 * kept that is not the newest: writing back an older version whole is a
 * restore (or an undo of a change), and only the cache as base sends it;
 * the newest written back unchanged is no change. 0, or -ENOENT when there
 * is none.
 */
int fs_read_base_pick(struct fs *f, uint64_t ino, uint64_t proc,
		      const char *data, size_t len, struct buf *out)
{
	struct read_base *best = NULL, *newest = NULL, *b;
	uint64_t bestd = 0, d;
	int r = -ENOENT, own = 0;

	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
		b = &f->bases[i];
		if (b->ino == ino && proc && b->proc == proc &&
		    (!own || b->used > best->used)) {
			best = b;
			own = 1;
		}
	}
	for (size_t i = 0; i < READ_BASE_SLOTS && !own; i++) {
		b = &f->bases[i];
		if (b->ino != ino)
			continue;
		if (!newest || b->used > newest->used)
			newest = b;
		d = commit_base_distance(data, len,
					 b->data.data ? b->data.data : "",
					 b->data.len);
		if (!best || d < bestd || (d == bestd && b->used > best->used)) {
			best = b;
			bestd = d;
		}
	}
	if (best && !own && bestd == 0 && best != newest)
		best = NULL;
	if (best) {
		best->used = ++f->bclock;
		r = buf_add(out, best->data.data ? best->data.data : "",
			    best->data.len);
	}
	pthread_mutex_unlock(&f->bllock);
	return r;
}

void fs_outbox_lost(struct fs *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		if (f->bases[i].ino && f->bases[i].queued)
			read_base_drop_locked(f, &f->bases[i]);
	pthread_mutex_unlock(&f->bllock);
}

void fs_outbox_delivered(struct fs *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		f->bases[i].queued = 0;
	pthread_mutex_unlock(&f->bllock);
}
