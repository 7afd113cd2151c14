// SPDX-License-Identifier: MIT
/*
 * sync_reconcile.c: the checks of a pass that bring what Drift deleted
 * without a trace in the incremental walk to the cache within
 * cfg.reconcile seconds (DESIGN §3 "Deletions reach the cache").
 *
 * The incremental walk (sync.c) sees only conversations whose updatedAt
 * moved. A conversation deleted in Drift drops out of the list, and a
 * message deleted without touching its conversation changes nothing the
 * walk looks at; contacts have no list at all. So, within each period of
 * R = cfg.reconcile seconds:
 *
 * (a) Conversation ids: when the last complete walk of the whole list
 *     started more than R/2 ago, the whole list is walked again (list
 *     pages only, ids kept), and every cached conversation the walk did
 *     not list is fetched (sync_conversation): a 404 removes it, an
 *     answer keeps (and refreshes) it. Absence alone never deletes:
 *     items move between pages while a walk goes on.
 *     Cost: ceil(Nconv / 100) list requests (50 a page on a legacy
 *     server) every R/2, so twice that per R, plus a fetch (GET and its
 *     message pages) of each cached conversation missing from a walk.
 * (b) Messages: a rotation over the cached conversations in id order,
 *     paced by time: a pass checks floor(Nconv * elapsed / P) of them
 *     (elapsed on the rotation's clock, the remainder carried to the
 *     next pass; capped at Nconv), where P is R less one refresh
 *     interval (at least R/2), so each is checked within R. A check fetches only the message list (one
 *     request per 50 messages) and compares its ids with the cache; a
 *     difference, or a 404, refetches the conversation
 *     (sync_conversation). Cost per R: one request per conversation plus
 *     one per further 50 messages, about Nconv + Nmessages / 50.
 * (c) Contacts: the rotation in sync.c refetches at least
 *     STORE_CONTACT_BATCH cached contacts a pass; sync_reconcile_contact_
 *     batch raises that to floor(Ncontacts * elapsed / P) when larger, so
 *     each is refetched within R (a 404 removes it with its erased
 *     conversations: sync_forget_contact). Cost: one GET per contact per
 *     R at least; with the floor, up to 200 per pass.
 *
 * The times (wall ms) and the rotation cursor live in the meta table, so
 * the pacing survives a remount: a mount after a day away checks
 * everything in its first pass. A check that has never run starts its
 * clock there (its first pass checks nothing, or the floor): a cold sync
 * has just fetched everything, and pays for no second walk.
 *
 * What this adds to an incremental pass grows with the account, as the
 * bound requires, but is spread evenly over the passes: Nconv * elapsed /
 * P message lists (none in a pass right after another, about one a pass
 * at 1440 conversations with refresh=60 and the default R), and a whole
 * list walk twice per R.
 *
 * Threads: the pass's thread (with its workers, sync_run_workers), under
 * the pass lock, no store transaction held (sync.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "render.h"
#include "store.h"
#include "sync_int.h"

/* Meta keys (wall ms, or an id). */
#define KEY_WALK_AT "reconcile_walk_at"	/* last complete list walk began */
#define KEY_WALK_GONE "reconcile_walk_gone"	/* it removed this many */
#define KEY_MSGS_AT "reconcile_msgs_at"	/* the message rotation's clock */
#define KEY_MSGS_CURSOR "reconcile_msgs_cursor"	/* up to this id */
#define KEY_CONTACTS_AT "reconcile_contacts_at"	/* the contacts' clock */

/* A growable array of ids. */
struct ids {
	int64_t *v;
	size_t n, alloc;
};

static int ids_add(struct ids *l, int64_t id)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 256;
		int64_t *p = realloc(l->v, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->v = p;
		l->alloc = na;
	}
	l->v[l->n++] = id;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sorts and removes repeats. */
static void ids_sort(struct ids *l)
{
	size_t k = 0;

	if (!l->n)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cmp_id);
	for (size_t i = 1; i < l->n; i++)
		if (l->v[i] != l->v[k])
			l->v[++k] = l->v[i];
	l->n = k + 1;
}

static int64_t period_ms(const struct sync *s)
{
	long r = s->d->cfg.reconcile;

	return (int64_t)(r > 0 ? r : 86400) * 1000;
}

/*
 * The period a rotation paces itself by: the bound less one refresh
 * interval (a check falls due between passes and waits for the next),
 * but at least half the bound.
 */
static int64_t pace_ms(const struct sync *s)
{
	int64_t r = period_ms(s), slack = (int64_t)s->d->cfg.refresh * 1000;

	return slack > 0 && r - slack > r / 2 ? r - slack : r / 2;
}

/*
 * How many of n objects a rotation whose clock is at meta key checks now:
 * floor(n * elapsed / P) (P = pace_ms), at most n. *mark gets the clock's
 * new value, to record when they are done: it moves on by the time those
 * checks pay for, so the fraction left over carries to the next pass (a
 * pass soon after another checks nothing, and over any time t the
 * rotation checks n * t / P objects: each one within P of its last
 * check). A clock never started, gone back, or with nothing to check
 * starts (again) now.
 */
