/* SPDX-License-Identifier: MIT */
/*
 * sync_int.h: what the sync_*.c files share and nobody else sees: struct
 * sync itself, the write generations, the change list reported after a
 * commit, and the steps one file runs for another. The contract for
 * callers is include/sync.h.
 *
 * Locks: s->lock guards the fields marked so below and is held for a few
 * statements, never across a request, a store write or the change
 * callback; it is taken inside store write transactions
 * (sync_written_since in sync_list, sync_conversation, sync_save_contact
 * (with the gone set) and a user's save in sync_user_fresh;
 * sync_fetch_overtaken in the same three; sync_rerender_note_users), and
 * the status reads the store's meta
 * table under it (a read takes only the pool lock, never SQLite's write
 * lock). s->pass_lock serialises whole passes and is held across them
 * (requests, transactions and callbacks included). Order: pass_lock, then
 * the account gate, then a store write transaction, then s->lock, then the
 * store's pool lock.
 */
#ifndef DRIFTFS_SYNC_INT_H
#define DRIFTFS_SYNC_INT_H

#include <pthread.h>
#include <stdint.h>

#include "api.h"
#include "sync.h"

#define MISS_SLOTS 256
/* Write generations: WRITE_KIND_SLOTS for each kind of object noted
 * (contacts, users, conversations, the rest), so that a write of one kind
 * never looks like a write of another (a conversation's fetch that
 * removes its own contact must not take itself for overtaken). */
#define WRITE_KIND_SLOTS 256
#define WRITE_SLOTS (4 * WRITE_KIND_SLOTS)

/*
 * How often a fetch that a write overtook (sync_written_since), or
 * another fetch of its object (sync_fetch_overtaken), is made again
 * before it gives up with -EAGAIN (conversations, contacts, users, a
 * users list's entries). Dropped without a new fetch, it could lose a change
 * made in Drift after the writer's refetch asked: the walk would still
 * move its watermark past the conversation, a claimed contact is not
 * fetched again in the pass, and a user would wait for the next pass's
 * list. The slots are hashed, so an unrelated write can overtake one too.
 */
#define WRITTEN_TRIES 3

/* A remembered "the API has no such object", so lookups of a missing name
 * (shells probing, tab completion) do not cost a request every time. */
struct miss {
	uint64_t key;
	int64_t until_ms;
};

/* A set of positive ids (sync_idset.c); zeroed is empty. The caller
 * guards it. idset_add returns 1 if added, 0 if there already, or
 * -ENOMEM / -EINVAL (id <= 0). */
struct idset {
	int64_t *v;		/* cap slots, 0 = free */
	size_t n, cap;		/* cap: 0 or a power of two */
};
int idset_add(struct idset *set, int64_t id);
int idset_has(const struct idset *set, int64_t id);
void idset_del(struct idset *set, int64_t id);
/* Empties the set (a large one gives its memory back). */
void idset_clear(struct idset *set);
void idset_release(struct idset *set);

/*
 * Set on the threads that run a pass: the pass's thread for the length of
 * sync_pass, and the workers sync_run_workers starts for it. Only they
 * claim contacts (struct sync's fetched).
 */
extern __thread int sync_in_pass;
/* Whether sync_stop() was called: a pass's loops (the walk, the
 * reconcile's listing, the workers) end early with -ECANCELED, so an
 * unmount or a signal does not wait for the rest of a long first sync.
 * Any thread, no lock. */
int sync_stopping(struct sync *s);

/* At most one claimed contact per sync worker is in flight. */
#define INFLIGHT_MAX 64

struct sync {
	struct driftfs *d;
	sync_change_cb cb;
	void *cb_ctx;

	pthread_t thread;
	int thread_started;

	/* Guarded by lock. stop is also read without it, atomically, by a
	 * pass's loops (sync_stopping): set once, under lock, atomically. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	unsigned long requested;	/* passes asked for */
	unsigned long done_upto;	/* requests answered by a finished pass */
	int last_result;		/* of the last finished pass */
	int running;			/* a pass is under way */
	unsigned long passes;
	int64_t last_start_ms, last_end_ms, last_ok_ms, next_ms;
	int64_t next_wall_ms;	/* next_ms on the wall clock, for status */
	char phase[96];
	long work_done, work_total;
	struct miss misses[MISS_SLOTS];

	/* The conversation step's progress against the account (guarded by
	 * lock): its total (GET /conversations/stats; -1 unknown), how many
	 * the cache holds, and since when (monotonic ms) this pass fetched
	 * how many new ones, for the estimate of the time left. */
	int64_t conv_total, conv_stored, conv_new, conv_since_ms;
	int conv_walking;	/* the conversation step runs */
	/* The API refused the stats (403/404): not asked again. Only the
	 * pass touches it, under pass_lock. */
	int stats_refused;

