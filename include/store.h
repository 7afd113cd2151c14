/* SPDX-License-Identifier: MIT */
/*
 * store: the SQLite cache that every read is served from.
 *
 * One file (cache.db, 0600 in the 0700 cache directory) holds each object the
 * tree shows together with its rendered bytes, so that getattr, readdir and
 * read are single indexed queries and never render or touch the network.
 * Sync state (watermarks, last sync) lives in the meta table. Accepted writes
 * wait for the API in the outbox table of a file of its own, outbox.db, so
 * that a damaged cache.db can be rebuilt (store_open() checks it with
 * quick_check and starts it again empty) without losing them.
 *
 * Connections: a pool, one connection per concurrent user, each with its own
 * prepared statements (WAL lets readers run beside the one writer); see
 * store_pool_reserve for how many stay open. A thread
 * that calls store_begin() keeps its connection until store_commit() or
 * store_rollback(), so the sync's writes form one transaction.
 *
 * Readers use the generic query interface: each enum store_query names one
 * prepared SELECT whose columns fill a struct store_row. The SQL stays in
 * the store (src/store_read.c, src/store_write.c).
 *
 * Threads and locks. Every function may be called from any thread once
 * store_open() has returned and until store_close() is called: FUSE
 * request threads (readers; the on-demand fetches of sync.c on a lookup
 * miss), the sync thread and its workers, the outbox worker (the refetch
 * after a write lands, outbox rows), and driftctl's main thread. Unless
 * a function says otherwise it returns 0 or -errno (-EBUSY when SQLite's
 * write lock stayed busy past the timeout, -ENOSPC for a full disk, -EIO
 * for the rest). A caller may hold locks that come before the store's in
 * driftfs.h's order, none that come after (HTTP, log, stats). The store's
 * own locks, none held on return:
 *   - the pool lock: taken briefly to take or give back a connection,
 *     never held while SQLite waits or works;
 *   - SQLite's write lock on cache.db: a writer outside a transaction
 *     holds it for its statement; store_begin() takes it (BEGIN IMMEDIATE)
 *     and the thread holds it until store_commit*() or store_rollback();
 *     so a thread in a transaction must not wait for a request, or for
 *     another thread that may write;
 *   - the blob lock: taken by store_commit_staged() while it holds the
 *     write lock; nothing waits for the write lock or the pool lock while
 *     holding it;
 *   - the outbox lock: guards outbox.db's connection for each store_outbox_*
 *     call, held while SQLite works and waits (for another process's
 *     write, up to the busy timeout); never held with the pool lock.
 * A thread in a transaction reads its own uncommitted rows (every call but
 * the outbox's runs on its pinned connection); other threads read the
 * last commit.
 */
#ifndef DRIFTFS_STORE_H
#define DRIFTFS_STORE_H

#include <stdint.h>

#include "api.h"
#include "buf.h"

struct store;

/*
 * How many ids one Q_CONTACTS_AFTER query returns. sync.c's rotating
 * contact refresh (CONTACT_ROTATION) relies on it being its round: it
 * reads a round with one query and takes fewer rows for the end of the
 * ids, where it wraps around. An integer literal: it is pasted into the
 * SQL.
 */
#define STORE_CONTACT_BATCH 200

/* How many counts store_counts() gives (ctl.c and driftctl name them). */
#define STORE_COUNTS 8

/*
 * Opens (creating if needed) DIR/cache.db and DIR/outbox.db, moving the
 * outbox rows of an older cache.db and rebuilding a damaged one. NULL and
 * errno on failure.
 *
 * Processes: each holds flock(DIR/cache.lock, LOCK_SH) from store_open()
 * to store_close(). Only one that finds itself alone (LOCK_EX) trusts or
 * consumes cache.db.clean, checks and rebuilds cache.db and sweeps blobs/
 * (a live process's downloads look like a crash's leftovers); only one
 * alone at its close writes cache.db.clean, and not when a process that
 * had the cache open died without closing it (its DIR/cache.open-* mark
 * is left). store_open() may wait for another process's open or close.
 *
 * Called by the main thread before any other thread uses the store;
 * store_close() (NULL is fine) after every other thread has stopped using
 * it, with no transaction open. The caller owns the store.
 */
