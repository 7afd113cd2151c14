// SPDX-License-Identifier: MIT
/*
 * test_fs.c: the FUSE request handlers (src/fs/) on paths the kernel
 * seldom takes.
 *
 * The handlers are called directly, with libfuse's reply functions replaced
 * by the stubs below (a definition in the program wins over the shared
 * library's), so a test chooses what a reply returns and sees what the
 * handler answered. Only nodes that need no cache are used: the root, and
 * scratch files created in it.
 */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driftfs.h"
#include "fs.h"
#include "unit.h"

static struct fs *cur_fs;
static char req_token;
#define REQ ((fuse_req_t)(void *)&req_token)

/* What the stubs saw and what they return. */
static int last_err = -1;		/* the last fuse_reply_err, or -1 */
static int create_replies;		/* fuse_reply_create calls */
static int create_result;		/* what fuse_reply_create returns */
static uint64_t last_ino;
static uint64_t last_fh;
static char read_back[64];
static size_t read_len;
static size_t written;

void *fuse_req_userdata(fuse_req_t req)
{
	(void)req;
	return cur_fs;
}

int fuse_reply_err(fuse_req_t req, int err)
{
	(void)req;
	last_err = err;
	return 0;
}

void fuse_reply_none(fuse_req_t req)
{
	(void)req;
}

int fuse_reply_create(fuse_req_t req, const struct fuse_entry_param *e,
		      const struct fuse_file_info *fi)
{
	(void)req;
	create_replies++;
	last_err = -1;
	last_ino = e->ino;
	last_fh = fi->fh;
	/* Like libfuse when the kernel has given up on the request. */
	return create_result;
}

int fuse_reply_open(fuse_req_t req, const struct fuse_file_info *fi)
{
	(void)req;
	last_err = -1;
	last_fh = fi->fh;
	return 0;
}

int fuse_reply_buf(fuse_req_t req, const char *buf, size_t size)
{
	(void)req;
	last_err = -1;
	read_len = size < sizeof(read_back) ? size : sizeof(read_back);
	memcpy(read_back, buf, read_len);
	return 0;
}

int fuse_reply_write(fuse_req_t req, size_t count)
{
	(void)req;
	last_err = -1;
	written = count;
	return 0;
}

static struct driftfs drift;

static void fs_setup(void)
{
	memset(&drift, 0, sizeof(drift));
	drift.uid = getuid();
	drift.gid = getgid();
	cur_fs = fs_new(&drift);
	drift.fs = cur_fs;
	create_result = 0;
	create_replies = 0;
	last_err = -1;
}

/* Creates name in the root; 0 or the errno the handler answered. */
static int create(const char *name, struct fuse_file_info *fi)
{
	memset(fi, 0, sizeof(*fi));
	fi->flags = O_WRONLY | O_CREAT | O_EXCL;
	last_err = -1;
	fs_ops()->create(REQ, FUSE_ROOT_ID, name, 0644, fi);
	return last_err < 0 ? 0 : last_err;
}

/*
 * A create refused with EEXIST (a scratch file of that name appeared
 * after the kernel's lookup) freed a handle still listed in fs.handles:
 * fs_free() then freed it again (under ASan: heap-use-after-free).
 */
static void test_create_eexist_frees_its_handle_once(void)
{
	struct fuse_file_info fi, fi2;
	uint64_t ino;

	fs_setup();
	REQUIRE(cur_fs);
	CHECK_EQ_INT(create("draft.txt", &fi), 0);
	CHECK_EQ_INT(create_replies, 1);
	ino = last_ino;
	CHECK_EQ_INT(create("draft.txt", &fi2), EEXIST);
	CHECK_EQ_INT(create_replies, 1);
	/* The first file still works: its handle was not the one freed. */
	last_err = -1;
	fs_ops()->write(REQ, ino, "abc", 3, 0, &fi);
	CHECK_EQ_INT(last_err, -1);
	CHECK_EQ_INT(written, 3);
	fs_ops()->read(REQ, ino, 16, 0, &fi);
	CHECK_EQ_MEM(read_back, read_len, "abc", 3);
	fs_ops()->release(REQ, ino, &fi);
	CHECK_EQ_INT(last_err, 0);
	fs_ops()->forget(REQ, ino, 1);
	fs_free(cur_fs);
	cur_fs = NULL;
}

/*
 * A create whose reply the kernel no longer takes (the request was
 * aborted): the handle is freed once, and the session's end (fs_free)
 * does not meet it again.
 */
static void test_create_reply_failure_frees_its_handle_once(void)
{
	struct fuse_file_info fi;

	fs_setup();
	REQUIRE(cur_fs);
	create_result = -ENOENT;
	CHECK_EQ_INT(create("lost.txt", &fi), 0);
	CHECK_EQ_INT(create_replies, 1);
	create_result = 0;
	/* Another handle is listed after it, then released normally. */
	CHECK_EQ_INT(create("kept.txt", &fi), 0);
	fs_ops()->release(REQ, last_ino, &fi);
	CHECK_EQ_INT(last_err, 0);
	fs_free(cur_fs);
	cur_fs = NULL;
}

int main(void)
{
	UNIT_RUN(test_create_eexist_frees_its_handle_once);
	UNIT_RUN(test_create_reply_failure_frees_its_handle_once);
	return unit_summary();
}
