// SPDX-License-Identifier: MIT
/*
 * fuse_floor.c: the fastest a FUSE filesystem can serve `cat` of many small
 * files on this machine, for `make bench` (scripts/bench.py --only floor).
 *
 * One flat directory of N files of SIZE bytes, all answered from memory with
 * hour-long cache timeouts, no directory opens, and the same thread pool as
 * driftfs. MODE picks how files are opened:
 *   open    OPEN answered with keep_cache and noflush (what a read-write
 *           driftfs mount does): one OPEN and one RELEASE per file;
 *   noopen  OPEN answered ENOSYS, FLUSH answered 0: the kernel stops
 *           sending OPEN and RELEASE, but sends a FLUSH at every close
 *           (where a read-write filesystem would have to commit);
 *   none    OPEN and FLUSH answered ENOSYS (what `-o ro` does): no request.
 *   search  the requests of `ls search/<query>/conversations` on driftfs,
 *           answered from nothing: any name in the root is a directory
 *           (a query, cached 1 s as driftfs's are) that holds
 *           conversations/, which lists N directories; READDIRPLUS, and
 *           OPENDIR answered ENOSYS (the kernel then sends none), as
 *           driftfs does. So a fresh name costs LOOKUP, LOOKUP,
 *           READDIRPLUS and READDIRPLUS, and nothing else: the least any
 *           FUSE filesystem with driftfs's tree pays for that `ls`.
 *
 * usage: fuse_floor open|noopen|none|search N SIZE MOUNTPOINT   (stays in
 * the foreground; fusermount3 -u MOUNTPOINT ends it)
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum floor_mode { FLOOR_OPEN, FLOOR_NOOPEN, FLOOR_NONE, FLOOR_SEARCH };

static enum floor_mode mode;
static long nfiles;
static size_t fsize;
static char *content;

#define TIMEOUT 3600.0
/* A query's entries, as driftfs's SEARCH_TIMEOUT (src/fs/fs_int.h). */
#define SEARCH_TIMEOUT 1.0

/*
 * search mode's inodes: the k-th name looked up in the root is a query,
 * k * SEARCH_SPAN; its conversations/ is the next; the entries it lists
 * the ones after (at most SEARCH_SPAN - 2 of them).
 */
#define SEARCH_SPAN 4096
static atomic_ulong queries;

static void fill_stat(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID || mode == FLOOR_SEARCH) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		st->st_size = (off_t)fsize;
	}
}

static void floor_init(void *data, struct fuse_conn_info *conn)
{
	(void)data;
	conn->want |= conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
}

/* search mode: a query for any name in the root, conversations/ in a
 * query, nothing else. */
static void search_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (parent == FUSE_ROOT_ID)
		e.ino = (fuse_ino_t)(atomic_fetch_add(&queries, 1) + 1) *
			SEARCH_SPAN;
	else if (parent % SEARCH_SPAN == 0 && !strcmp(name, "conversations"))
		e.ino = parent + 1;
	if (!e.ino) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.attr_timeout = e.entry_timeout = SEARCH_TIMEOUT;
	fill_stat(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void search_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			       off_t off, struct fuse_file_info *fi)
{
	char *b = malloc(size);
	size_t n = 0;

	(void)fi;
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (long i = off; ino != FUSE_ROOT_ID && ino % SEARCH_SPAN == 1 &&
			   i < nfiles; i++) {
		struct fuse_entry_param e;
		char name[32];
		size_t len;

		snprintf(name, sizeof(name), "%ld", 1000000000 + i);
		memset(&e, 0, sizeof(e));
		e.ino = ino + 1 + (fuse_ino_t)i;
		e.attr_timeout = e.entry_timeout = SEARCH_TIMEOUT;
		fill_stat(e.ino, &e.attr);
		len = fuse_add_direntry_plus(req, b + n, size - n, name, &e,
					     i + 1);
		if (len > size - n)
			break;
		n += len;
	}
	fuse_reply_buf(req, b, n);
	free(b);
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	char *end;
	long i;

	if (parent != FUSE_ROOT_ID || name[0] != 'f') {
		fuse_reply_err(req, ENOENT);
		return;
	}
	i = strtol(name + 1, &end, 10);
	if (*end || i < 0 || i >= nfiles) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = (fuse_ino_t)i + 2;
	e.attr_timeout = e.entry_timeout = TIMEOUT;
	fill_stat(e.ino, &e.attr);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	fill_stat(ino, &st);
	fuse_reply_attr(req, &st, TIMEOUT);
}