	/* Serialises whole passes (background and driftctl's). */
	pthread_mutex_t pass_lock;

	/*
	 * The contacts claimed by the current pass (guarded by lock; emptied
	 * when a pass starts and when it ends): each is fetched once a pass,
	 * by the first of its conversations (sync_conversation), and the
	 * rotation does not fetch it again. Only the pass's own threads
	 * claim (sync_in_pass): a fetch outside a pass (a write's refetch, a
	 * lookup) fetches the contact itself and claims nothing, or a
	 * contact it fetched before a change in Drift would be skipped by
	 * the next pass. A claimer whose fetch failed takes its claim back,
	 * so the next conversation of that contact tries again.
	 */
	struct idset fetched;
	/* Of those, the ones claimed and not yet stored (guarded by lock;
	 * contact_cond signals each one that settles): a transcript that
	 * names such a contact waits for it rather than render its id. */
	int64_t inflight[INFLIGHT_MAX];
	size_t ninflight;
	pthread_cond_t contact_cond;
	/*
	 * Of those, the ones the API answered 404 for (guarded by lock,
	 * emptied with fetched, when a pass starts and ends): the other
	 * conversations of the pass that name one store no link to it
	 * either. Removals on other threads add theirs too, also between
	 * passes: a refetch outside a pass does not ask the API again for
	 * a contact in the set (take_contact, sync_conversation.c). A fetch
	 * that finds the contact takes it out (sync_save_contact).
	 */
	struct idset gone_contacts;

	/* The fetches in flight (guarded by lock), see struct fetch_entry. */
	struct fetch_entry *fetches;
	/* Write generations by object slot (guarded by lock), see
	 * sync_note_write(). */
	unsigned write_gen[WRITE_SLOTS];
	/* sync_refresh_accounts() calls begun (guarded by lock): each
	 * follows an accepted account edit, and fetches the whole list. */
	unsigned accounts_refreshes;
	/* Changes that removed rows since the last checkpoint (guarded by
	 * lock): a pass checkpoints at its end (sync_deleted_note). */
	unsigned long deleted;
};

/*
 * The fetches in flight, by object (sync_fetch_begin() and the functions
 * after it, sync.c): what orders two fetches of one object. A fetch's
 * window runs from just before its first request to the check in its
 * store transaction; one whose window holds the commit of another fetch
 * of the same object stores nothing and fetches again (WRITTEN_TRIES), so
 * an answer asked for first and answered last never lands over a newer
 * one. A generation taken at the start could not order them: the request
 * that left later can be answered first. Exact, unlike the write slots:
 * keyed by (kind, id), and an entry lives only while a fetch of its
 * object is in flight, so the list holds at most one entry per fetching
 * thread (FUSE's, the pass's workers, the outbox's, ctl's).
 *
 * A lookup by email or external id does not know its contacts' ids when
 * it asks: it holds an entry of its own (id 0) that records the id of
 * each contact any fetch stores while it is in flight.
 *
 * Guarded by s->lock (struct sync's fetches and every field here), taken
 * by each function for a few statements; sync_fetch_overtaken() is
 * called inside the caller's store write transaction (the allowed
 * order: SQLite's write lock, then s->lock),
 * which is what makes "committed before my check" and "commits after my
 * commit" the only two cases.
 */
struct fetch_entry {
	struct fetch_entry *next;
	enum sync_object what;
	int64_t id;		/* > 0; 0: a lookup's (see above) */
	unsigned refs;		/* tickets that hold it (id > 0) */
	unsigned long commits;	/* id > 0: stores of the object so far */
	struct idset stored;	/* id 0: the ids stored while it lives */
	int overflow;		/* id 0: an id could not be recorded: any
				 * id counts as stored */
};

/* One fetch's hold on its entry and the start of its window. The
 * caller's (on its stack); zeroed is "none". */
struct fetch_ticket {
	struct fetch_entry *e;
	unsigned long seen;	/* e->commits when the window began */
};

/*
 * Registers a fetch of (what, id) (id 0: a lookup of contacts, see
 * above) and starts its window; 0 or -ENOMEM (nothing registered: the
 * caller fails its fetch, it cannot tell whether it is overtaken). Every
 * ticket begun is ended (sync_fetch_end). Any thread, no lock of the
 * sync's held (takes s->lock).
 */
int sync_fetch_begin(struct sync *s, enum sync_object what, int64_t id,
		     struct fetch_ticket *t);
/* Starts the window again, before a fetch's next try (id > 0 only).
 * Any thread, no lock of the sync's held. */