struct store *store_open(const char *dir);
void store_close(struct store *st);

/*
 * What a query returns, column by column; absent columns are 0/NULL. Strings
 * belong to the store and live until the callback returns (store_each) or
 * the next call on this thread (store_one).
 */
struct store_row {
	int64_t id;
	int64_t id2;
	int64_t mtime;		/* ms since the epoch */
	int64_t size;		/* bytes of the rendered file */
	const char *name;	/* encoded entry name */
	const char *text;
};

enum store_query {
	/* listings */
	Q_CONTACTS,		/* id, -, mtime */
	Q_CONTACTS_AFTER,	/* (id) next STORE_CONTACT_BATCH ids above id */
	Q_CONTACT_CONVS,	/* (contact) id, -, mtime */
	Q_EMAIL_NAMES,		/* name, id: oldest contact per email */
	Q_EXTID_NAMES,		/* name, id */
	Q_USERS,		/* id, -, mtime, size */
	Q_USER_EMAIL_NAMES,	/* name, id */
	Q_CONVS,		/* id, contact, mtime */
	Q_CONVS_BY_STATUS,	/* (status text) id, -, mtime */
	Q_MESSAGES,		/* (conv) id, -, mtime, size */
	Q_ATTACHMENTS,		/* (conv) id, -, mtime, size, name */
	Q_PLAYBOOKS,		/* id, -, mtime, size */
	Q_ACCOUNTS,		/* id (hash), -, mtime, size, name, key */
	Q_STATUS_COUNTS,	/* count as id, -, max mtime, -, status */
	/* single rows */
	Q_CONTACT,		/* (id) id, -, mtime, size(json), -, -, */
	Q_CONTACT_TAGS,		/* (id) id, -, mtime, size(tags) */
	Q_CONTACT_NAME,		/* (id) id, -, mtime, -, name or email */
	Q_CONTACT_BY_EMAIL,	/* (name) id, -, mtime */
	Q_CONTACT_BY_EXTID,	/* (name) id, -, mtime */
	Q_USER,			/* (id) id, -, mtime, size */
	Q_USER_BY_EMAIL,	/* (name) id, -, mtime, size */
	Q_USER_NAME,		/* (id) id, bot, mtime, -, name */
	Q_CONV,			/* (id) id, contact, mtime, size, -, status */
	Q_TRANSCRIPT,		/* (id) id, contact, mtime, size */
	Q_MESSAGE,		/* (id) id, conv, mtime, size */
	Q_ATTACHMENT,		/* (id) id, conv, mtime, size, name */
	Q_PLAYBOOK,		/* (id) id, -, mtime, size */
	Q_ACCOUNT_BY_NAME,	/* (name) id, -, mtime, size, name, key */
	Q_COUNTS,		/* one row: contacts, users, conversations... */
	Q__COUNT
};

/*
 * The pool (store.c): store_pool_reserve opens connections until n are
 * idle and keeps n from then on, however long idle (2 without it); the
 * daemon reserves its usual concurrency at start so its descriptors do not
 * grow later. A connection beyond those, idle for STORE_POOL_IDLE_MS (or
 * what store_set_pool_idle says, for tests), is closed at the next
 * give-back; one of those kept, idle that long, frees its page cache
 * (sqlite3_db_release_memory) instead. Any thread; they take the pool lock. store_pool_reserve
 * counts the idle connections when called: call it before the readers
 * start, or it may open a few more than n. It returns 0 or the -errno of
 * an open that failed (those opened stay).
 *
 * A give-back (the end of any reader) may so close connections: on the
 * caller's thread, outside the pool lock, whatever else it holds (a node
 * table lock, blob_lock). Closing one that is not the last takes no lock
 * of ours, checkpoints nothing and waits for nothing (its SQLite lock
 * request answers busy at once); it frees the statements and the page
 * cache and closes the WAL's descriptor. Freeing a kept one's page cache
 * is done the same way, off the list and outside the lock.
 */
#define STORE_POOL_IDLE_MS 30000
/* The soft limit store_open() puts on SQLite's heap in this process
 * (sqlite3_soft_heap_limit64): cached pages go before it grows past. */
