// SPDX-License-Identifier: MIT
/*
 * store_blob.c: attachments' bytes, one file each in DIR/blobs (never in
 * cache.db, never in memory whole): the download into a staged temp file,
 * its placing by the commit of its row (under the blob mutex), the reads,
 * and the tidying after a crash. The rows are store_write.c's; the commit
 * that places the files is store.c's.
 */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"

void store_blob_path(const struct store *st, int64_t id, char *out, size_t len)
{
	snprintf(out, len, "%s/%lld", st->blob_dir, (long long)id);
}

/* Whether the attachments table has a row for id, on connection d. */
int store_attachment_row_on(struct db *d, int64_t id)
{
	sqlite3_stmt *s = store_wprep(d, W_ATT_HAS);
	int has = 0;

	if (s) {
		sqlite3_bind_int64(s, 1, id);
		has = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_reset(s);
	}
	return has;
}

/*
 * Renames the staged files into place and syncs the directory, so the
 * names are on disk before the rows that the COMMIT after this stores.
 * A placed file's tmp is NULL. Called with blob_lock held.
 */
int store_staged_place(struct store *st, struct store_staged *sg)
{
	char p[4096];
	int dfd, r = 0;

	for (size_t i = 0; sg && i < sg->n && !r; i++) {
		store_blob_path(st, sg->v[i].id, p, sizeof(p));
		if (rename(sg->v[i].tmp, p)) {
			r = -errno;
			log_error_event("cache: naming the file of attachment"
					" %lld: %s", (long long)sg->v[i].id,
					strerror(-r));
			break;
		}
		free(sg->v[i].tmp);
		sg->v[i].tmp = NULL;
	}
	if (r || !sg || !sg->n)
		return r;
	dfd = open(st->blob_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd))
		r = -errno;
	if (dfd >= 0)
		close(dfd);
	if (r)
		log_error_event("cache: writing %s: %s", st->blob_dir,
				strerror(-r));
	return r;
}

/* Removes every file of the blob directory (the cache starts again). */
void store_blobs_clear(struct store *st)
{
	DIR *dir = opendir(st->blob_dir);
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
}

/*
 * After a run that did not close cleanly: temp files of downloads cut
 * short go, so do files whose row never committed (or whose row went and
 * the file not yet). A row whose file is missing (deleted by hand) goes
 * too, and the conversation walk starts over, so that its conversation
 * is fetched again with the attachment.
 */
