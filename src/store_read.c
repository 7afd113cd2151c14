// SPDX-License-Identifier: MIT
/*
 * store_read.c: the readers of the cache: the SQL of each enum store_query,
 * store_each()/store_one()/store_blob(), the counts, and the single values
 * the sync reads back (meta, a conversation's synced mark, the users'
 * orgs). They run on a pooled connection, or on the thread's transaction.
 * Writers are in store_write.c, attachment files in store_blob.c.
 */
#include "store_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

/* An integer macro as an SQL literal (STORE_CONTACT_BATCH). */
#define SQL_INT_(n) #n
#define SQL_INT(n) SQL_INT_(n)

/* Column order of every query: id, id2, mtime, size, name, text. */
static const char *const query_sql[Q__COUNT] = {
	[Q_CONTACTS] = "SELECT id, 0, created_at FROM contacts ORDER BY id",
	[Q_CONTACTS_AFTER] = "SELECT id FROM contacts WHERE id > ?1"
			     " ORDER BY id LIMIT " SQL_INT(STORE_CONTACT_BATCH),
	[Q_CONTACT_CONVS] = "SELECT id, contact_id, updated_at FROM"
			    " conversations WHERE contact_id = ?1 ORDER BY id",
	[Q_EMAIL_NAMES] = "SELECT id, 0, created_at, 0, email_name,"
			  " min(created_at * 1) FROM contacts"
			  " WHERE email_name IS NOT NULL GROUP BY email_name",
	[Q_EXTID_NAMES] = "SELECT id, 0, created_at, 0, ext_name,"
			  " min(created_at * 1) FROM contacts"
			  " WHERE ext_name IS NOT NULL GROUP BY ext_name",
	[Q_USERS] = "SELECT id, 0, mtime, length(json) FROM users ORDER BY id",
	[Q_USER_EMAIL_NAMES] = "SELECT min(id), 0, mtime, 0, email_name FROM"
			       " users WHERE email_name IS NOT NULL"
			       " GROUP BY email_name",
	[Q_CONVS] = "SELECT id, contact_id, updated_at FROM conversations"
		    " ORDER BY id",
	[Q_CONVS_BY_STATUS] = "SELECT id, 0, updated_at FROM conversations"
			      " WHERE status = ?2 ORDER BY id",
	[Q_MESSAGES] = "SELECT id, conversation_id, created_at, length(json)"
		       " FROM messages WHERE conversation_id = ?1"
		       " ORDER BY created_at, id",
	[Q_ATTACHMENTS] = "SELECT id, conversation_id, mtime, size,"
			  " name FROM attachments WHERE conversation_id = ?1"
			  " ORDER BY id",
	[Q_PLAYBOOKS] = "SELECT id, 0, mtime, length(json) FROM playbooks"
			" ORDER BY id",
	[Q_ACCOUNTS] = "SELECT ino_id, 0, mtime, length(json), name, key FROM"
		       " accounts ORDER BY key",
	[Q_STATUS_COUNTS] = "SELECT count(*), 0, max(updated_at), 0, status"
			    " FROM conversations GROUP BY status",
	[Q_CONTACT] = "SELECT id, 0, created_at, length(json) FROM contacts"
		      " WHERE id = ?1",
	[Q_CONTACT_TAGS] = "SELECT id, 0, created_at, length(tags) FROM"
			   " contacts WHERE id = ?1",
	[Q_CONTACT_NAME] = "SELECT id, 0, created_at, 0, coalesce(name, email)"
			   " FROM contacts WHERE id = ?1",
	[Q_CONTACT_BY_EMAIL] = "SELECT id, 0, created_at FROM contacts WHERE"
			       " email_name = ?2 ORDER BY created_at, id"
			       " LIMIT 1",
	[Q_CONTACT_BY_EXTID] = "SELECT id, 0, created_at FROM contacts WHERE"
			       " ext_name = ?2 ORDER BY created_at, id LIMIT 1",
	[Q_USER] = "SELECT id, 0, mtime, length(json) FROM users WHERE id = ?1",
	[Q_USER_BY_EMAIL] = "SELECT id, 0, mtime, length(json) FROM users"
			    " WHERE email_name = ?2 ORDER BY id LIMIT 1",
	[Q_USER_NAME] = "SELECT id, bot, mtime, 0, name FROM users WHERE id = ?1",
	[Q_CONV] = "SELECT id, contact_id, updated_at, length(json), NULL,"
		   " status FROM conversations WHERE id = ?1",
	[Q_TRANSCRIPT] = "SELECT id, contact_id, updated_at, length(transcript)"
			 " FROM conversations WHERE id = ?1",
	[Q_MESSAGE] = "SELECT id, conversation_id, created_at, length(json)"
		      " FROM messages WHERE id = ?1",
	[Q_ATTACHMENT] = "SELECT id, conversation_id, mtime, size, name"
			 " FROM attachments WHERE id = ?1",
	[Q_PLAYBOOK] = "SELECT id, 0, mtime, length(json) FROM playbooks"
		       " WHERE id = ?1",
	[Q_ACCOUNT_BY_NAME] = "SELECT ino_id, 0, mtime, length(json), name,"
			      " key FROM accounts WHERE name = ?2",
	[Q_COUNTS] = NULL,
};

