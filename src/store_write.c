// SPDX-License-Identifier: MIT
/*
 * store_write.c: the writers of the cache, for the sync: one row per object
 * with its rendered bytes, the generation marks and the prune, the meta
 * values; and the SQL of every statement a connection prepares besides the
 * queries (enum wstmt). Transactions are in store.c, the readers in
 * store_read.c, attachment files in store_blob.c.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "names.h"

const char *const store_wsql[W__COUNT] = {
    [W_BEGIN] = "BEGIN IMMEDIATE",
    [W_COMMIT] = "COMMIT",
    [W_ROLLBACK] = "ROLLBACK",
    [W_USER] = "INSERT OR REPLACE INTO users(id, mtime, email, email_name,"
	       " name, bot, json, gen) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [W_USER_OLD] = "SELECT json FROM users WHERE id = ?1",
    [W_CONTACT] = "INSERT OR REPLACE INTO contacts(id, created_at, email,"
		  " email_name, external_id, ext_name, name, json, tags)"
		  " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [W_CONTACT_OLD] = "SELECT json FROM contacts WHERE id = ?1",
    [W_CONV] = "INSERT OR REPLACE INTO conversations(id, contact_id,"
	       " status, created_at, updated_at, json, transcript)"
	       " VALUES(?1,?2,?3,?4,?5,?6,?7)",
    [W_CONV_OLD] = "SELECT json, transcript FROM conversations"
		   " WHERE id = ?1",
    [W_CONV_SYNCED] = "SELECT updated_at FROM conversations WHERE id = ?1",
    [W_MSG_CLEAR] = "DELETE FROM messages WHERE conversation_id = ?1",
    [W_ATT_DOOMED] = "SELECT id FROM attachments WHERE conversation_id = ?1"
		     " AND message_id NOT IN (SELECT id FROM messages"
		     " WHERE conversation_id = ?1)",
    [W_ATT_CLEAR] = "DELETE FROM attachments WHERE conversation_id = ?1"
		    " AND message_id NOT IN (SELECT id FROM messages"
		    " WHERE conversation_id = ?1)",
    [W_MSG] = "INSERT OR REPLACE INTO messages(id, conversation_id,"
	      " created_at, json) VALUES(?1,?2,?3,?4)",
    [W_ATT] = "INSERT OR REPLACE INTO attachments(id, conversation_id,"
	      " message_id, name, file_name, mime, mtime, size)"
	      " VALUES(?1,?2,?3,?4,?5,?6,?7,?8)",
    [W_ATT_HAS] = "SELECT 1 FROM attachments WHERE id = ?1",
    [W_PLAYBOOK] = "INSERT OR REPLACE INTO playbooks(id, mtime, json, gen)"
		   " VALUES(?1,?2,?3,?4)",
    [W_PLAYBOOK_OLD] = "SELECT json FROM playbooks WHERE id = ?1",
    [W_ACCOUNT] = "INSERT OR REPLACE INTO accounts(key, ino_id, name,"
		  " mtime, json, gen) VALUES(?1,?2,?3,?4,?5,?6)",
    [W_ACCOUNT_OLD] = "SELECT json FROM accounts WHERE key = ?1",
    [W_PRUNE_USERS] = "DELETE FROM users WHERE gen != ?1",
    [W_PRUNE_PLAYBOOKS] = "DELETE FROM playbooks WHERE gen != ?1",
    [W_PRUNE_ACCOUNTS] = "DELETE FROM accounts WHERE gen != ?1",
    [W_KEEP_USER] = "UPDATE users SET gen = ?2 WHERE id = ?1",
    [W_CONTACT_DEL] = "DELETE FROM contacts WHERE id = ?1",
    [W_USER_DEL] = "DELETE FROM users WHERE id = ?1",
    [W_CONV_DEL] = "DELETE FROM conversations WHERE id = ?1",
    [W_CONV_UNLINK] = "UPDATE conversations SET contact_id = 0"
		      " WHERE contact_id = ?1",
    [W_ATT_OF_CONV] = "SELECT id FROM attachments WHERE conversation_id = ?1",
    [W_ATT_DEL_CONV] = "DELETE FROM attachments WHERE conversation_id = ?1",
    [W_CONV_IDS_AFTER] = "SELECT id FROM conversations WHERE id > ?1"
			 " ORDER BY id LIMIT ?2",
    [W_CONV_IDS_OF] = "SELECT id FROM conversations WHERE contact_id = ?1"
		      " ORDER BY id",
    [W_CONTACT_IDS_AFTER] = "SELECT id FROM contacts WHERE id > ?1"
			    " ORDER BY id LIMIT ?2",
    [W_MSG_IDS] = "SELECT id FROM messages WHERE conversation_id = ?1"
		  " ORDER BY id",
    [W_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [W_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1,?2)",
    [W_COUNTS] = "SELECT (SELECT count(*) FROM contacts),"
		 " (SELECT count(*) FROM users),"
		 " (SELECT count(*) FROM conversations),"
		 " (SELECT count(*) FROM messages),"
		 " (SELECT count(*) FROM attachments),"
		 " (SELECT count(*) FROM playbooks),"
		 " (SELECT count(*) FROM accounts)",
};

/* Whether the single blob the old-row statement returns equals b. */
static int differs(struct db *d, enum wstmt w, int64_t id, const char *key,
		   const struct buf *b)
{
	sqlite3_stmt *s = store_wprep(d, w);
	int diff = 1;

	if (!s)
		return 1;
	if (key)
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, id);
	if (sqlite3_step(s) == SQLITE_ROW)
		diff = (size_t)sqlite3_column_bytes(s, 0) != b->len ||
		       memcmp(sqlite3_column_blob(s, 0) ?: "", b->data ? b->data : "",
			      b->len);
	sqlite3_reset(s);
	return diff;
}