static size_t paced(struct sync *s, const char *key, size_t n, int64_t *mark)
{
	int64_t last = store_meta_i64(s->d->store, key), p = pace_ms(s);
	int64_t now = clock_wall_ms(), el = now - last;
	uint64_t k;

	*mark = now;
	if (!last || el <= 0 || !n)
		return 0;
	if (el >= p)
		return n;
	/* n * el and k * p stay below 2^64: el < p here, and p is at most
	 * a year in ms (< 2^35), so up to 2^29 objects. */
	k = (uint64_t)n * (uint64_t)el / (uint64_t)p;
	*mark = last + (int64_t)(k * (uint64_t)p / n);
	return (size_t)k;
}

static int count_of(struct sync *s, int which, size_t *n)
{
	int64_t c[STORE_COUNTS];
	int r = store_counts(s->d->store, c);

	*n = !r && c[which] > 0 ? (size_t)c[which] : 0;
	return r;
}

size_t sync_reconcile_contact_batch(struct sync *s, size_t floor,
				    int64_t *mark)
{
	size_t n = 0, k;

	count_of(s, STORE_N_CONTACTS, &n);
	k = paced(s, KEY_CONTACTS_AT, n, mark);
	return k > floor ? k : floor;
}

void sync_reconcile_contacts_done(struct sync *s, int64_t mark)
{
	if (mark)
		store_meta_set_i64(s->d->store, KEY_CONTACTS_AT, mark);
}

/* (a) The list walk's callback: every id listed. */
static int walk_collect(void *ctx, const struct api_conversation *c)
{
	return ids_add(ctx, c->id);
}

/* A cached conversation the walk did not list: 404 removes it
 * (sync_conversation), an answer keeps it. */
static int confirm(struct sync *s, int64_t id)
{
	int r = sync_conversation(s, id);

	return r == -ENOENT ? 0 : r;
}

static int reconcile_walk(struct sync *s)
{
	struct store *st = s->d->store;
	struct api_cursor cur = { 0 };
	struct ids listed = { 0 }, missing = { 0 };
	struct work work = { 0 };
	int64_t *cached = NULL, start = clock_wall_ms();
	int64_t last = store_meta_i64(st, KEY_WALK_AT);
	size_t ncached = 0, j = 0, before = 0, after = 0;
	int r = 0;

	/*
	 * Never walked: this cache was just filled by a complete walk (or an
	 * older version's): the clock starts now, and a cold sync does not
	 * pay for the list twice.
	 */
	if (!last)
		/* Unless the walk was cut short by a stop: not filled. */
		return sync_stopping(s) ? -ECANCELED
					: store_meta_set_i64(st, KEY_WALK_AT,
							     start);
	if (start - last >= 0 && start - last < period_ms(s) / 2)
		return 0;
	sync_set_phase(s, "reconciling: listing conversations", 0, 0);
	while (!cur.done && !r) {
		if (sync_stopping(s)) {
			r = -ECANCELED;
			break;
		}
		r = api_conversations_page(s->d->http, &cur, walk_collect,
					   &listed);
		sync_set_phase(s, "reconciling: listing conversations",
			       (long)listed.n, 0);
	}
	api_cursor_release(&cur);
	r = r ? r : store_conversation_ids(st, 0, 0, &cached, &ncached);
	if (r)
		goto out;
	ids_sort(&listed);
	for (size_t i = 0; i < ncached && !r; i++) {
		while (j < listed.n && listed.v[j] < cached[i])
			j++;
		if (j == listed.n || listed.v[j] != cached[i])
			r = ids_add(&missing, cached[i]);
	}
	if (r)
		goto out;
	count_of(s, STORE_N_CONVERSATIONS, &before);
	sync_set_phase(s, "reconciling: checking unlisted conversations", 0,
		       (long)missing.n);
	sync_run_workers(s, &work, confirm, missing.v, missing.n);
	r = work.failed;
	count_of(s, STORE_N_CONVERSATIONS, &after);
	if (missing.n)
		log_info("reconcile: %zu cached conversations were not listed;"
			 " %zu of them are gone from Drift", missing.n,
			 before > after ? before - after : 0);
	/*
	 * Recorded once the list was walked whole, even when some checks
	 * failed: one conversation that always fails (a 403 for an inbox
	 * the token cannot read) must not make every pass walk the whole
	 * list and fetch every unlisted one again. Those left unchecked are
	 * checked by the next walk, R/2 later, still within R. A walk cut
	 * short (r set before the checks) is not recorded: it goes again
	 * next pass. Only all checks failing (the API gone meanwhile)
	 * counts as no walk.
	 */
	if (work.cancelled) {
		r = -ECANCELED;	/* stopped: the rest was not confirmed */
	} else if (!r || work.nfailed < missing.n) {
		int rr;

		store_meta_set_i64(st, KEY_WALK_GONE,
				   (int64_t)(before > after ? before - after
							    : 0));
		rr = store_meta_set_i64(st, KEY_WALK_AT, start);
		r = r ? r : rr;
	}
out:
	free(listed.v);
	free(missing.v);
	free(cached);
	return r;
}