/* The blob column of each single-row query, for store_blob(). */
static const char *const blob_sql[Q__COUNT] = {
	[Q_CONTACT] = "SELECT json FROM contacts WHERE id = ?1",
	[Q_CONTACT_TAGS] = "SELECT tags FROM contacts WHERE id = ?1",
	[Q_USER] = "SELECT json FROM users WHERE id = ?1",
	[Q_USER_BY_EMAIL] = "SELECT json FROM users WHERE email_name = ?2"
			    " ORDER BY id LIMIT 1",
	[Q_CONV] = "SELECT json FROM conversations WHERE id = ?1",
	[Q_TRANSCRIPT] = "SELECT transcript FROM conversations WHERE id = ?1",
	[Q_MESSAGE] = "SELECT json FROM messages WHERE id = ?1",
	[Q_PLAYBOOK] = "SELECT json FROM playbooks WHERE id = ?1",
	[Q_ACCOUNT_BY_NAME] = "SELECT json FROM accounts WHERE name = ?2",
};

static void bind_args(sqlite3_stmt *s, int64_t arg, const char *sarg)
{
	if (sqlite3_bind_parameter_count(s) >= 1)
		sqlite3_bind_int64(s, 1, arg);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_text(s, 2, sarg ? sarg : "", -1, SQLITE_STATIC);
}

static void fill_row(sqlite3_stmt *s, struct store_row *r)
{
	int n = sqlite3_column_count(s);

	memset(r, 0, sizeof(*r));
	r->id = sqlite3_column_int64(s, 0);
	if (n > 1)
		r->id2 = sqlite3_column_int64(s, 1);
	if (n > 2)
		r->mtime = sqlite3_column_int64(s, 2);
	if (n > 3)
		r->size = sqlite3_column_int64(s, 3);
	if (n > 4)
		r->name = (const char *)sqlite3_column_text(s, 4);
	if (n > 5)
		r->text = (const char *)sqlite3_column_text(s, 5);
}

int store_each(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, int (*cb)(void *ctx, const struct store_row *r),
	       void *ctx)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int rc, r = 0;

	if (!d)
		return -errno;
	s = store_prep(d, &d->q[q], query_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_row row;

		fill_row(s, &row);
		r = cb(ctx, &row);
		if (r)
			break;
	}
	if (!r && rc != SQLITE_DONE)
		r = store_sql_errno(rc);
	sqlite3_reset(s);
out:
	store_db_put(st, d);
	return r;
}

/*
 * The strings of this thread's last store_one() row. They belong to the
 * thread, not to the pooled connection the row came from (another thread
 * can take that connection the moment it is returned), and are freed when
 * the thread ends.
 */
struct row_strings {
	char *name, *text;
};

static pthread_key_t row_key;
static pthread_once_t row_once = PTHREAD_ONCE_INIT;

static void row_strings_free(void *p)
{
	struct row_strings *rs = p;

	free(rs->name);
	free(rs->text);
	free(rs);
}

static void row_key_create(void)
{
	pthread_key_create(&row_key, row_strings_free);
}

static struct row_strings *row_strings(void)
{
	struct row_strings *rs;

	pthread_once(&row_once, row_key_create);
	rs = pthread_getspecific(row_key);
	if (!rs) {
		rs = calloc(1, sizeof(*rs));
		if (rs && pthread_setspecific(row_key, rs)) {
			free(rs);
			rs = NULL;
		}
	}
	return rs;
}

int store_one(struct store *st, enum store_query q, int64_t arg,
	      const char *sarg, struct store_row *row)
{
	struct db *d;
	sqlite3_stmt *s;
	int rc, r = 0;

	/* A caller may read the row even when there is none (tree_getattr
	 * takes the mtime before it looks at the result). */
	memset(row, 0, sizeof(*row));
	d = store_db_get(st);
	if (!d)
		return -errno;
	s = store_prep(d, &d->q[q], query_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct row_strings *keep = row_strings();

		fill_row(s, row);
		/* Copy the strings: the statement, and the connection, go back
		 * to the pool, where another thread may take them at once. */
		if (keep) {
			free(keep->name);
			free(keep->text);
			keep->name = buf_strdup_or_null(row->name);
			keep->text = buf_strdup_or_null(row->text);
		}
		if (!keep || (row->name && !keep->name) ||
		    (row->text && !keep->text)) {
			memset(row, 0, sizeof(*row));
			r = -ENOMEM;
		} else {
			row->name = keep->name;
			row->text = keep->text;
		}
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : store_sql_errno(rc);
	}
	sqlite3_reset(s);
out:
	store_db_put(st, d);
	return r;
}