/* Encodes an API string as an entry name, with a suffix; NULL for NULL. */
static char *entry_name(const char *s, const char *suffix)
{
	char tmp[NAMES_MAX + 1];
	size_t sl = strlen(suffix), n;
	char *out;

	if (!s)
		return NULL;
	n = names_encode(s, strlen(s), NAMES_MAX - sl, tmp);
	out = malloc(n + sl + 1);
	if (out) {
		memcpy(out, tmp, n);
		memcpy(out + n, suffix, sl + 1);
	}
	return out;
}

int store_put_user(struct store *st, const struct api_user *u, int64_t gen,
		   int *changed)
{
	struct db *d = store_db_get(st);
	char *en = entry_name(u->email, ".json");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		free(en);
		return -errno;
	}
	*changed = differs(d, W_USER_OLD, u->id, NULL, &u->json);
	s = store_wprep(d, W_USER);
	if (s) {
		sqlite3_bind_int64(s, 1, u->id);
		sqlite3_bind_int64(s, 2, u->mtime);
		store_bind_text(s, 3, u->email);
		store_bind_text(s, 4, en);
		store_bind_text(s, 5, u->name);
		sqlite3_bind_int(s, 6, u->bot);
		store_bind_buf(s, 7, &u->json);
		sqlite3_bind_int64(s, 8, gen);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	free(en);
	return r;
}

int store_put_contact(struct store *st, const struct api_contact *c,
		      int *changed)
{
	struct db *d = store_db_get(st);
	char *en = entry_name(c->email, ""), *xn = entry_name(c->external_id, "");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		r = -errno;
		goto out;
	}
	*changed = differs(d, W_CONTACT_OLD, c->id, NULL, &c->json);
	r = store_search_put_contact(st, d, c);
	s = r ? NULL : store_wprep(d, W_CONTACT);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		sqlite3_bind_int64(s, 2, c->created);
		store_bind_text(s, 3, c->email);
		store_bind_text(s, 4, en);
		store_bind_text(s, 5, c->external_id);
		store_bind_text(s, 6, xn);
		store_bind_text(s, 7, c->name);
		store_bind_buf(s, 8, &c->json);
		store_bind_buf(s, 9, &c->tags);
	}
	r = r ? r : store_step_done(d, s);
	store_db_put(st, d);
out:
	free(en);
	free(xn);
	return r;
}