#define STORE_HEAP_SOFT_LIMIT (5 << 20)
int store_pool_reserve(struct store *st, int n);
void store_set_pool_idle(struct store *st, int ms);
/* The page cache bytes the idle connections hold (a kept connection idle
 * that long gives its pages back at the next give-back). Takes the pool
 * lock. For tests and diagnostics. */
int64_t store_pool_cache_bytes(struct store *st);
/* The bytes of the prepared statements the idle connections hold (a kept
 * connection idle that long finalizes them at the next give-back; they
 * are prepared again on first use). Takes the pool lock. For tests and
 * diagnostics. */
int64_t store_pool_stmt_bytes(struct store *st);

/*
 * Readers: any thread (the pool lock is taken inside). Calls cb for each
 * row; cb returns 0 to go on. cb may call the store, but in a transaction
 * not store_each() with the same q (the thread's one connection has one
 * statement per query). Returns 0, cb's nonzero value, or -errno.
 */
int store_each(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, int (*cb)(void *ctx, const struct store_row *r),
	       void *ctx);
/* The first row; -ENOENT when there is none. */
int store_one(struct store *st, enum store_query q, int64_t arg,
	      const char *sarg, struct store_row *row);

/* The file bytes behind a single-row query (Q_CONTACT ... Q_ACCOUNT_BY_NAME),
 * appended to out (the caller's); -ENOENT without a row, -EINVAL for a
 * query without bytes. */
int store_blob(struct store *st, enum store_query q, int64_t arg,
	       const char *sarg, struct buf *out);

/* Counts for .driftfs/status: contacts, users, conversations, messages,
 * attachments, playbooks, accounts, outbox, in that order (the indices
 * below; store_count_names[] names them). Takes the pool lock, then the
 * outbox lock, one at a time. */
enum {
	STORE_N_CONTACTS, STORE_N_USERS, STORE_N_CONVERSATIONS,
	STORE_N_MESSAGES, STORE_N_ATTACHMENTS, STORE_N_PLAYBOOKS,
	STORE_N_ACCOUNTS, STORE_N_OUTBOX
};
extern const char *const store_count_names[STORE_COUNTS];
int store_counts(struct store *st, int64_t counts[STORE_COUNTS]);

/*
 * Attachment files downloaded for one transaction, not yet in place: temp
 * files in DIR/blobs (store_attachment_blob), renamed into place by the
 * store_commit_staged() that commits their rows. The caller owns it (one
 * thread); zero it before use.
 */
struct store_staged_file {
	int64_t id;
	char *tmp;		/* its temp file; NULL once renamed */
};
struct store_staged {
	struct store_staged_file *v;
	size_t n, alloc;
};
/* Removes the temp files not renamed into place (a download that is not
 * stored after all) and frees sg. Any thread, no lock. */
void store_staged_release(struct store_staged *sg);

/*
 * Transactions: the sync's (a pass, a worker's conversation, an on-demand
 * fetch on whatever thread asked for it). store_begin() pins a connection
 * to this thread and takes SQLite's write lock (BEGIN IMMEDIATE; it waits
 * up to the busy timeout, then -EBUSY); until store_commit*() or
 * store_rollback() on the same thread, every call of this thread runs in
 * the transaction. One at a time per thread: -EBUSY when one is open.
 * store_commit() is store_commit_staged(st, NULL): -EINVAL without a
 * transaction; on failure the transaction is rolled back. Either way the
 * connection goes back to the pool.
 */
int store_begin(struct store *st);
int store_commit(struct store *st);
/*
 * Commits the transaction with sg's files (sg may be NULL): they are
 * renamed into place (blobs/<id>, the directory synced) just before the
 * COMMIT, so a committed row always has its file; a placed file whose row
 * did not commit (this failed, or no row was put) is unlinked at once.
 * The files of the attachment rows the transaction deleted go after it
 * commits, unless a row names them again. Both run under the store's blob
 * mutex (lock order: the transaction's SQLite write lock, then that
 * mutex), so another thread cannot rename a new blobs/X between our
 * "no row" and our unlink of X. Processes do not share that mutex: two
 * processes syncing one cache at once could still lose such a file to
 * the other's unlink (a later fetch restores it; see HACKING.md). Releases sg
 * (store_staged_release) whatever it returns.
 */