static void floor_opendir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void floor_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			  off_t off, struct fuse_file_info *fi)
{
	char *b = malloc(size);
	size_t n = 0;

	(void)ino;
	(void)fi;
	if (!b) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (long i = off; i < nfiles; i++) {
		char name[32];
		struct stat st;
		size_t len;

		snprintf(name, sizeof(name), "f%ld", i);
		fill_stat((fuse_ino_t)i + 2, &st);
		len = fuse_add_direntry(req, b + n, size - n, name, &st, i + 1);
		if (len > size - n)
			break;
		n += len;
	}
	fuse_reply_buf(req, b, n);
	free(b);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	(void)ino;
	if (mode != FLOOR_OPEN) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	if (off < 0 || (size_t)off >= fsize) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > fsize - (size_t)off)
		size = fsize - (size_t)off;
	fuse_reply_buf(req, content + off, size);
}

static void floor_flush(fuse_req_t req, fuse_ino_t ino,
			struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, mode == FLOOR_NONE ? ENOSYS : 0);
}

static void floor_release(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.init = floor_init,
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.opendir = floor_opendir,
	.readdir = floor_readdir,
	.open = floor_open,
	.read = floor_read,
	.flush = floor_flush,
	.release = floor_release,
};

/* search mode: READDIRPLUS (libfuse asks the kernel for it when the
 * operation is there), as driftfs. */
static const struct fuse_lowlevel_ops search_ops = {
	.init = floor_init,
	.lookup = search_lookup,
	.getattr = floor_getattr,
	.opendir = floor_opendir,
	.readdirplus = search_readdirplus,
};

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop;
	struct fuse_session *se;
	int r = 1;

	if (argc != 5) {
		fprintf(stderr,
			"usage: %s open|noopen|none|search N SIZE MOUNTPOINT\n",
			argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "open"))
		mode = FLOOR_OPEN;
	else if (!strcmp(argv[1], "noopen"))
		mode = FLOOR_NOOPEN;
	else if (!strcmp(argv[1], "none"))
		mode = FLOOR_NONE;
	else if (!strcmp(argv[1], "search"))
		mode = FLOOR_SEARCH;
	else
		return 2;
	nfiles = strtol(argv[2], NULL, 10);
	fsize = (size_t)strtoul(argv[3], NULL, 10);
	if (nfiles <= 0 || !fsize || fsize > ((size_t)1 << 20) ||
	    (mode == FLOOR_SEARCH && nfiles > SEARCH_SPAN - 2))
		return 2;
	content = malloc(fsize);
	if (!content)
		return 1;
	memset(content, 'x', fsize);
	if (fuse_opt_add_arg(&args, argv[0]) ||
	    fuse_opt_add_arg(&args, "-ofsname=fuse_floor"))
		return 1;
	se = mode == FLOOR_SEARCH
		     ? fuse_session_new(&args, &search_ops, sizeof(search_ops),
					NULL)
		     : fuse_session_new(&args, &floor_ops, sizeof(floor_ops),
					NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	if (fuse_session_mount(se, argv[4]))
		goto out_signals;
	/* The loop driftfs runs. */
	loop = fuse_loop_cfg_create();
	if (loop) {
		fuse_loop_cfg_set_max_threads(loop, 16);
		fuse_loop_cfg_set_idle_threads(loop, 8);
		r = fuse_session_loop_mt(se, loop) ? 1 : 0;
		fuse_loop_cfg_destroy(loop);
	}
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out:
	fuse_opt_free_args(&args);
	free(content);
	return r;
}
