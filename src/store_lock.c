// SPDX-License-Identifier: MIT
/*
 * store_lock.c: which process may check and repair the cache. Every
 * process holds a shared flock on DIR/cache.lock and leaves a mark; the one
 * alone at open may check, rebuild and sweep, and the one alone at a clean
 * close records cache.db so that the next open can skip the check. The
 * check and the repair themselves are in store_schema.c.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* "size mtime inode" of path: what cache.clean records. */
static int stamp_of(const char *path, char *out, size_t len)
{
	struct stat sb;

	if (stat(path, &sb))
		return -errno;
	snprintf(out, len, "%lld %lld.%09ld %llu\n", (long long)sb.st_size,
		 (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec,
		 (unsigned long long)sb.st_ino);
	return 0;
}

/*
 * Whether cache.db is as the last clean store_close() left it: its size,
 * mtime and inode are those recorded in cache.db.clean then. Nothing has
 * written to it since (not a crash of ours, not another program), so the
 * O(size) check can be skipped: on a big cache it is most of a warm
 * mount's time. The record is removed here, so a crash of this run forces
 * the check next time.
 */
int store_cache_untouched(const struct store *st)
{
	char *clean = NULL, want[128], have[128] = "";
	ssize_t n = -1;
	int fd;

	if (asprintf(&clean, "%s.clean", st->path) < 0)
		return 0;
	fd = open(clean, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, have, sizeof(have) - 1);
		close(fd);
		unlink(clean);
	}
	free(clean);
	if (n <= 0 || st->crashed ||
	    stamp_of(st->path, want, sizeof(want)))
		return 0;
	have[n] = '\0';
	return !strcmp(have, want);
}

/* Records cache.db as this clean close leaves it (see store_cache_untouched).
 */
static void cache_mark_clean(const struct store *st)
{
	char *clean = NULL, *tmp = NULL, stamp[128];
	int fd;

	if (stamp_of(st->path, stamp, sizeof(stamp)) ||
	    asprintf(&clean, "%s.clean", st->path) < 0) {
		return;
	}
	if (asprintf(&tmp, "%s.tmp", clean) < 0) {
		free(clean);
		return;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd >= 0) {
		int ok = write(fd, stamp, strlen(stamp)) == (ssize_t)strlen(stamp);

		if (close(fd) || !ok || rename(tmp, clean))
			unlink(tmp);
	}
	free(tmp);
	free(clean);
}

/*
 * Removes the marks of processes that did not close cleanly (called alone:
 * no live process has one); returns how many there were.
 */
static int cache_dead_marks(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!dp)
		return 1;	/* cannot tell: not clean */
	while ((e = readdir(dp)))
		if (!strncmp(e->d_name, "cache.open-", 11)) {
			unlinkat(dirfd(dp), e->d_name, 0);
			n++;
		}
	closedir(dp);
	return n;
}

/*
 * Every process that has the cache open (the mount, driftctl, several
 * mounts of one cache) holds flock(DIR/cache.lock, LOCK_SH) until it closes
 * it. Only a process that gets LOCK_EX at open is alone with the cache:
 * only it may trust cache.db.clean, check and rebuild cache.db, and sweep
 * blobs/, for what another process has in flight (a temp file, a file
 * renamed before its row commits) looks exactly like what a crash leaves.
 * It keeps LOCK_EX until its open is done (store_cache_share), so a process
 * that comes meanwhile waits for the sweep to end.
 *
 * Each process also leaves a mark, DIR/cache.open-XXXXXX, that its clean
 * close removes. A mark without its process is the trace of a crash (a
 * kill -9 of a mount while driftctl ran): then cache.db.clean is not
 * trusted at open, nor written at close. Returns 0 or -errno.
 */
int store_cache_lock(struct store *st, const char *dir)
{
	char *path = NULL;
	int fd, tries = 0;

	if (asprintf(&path, "%s/cache.lock", dir) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		int e = errno;

		log_err("cache %s: %s", path, strerror(e));
		free(path);
		return -e;
	}
	free(path);
	st->lock_fd = fd;
	/*
	 * Try alone; else wait for a shared lock, which waits out another
	 * process's exclusive open or close, and try once more (it may have
	 * been the last). A failed LOCK_NB conversion drops the lock held
	 * (Linux removes it first), so the shared one is taken again.
	 */
	for (;;) {
		if (!flock(fd, LOCK_EX | LOCK_NB)) {
			st->alone = 1;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			return -errno;
		if (tries++ && !flock(fd, LOCK_SH))
			break;
		if (flock(fd, LOCK_SH) && errno != EINTR)
			return -errno;
	}
	if (st->alone)
		st->crashed = cache_dead_marks(dir);
	if (asprintf(&st->mark, "%s/cache.open-XXXXXX", dir) < 0) {
		st->mark = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(st->mark, O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		log_err("cache %s: %s", st->mark, strerror(e));
		free(st->mark);
		st->mark = NULL;
		return -e;
	}
	close(fd);
	return 0;
}

/* The alone process's open is done: others may come now. */
void store_cache_share(struct store *st)
{
	if (st->alone)
		flock(st->lock_fd, LOCK_SH);
}

/*
 * At close, every connection closed: cache.db.clean is written only by a
 * process that is alone now and finds no mark of a crashed one.
 */
void store_cache_unlock(struct store *st)
{
	char *dir = st->mark ? strdup(st->mark) : NULL;
	char *slash = dir ? strrchr(dir, '/') : NULL;

	if (st->mark)
		unlink(st->mark);
	if (slash && st->opened && !flock(st->lock_fd, LOCK_EX | LOCK_NB)) {
		*slash = '\0';
		if (!cache_dead_marks(dir)) {
			cache_mark_clean(st);
		} else {
			char *clean = NULL;

			/* One written before the crash says too much. */
			if (asprintf(&clean, "%s.clean", st->path) >= 0) {
				unlink(clean);
				free(clean);
			}
		}
	}
	free(dir);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st->mark);
}
