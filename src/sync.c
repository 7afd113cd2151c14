// SPDX-License-Identifier: MIT
/*
 * sync.c: the pass and its thread: the steps of one pass in order (lists,
 * the conversation walk, the rotating contact refresh), sync_run_once, the
 * background thread with its requests, the write generations, the change
 * list and the status. One conversation's fetch, the lists, the on-demand
 * fetchers and the worker pool live in sync_*.c (see sync.h).
 */
#include "sync.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "api.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "render.h"
#include "store.h"
#include "sync_int.h"

/* Contacts have no updatedAt and no list endpoint: each pass refreshes
 * one store batch of cached contacts (Q_CONTACTS_AFTER gives that many),
 * in id order, wrapping around. */
#define CONTACT_ROTATION STORE_CONTACT_BATCH

int sync_changes_add(struct changes *c, enum sync_object what, int64_t id,
		     const char *key)
{
	struct sync_change *e;

	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 16;
		struct sync_change *p = realloc(c->v, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->v = p;
		c->alloc = na;
	}
	e = &c->v[c->n];
	memset(e, 0, sizeof(*e));
	e->what = what;
	e->id = id;
	if (key) {
		e->key = strdup(key);
		if (!e->key)
			return -ENOMEM;
	}
	c->n++;
	return 0;
}

void sync_changes_flush(struct sync *s, struct changes *c)
{
	size_t removed = 0;

	for (size_t i = 0; i < c->n; i++)
		removed += c->v[i].gone || c->v[i].what == SO_PRUNED;
	if (removed)
		sync_deleted_note(s, removed);	/* a checkpoint is due */
	if (c->n && s->cb)
		s->cb(s->cb_ctx, c->v, c->n);
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	c->n = 0;
}

void sync_changes_release(struct changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

void sync_set_phase(struct sync *s, const char *phase, long done, long total)
{
	log_debug("sync: %s (%ld items)", phase, total);
	pthread_mutex_lock(&s->lock);
	snprintf(s->phase, sizeof(s->phase), "%s", phase);
	s->work_done = done;
	s->work_total = total;
	pthread_mutex_unlock(&s->lock);
}

void sync_add_work_done(struct sync *s)
{
	pthread_mutex_lock(&s->lock);
	s->work_done++;
	pthread_mutex_unlock(&s->lock);
}

struct sync *sync_new(struct driftfs *d, sync_change_cb cb, void *ctx)
{
	struct sync *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s)
		return NULL;
	s->d = d;
	s->cb = cb;
	s->cb_ctx = ctx;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->pass_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_cond_init(&s->contact_cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(s->phase, sizeof(s->phase), "idle");
	return s;
}

void sync_free(struct sync *s)
{
	if (!s)
		return;
	sync_stop(s);
	pthread_cond_destroy(&s->cond);
	pthread_cond_destroy(&s->contact_cond);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->pass_lock);
	idset_release(&s->fetched);
	idset_release(&s->gone_contacts);
	/* Every fetch ended its ticket: nothing in flight is left. */
	while (s->fetches) {
		struct fetch_entry *e = s->fetches;

		s->fetches = e->next;
		idset_release(&e->stored);
		free(e);
	}
	free(s);
}

static size_t write_slot(enum sync_object what, int64_t id)
{
	size_t kind = what == SO_CONTACT ? 0 : what == SO_USER ? 1 :
		      what == SO_CONVERSATION ? 2 : 3;

	return kind * WRITE_KIND_SLOTS +
	       names_hash64(&id, sizeof(id), (uint64_t)what) % WRITE_KIND_SLOTS;
}

void sync_note_write(struct sync *s, enum sync_object what, int64_t id)
{
	pthread_mutex_lock(&s->lock);
	s->write_gen[write_slot(what, id)]++;
	pthread_mutex_unlock(&s->lock);
}

void sync_gens_take(struct sync *s, struct gens *g)
{
	pthread_mutex_lock(&s->lock);
	memcpy(g->g, s->write_gen, sizeof(g->g));
	g->accounts_refreshes = s->accounts_refreshes;
	pthread_mutex_unlock(&s->lock);
}

/* Whether a write to the object was accepted since g was taken. */
int sync_written_since(struct sync *s, const struct gens *g,
		       enum sync_object what, int64_t id)
{
	size_t k = write_slot(what, id);
	int w;

