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
	char *key;		/* accounts: encoded name; else NULL */
};

typedef void (*sync_change_cb)(void *ctx, const struct sync_change *c,
			       size_t n);

struct sync *sync_new(struct driftfs *d, sync_change_cb cb, void *ctx);
void sync_free(struct sync *s);

/* Starts the background thread (every cfg.refresh seconds, 0 = never). */
int sync_start(struct sync *s);
void sync_stop(struct sync *s);

/* Runs one full pass on the calling thread (driftctl sync, tests). */
int sync_run_once(struct sync *s);
/*
 * Asks the background thread for a pass now and waits (at most timeout_ms)
 * until a pass that started after the request has finished. Returns that
 * pass's result, or -ETIMEDOUT.
 */
int sync_request(struct sync *s, long timeout_ms);

/* On-demand fetchers: store the object, report the change. -ENOENT if the
 * API has no such object. Recent misses are remembered for a minute. */
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

/* Removes a contact the API deleted from the cache, and reports it. */
int sync_forget_contact(struct sync *s, int64_t id);
/* Looks contacts up by email or external id; stores all matches. */
int sync_lookup_email(struct sync *s, const char *email);
int sync_lookup_external_id(struct sync *s, const char *ext);

/* Wall-clock ms of the last start or end of a pass (0 = none yet). */
int64_t sync_last_event(struct sync *s);
/* Appends "key: value" lines about the sync for .driftfs/status. */
int sync_status_render(struct sync *s, struct buf *out);

#endif