int store_commit_staged(struct store *st, struct store_staged *sg);
/* Undoes this thread's transaction (none open: nothing to do). */
void store_rollback(struct store *st);

/*
 * Writers, for the sync (sync.c: its pass and workers, and the on-demand
 * fetches, which run on a FUSE request thread or the outbox worker). Each
 * runs in this thread's transaction when there is one, else on its own
 * (SQLite's write lock for the one statement); it takes the pool lock
 * briefly and no other lock. The arguments stay the caller's (copied).
 * *changed is set when the stored bytes differ from what was there (or
 * the row is new), so the caller knows what to invalidate. gen tags rows
 * seen by this pass for store_prune(). Each returns 0 or -errno (a failed
 * statement is logged, in .driftfs/errors too).
 */
/* In a transaction of a list (with store_prune) or alone (a fetch). */
int store_put_user(struct store *st, const struct api_user *u, int64_t gen,
		   int *changed);
/* In a transaction (sync_save_contact() in sync_conversation.c). */
int store_put_contact(struct store *st, const struct api_contact *c,
		      int *changed);
/*
 * The conversation, clear_messages, its messages and attachment rows go in
 * one transaction, which must be open: the files of the attachment rows
 * this drops (their messages are gone) are unlinked by its commit.
 */
int store_put_conversation(struct store *st, const struct api_conversation *c,
			   const struct buf *transcript, int *changed);
/* Replaces the conversation's messages (and their attachment rows). */
int store_clear_messages(struct store *st, int64_t conv);
int store_put_message(struct store *st, const struct api_message *m);
/* The row of an attachment whose file store_attachment_blob() wrote: in
 * the transaction that store_commit_staged() commits with that file. */
int store_put_attachment(struct store *st, int64_t conv, int64_t msg,
			 int64_t mtime, const struct api_attachment *a,
			 int64_t size);
/*
 * The attachment's file, opened for reading (O_RDONLY, close-on-exec): a
 * reader preads it rather than load it whole. The descriptor keeps the
 * version it opened even if a later sync replaces or removes the file.
 * Returns the descriptor (the caller's to close) or -errno: -ENOENT
 * without a row, -EIO when the row's file is missing (logged).
 */
int store_attachment_open(struct store *st, int64_t id);
/* Whether the attachment's row and file are stored (saves a download):
 * 1 or 0 (0 also when it cannot tell). */
int store_has_attachment(struct store *st, int64_t id);
/*
 * Attachments' bytes live in files of their own (DIR/blobs/<id>), not in
 * cache.db, so that none is ever held in memory whole. This downloads one:
 * fill gets a temp file in that directory to write the bytes to (and sets
 * *size); the file is then synced and added to sg, to be renamed into
 * place by the store_commit_staged() that commits its row
 * (store_put_attachment), or removed by store_staged_release(). Runs
 * outside any transaction (it is a download). A temp file or a file
 * without a row (a crash) is removed at the next open after a run that
 * did not close cleanly, by a process alone with the cache (store_open).
 * The sync's workers call it, no lock held (fill runs without one); sg is
 * the caller's. Returns 0 or fill's -errno (or a local one, logged).
 */
int store_attachment_blob(struct store *st, struct store_staged *sg,
			  int64_t id,
			  int (*fill)(void *ctx, int fd, int64_t *size),
			  void *ctx, int64_t *size);
/* In the transaction of their list, with its store_prune(). */
int store_put_playbook(struct store *st, const struct api_object *o,
		       int64_t gen, int *changed);
int store_put_account(struct store *st, const struct api_object *o,
		      int64_t gen, int *changed);
/* In the caller's transaction, or alone in one of its own; 0 when there
 * was no such row. The cached conversations of the contact keep their
 * rows (conversation.json says what Drift says) but no longer link to it
 * (contact column 0). */