	pthread_mutex_lock(&s->lock);
	w = s->write_gen[k] != g->g[k];
	pthread_mutex_unlock(&s->lock);
	return w;
}

/* The entry of (what, id) in flight; s->lock held. */
static struct fetch_entry *fetch_find(struct sync *s, enum sync_object what,
				      int64_t id)
{
	struct fetch_entry *e = s->fetches;

	while (e && (e->what != what || e->id != id))
		e = e->next;
	return e;
}

int sync_fetch_begin(struct sync *s, enum sync_object what, int64_t id,
		     struct fetch_ticket *t)
{
	struct fetch_entry *e, *fresh;

	memset(t, 0, sizeof(*t));
	if (id < 0)
		return -EINVAL;
	/* Allocated outside the lock; freed if the object has one. */
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	/* A lookup's entry is its own: its window is not another's. */
	e = id ? fetch_find(s, what, id) : NULL;
	if (!e) {
		e = fresh;
		fresh = NULL;
		e->what = what;
		e->id = id;
		e->next = s->fetches;
		s->fetches = e;
	}
	e->refs++;
	t->e = e;
	t->seen = e->commits;
	pthread_mutex_unlock(&s->lock);
	free(fresh);
	return 0;
}

void sync_fetch_window(struct sync *s, struct fetch_ticket *t)
{
	if (!t->e)
		return;
	pthread_mutex_lock(&s->lock);
	t->seen = t->e->commits;
	pthread_mutex_unlock(&s->lock);
}

/* Records a store of (what, id) for every fetch in flight but mine's own
 * lookup entry (NULL: none); s->lock held. */
static void fetch_record(struct sync *s, enum sync_object what, int64_t id,
			 const struct fetch_entry *mine)
{
	for (struct fetch_entry *e = s->fetches; e; e = e->next) {
		if (e->what != what || e == mine)
			continue;
		if (e->id == id)
			e->commits++;
		else if (!e->id && idset_add(&e->stored, id) < 0)
			e->overflow = 1;	/* no memory: all count */
	}
}

int sync_fetch_overtaken(struct sync *s, struct fetch_ticket *t, int64_t id)
{
	struct fetch_entry *e = t->e;
	int over;

	if (!e)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (e->id)
		over = e->commits != t->seen;
	else
		over = e->overflow || idset_has(&e->stored, id);
	if (!over) {
		/* A keyed entry is shared: its other tickets see our store. */
		fetch_record(s, e->what, id, e->id ? NULL : e);
		/* Our own store is no other fetch's, for our next try. */
		if (e->id)
			t->seen = e->commits;
	}
	pthread_mutex_unlock(&s->lock);
	return over;
}

void sync_fetch_end(struct sync *s, struct fetch_ticket *t)
{
	struct fetch_entry *e = t->e, **pp;

	if (!e)
		return;
	pthread_mutex_lock(&s->lock);
	if (--e->refs) {
		e = NULL;
	} else {
		for (pp = &s->fetches; *pp != e; pp = &(*pp)->next)
			;
		*pp = e->next;
	}
	pthread_mutex_unlock(&s->lock);
	if (e) {
		idset_release(&e->stored);
		free(e);
	}
	memset(t, 0, sizeof(*t));
}

/* What the walk of the conversation list collects, a page at a time. */
struct walk {
	struct sync *s;
	int64_t watermark;	/* stop at items older than this */
	int64_t newest;		/* the newest updatedAt seen */
	int older_seen;		/* an item older than the watermark came */
	int64_t *ids;		/* this page's changed conversations */
	size_t n, alloc;
};

static int walk_item(void *ctx, const struct api_conversation *c)
{
	struct walk *w = ctx;

	if (c->updated > w->newest)
		w->newest = c->updated;
	if (w->watermark && c->updated < w->watermark) {
		w->older_seen = 1;
		return 0;
	}
	/* Stored at this updatedAt already: what makes a resumed first
	 * sync (after a kill -9) cost only the list pages it walks again. */
	if (store_conversation_synced(w->s->d->store, c->id) == c->updated &&
	    c->updated)
		return 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->ids[i] == c->id)
			return 0;	/* listed twice (data moved under us) */
	if (w->n == w->alloc) {
		size_t na = w->alloc ? w->alloc * 2 : 256;
		int64_t *p = realloc(w->ids, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		w->ids = p;
		w->alloc = na;
	}
	w->ids[w->n++] = c->id;
	return 0;
}