int store_put_conversation(struct store *st, const struct api_conversation *c,
			   const struct buf *transcript, int *changed)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	*changed = 1;
	s = store_wprep(d, W_CONV_OLD);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		if (sqlite3_step(s) == SQLITE_ROW)
			*changed =
				(size_t)sqlite3_column_bytes(s, 0) != c->json.len ||
				memcmp(sqlite3_column_blob(s, 0) ?: "",
				       c->json.data ? c->json.data : "",
				       c->json.len) ||
				(size_t)sqlite3_column_bytes(s, 1) !=
					transcript->len ||
				memcmp(sqlite3_column_blob(s, 1) ?: "",
				       transcript->data ? transcript->data : "",
				       transcript->len);
		sqlite3_reset(s);
	}
	r = store_search_put_conversation(st, d, c);
	s = r ? NULL : store_wprep(d, W_CONV);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		sqlite3_bind_int64(s, 2, c->contact_id);
		sqlite3_bind_text(s, 3, c->status, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(s, 4, c->created);
		sqlite3_bind_int64(s, 5, c->updated);
		store_bind_buf(s, 6, &c->json);
		store_bind_buf(s, 7, transcript);
	}
	r = r ? r : store_step_done(d, s);
	/* Attachments of messages that no longer exist go too, and their
	 * files after the commit. */
	s = r ? NULL : store_wprep(d, W_ATT_DOOMED);
	if (s) {
		sqlite3_bind_int64(s, 1, c->id);
		while (sqlite3_step(s) == SQLITE_ROW)
			store_doomed_add(sqlite3_column_int64(s, 0));
		sqlite3_reset(s);
	}
	if (!r) {
		s = store_wprep(d, W_ATT_CLEAR);
		if (s)
			sqlite3_bind_int64(s, 1, c->id);
		r = store_step_done(d, s);
	}
	store_db_put(st, d);
	return r;
}