int store_delete_contact(struct store *st, int64_t id);
/*
 * Forgets a conversation the API no longer has: its row, its messages,
 * its attachment rows, in this thread's transaction (which must be open:
 * -EINVAL otherwise); the attachments' files are unlinked by its commit.
 * *found: whether there was a row. The caller reads what it needs for
 * the change (Q_CONV: contact, status) first.
 */
int store_forget_conversation(struct store *st, int64_t id, int *found);

/*
 * Ids, ascending, into a new array (*ids, the caller's to free; NULL and
 * *n 0 when there are none): the cached conversations above after (at
 * most max, 0 = all); the cached contacts above after (as many); a
 * contact's cached conversations; a conversation's cached messages. Readers, for the reconcile (sync_reconcile.c) and the
 * removal of a contact.
 */
int store_conversation_ids(struct store *st, int64_t after, size_t max,
			   int64_t **ids, size_t *n);
int store_contact_ids(struct store *st, int64_t after, size_t max,
		      int64_t **ids, size_t *n);
int store_contact_conversation_ids(struct store *st, int64_t contact,
				   int64_t **ids, size_t *n);
int store_message_ids(struct store *st, int64_t conv, int64_t **ids,
		      size_t *n);

/*
 * Moves everything in cache.db's and outbox.db's WALs into the files and
 * truncates the WALs (wal_checkpoint(TRUNCATE)), so the bytes of rows
 * deleted with secure_delete (every connection sets it) are not left in
 * a WAL frame. Called after a pass or a 404 that deleted rows; outside
 * any transaction of this thread (-EBUSY). Takes the pool lock, then the
 * outbox lock, one at a time. A reader of another thread or process may
 * keep it from completing (-EBUSY, logged at info): the next one does.
 */
int store_checkpoint(struct store *st);

enum store_table { ST_USERS, ST_PLAYBOOKS, ST_ACCOUNTS };
/* Deletes rows of table not seen by generation gen; counts them. In the
 * transaction that stored the list of generation gen. */
int store_prune(struct store *st, enum store_table t, int64_t gen,
		int *deleted);
/*
 * Tags a stored user as seen by generation gen without touching its data,
 * so store_prune(gen) keeps it: for a user the list had but the sync did
 * not store, since a writer is storing a fresher copy.
 */
int store_keep_user(struct store *st, int64_t id, int64_t gen);
/* Deletes the user (the API answered 404 for it); *found says whether a
 * row went. In the caller's transaction. */
int store_delete_user(struct store *st, int64_t id, int *found);

/* The updatedAt at which a conversation was last fully synced (0 = never,
 * or it cannot tell). A reader. */
int64_t store_conversation_synced(struct store *st, int64_t id);

/*
 * Small named values (sync watermarks, attributes.json), in cache.db (a
 * rebuild loses them). store_meta_get appends the value to out (the
 * caller's), -ENOENT when there is none; store_meta_i64 gives 0 then. The
 * setters are writers (above): alone or in this thread's transaction.
 */
int store_meta_get(struct store *st, const char *key, struct buf *out);
int store_meta_set(struct store *st, const char *key, const void *val,
		   size_t len);
int64_t store_meta_i64(struct store *st, const char *key);
int store_meta_set_i64(struct store *st, const char *key, int64_t v);

/*
 * The distinct orgIds of the cached users (at most n into orgs, *found of
 * them): which Drift org(s) a cache without a recorded org holds. The org a
 * cache belongs to is the meta value "org_id" (account.c).
 */
int store_user_orgs(struct store *st, int64_t *orgs, size_t n, size_t *found);

/*
 * The outbox: accepted writes waiting for the API. Every change to it is
 * committed with synchronous=FULL on a connection of its own, so a write
 * that close() accepted survives a crash or power loss. Called by outbox.c
 * (a FUSE thread queues, the outbox worker sends), tree.c and driftctl
 * (listings); each call takes the store's outbox lock for its statement
 * (and outbox.db's SQLite write lock for a change), never the pool lock,
 * and is its own transaction: none of them joins store_begin()'s.
 *
 * struct outbox_row is a row of outbox.db, so it is declared here and not
 * in outbox.h: the outbox module builds on the store, and the store (below
 * it) must not include outbox.h.
 */