int store_blob(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, struct buf *out)
{
	struct db *d;
	sqlite3_stmt *s;
	int rc, r = 0;

	if (q == Q_ATTACHMENT)
		return store_attachment_read(st, arg, out);
	if (!blob_sql[q])
		return -EINVAL;
	d = store_db_get(st);
	if (!d)
		return -errno;
	s = store_prep(d, &d->blob[q], blob_sql[q]);
	if (!s) {
		r = -EIO;
		goto out;
	}
	bind_args(s, arg, sarg);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = buf_add(out, sqlite3_column_blob(s, 0),
			    (size_t)sqlite3_column_bytes(s, 0));
	else
		r = rc == SQLITE_DONE ? -ENOENT : store_sql_errno(rc);
	sqlite3_reset(s);
out:
	store_db_put(st, d);
	return r;
}

const char *const store_count_names[STORE_COUNTS] = {
	"contacts",    "users",	    "conversations", "messages",
	"attachments", "playbooks", "accounts",	     "outbox"
};

int store_counts(struct store *st, int64_t counts[STORE_COUNTS])
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r = -EIO;

	if (!d)
		return -errno;
	s = store_wprep(d, W_COUNTS);
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		for (int i = 0; i < 7; i++)
			counts[i] = sqlite3_column_int64(s, i);
		r = 0;
	}
	if (s)
		sqlite3_reset(s);
	store_db_put(st, d);
	if (!r)
		r = store_outbox_count(st, &counts[7]);
	return r;
}

int64_t store_conversation_synced(struct store *st, int64_t id)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int64_t v = 0;

	if (!d)
		return 0;
	s = store_wprep(d, W_CONV_SYNCED);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW)
			v = sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
	}
	store_db_put(st, d);
	return v;
}

/* The ids statement w (bound to a, and b when b_set) returns, into a new
 * array (*ids, the caller's to free; NULL when there are none). */
static int ids_of(struct store *st, enum wstmt w, int64_t a, int64_t b,
		  int b_set, int64_t **ids, size_t *n)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int rc, r = 0;

	*ids = NULL;
	*n = 0;
	if (!d)
		return -errno;
	s = store_wprep(d, w);
	if (!s) {
		r = -EIO;
		goto out;
	}
	sqlite3_bind_int64(s, 1, a);
	if (b_set)
		sqlite3_bind_int64(s, 2, b);
	r = store_step_ids(s, ids, n, &rc);
	if (!r && rc != SQLITE_DONE)
		r = store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
	sqlite3_reset(s);
out:
	store_db_put(st, d);
	if (r) {
		free(*ids);
		*ids = NULL;
		*n = 0;
	}
	return r;
}

int store_conversation_ids(struct store *st, int64_t after, size_t max,
			   int64_t **ids, size_t *n)
{
	return ids_of(st, W_CONV_IDS_AFTER, after,
		      max ? (int64_t)max : -1, 1, ids, n);
}

int store_contact_ids(struct store *st, int64_t after, size_t max,
		      int64_t **ids, size_t *n)
{
	return ids_of(st, W_CONTACT_IDS_AFTER, after,
		      max ? (int64_t)max : -1, 1, ids, n);
}

int store_contact_conversation_ids(struct store *st, int64_t contact,
				   int64_t **ids, size_t *n)
{
	return ids_of(st, W_CONV_IDS_OF, contact, 0, 0, ids, n);
}

int store_message_ids(struct store *st, int64_t conv, int64_t **ids,
		      size_t *n)
{
	return ids_of(st, W_MSG_IDS, conv, 0, 0, ids, n);
}

int store_meta_get(struct store *st, const char *key, struct buf *out)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r = -ENOENT;

	if (!d)
		return -errno;
	s = store_wprep(d, W_META_GET);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW)
			r = buf_add(out, sqlite3_column_blob(s, 0),
				    (size_t)sqlite3_column_bytes(s, 0));
		sqlite3_reset(s);
	}
	store_db_put(st, d);
	return r;
}

int64_t store_meta_i64(struct store *st, const char *key)
{
	struct buf b = BUF_INIT;
	int64_t v = 0;

	if (!store_meta_get(st, key, &b) && b.data)
		v = strtoll(b.data, NULL, 10);
	buf_release(&b);
	return v;
}

int store_user_orgs(struct store *st, int64_t *orgs, size_t n, size_t *found)
{
	/* Rare (once when an old cache is adopted): no pooled statement. */
	static const char sql[] =
		"SELECT DISTINCT json_extract(json, '$.orgId') FROM users"
		" WHERE json_valid(json) AND"
		" json_type(json, '$.orgId') = 'integer' AND"
		" json_extract(json, '$.orgId') > 0 LIMIT ?1";
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	*found = 0;
	if (!d)
		return -errno;
	rc = sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = store_sql_errno(rc);
		goto out;
	}
	sqlite3_bind_int64(s, 1, (sqlite3_int64)n);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && *found < n)
		orgs[(*found)++] = sqlite3_column_int64(s, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		r = store_sql_errno(rc);
out:
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}
