/* SPDX-License-Identifier: MIT */
/*
 * sync: the background worker that keeps the cache fresh, and the on-demand
 * fetchers for objects the cache does not hold yet.
 *
 * A pass fetches users, custom attributes, playbooks and accounts, then
 * walks the conversation list newest updatedAt first, stopping at the
 * previous pass's watermark; every conversation whose updatedAt differs from
 * the cached one gets its full object, all its messages, its contact and its
 * new attachments refetched (by a few workers at once, under the HTTP
 * governor), and is stored in one transaction with its rendered transcript.
 * The watermark only moves when the whole walk succeeded, so an interrupted
 * pass is simply redone.
 *
 * Whatever changed is reported to the change callback after it is committed,
 * so the FUSE side can invalidate exactly those nodes.
 *
 * Files: sync.c (the pass and its thread), sync_conversation.c (one
 * conversation, the contact claims), sync_lists.c (users, playbooks,
 * accounts, attributes), sync_fetch.c (on-demand), sync_workers.c (pool).
 *
 * Contract, for every function below:
 * - Returns 0 or -errno (api.h's errors, the store's, -ENOMEM).
 * - Threads: sync_new, sync_start, sync_stop and sync_free belong to the
 *   thread that owns the mount (driftfs's main, driftctl); every other
 *   function may be called from any thread, several at once, once
 *   sync_new has returned and until sync_free. Calls that fetch block
 *   their thread for the requests (within http's deadlines).
 * - Locks: the caller holds no store transaction (the calls write the
 *   store themselves) and no lock that comes after the sync's in
 *   driftfs.h's order. commit's hooks call sync_note_write(), the
 *   fetchers, sync_forget_contact() and sync_refresh_accounts() with the
 *   outbox's send_lock (and maybe a handle's lock) held, which come
 *   before. Inside, the sync's own lock is held only for a few
 *   statements; a pass also holds a pass lock, so passes run one at a
 *   time.
 * - Nothing is handed over: strings passed in are only read; what status
 *   appends to a buf stays the caller's.
 */
#ifndef DRIFTFS_SYNC_H
#define DRIFTFS_SYNC_H

#include <stdint.h>

#include "buf.h"
#include "driftfs.h"

enum sync_object {
	SO_CONTACT,
	SO_USER,
	SO_CONVERSATION,	/* its files, messages, attachments, links */
	SO_PLAYBOOK,
	SO_ACCOUNT,		/* key: the account id */
	SO_LISTS,		/* top-level listings and stats.json */
	SO_PRUNED,		/* id: the SO_USER, SO_PLAYBOOK or SO_ACCOUNT
				 * list that lost rows (which ones, unknown) */
};

struct sync_change {
	enum sync_object what;
	int64_t id;
	int64_t contact;	/* conversations: its contact now, or 0 */
	int64_t old_contact;	/* conversations: previous contact, or 0 */
	char old_status[16];	/* conversations: previous status */
	/* conversations, contacts: no longer in the store (the API answered
	 * 404, or a reconcile confirmed it gone) */
	int gone;
	char *key;		/* accounts: encoded name; else NULL */
};

/*
 * The change callback: n changes, committed to the store before the call.
 * It runs on whichever thread stored them: the sync thread, a pass's
 * workers, or the caller of an on-demand function (a FUSE thread, a
 * commit, ctl), so on several threads at once. No lock of the sync's and
 * no store transaction is held; the caller of that sync function may hold
 * its own. The array and its keys are the sync's, valid for the call only
 * (copy what you keep). It must be quick and must not call back into the
 * sync (fs_on_change queues the changes and returns).
 */
typedef void (*sync_change_cb)(void *ctx, const struct sync_change *c,
			       size_t n);

/*
 * A sync for d (which must outlive it); cb (may be NULL) gets ctx. NULL
 * with errno ENOMEM. sync_free stops the thread first; accepts NULL.
 */
struct sync *sync_new(struct driftfs *d, sync_change_cb cb, void *ctx);
void sync_free(struct sync *s);

/* Starts the background thread (every cfg.refresh seconds, 0 = never);
 * its first pass starts at once. sync_stop waits for a pass under way. */
int sync_start(struct sync *s);
void sync_stop(struct sync *s);

/* Runs one full pass on the calling thread (driftctl sync, tests); waits
 * for a pass under way on another thread first. */
int sync_run_once(struct sync *s);
/*
 * Asks the background thread for a pass now and waits (at most timeout_ms)
 * until a pass that started after the request has finished. Returns that
 * pass's result, or -ETIMEDOUT. Without a started thread, runs the pass on
 * the calling thread (as sync_run_once).
 */
int sync_request(struct sync *s, long timeout_ms);

/* On-demand fetchers: store the object, report the change. -ENOENT if the
 * API has no such object. Recent misses are remembered for a minute.
 * -EIO while the org gate (account.h) is shut. */
int sync_fetch_contact(struct sync *s, int64_t id);
int sync_fetch_conversation(struct sync *s, int64_t id);
int sync_fetch_user(struct sync *s, int64_t id);
/*
 * Records that a write to this object was just accepted by the API: any
 * fetch of it that started earlier may hold older data and is not stored
 * (the writer refetches it itself). A users list fetched earlier still
 * keeps the user listed (tags it as seen), so its prune leaves the
 * writer's copy alone.
 */
void sync_note_write(struct sync *s, enum sync_object what, int64_t id);

/*
 * Refetches the accounts list (after an account edit). A pass whose
 * accounts list was being fetched when this began does not store it: this
 * one's is newer, and stores itself (and prunes by it).
 */
int sync_refresh_accounts(struct sync *s);

/*
 * Removes a contact the API deleted (404) from the cache, with its
 * conversations' links to it, in one transaction, and reports it; no
 * request. Its cached conversations are fetched again by the next pass's
 * end (sync_recheck_pending, sync_int.h), not by the caller (a close()
 * holding send_lock): those the API no longer has either (an erasure
 * takes them with the contact) are removed then, the others refreshed.
 */
int sync_forget_contact(struct sync *s, int64_t id);
/* Looks contacts up by email or external id; stores all matches. */
int sync_lookup_email(struct sync *s, const char *email);
int sync_lookup_external_id(struct sync *s, const char *ext);

/* Wall-clock ms of the last start or end of a pass (0 = none yet). */
int64_t sync_last_event(struct sync *s);
/* Appends "key: value" lines about the sync for .driftfs/status. */
int sync_status_render(struct sync *s, struct buf *out);

#endif