void sync_fetch_window(struct sync *s, struct fetch_ticket *t);
/*
 * Inside the caller's store write transaction, after its other checks and
 * just before it stores object id (t's id, or any for a lookup's): 1 if
 * another fetch of the object stored it since t's window began (the
 * caller rolls back and fetches again); else 0, and this store is
 * recorded for the other fetches in flight (a transaction that then
 * fails only costs them a fetch). Takes s->lock.
 */
int sync_fetch_overtaken(struct sync *s, struct fetch_ticket *t, int64_t id);
/* Lets go of t's entry (freed with its last ticket); t zeroed. A zeroed
 * t is a no-op. Any thread, no lock of the sync's held. */
void sync_fetch_end(struct sync *s, struct fetch_ticket *t);

/* The write generations when a fetch started. */
struct gens {
	unsigned g[WRITE_SLOTS];
	unsigned accounts_refreshes;
};

/* Changes gathered while writing, reported after the commit. */
struct changes {
	struct sync_change *v;
	size_t n, alloc;
};

/* Appends a change (key copied); -ENOMEM. */
int sync_changes_add(struct changes *c, enum sync_object what, int64_t id,
		     const char *key);
/* Reports the changes to the callback (if any) and empties the list; the
 * caller holds no lock of the sync's. */
void sync_changes_flush(struct sync *s, struct changes *c);
void sync_changes_release(struct changes *c);

/* What .driftfs/status shows the pass doing (takes s->lock). */
void sync_set_phase(struct sync *s, const char *phase, long done,
		    long total);
void sync_add_work_done(struct sync *s);

/* The write generations now (takes s->lock). */
void sync_gens_take(struct sync *s, struct gens *g);
/* Whether a write to the object was accepted since g was taken. */
int sync_written_since(struct sync *s, const struct gens *g,
		       enum sync_object what, int64_t id);

/* sync_conversation.c: one conversation, the contact claims. */
int sync_fetched_this_pass(struct sync *s, int64_t id);
/* Stores one contact fetched after g was taken and within t's window
 * (g, t NULL: unconditionally) in its own transaction and reports it;
 * -EAGAIN when a write to it since g, or another fetch's store of it
 * within t's window (sync_fetch_overtaken), made it leave the contact
 * alone. */
int sync_save_contact(struct sync *s, const struct api_contact *c,
		      const struct gens *g, struct fetch_ticket *t);
/* Fetches contact id (c, released first, the caller's to release) and
 * stores it, again when a write or another fetch of it overtook the
 * fetch (sync_save_contact, WRITTEN_TRIES in all);
 * *gone and 0 when the API has no such contact. Any thread, no lock. */
int sync_fetch_contact_fresh(struct sync *s, int64_t id,
			     struct api_contact *c, int *gone);
/* Fetches and stores conversation id (with its messages, contact and new
 * attachments); any thread, no lock held. */
int sync_conversation(struct sync *s, int64_t id);

/*
 * sync_fetch.c: forgets a conversation the API answered 404 for, in one
 * transaction, and reports it gone; 0 also when it was not cached. Any
 * thread, no transaction or lock of the sync's held.
 */
int sync_forget_conversation(struct sync *s, int64_t id);
/*
 * sync_fetch.c: fetches user id and stores it with generation gen (the
 * users list's, for its prune), again when a write to it overtook the
 * fetch (WRITTEN_TRIES, then -EAGAIN); a 404 removes it (-ENOENT, also
 * for one missed within the minute). The users list calls it for each
 * entry it dropped because a write overtook it (sync_list), and
 * sync_fetch_user for a writer. Any thread, no transaction or lock of
 * the sync's held.
 */
int sync_user_fresh(struct sync *s, int64_t id, int64_t gen);
/*
 * sync_fetch.c: adds convs[0..n) to contact's recheck note (the
 * conversations sync_recheck_pending fetches again in the next pass), in
 * the caller's open transaction; each id is held once. removal: a
 * removal of the contact (sync_forget_contact) writes the note even with
 * nothing new in it, so that a pass checking the note meanwhile keeps it;
 * otherwise an id already noted changes nothing. Any thread; returns a
 * store error or -ENOMEM (the caller rolls back).
 */
int sync_recheck_note(struct store *st, int64_t contact, const int64_t *convs,
		      size_t n, int removal);
/*
 * Notes that n committed changes removed rows: outside a pass the WALs
 * are checkpointed at once (store_checkpoint), during one at its end
 * (sync_checkpoint_due). Any thread, no transaction held.
 */
void sync_deleted_note(struct sync *s, size_t n);
/* At the end of a pass: merges the search index's segments that text
 * left, or all of them once the index has doubled (store_search_purge),
 * and checkpoints if rows were removed since the last one. The pass's thread, no transaction held. */
void sync_checkpoint_due(struct sync *s);