int store_blobs_sweep(struct store *st, struct db *d)
{
	DIR *dir = opendir(st->blob_dir);
	sqlite3_stmt *s = NULL;
	struct dirent *e;
	int lost = 0, rc;

	if (!dir)
		return -errno;
	while ((e = readdir(dir))) {
		char *end;
		long long id;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		id = strtoll(e->d_name, &end, 10);
		if (*end || id <= 0) {
			unlinkat(dirfd(dir), e->d_name, 0);
			continue;
		}
		s = store_wprep(d, W_ATT_HAS);
		if (!s)
			break;
		sqlite3_bind_int64(s, 1, id);
		rc = sqlite3_step(s);
		sqlite3_reset(s);
		if (rc == SQLITE_DONE)
			unlinkat(dirfd(dir), e->d_name, 0);
	}
	closedir(dir);
	if (sqlite3_prepare_v2(d->sql, "SELECT id FROM attachments", -1, &s,
			       NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return -EIO;
	}
	while (sqlite3_step(s) == SQLITE_ROW) {
		char p[4096];

		store_blob_path(st, sqlite3_column_int64(s, 0), p, sizeof(p));
		if (access(p, F_OK))
			lost++;
	}
	sqlite3_finalize(s);
	if (!lost)
		return 0;
	log_warn("cache: %d attachment files are missing; their"
		 " conversations are fetched again", lost);
	/* The walk stops at the watermark: start it over, and make each
	 * such conversation look changed. */
	return sqlite3_exec(d->sql,
			    "BEGIN IMMEDIATE;"
			    "UPDATE conversations SET updated_at = 0 WHERE id IN"
			    " (SELECT conversation_id FROM attachments a WHERE"
			    " NOT blob_exists(a.id));"
			    "DELETE FROM attachments WHERE NOT blob_exists(id);"
			    "DELETE FROM meta WHERE key = 'conv_watermark';"
			    "COMMIT;",
			    NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

/* SQL blob_exists(id): whether the attachment's file is there. */
void store_sql_blob_exists(sqlite3_context *cx, int argc, sqlite3_value **v)
{
	const struct store *st = sqlite3_user_data(cx);
	char p[4096];

	(void)argc;
	store_blob_path(st, sqlite3_value_int64(v[0]), p, sizeof(p));
	sqlite3_result_int(cx, !access(p, F_OK));
}

/* Whether the attachments table has a row for id. */
static int attachment_row(struct store *st, int64_t id)
{
	struct db *d = store_db_get(st);
	int has;

	if (!d)
		return 0;
	has = store_attachment_row_on(d, id);
	store_db_put(st, d);
	return has;
}

int store_has_attachment(struct store *st, int64_t id)
{
	char p[4096];

	store_blob_path(st, id, p, sizeof(p));
	return attachment_row(st, id) && !access(p, F_OK);
}

void store_staged_release(struct store_staged *sg)
{
	if (!sg)
		return;
	for (size_t i = 0; i < sg->n; i++) {
		if (sg->v[i].tmp)
			unlink(sg->v[i].tmp);
		free(sg->v[i].tmp);
	}
	free(sg->v);
	memset(sg, 0, sizeof(*sg));
}

int store_attachment_blob(struct store *st, struct store_staged *sg,
			  int64_t id,
			  int (*fill)(void *ctx, int fd, int64_t *size),
			  void *ctx, int64_t *size)
{
	char tmp[4096];
	const char *what = "creating";
	int fd, r;

	*size = 0;
	if (sg->n == sg->alloc) {
		size_t na = sg->alloc ? sg->alloc * 2 : 8;
		struct store_staged_file *v = realloc(sg->v, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		sg->v = v;
		sg->alloc = na;
	}
	snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", st->blob_dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = fill(ctx, fd, size);
	if (r) {
		close(fd);
		unlink(tmp);
		return r;	/* the fetch said why */
	}
	/* The bytes are on disk before the name is (store_commit_staged
	 * renames it), and the name before the row: a row never lacks its
	 * file, even after a power loss. */
	what = "writing";
	if (fsync(fd))
		r = -errno;
	if (close(fd) && !r)
		r = -errno;
	if (!r) {
		sg->v[sg->n].id = id;
		sg->v[sg->n].tmp = strdup(tmp);
		if (sg->v[sg->n].tmp)
			sg->n++;
		else
			r = -ENOMEM;
	}
	if (r)
		unlink(tmp);
out:
	if (r)
		log_error_event("cache: %s the file of attachment %lld: %s",
				what, (long long)id, strerror(-r));
	return r;
}

/* An attachment's bytes, from its file; -ENOENT without a row. */
int store_attachment_open(struct store *st, int64_t id)
{
	struct store_row row;
	char p[4096];
	int fd, r;

	r = store_one(st, Q_ATTACHMENT, id, NULL, &row);
	if (r)
		return r;
	store_blob_path(st, id, p, sizeof(p));
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		r = -errno;
		log_error_event("cache: the file of attachment %lld: %s",
				(long long)id, strerror(-r));
		return r == -ENOENT ? -EIO : r;
	}
	return fd;
}

int store_attachment_read(struct store *st, int64_t id, struct buf *out)
{
	struct stat sb;
	int fd, r;

	fd = store_attachment_open(st, id);
	if (fd < 0)
		return fd;
	r = fstat(fd, &sb) ? -errno : buf_grow(out, (size_t)sb.st_size);
	for (;;) {
		ssize_t n;

		if (r)
			break;
		if (out->alloc - out->len < 2)
			r = buf_grow(out, 65536);
		if (r)
			break;
		n = read(fd, out->data + out->len, out->alloc - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = -errno;
		if (n <= 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	close(fd);
	return r;
}