struct outbox_row {
	int64_t seq;
	int64_t created;	/* wall ms */
	char *path;		/* the tree path written */
	char *kind;		/* what it does (commit.c's operation name) */
	char *method;
	char *api_path;
	struct buf body;
	int64_t target;		/* the id of the object it is about */
	/*
	 * Its ordering key, "<class>:<id>" (commit.c names them): rows with
	 * one key are sent in seq order, whatever retries they meet. ''
	 * for rows of older versions: ordered against every row.
	 */
	char *object;
	/*
	 * A new message (kind "message", not an edit): the createdAt and id
	 * of the newest message the cache held for the conversation when the
	 * row was queued, 0 when it held none (or for rows of older
	 * versions). A message no newer than that existed before this write,
	 * so the landed check never takes it for this one.
	 */
	int64_t after_created;
	int64_t after_id;
	char *state;		/* "pending" or "sending" */
	int64_t attempts;
	int64_t next_try;	/* wall ms before which it is not retried */
	char *last_error;
};

/* Frees what a row filled by the store holds, and zeroes it. */
void store_outbox_row_release(struct outbox_row *r);
/* Adds a pending row (its strings stay the caller's); sets r->seq. */
int store_outbox_add(struct store *st, struct outbox_row *r);
/* Fills out (the caller releases it with store_outbox_row_release());
 * -ENOENT when there is no such row. */
int store_outbox_get(struct store *st, int64_t seq, struct outbox_row *out);
/*
 * The oldest row due at now (pending, or sending from a past run) with no
 * older row about the same object; filled as store_outbox_get(); -ENOENT
 * when none is due.
 */
int store_outbox_next(struct store *st, int64_t now, struct outbox_row *out);
/* Whether an older row about the same object waits (it must go first):
 * 1 or 0, and 0 when it cannot tell. */
int store_outbox_behind(struct store *st, int64_t seq, const char *object);
int store_outbox_update(struct store *st, int64_t seq, const char *state,
			int64_t attempts, int64_t next_try,
			const char *last_error);
int store_outbox_delete(struct store *st, int64_t seq);
/*
 * A message that row seq posted landed, created at created (ms) with id:
 * the later rows of its object (the same conversation's) move their
 * after_created/after_id forward to it, so that their landed checks never
 * take it, or anything older, for theirs.
 */
int store_outbox_advance(struct store *st, int64_t seq, const char *object,
			 int64_t created, int64_t id);
/* Names the object of a row that has none ('', from an older version). */
int store_outbox_set_object(struct store *st, int64_t seq, const char *object);
/* Calls cb for every row, oldest first (strings live for the call), with
 * the outbox lock held: cb must not call the outbox functions. */
int store_outbox_each(struct store *st,
		      int (*cb)(void *ctx, const struct outbox_row *r),
		      void *ctx);

/*
 * The inode-number hash of an account id (accounts have string ids); pure,
 * any thread. It has STORE_ACCOUNT_HASH_BITS bits: the ids below the
 * tree's hashed bit, which tree.c uses as they are (a _Static_assert there
 * holds the two together).
 */
#define STORE_ACCOUNT_HASH_BITS 55
int64_t store_account_hash(const char *key);

/*
 * Re-rendering transcripts after a rename (store_authors.c, for
 * sync_rerender.c). Readers and a writer like the others: any thread, on
 * the thread's transaction when one is open; each prepares its statement
 * per call. Returns 0 or -errno.
 *
 * store_user_conversations: the conversations (ascending, distinct) that
 * hold a message by one of the n users in ids, an author the transcript
 * names from the users table (author.type anything but "contact"). A scan
 * of every message's JSON (no column holds the author). *convs is
 * malloc'd, the caller's to free (NULL when none).
 * store_contact_conversations: the contact's conversations (by index), as
 * above.
 * store_users_unseen: the users store_prune(ST_USERS, gen) would delete
 * (ascending; *ids as *convs above), read before it in its transaction.
 * store_conversation_messages: the cached messages of conv as one JSON
 * array of the objects the API sent, oldest first (created_at, then id:
 * the order sync_conversation() renders), appended to out (the caller's).
 * store_set_transcript: replaces conv's transcript; *changed when its
 * bytes differ (0 too when there is no such conversation).
 */
