// SPDX-License-Identifier: MIT
/*
 * store_authors.c: what re-rendering transcripts after a rename reads and
 * writes (sync_rerender.c): the conversations a user or a contact wrote
 * in, a conversation's cached messages, and its transcript column alone;
 * and what the removal of a contact reads (sync_fetch.c): links to
 * contacts without a row, the ids of prefixed meta keys.
 * Each statement is prepared per call on the thread's connection (its
 * transaction's, when one is open), so the shared statement tables of
 * store_int.h stay as they are.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "log.h"

/*
 * No column holds a message's author, so this reads messages.json, the
 * message as the API sent it (json_render'd; a BLOB, hence the CAST): a
 * scan of the whole table, about half a second for 300k messages. The
 * author test is the one the transcript's naming makes (sync_author_of):
 * every author type but "contact" is named from the users table. The id
 * is compared as an integer, as api.c reads it (a quoted id too); a
 * conversation matched too many is only re-rendered to the same bytes.
 */
static const char user_convs_sql[] =
	"SELECT DISTINCT conversation_id FROM messages"
	" WHERE CAST(json_extract(CAST(json AS TEXT), '$.author.id')"
	"            AS INTEGER) IN (SELECT value FROM json_each(?1))"
	" AND json_extract(CAST(json AS TEXT), '$.author.type')"
	"     IS NOT 'contact'"
	" ORDER BY conversation_id";

/* A contact's conversations, by the conv_contact index. */
static const char contact_convs_sql[] =
	"SELECT id FROM conversations WHERE contact_id = ?1 ORDER BY id";

/* The users store_prune(ST_USERS, gen) would delete. */
static const char unseen_users_sql[] =
	"SELECT id FROM users WHERE gen != ?1 ORDER BY id";

/* Links to a contact without a row: a scan of conversations (run once). */
static const char dangling_sql[] =
	"SELECT DISTINCT contact_id FROM conversations c"
	" WHERE contact_id > 0 AND NOT EXISTS"
	"  (SELECT 1 FROM contacts WHERE contacts.id = c.contact_id)"
	" ORDER BY contact_id";

/* A scan of meta (a few dozen keys). */
static const char meta_ids_sql[] =
	"SELECT CAST(substr(key, length(?1) + 1) AS INTEGER) AS id FROM meta"
	" WHERE substr(key, 1, length(?1)) = ?1 AND id > 0 ORDER BY id";

static const char meta_delete_sql[] = "DELETE FROM meta WHERE key = ?1";

static const char messages_sql[] =
	"SELECT json FROM messages WHERE conversation_id = ?1"
	" ORDER BY created_at, id";

static const char transcript_sql[] =
	"UPDATE conversations SET transcript = ?2"
	" WHERE id = ?1 AND transcript IS NOT ?2";

/* Prepares sql on d; NULL (logged) when it cannot be. The caller
 * finalizes it. */
static sqlite3_stmt *prepare(struct db *d, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL) != SQLITE_OK) {
		log_err("cache: preparing \"%s\": %s", sql,
			sqlite3_errmsg(d->sql));
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

/* Steps s, appending its first column's ids to *v (malloc'd, the
 * caller's). */
static int collect_ids(struct db *d, sqlite3_stmt *s, int64_t **v, size_t *n)
{
	int rc, r = store_step_ids(s, v, n, &rc);

	if (r)
		return r;
	if (rc != SQLITE_DONE) {
		log_error_event("cache: %s", sqlite3_errmsg(d->sql));
		return store_sql_errno(rc);
	}
	return 0;
}

int store_user_conversations(struct store *st, const int64_t *ids, size_t n,
			     int64_t **convs, size_t *nconvs)
{
	struct buf arr = BUF_INIT;
	struct db *d = NULL;
	sqlite3_stmt *s = NULL;
	int r;

	*convs = NULL;
	*nconvs = 0;
	if (!n)
		return 0;
	r = buf_addc(&arr, '[');
	for (size_t i = 0; i < n && !r; i++)
		r = buf_printf(&arr, "%s%lld", i ? "," : "", (long long)ids[i]);
	r = r ? r : buf_addc(&arr, ']');
	if (r)
		goto out;
	d = store_db_get(st);
	if (!d) {
		r = -errno;
		goto out;
	}
	s = prepare(d, user_convs_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, arr.data, (int)arr.len, SQLITE_STATIC);
	r = collect_ids(d, s, convs, nconvs);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	buf_release(&arr);
	return r;
}

int store_contact_conversations(struct store *st, int64_t contact,
				int64_t **convs, size_t *nconvs)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int r;

	*convs = NULL;
	*nconvs = 0;
	if (!d)
		return -errno;
	s = prepare(d, contact_convs_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, contact);
	r = collect_ids(d, s, convs, nconvs);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

int store_users_unseen(struct store *st, int64_t gen, int64_t **ids,
		       size_t *n)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int r;

	*ids = NULL;
	*n = 0;
	if (!d)
		return -errno;
	s = prepare(d, unseen_users_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, gen);
	r = collect_ids(d, s, ids, n);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

int store_conversation_messages(struct store *st, int64_t conv,
				struct buf *out)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int rc = SQLITE_DONE, first = 1, r;

	if (!d)
		return -errno;
	s = prepare(d, messages_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, conv);
	r = buf_addc(out, '[');
	while (!r && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const void *j = sqlite3_column_blob(s, 0);
		int len = sqlite3_column_bytes(s, 0);

		if (!first)
			r = buf_addc(out, ',');
		first = 0;
		if (!r && len > 0)
			r = buf_add(out, j, (size_t)len);
	}
	if (!r && rc != SQLITE_DONE) {
		log_error_event("cache: %s", sqlite3_errmsg(d->sql));
		r = store_sql_errno(rc);
	}
	r = r ? r : buf_addc(out, ']');
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

int store_set_transcript(struct store *st, int64_t conv,
			 const struct buf *transcript, int *changed)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int r;

	*changed = 0;
	if (!d)
		return -errno;
	s = prepare(d, transcript_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, conv);
	store_bind_buf(s, 2, transcript);
	r = store_step_done(d, s);
	if (!r)
		*changed = sqlite3_changes(d->sql) > 0;
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

/* Runs sql (bound to text arg when not NULL) and collects its ids. */
static int ids_by(struct store *st, const char *sql, const char *arg,
		  int64_t **ids, size_t *n)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int r;

	*ids = NULL;
	*n = 0;
	if (!d)
		return -errno;
	s = prepare(d, sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	if (arg)
		sqlite3_bind_text(s, 1, arg, -1, SQLITE_STATIC);
	r = collect_ids(d, s, ids, n);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

int store_dangling_contacts(struct store *st, int64_t **ids, size_t *n)
{
	return ids_by(st, dangling_sql, NULL, ids, n);
}

int store_meta_ids(struct store *st, const char *prefix, int64_t **ids,
		   size_t *n)
{
	return ids_by(st, meta_ids_sql, prefix, ids, n);
}

int store_meta_delete(struct store *st, const char *key)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int r;

	if (!d)
		return -errno;
	s = prepare(d, meta_delete_sql);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	r = store_step_done(d, s);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}