/*
 * sync_reconcile.c: the checks that bring deletions in Drift to the cache
 * within cfg.reconcile seconds (see the file). sync_reconcile runs them in
 * a pass (after the contact rotation); sync_reconcile_contact_batch says
 * how many contacts this pass's rotation refetches (at least floor), and
 * sync_reconcile_contacts_done records that it did (mark: the rotation's
 * clock, as the batch set it). The pass's
 * thread. sync_reconcile_status appends one "reconcile: ..." line to out
 * (any thread; reads only the store's meta, so s->lock may be held).
 */
int sync_reconcile(struct sync *s);
size_t sync_reconcile_contact_batch(struct sync *s, size_t floor,
				    int64_t *mark);
void sync_reconcile_contacts_done(struct sync *s, int64_t mark);
int sync_reconcile_status(struct sync *s, struct buf *out);

/* sync_workers.c: the worker pool. */
/* Objects to fetch, shared by the workers. */
struct work {
	struct sync *s;
	int in_pass;		/* the caller's sync_in_pass, for the workers */
	int (*fetch)(struct sync *s, int64_t id);
	int64_t *ids;
	size_t n, next;
	int failed;		/* first error */
	size_t nfailed;
	int cancelled;		/* sync_stopping() left ids undone */
	pthread_mutex_t lock;
};

/*
 * Runs fetch over ids with up to cfg.conns threads (the calling one
 * included) and returns when all are done; work->failed is the first
 * error, work->nfailed their number. The caller zeroes work first.
 */
void sync_run_workers(struct sync *s, struct work *work,
		      int (*fetch)(struct sync *, int64_t), int64_t *ids,
		      size_t n);

/* sync_lists.c: users, playbooks, accounts, contact attributes. */
int sync_list(struct sync *s, enum sync_object what, int64_t gen);
int sync_attributes(struct sync *s);

/*
 * sync_rerender.c: transcripts follow renames (DESIGN.md §3).
 *
 * How a transcript names a message's author (a render_author_fn, render.h,
 * for render_transcript()), the one naming of a fresh fetch and of a
 * re-render: a contact by name, else email (contact if it is the one just
 * fetched, else the cache; wait (may be NULL) waits for one another
 * thread of the pass is fetching, and says whether it waited), else
 * "Contact <id>"; any other author from the users table (a bot user's
 * role is bot), else "User <id>". Reads the store; calls wait only when
 * not NULL, so a caller in a transaction passes NULL.
 */
struct sync_author {
	struct sync *s;
	const struct api_contact *contact;	/* just fetched, or NULL */
	int (*wait)(struct sync *s, int64_t contact_id);
};
void sync_author_of(void *ctx, const struct api_message *m, char *name,
		    size_t size, const char **role);
/*
 * Stores contact c (store_put_contact) in the caller's open transaction;
 * when what transcripts show of it changed (or it is new), renders its
 * conversations' transcripts again from the cache in that transaction and
 * adds their changes to ch (reported by the caller after its commit). No
 * request, no wait. Returns a store error or -ENOMEM (the caller rolls
 * back); a conversation that cannot be rendered is logged and skipped.
 */
int sync_put_contact(struct sync *s, const struct api_contact *c,
		     int *changed, struct changes *ch);
/* Whether storing u changes what transcripts show of it (its name, its
 * bot flag, or it is new); call before storing it. A reader. */
int sync_user_naming_changed(struct sync *s, const struct api_user *u);
/* Notes users whose naming changed, in the caller's transaction (the one
 * that stores them) or alone, for sync_rerender_pending(). */
int sync_rerender_note_users(struct sync *s, const int64_t *ids, size_t n);
/*
 * Renders again, from the cache, the transcripts of every conversation
 * with a message by a noted user, in transactions of its own, reporting
 * the changes after each; then clears those notes (a failure leaves them
 * for the next call). Any thread; the caller holds no store transaction
 * and no lock of the sync's but pass_lock (the change callback runs).
 * No request.
 */
int sync_rerender_pending(struct sync *s);

/*
 * sync_conversation.c: records that the API has no contact id, as a
 * claimer's 404 does (takes s->lock): a conversation fetched after this
 * stores no link to it, also where a claim got it earlier (as long as the
 * gone set lasts; sync_recheck_pending notes it again in its pass). Any
 * thread, no lock of the sync's held.
 */
void sync_note_contact_gone(struct sync *s, int64_t id);
/*
 * sync_fetch.c: in a pass (sync_reconcile calls it last), fetches again
 * the cached conversations of the contacts removed since (noted in the
 * removal's transaction, see sync_forget_contact): a 404 removes them (an
 * erasure takes them with the contact), an answer refreshes them without
 * the link. The first pass of a cache also checks, once, every contact a
 * conversation links to without a row. The pass's thread and workers,
 * pass_lock held, no transaction.
 */
int sync_recheck_pending(struct sync *s);

#endif