/* (b) The message list's callback: its ids (the message stays the
 * caller's, who releases it). */
static int msg_collect(void *ctx, struct api_message *m)
{
	return ids_add(ctx, m->id);
}

/* Whether the API's message ids of conversation id equal the cache's;
 * a difference or a 404 refetches the conversation. */
static int check_messages(struct sync *s, int64_t id)
{
	struct ids api = { 0 };
	int64_t *cached = NULL;
	size_t n = 0;
	int r, same;

	r = api_messages(s->d->http, id, msg_collect, &api);
	if (r == -ENOENT)
		goto refetch;	/* the conversation went: this confirms it */
	if (r)
		goto out;
	r = store_message_ids(s->d->store, id, &cached, &n);
	if (r)
		goto out;
	ids_sort(&api);
	same = api.n == n && (!n || !memcmp(api.v, cached, n * sizeof(*cached)));
	if (same)
		goto out;
refetch:
	r = sync_conversation(s, id);
	if (r == -ENOENT)
		r = 0;	/* removed */
out:
	free(api.v);
	free(cached);
	sync_add_work_done(s);
	return r;
}

static int reconcile_messages(struct sync *s)
{
	struct store *st = s->d->store;
	int64_t cursor = store_meta_i64(st, KEY_MSGS_CURSOR), mark = 0;
	int64_t *ids = NULL, *more = NULL;
	struct work work = { 0 };
	size_t total = 0, want, n = 0, nmore = 0;
	int r;

	r = count_of(s, STORE_N_CONVERSATIONS, &total);
	want = paced(s, KEY_MSGS_AT, total, &mark);
	if (r || !want)
		goto done;
	r = store_conversation_ids(st, cursor, want, &ids, &n);
	if (!r && n < want && cursor) {
		int64_t first = n ? ids[0] : INT64_MAX, *p;

		/* Wrap around, short of where this round began. */
		r = store_conversation_ids(st, 0, want - n, &more, &nmore);
		p = r || !nmore ? NULL : realloc(ids, (n + nmore) * sizeof(*p));
		if (!r && nmore && !p)
			r = -ENOMEM;
		if (p)
			ids = p;
		for (size_t i = 0; p && i < nmore && more[i] < first; i++)
			ids[n++] = more[i];
	}
	if (r)
		goto out;
	sync_set_phase(s, "reconciling: checking messages", 0, (long)n);
	sync_run_workers(s, &work, check_messages, ids, n);
	r = work.failed;
	/*
	 * A round where every check failed (the API gone) is not recorded:
	 * the next pass's share grows by the time it lost. One where some
	 * succeeded moves on, so a conversation that always fails cannot
	 * hold the rotation (and make each pass check everything); it is
	 * checked again on the next round, within R.
	 */
	if (work.cancelled) {
		r = -ECANCELED;	/* stopped: the rest was not checked */
		goto out;
	}
	if (n && work.nfailed < n) {
		int rr = store_meta_set_i64(st, KEY_MSGS_CURSOR, ids[n - 1]);

		rr = rr ? rr : store_meta_set_i64(st, KEY_MSGS_AT, mark);
		r = r ? r : rr;
		goto out;
	}
done:
	if (!r)
		r = store_meta_set_i64(st, KEY_MSGS_AT, mark);
out:
	free(ids);
	free(more);
	return r;
}

int sync_reconcile(struct sync *s)
{
	int r = reconcile_walk(s), r2;

	if (r && !http_reachable(s->d->http))
		return r;	/* nothing more gets an answer */
	r2 = reconcile_messages(s);
	r = r ? r : r2;
	/* Last: the contacts removed in this pass too (sync_fetch.c). */
	r2 = sync_recheck_pending(s);
	return r ? r : r2;
}

static int add_meta_time(struct sync *s, struct buf *out, const char *what,
			 const char *key)
{
	int64_t t = store_meta_i64(s->d->store, key);
	int r = buf_printf(out, ", %s ", what);

	if (!t)
		return r ? r : buf_adds(out, "never");
	return r ? r : render_time(t, out);
}

/*
 * One line for .driftfs/status. Absolute times, so the file does not
 * change while nothing happens. Reads only the store's meta (no lock of
 * the sync's): callable with s->lock held.
 */
int sync_reconcile_status(struct sync *s, struct buf *out)
{
	int r = buf_printf(out, "reconcile: within %lds",
			   s->d->cfg.reconcile);

	r = r ? r : add_meta_time(s, out, "last list walk", KEY_WALK_AT);
	r = r ? r : buf_printf(out, " (%lld gone)",
			       (long long)store_meta_i64(s->d->store,
							 KEY_WALK_GONE));
	r = r ? r : add_meta_time(s, out, "message rotation at", KEY_MSGS_AT);
	r = r ? r : buf_printf(out, ", up to conversation %lld\n",
			       (long long)store_meta_i64(s->d->store,
							 KEY_MSGS_CURSOR));
	return r;
}