int store_user_conversations(struct store *st, const int64_t *ids, size_t n,
			     int64_t **convs, size_t *nconvs);
int store_contact_conversations(struct store *st, int64_t contact,
				int64_t **convs, size_t *nconvs);
int store_users_unseen(struct store *st, int64_t gen, int64_t **ids,
		       size_t *n);
int store_conversation_messages(struct store *st, int64_t conv,
				struct buf *out);
int store_set_transcript(struct store *st, int64_t conv,
			 const struct buf *transcript, int *changed);

/*
 * The removal of contacts (store_authors.c, for sync_fetch.c); like the
 * above. store_dangling_contacts: the contacts (ascending, distinct) that
 * a cached conversation links to and the cache has no row for (a cache
 * of an older version stored such links for a contact the API answered
 * 404 for). store_meta_ids: the ids that end the meta keys "<prefix><id>"
 * (ascending; junk after the prefix is skipped). store_meta_delete:
 * removes meta key (0 when there is none). *ids as *convs above.
 */
int store_dangling_contacts(struct store *st, int64_t **ids, size_t *n);
int store_meta_ids(struct store *st, const char *prefix, int64_t **ids,
		   size_t *n);
int store_meta_delete(struct store *st, const char *key);

/* The most bytes of a search hit's snippet (then "..."). */
#define STORE_SNIPPET_MAX 160

/*
 * The search index (store_search*.c; search.h says what it holds and how
 * it is kept), for search.c and the tests. Any thread, no transaction of
 * the thread's open (but store_search_build_step opens its own).
 *
 * store_search_convs / _contacts: the ids (ascending, at most max) of the
 * conversations with a matching message or tag, of the matching contacts;
 * *ids malloc'd, the caller's (NULL when none). store_search_hits: the
 * best max matching messages (bm25 without lengths, its counts taken from
 * the text, over the newest 10000 matching messages: the
 * index keeps no positions), best first, each given to cb with its
 * author's JSON fields (author_type, author_id, bot) left to the caller:
 * cb gets the message's JSON and a snippet (valid for the call). The query
 * is FTS5 syntax as search_query_prepare gives it.
 */
int store_search_convs(struct store *st, const char *fts, size_t max,
		       int64_t **ids, size_t *n, char *why, size_t whylen);
/* Whether the query would run (FTS5 takes it, the plan knows it, its
 * prefixes are long enough): 0 or what a run would refuse it with. */
int store_search_check(struct store *st, const char *fts, char *why,
		       size_t whylen);
int store_search_contacts(struct store *st, const char *fts, size_t max,
			  int64_t **ids, size_t *n, char *why, size_t whylen);
typedef int (*store_search_hit_cb)(void *ctx, int64_t msg, int64_t conv,
				   int64_t created, const char *json,
				   size_t json_len, const char *snippet);
int store_search_hits(struct store *st, const char *fts, size_t max,
		      store_search_hit_cb cb, void *ctx, char *why,
		      size_t whylen);
/*
 * One chunk of the background build (at most chunk rows, one transaction):
 * 1 when there is more to do, 0 when the index is complete, -errno.
 */
int store_search_build_step(struct store *st, size_t chunk);
/*
 * The progress: *done of *total messages while the build runs (0 and 0
 * once *ready), the index's and its text's bytes.
 */
int store_search_progress(struct store *st, int64_t *done, int64_t *total,
			  int *ready, int64_t *index_bytes,
			  int64_t *text_bytes);
/*
 * Merges the index's segments when text left it since the last merge
 * (FTS5 'optimize'), so the pages that held it are freed (and zeroed:
 * secure_delete); and all three tables' towards one segment each when
 * their rows have doubled since the last such merge (a first sync ends
 * with one), a short transaction a step. 1 when it merged (a checkpoint
 * should follow), 0 when there was nothing to do, -errno. Outside any
 * transaction of the thread; called by the sync at the end of a pass
 * (sync_checkpoint_due).
 */
int store_search_purge(struct store *st);

#endif