int store_clear_messages(struct store *st, int64_t conv)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	r = store_search_clear_messages(st, d, conv);
	s = r ? NULL : store_wprep(d, W_MSG_CLEAR);
	if (s)
		sqlite3_bind_int64(s, 1, conv);
	r = r ? r : store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int store_put_message(struct store *st, const struct api_message *m)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	r = store_search_put_message(st, d, m);
	s = r ? NULL : store_wprep(d, W_MSG);
	if (s) {
		sqlite3_bind_int64(s, 1, m->id);
		sqlite3_bind_int64(s, 2, m->conversation_id);
		sqlite3_bind_int64(s, 3, m->created);
		store_bind_buf(s, 4, &m->json);
	}
	r = r ? r : store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int store_put_attachment(struct store *st, int64_t conv, int64_t msg,
			 int64_t mtime, const struct api_attachment *a,
			 int64_t size)
{
	char prefix[32], tmp[NAMES_MAX + 1], name[NAMES_MAX + 1];
	size_t pl = (size_t)snprintf(prefix, sizeof(prefix), "%lld-",
				     (long long)a->id);
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	names_encode(a->file_name, strlen(a->file_name), NAMES_MAX - pl, tmp);
	snprintf(name, sizeof(name), "%s%s", prefix, tmp);
	s = store_wprep(d, W_ATT);
	if (s) {
		sqlite3_bind_int64(s, 1, a->id);
		sqlite3_bind_int64(s, 2, conv);
		sqlite3_bind_int64(s, 3, msg);
		store_bind_text(s, 4, name);
		store_bind_text(s, 5, a->file_name);
		store_bind_text(s, 6, a->mime);
		sqlite3_bind_int64(s, 7, mtime);
		sqlite3_bind_int64(s, 8, size);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int store_put_playbook(struct store *st, const struct api_object *o,
		       int64_t gen, int *changed)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	*changed = differs(d, W_PLAYBOOK_OLD, o->id, NULL, &o->json);
	s = store_wprep(d, W_PLAYBOOK);
	if (s) {
		sqlite3_bind_int64(s, 1, o->id);
		sqlite3_bind_int64(s, 2, o->mtime);
		store_bind_buf(s, 3, &o->json);
		sqlite3_bind_int64(s, 4, gen);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int64_t store_account_hash(const char *key)
{
	return (int64_t)(names_hash64(key, strlen(key), 0) >>
			 (64 - STORE_ACCOUNT_HASH_BITS));
}

int store_put_account(struct store *st, const struct api_object *o,
		      int64_t gen, int *changed)
{
	struct db *d = store_db_get(st);
	char *name = entry_name(o->key, ".json");
	sqlite3_stmt *s;
	int r;

	if (!d) {
		free(name);
		return -errno;
	}
	*changed = differs(d, W_ACCOUNT_OLD, 0, o->key, &o->json);
	s = store_wprep(d, W_ACCOUNT);
	if (s) {
		store_bind_text(s, 1, o->key);
		sqlite3_bind_int64(s, 2, store_account_hash(o->key));
		store_bind_text(s, 3, name);
		sqlite3_bind_int64(s, 4, o->mtime);
		store_bind_buf(s, 5, &o->json);
		sqlite3_bind_int64(s, 6, gen);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	free(name);
	return r;
}

/* Runs statement w bound to id to completion on d. */
static int step_id(struct db *d, enum wstmt w, int64_t id)
{
	sqlite3_stmt *s = store_wprep(d, w);

	if (s)
		sqlite3_bind_int64(s, 1, id);
	return store_step_done(d, s);
}

int store_delete_contact(struct store *st, int64_t id)
{
	int own = !store_pinned, r;

	/* Alone, in a transaction of its own: no conversation is stored
	 * with a link to it between the unlink and the delete, and a crash
	 * leaves both done or neither. */
	if (own) {
		r = store_begin(st);
		if (r)
			return r;
	}
	/* Its conversations (if Drift kept them) lose their contact link. */
	r = step_id(store_pinned, W_CONV_UNLINK, id);
	r = r ? r : store_search_delete_contact(st, store_pinned, id);
	r = r ? r : step_id(store_pinned, W_CONTACT_DEL, id);
	if (own && r)
		store_rollback(st);
	else if (own)
		r = store_commit(st);
	return r;
}

int store_delete_user(struct store *st, int64_t id, int *found)
{
	struct db *d = store_db_get(st);
	int r;

	if (!d)
		return -errno;
	r = step_id(d, W_USER_DEL, id);
	*found = !r && sqlite3_changes(d->sql) > 0;
	store_db_put(st, d);
	return r;
}

int store_forget_conversation(struct store *st, int64_t id, int *found)
{
	struct db *d = store_pinned;
	sqlite3_stmt *s;
	int r;

	*found = 0;
	if (!d)
		return -EINVAL;	/* the commit unlinks the files */
	/* The files of its attachments go once the transaction commits. */
	s = store_wprep(d, W_ATT_OF_CONV);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	while ((r = sqlite3_step(s)) == SQLITE_ROW)
		store_doomed_add(sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	/* A listing cut short would delete rows whose files then stay:
	 * nothing is deleted (the caller rolls back). */
	if (r != SQLITE_DONE)
		return -EIO;
	r = step_id(d, W_ATT_DEL_CONV, id);
	r = r ? r : store_search_forget_conversation(st, d, id);
	r = r ? r : step_id(d, W_MSG_CLEAR, id);
	r = r ? r : step_id(d, W_CONV_DEL, id);
	if (!r)
		*found = sqlite3_changes(d->sql) > 0;
	return r;
}

int store_prune(struct store *st, enum store_table t, int64_t gen,
		int *deleted)
{
	static const enum wstmt which[] = { W_PRUNE_USERS, W_PRUNE_PLAYBOOKS,
					    W_PRUNE_ACCOUNTS };
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = store_wprep(d, which[t]);
	if (s)
		sqlite3_bind_int64(s, 1, gen);
	r = store_step_done(d, s);
	*deleted = r ? 0 : sqlite3_changes(d->sql);
	store_db_put(st, d);
	return r;
}

int store_keep_user(struct store *st, int64_t id, int64_t gen)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = store_wprep(d, W_KEEP_USER);
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		sqlite3_bind_int64(s, 2, gen);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int store_meta_set(struct store *st, const char *key, const void *val,
		   size_t len)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s;
	int r;

	if (!d)
		return -errno;
	s = store_wprep(d, W_META_SET);
	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, val ? val : "", (int)len,
				  SQLITE_TRANSIENT);
	}
	r = store_step_done(d, s);
	store_db_put(st, d);
	return r;
}

int store_meta_set_i64(struct store *st, const char *key, int64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v);

	return store_meta_set(st, key, tmp, (size_t)n);
}