/*
 * The account's total for the progress, once a pass (sync thread, or
 * driftctl's; pass_lock held, no other lock). Any failure only leaves the
 * total unknown; a refusal (403/404: a plan or an API without it) stops
 * the asking for the rest of the mount.
 */
static void conv_progress_start(struct sync *s)
{
	int64_t counts[STORE_COUNTS], total = -1;
	int r = -ENODATA;

	if (!s->stats_refused) {
		r = api_conversation_stats(s->d->http, &total);
		if (r == -EACCES || r == -ENOENT || r == -EPERM)
			s->stats_refused = 1;
		if (r)
			total = -1;
	}
	if (store_counts(s->d->store, counts))
		counts[STORE_N_CONVERSATIONS] = 0;
	pthread_mutex_lock(&s->lock);
	s->conv_total = total;
	s->conv_stored = counts[STORE_N_CONVERSATIONS];
	s->conv_new = 0;
	s->conv_since_ms = clock_mono_ms();
	s->conv_walking = 1;
	pthread_mutex_unlock(&s->lock);
}

/* A worker's fetch of one listed conversation (any worker thread, no lock
 * held): counts the ones the cache did not hold, for the progress. */
static int fetch_listed(struct sync *s, int64_t id)
{
	int fresh = !store_conversation_synced(s->d->store, id);
	int r = sync_conversation(s, id);

	/* Deleted since the list named it (and gone from the cache, if it
	 * was there): the walk is not the worse for it. */
	if (r == -ENOENT)
		return 0;

	if (!r && fresh) {
		pthread_mutex_lock(&s->lock);
		s->conv_stored++;
		s->conv_new++;
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/* More work found for the phase's done/total (takes s->lock). */
static void add_work_total(struct sync *s, size_t n)
{
	pthread_mutex_lock(&s->lock);
	s->work_total += (long)n;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The walk of the conversation list, newest updatedAt first, stopping at
 * the watermark. Each page's changed conversations are fetched (by the
 * worker pool) before the next page is asked for, so a cold mount's
 * listings fill newest first, a page's worth of work at a time, and a
 * walk cut short (kill -9) has stored everything it fetched. The
 * watermark moves only when the whole walk and every fetch succeeded.
 */
static int sync_conversations(struct sync *s)
{
	struct store *st = s->d->store;
	struct api_cursor cur = { 0 };
	struct walk w = { s, 0, 0, 0, NULL, 0, 0 };
	size_t nfetch = 0, nfailed = 0;
	int r = 0, failed = 0;

	w.watermark = store_meta_i64(st, "conv_watermark");
	conv_progress_start(s);
	sync_set_phase(s, "fetching conversations", 0, 0);
	while (!cur.done && !r && !w.older_seen) {
		struct work work = { 0 };

		if (sync_stopping(s)) {
			r = -ECANCELED;	/* the watermark stays */
			break;
		}

		w.n = 0;
		r = api_conversations_page(s->d->http, &cur, walk_item, &w);
		if (!w.n)
			continue;
		/* A page that failed half way: what it listed is still good. */
		add_work_total(s, w.n);
		sync_run_workers(s, &work, fetch_listed, w.ids, w.n);
		nfetch += work.n;
		nfailed += work.nfailed;
		if (work.failed && !failed)
			failed = work.failed;
		if (work.failed && !http_reachable(s->d->http))
			break;	/* the rest would only wait out retries */
	}
	api_cursor_release(&cur);
	if (failed && failed != -ECANCELED)
		log_error_event("sync: %zu of %zu changed conversations could "
				"not be fetched (first error: %s); they are "
				"retried next pass",
				nfailed, nfetch, strerror(-failed));
	r = r ? r : failed;
	/* Move the watermark only when nothing newer is left behind. */
	if (!r && w.newest > w.watermark)
		r = store_meta_set_i64(st, "conv_watermark", w.newest);
	pthread_mutex_lock(&s->lock);
	s->conv_walking = 0;
	pthread_mutex_unlock(&s->lock);
	free(w.ids);
	return r;
}

/* Refetches one cached contact; one the API no longer has is removed. */
static int refresh_contact(struct sync *s, int64_t id)
{
	struct api_contact c;
	int gone, r;

	if (sync_fetched_this_pass(s, id))
		return 0;
	memset(&c, 0, sizeof(c));
	r = sync_fetch_contact_fresh(s, id, &c, &gone);
	api_contact_release(&c);
	if (r || !gone)
		return r;
	return sync_forget_contact(s, id);
}

/*
 * The rotating refresh of cached contacts (see CONTACT_ROTATION), in id
 * order: at least CONTACT_ROTATION a pass, more when the reconcile bound
 * asks for it (sync_reconcile_contact_batch).
 */
static int sync_contacts(struct sync *s)
{
	struct store *st = s->d->store;
	struct work work = { 0 };
	int64_t cursor = store_meta_i64(st, "contact_cursor"), mark = 0;
	size_t want = sync_reconcile_contact_batch(s, CONTACT_ROTATION, &mark);
	int64_t *ids = NULL, *more = NULL;
	size_t n = 0, nmore = 0;
	int r;

	r = store_contact_ids(st, cursor, want, &ids, &n);
	if (!r && n < want && cursor) {
		int64_t *p;

		/* Wrap around, up to where this round started. */
		r = store_contact_ids(st, 0, want - n, &more, &nmore);
		p = r || !nmore ? NULL : realloc(ids, (n + nmore) * sizeof(*p));
		if (!r && nmore && !p)
			r = -ENOMEM;
		if (p)
			ids = p;
		for (size_t i = 0; p && i < nmore && more[i] <= cursor; i++)
			ids[n++] = more[i];
	}
	if (r)
		goto out;
	sync_set_phase(s, "refreshing contacts", 0, (long)n);
	sync_run_workers(s, &work, refresh_contact, ids, n);
	r = work.failed;
	/*
	 * The rotation moves on unless every refresh failed (the API gone):
	 * a contact that always fails must not hold it at the same batch
	 * (every later contact would never be refreshed again). It is tried
	 * again next round, within reconcile.
	 */
	/* Stopped part way: the rest was not checked, so nothing moves. */
	if (work.cancelled) {
		r = -ECANCELED;
	} else if (!n || work.nfailed < n) {
		int rr = n ? store_meta_set_i64(st, "contact_cursor",
						ids[n - 1])
			   : 0;

		if (!rr)
			sync_reconcile_contacts_done(s, mark);
		r = r ? r : rr;
	}
out:
	free(ids);
	free(more);
	return r < 0 ? r : 0;
}

/* One full pass. Steps are independent: a failing one does not stop the
 * others, and the pass reports the first failure. */
/*
 * With the API unreachable (no answer at all, not an error status) every
 * further step would only wait out its retries: the pass stops there and
 * the cache is served as it is.
 */
static int api_gone(struct sync *s, int r)
{
	return r && !http_reachable(s->d->http);
}

/* A new pass claims every contact afresh (see struct sync's fetched). */
static void claims_clear(struct sync *s)
{
	pthread_mutex_lock(&s->lock);
	idset_clear(&s->fetched);
	idset_clear(&s->gone_contacts);
	pthread_mutex_unlock(&s->lock);
}

static int sync_pass(struct sync *s)
{
	int64_t gen = clock_wall_ms();
	int r, first = 0;

	log_context_set("sync");
	claims_clear(s);
	sync_in_pass = 1;
	sync_set_phase(s, "users", 0, 0);
	r = sync_list(s, SO_USER, gen);
	first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	sync_set_phase(s, "contact attributes", 0, 0);
	r = sync_attributes(s);
	/* Plans without these features answer 403/404: not a failure. */
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	sync_set_phase(s, "playbooks", 0, 0);
	r = sync_list(s, SO_PLAYBOOK, gen);
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	sync_set_phase(s, "accounts", 0, 0);
	r = sync_list(s, SO_ACCOUNT, gen);
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	r = sync_conversations(s);
	first = first ? first : r;
	if (api_gone(s, r) || sync_stopping(s))
		goto out;
	r = sync_contacts(s);
	first = first ? first : r;
	if (api_gone(s, r) || sync_stopping(s))
		goto out;
	/* What Drift deleted without a trace in the walk (sync_reconcile.c). */
	r = sync_reconcile(s);
	first = first ? first : r;
out:
	/* Stopped (an unmount, a signal): what was cut short is redone by
	 * the next mount's pass; nothing above recorded it as done. */
	if (sync_stopping(s))
		first = -ECANCELED;
	/* Rows removed: their bytes leave the WAL (store_checkpoint). */
	sync_checkpoint_due(s);
	sync_set_phase(s, "idle", 0, 0);
	sync_in_pass = 0;
	claims_clear(s);
	return first;
}

int sync_run_once(struct sync *s)
{
	int64_t start = clock_wall_ms();
	int r;

	pthread_mutex_lock(&s->pass_lock);
	pthread_mutex_lock(&s->lock);
	s->running = 1;
	s->last_start_ms = start;
	pthread_mutex_unlock(&s->lock);

	if (http_offline(s->d->http))
		r = -ENETDOWN;
	else if (!(r = account_gate(s->d->account)))
		r = sync_pass(s);

	pthread_mutex_lock(&s->lock);
	s->running = 0;
	s->passes++;
	s->last_result = r;
	s->last_end_ms = clock_wall_ms();
	if (!r)
		s->last_ok_ms = s->last_end_ms;
	pthread_mutex_unlock(&s->lock);
	/*
	 * Written after s->lock is let go: a store write waits for SQLite's
	 * write lock, and a refetch of the accounts after a write holds that
	 * lock while it takes s->lock (sync_written_since() in sync_list()).
	 * pass_lock still orders this write before the next pass's.
	 */
	if (!r)
		store_meta_set_i64(s->d->store, "last_sync", s->last_end_ms);
	pthread_mutex_unlock(&s->pass_lock);
	log_debug("sync: pass ended: %s", r ? strerror(-r) : "ok");
	/* The gate (account.h) logs for itself. */
	if (r && r != -ENETDOWN && r != -ECANCELED &&
	    account_verified(s->d->account))
		log_warn("sync pass failed: %s", strerror(-r));
	return r;
}

static void *sync_thread(void *arg)
{
	struct sync *s = arg;

	/* A connection for each thread that may read the cache at once
	 * (FUSE's, the workers, the others), opened now, off the path of
	 * the mount's first answers: its descriptors start where they stay
	 * (store.h, the pool). */
	if (store_pool_reserve(s->d->store,
			       DRIFTFS_FUSE_THREADS + (int)s->d->cfg.conns +
				       DRIFTFS_OTHER_THREADS))
		log_warn("cache: could not open its connections ahead");
	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		unsigned long serving = s->requested;
		long refresh = s->d->cfg.refresh;
		int r;

		pthread_mutex_unlock(&s->lock);
		r = sync_run_once(s);
		/*
		 * A pass frees most of what it allocated (pages of JSON, the
		 * rendered texts, the workers' buffers), in pieces among
		 * what stays, where glibc keeps them: the pages wholly free
		 * go back to the system here, or a mount's RSS creeps up
		 * pass after pass by memory it does not use (make soak).
		 * No lock is held; it takes only glibc's own.
		 */
		malloc_trim(0);
		pthread_mutex_lock(&s->lock);
		(void)r;
		s->done_upto = serving;
		pthread_cond_broadcast(&s->cond);
		/* Sleep until the next pass is due or someone asks. */
		s->next_ms = refresh > 0 ? clock_mono_ms() + refresh * 1000 : 0;
		s->next_wall_ms = refresh > 0 ? clock_wall_ms() + refresh * 1000 : 0;
		while (!s->stop && s->requested == serving) {
			struct timespec ts;
			int64_t due = s->next_ms;

			if (!due) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			if (clock_mono_ms() >= due)
				break;
			ts.tv_sec = due / 1000;
			ts.tv_nsec = (due % 1000) * 1000000;
			pthread_cond_timedwait(&s->cond, &s->lock, &ts);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int sync_start(struct sync *s)
{
	int r;

	/* The first pass is implicitly requested: the cache may be empty. */
	s->requested = 1;
	r = pthread_create(&s->thread, NULL, sync_thread, s);
	if (r)
		return -r;
	s->thread_started = 1;
	return 0;
}

int sync_stopping(struct sync *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_ACQUIRE);
}

void sync_stop(struct sync *s)
{
	if (!s->thread_started)
		return;
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->thread_started = 0;
}

int sync_request(struct sync *s, long timeout_ms)
{
	int64_t deadline = clock_mono_ms() + timeout_ms;
	unsigned long mine;
	int r = 0;

	if (!s->thread_started)
		return sync_run_once(s);
	pthread_mutex_lock(&s->lock);
	mine = ++s->requested;
	pthread_cond_broadcast(&s->cond);
	while (s->done_upto < mine && !s->stop) {
		struct timespec ts;

		if (clock_mono_ms() >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	if (!r)
		r = s->last_result;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int add_time(struct buf *out, const char *key, int64_t ms)
{
	int r = buf_printf(out, "%s: ", key);

	if (!ms)
		return r ? r : buf_adds(out, "never\n");
	r = r ? r : render_time(ms, out);
	return r ? r : buf_addc(out, '\n');
}

/* "1h 02m", "3m 05s" or "12s". */
static int add_duration(struct buf *out, int64_t sec)
{
	if (sec >= 3600)
		return buf_printf(out, "%lldh %02lldm", (long long)(sec / 3600),
				  (long long)(sec / 60 % 60));
	if (sec >= 60)
		return buf_printf(out, "%lldm %02llds", (long long)(sec / 60),
				  (long long)(sec % 60));
	return buf_printf(out, "%llds", (long long)sec);
}

/*
 * While the conversation step runs: how many conversations the cache holds
 * against the account's total, and the time left at the rate this pass
 * has stored new ones so far ("estimating" until a second has passed with
 * one stored). The caller holds s->lock.
 */
static int add_conv_progress(struct sync *s, struct buf *out)
{
	int64_t stored = s->conv_stored, total = s->conv_total, left;
	int64_t el = clock_mono_ms() - s->conv_since_ms;
	double rate;
	int r;

	if (total < 0)
		return buf_printf(out, "conversations_synced: %lld\n",
				  (long long)stored);
	if (stored > total)
		stored = total;	/* new since the stats, or counted twice */
	r = buf_printf(out, "conversations_synced: %lld/%lld\n", (long long)stored,
		       (long long)total);
	left = total - stored;
	if (r || !left)
		return r;
	if (s->conv_new < 1 || el < 1000)
		return buf_adds(out, "time_left: estimating\n");
	rate = (double)s->conv_new * 1000.0 / (double)el;
	r = buf_adds(out, "time_left: ");
	r = r ? r : add_duration(out, (int64_t)((double)left / rate + 0.5));
	return r ? r : buf_printf(out, " (at %.1f conversations/s)\n", rate);
}

int sync_status_render(struct sync *s, struct buf *out)
{
	int64_t last_ok;
	int r;

	pthread_mutex_lock(&s->lock);
	last_ok = s->last_ok_ms;
	if (!last_ok)
		last_ok = store_meta_i64(s->d->store, "last_sync");
	r = add_time(out, "last_sync", last_ok);
	r = r ? r : add_time(out, "last_attempt", s->last_end_ms);
	r = r ? r : buf_printf(out, "last_result: %s\n",
			       !s->passes ? "none yet"
			       : s->last_result ? strerror(-s->last_result)
						: "ok");
	r = r ? r : buf_printf(out, "sync_passes: %lu\n", s->passes);
	r = r ? r : sync_reconcile_status(s, out);
	if (!r && s->running)
		r = buf_printf(out, "syncing: yes (%s, %ld/%ld)\n", s->phase,
			       s->work_done, s->work_total);
	else if (!r)
		r = buf_adds(out, "syncing: no\n");
	if (!r && s->running && s->conv_walking)
		r = add_conv_progress(s, out);
	/* An absolute time: the file must not change while nothing happens
	 * (a second rsync of the mount copies nothing). */
	if (!r && s->next_ms && !s->running)
		r = add_time(out, "next_sync", s->next_wall_ms);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int64_t sync_last_event(struct sync *s)
{
	int64_t t;

	pthread_mutex_lock(&s->lock);
	t = s->last_end_ms > s->last_start_ms ? s->last_end_ms : s->last_start_ms;
	pthread_mutex_unlock(&s->lock);
	return t;
}
