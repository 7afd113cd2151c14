// SPDX-License-Identifier: MIT
/*
 * sync_fetch.c: the on-demand fetchers (contact, conversation, user, by
 * email, by external id) that a lookup of an uncached object (FUSE), a
 * write's refetch (commit) or ctl runs on its own thread, the removal of a
 * contact or a conversation the API answered 404 for (and the WAL
 * checkpoint that follows a removal), and the one-minute memory of
 * misses; and the pass's check of a removed contact's conversations
 * (sync_recheck_pending). Not the pass itself (sync.c).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "api.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "search.h"
#include "store.h"
#include "sync_int.h"

#define MISS_TTL_MS 60000

static uint64_t miss_key(int what, int64_t id, const char *key)
{
	uint64_t h = names_hash64(&id, sizeof(id), (uint64_t)what);

	return key ? names_hash64(key, strlen(key), h) : h;
}

static int missed_recently(struct sync *s, uint64_t key)
{
	struct miss *m = &s->misses[key % MISS_SLOTS];
	int hit;

	pthread_mutex_lock(&s->lock);
	hit = m->key == key && m->until_ms > clock_mono_ms();
	pthread_mutex_unlock(&s->lock);
	return hit;
}

static void remember_miss(struct sync *s, uint64_t key)
{
	struct miss *m = &s->misses[key % MISS_SLOTS];

	pthread_mutex_lock(&s->lock);
	m->key = key;
	m->until_ms = clock_mono_ms() + MISS_TTL_MS;
	pthread_mutex_unlock(&s->lock);
}

void sync_deleted_note(struct sync *s, size_t n)
{
	pthread_mutex_lock(&s->lock);
	s->deleted += n;
	pthread_mutex_unlock(&s->lock);
}

/*
 * The checkpoint after removals; purge: first merge the search index's
 * segments that text left (store_search_purge: the whole index of a
 * table, under the write lock), or all of them, a step at a time, once
 * the index has doubled; which only the end of a pass does, once a pass,
 * on the sync's thread.
 */
static void checkpoint(struct sync *s, int purge)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = s->deleted;
	s->deleted = 0;
	pthread_mutex_unlock(&s->lock);
	/* Text that left the search index leaves its pages (search.h). */
	if (purge && store_search_purge(s->d->store) > 0)
		n++;
	/* Kept short by a reader: tried again after the next deletion or
	 * pass. */
	if (n && store_checkpoint(s->d->store))
		sync_deleted_note(s, n);
}

void sync_checkpoint_due(struct sync *s)
{
	checkpoint(s, 1);
}

/* Outside a pass, an on-demand removal checkpoints now (on the caller's
 * thread, a FUSE one: the rows' bytes, not the index's merge, which
 * waits for the next pass's end); a pass under way does it at its end. */
static void checkpoint_unless_pass(struct sync *s)
{
	int running;

	pthread_mutex_lock(&s->lock);
	running = s->running;
	pthread_mutex_unlock(&s->lock);
	if (!running)
		checkpoint(s, 0);
}

int sync_forget_conversation(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	struct store_row old;
	char status[sizeof(ch.v[0].old_status)] = "";
	int64_t contact = 0;
	int found = 0, r;

	/*
	 * Before the transaction: a fetch of it that got its answers before
	 * Drift deleted it, and stores after this commit, finds the write
	 * noted (sync_written_since in its transaction) and stores nothing.
	 */
	sync_note_write(s, SO_CONVERSATION, id);
	r = store_begin(st);
	if (r)
		return r;
	/* Read in the transaction: what the change reports is what went. */
	if (!store_one(st, Q_CONV, id, NULL, &old)) {
		contact = old.id2;
		snprintf(status, sizeof(status), "%s", old.text ? old.text : "");
		r = store_forget_conversation(st, id, &found);
	}
	if (r) {
		store_rollback(st);
		return r;
	}
	r = store_commit(st);	/* unlinks its attachments' files */
	if (r || !found)
		return r;
	log_info("conversation %lld: gone from Drift; removed from the cache",
		 (long long)id);
	r = sync_changes_add(&ch, SO_CONVERSATION, id, NULL);
	if (!r) {
		ch.v[0].old_contact = contact;
		ch.v[0].gone = 1;
		snprintf(ch.v[0].old_status, sizeof(ch.v[0].old_status), "%s",
			 status);
	}
	sync_changes_add(&ch, SO_LISTS, 0, NULL);
	store_meta_set_i64(st, "changed_at", clock_wall_ms());
	sync_changes_flush(s, &ch);
	sync_changes_release(&ch);
	return 0;
}

/*
 * The conversations of a removed contact are checked by a pass, not by
 * the thread that removed it (a close() holding send_lock, a FUSE
 * lookup): in the removal's transaction, their ids are added to the meta
 * value RECHECK_PREFIX<contact> (decimal, comma-separated), which
 * sync_recheck_pending() works off and deletes. A crash in between leaves
 * it for the next pass.
 */
#define RECHECK_PREFIX "recheck_contact:"
/* Set once every link to a contact without a row was checked. */
#define DANGLING_KEY "dangling_links_checked"

static void recheck_key(char *key, size_t size, int64_t contact)
{
	snprintf(key, size, RECHECK_PREFIX "%lld", (long long)contact);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* The ids of a note (decimal, comma-separated; junk skipped), sorted
 * and unique, into *v (malloc'd, the caller's). */
static int ids_parse(const struct buf *val, int64_t **v, size_t *n)
{
	const char *p = val->data, *end = p ? p + val->len : NULL;
	size_t alloc = 0, k = 0;

	*v = NULL;
	*n = 0;
	while (p && p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t len = (size_t)((comma ? comma : end) - p);
		char tok[24], *e;
		long long id;

		if (len && len < sizeof(tok)) {
			memcpy(tok, p, len);
			tok[len] = 0;
			id = strtoll(tok, &e, 10);
			if (!*e && id > 0) {
				if (*n == alloc) {
					size_t na = alloc ? alloc * 2 : 16;
					int64_t *q = realloc(*v,
							     na * sizeof(*q));

					if (!q) {
						free(*v);
						*v = NULL;
						*n = 0;
						return -ENOMEM;
					}
					*v = q;
					alloc = na;
				}
				(*v)[(*n)++] = id;
			}
		}
		p = comma ? comma + 1 : NULL;
	}
	if (*n)
		qsort(*v, *n, sizeof(**v), cmp_i64);
	for (size_t i = 0; i < *n; i++)
		if (!k || (*v)[k - 1] != (*v)[i])
			(*v)[k++] = (*v)[i];
	*n = k;
	return 0;
}

/* How many distinct ids sorted v[0..n) holds. */
static size_t unique_count(const int64_t *v, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		k += !i || v[i] != v[i - 1];
	return k;
}

/*
 * A note's change marker: a token "r<N>" first, which ids_parse skips as
 * junk, moved on by each removal that writes the note. recheck_contact
 * deletes the note only if it is byte for byte what it checked; with
 * its ids unique, a second removal that brings only ids already noted
 * (the contact came back, its conversations were linked again, and it
 * went again while they were being checked) would leave the bytes alone
 * without it, and its checks would be lost.
 */
#define RECHECK_MARK 'r'

/* The marker of a note (0 without one: none yet, or an older version's). */
static long long recheck_mark(const struct buf *val)
{
	char tok[24];
	size_t len = 0;

	while (len < val->len && len < sizeof(tok) - 1 &&
	       val->data[len] != ',') {
		tok[len] = val->data[len];
		len++;
	}
	tok[len] = 0;
	if (len < 2 || tok[0] != RECHECK_MARK)
		return 0;
	return strtoll(tok + 1, NULL, 10);
}

/*
 * The note holds each id once (sorted), however often the contact is
 * removed with the same conversations linked again in between (a 404
 * fault, a contact that came back), or a conversation is refetched while
 * the contact is known gone, so it does not grow without bound.
 */
int sync_recheck_note(struct store *st, int64_t contact, const int64_t *convs,
		      size_t n, int removal)
{
	struct buf val = BUF_INIT, out = BUF_INIT;
	int64_t *ids = NULL, *all = NULL;
	size_t nids = 0, k = 0;
	long long mark;
	char key[64];
	int r;

	if (!n)
		return 0;
	recheck_key(key, sizeof(key), contact);
	r = store_meta_get(st, key, &val);
	if (r == -ENOENT)
		r = 0;
	r = r ? r : ids_parse(&val, &ids, &nids);
	if (r)
		goto out;
	mark = recheck_mark(&val);
	all = n < SIZE_MAX / sizeof(*all) &&
		      nids < SIZE_MAX / sizeof(*all) - n
		      ? malloc((nids + n) * sizeof(*all))
		      : NULL;
	if (!all) {
		r = -ENOMEM;
		goto out;
	}
	if (nids)
		memcpy(all, ids, nids * sizeof(*all));
	for (size_t i = 0; i < n; i++)
		if (convs[i] > 0)
			all[nids + k++] = convs[i];
	k += nids;
	if (k)
		qsort(all, k, sizeof(*all), cmp_i64);
	if (!removal && unique_count(all, k) == nids)
		goto out;	/* nothing new: the note stays as it is */
	r = buf_printf(&out, "%c%lld", RECHECK_MARK,
		       mark < 0 || mark == LLONG_MAX ? 1 : mark + 1);
	for (size_t i = 0; i < k && !r; i++)
		if (!i || all[i] != all[i - 1])
			r = buf_printf(&out, ",%lld", (long long)all[i]);
	r = r ? r : store_meta_set(st, key, out.data, out.len);
out:
	free(ids);
	free(all);
	buf_release(&val);
	buf_release(&out);
	return r;
}

int sync_forget_contact(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	struct store_row row;
	int64_t *convs = NULL;
	size_t n = 0;
	int had, r;

	/* A fetch of it in flight stores nothing (see above); and the
	 * checks of its conversations store no link to it, also where a
	 * claim got it before it went (the gone set, sync_conversation.c). */
	sync_note_write(s, SO_CONTACT, id);
	sync_note_contact_gone(s, id);
	/* One transaction: what is reported is what went, a second thread
	 * removing it finds nothing, and a crash leaves all or nothing. */
	r = store_begin(st);
	if (r)
		return r;
	had = !store_one(st, Q_CONTACT, id, NULL, &row);
	r = store_contact_conversation_ids(st, id, &convs, &n);
	r = r ? r : store_delete_contact(st, id);
	/* An erasure (GDPR) takes the contact's conversations too: the
	 * next pass fetches each again, and those that 404 go. */
	r = r ? r : sync_recheck_note(st, id, convs, n, 1);
	if (r) {
		store_rollback(st);
		goto out;
	}
	r = store_commit(st);
	if (r || (!had && !n))
		goto out;
	if (had) {
		log_info("contact %lld: gone from Drift; removed from the "
			 "cache", (long long)id);
		sync_changes_add(&ch, SO_CONTACT, id, NULL);
		if (ch.n)
			ch.v[0].gone = 1;
	}
	/* Their links to it went (store_delete_contact). */
	for (size_t i = 0; i < n; i++)
		if (!sync_changes_add(&ch, SO_CONVERSATION, convs[i], NULL))
			ch.v[ch.n - 1].old_contact = id;
	sync_changes_add(&ch, SO_LISTS, 0, NULL);
	store_meta_set_i64(st, "changed_at", clock_wall_ms());
	sync_changes_flush(s, &ch);
	if (had)
		checkpoint_unless_pass(s);
out:
	free(convs);
	sync_changes_release(&ch);
	return r;
}

/* One noted conversation, on a worker of the pass: a 404 removes it
 * (sync_conversation), an answer refreshes it without the link. */
static int recheck_one(struct sync *s, int64_t id)
{
	struct store_row row;
	int r = 0;

	/* Gone from the cache meanwhile: nothing to check. */
	if (!store_one(s->d->store, Q_CONV, id, NULL, &row))
		r = sync_conversation(s, id);
	sync_add_work_done(s);
	return r == -ENOENT ? 0 : r;
}

/*
 * Works off contact's note: its conversations fetched again, then the
 * note deleted, unless another removal added to it meanwhile (then it
 * stays, and the next pass checks it again).
 */
static int recheck_contact(struct sync *s, int64_t contact)
{
	struct store *st = s->d->store;
	struct buf val = BUF_INIT, now = BUF_INIT;
	struct work work = { 0 };
	struct store_row row;
	int64_t *convs = NULL;
	size_t n = 0;
	char key[64];
	int r;

	recheck_key(key, sizeof(key), contact);
	r = store_meta_get(st, key, &val);
	if (r == -ENOENT)
		return 0;
	r = r ? r : ids_parse(&val, &convs, &n);
	if (r)
		goto out;
	/* This pass's checks store no link to it, even where a claim of the
	 * pass fetched it before it went. */
	if (store_one(st, Q_CONTACT, contact, NULL, &row) == -ENOENT)
		sync_note_contact_gone(s, contact);
	sync_set_phase(s, "checking a removed contact's conversations", 0,
		       (long)n);
	sync_run_workers(s, &work, recheck_one, convs, n);
	r = work.failed;
	if (r) {
		log_warn("contact %lld removed: %zu of its conversations not "
			 "checked (%s); the next pass does", (long long)contact,
			 work.nfailed, strerror(-r));
		goto out;
	}
	r = store_begin(st);
	if (r)
		goto out;
	r = store_meta_get(st, key, &now);
	if (r == -ENOENT)
		r = 0;
	else if (!r && now.len == val.len &&
		 !memcmp(now.data, val.data, val.len))
		r = store_meta_delete(st, key);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
out:
	free(convs);
	buf_release(&val);
	buf_release(&now);
	return r;
}

/* A contact a cached conversation links to without a row: fetched; a
 * 404 removes the links (sync_forget_contact), an answer stores it, a
 * fetch a write overtook is made again (sync_fetch_contact_fresh), not
 * left to make the whole check run again next pass. */
static int check_dangling(struct sync *s, int64_t id)
{
	struct api_contact c;
	int gone, r;

	memset(&c, 0, sizeof(c));
	r = sync_fetch_contact_fresh(s, id, &c, &gone);
	api_contact_release(&c);
	sync_add_work_done(s);
	if (!r && gone)
		return sync_forget_contact(s, id);
	return r;
}

/* Once per cache: an older version kept the link to a contact the API
 * answered 404 for, and nothing would fetch it again. */
static int dangling_once(struct sync *s)
{
	struct store *st = s->d->store;
	struct work work = { 0 };
	int64_t *ids = NULL;
	size_t n = 0;
	int r;

	if (store_meta_i64(st, DANGLING_KEY))
		return 0;
	r = store_dangling_contacts(st, &ids, &n);
	if (r)
		return r;
	if (n) {
		sync_set_phase(s, "checking links to uncached contacts", 0,
			       (long)n);
		sync_run_workers(s, &work, check_dangling, ids, n);
		r = work.failed;
	}
	free(ids);
	return r ? r : store_meta_set_i64(st, DANGLING_KEY, 1);
}

int sync_recheck_pending(struct sync *s)
{
	int64_t *contacts = NULL;
	size_t n = 0;
	int r = dangling_once(s), r2;

	/* After it: the links it removed noted their conversations. */
	r2 = store_meta_ids(s->d->store, RECHECK_PREFIX, &contacts, &n);
	r = r ? r : r2;
	for (size_t i = 0; i < n; i++) {
		r2 = recheck_contact(s, contacts[i]);
		r = r ? r : r2;
		if (r2 && !http_reachable(s->d->http))
			break;	/* nothing more gets an answer */
	}
	free(contacts);
	return r;
}

int sync_fetch_contact(struct sync *s, int64_t id)
{
	uint64_t key = miss_key(SO_CONTACT, id, NULL);
	struct api_contact c;
	int gone, r;

	if (missed_recently(s, key))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	memset(&c, 0, sizeof(c));
	r = sync_fetch_contact_fresh(s, id, &c, &gone);
	api_contact_release(&c);
	if (!r && gone) {
		remember_miss(s, key);
		/* Gone from Drift: it goes from the cache too, with the links
		 * to it, cached or not. */
		sync_forget_contact(s, id);
		r = -ENOENT;
	}
	return r;
}

int sync_fetch_conversation(struct sync *s, int64_t id)
{
	uint64_t key = miss_key(SO_CONVERSATION, id, NULL);
	int r;

	if (missed_recently(s, key))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	/* A 404 for a cached one removes it (sync_conversation). */
	r = sync_conversation(s, id);
	if (r == -ENOENT) {
		remember_miss(s, key);
		checkpoint_unless_pass(s);
	}
	return r;
}

/*
 * A user the API answered 404 for leaves the cache at once (the users
 * list's prune would take it at the next pass): its row and by-email
 * link, and its name in transcripts, which the next pass renders again
 * as "User <id>" (noted in the same transaction).
 */
static void forget_user(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	int found = 0, r;

	/* A users list in flight does not store it again (sync_list keeps
	 * a written user's row, and there is none now). */
	sync_note_write(s, SO_USER, id);
	if (store_begin(st))
		return;
	r = store_delete_user(st, id, &found);
	if (!r && found)
		r = sync_rerender_note_users(s, &id, 1);
	if (r || !found) {
		store_rollback(st);
		return;
	}
	if (store_commit(st))
		return;
	log_info("user %lld: gone from Drift; removed from the cache",
		 (long long)id);
	sync_changes_add(&ch, SO_PRUNED, SO_USER, NULL);
	sync_changes_add(&ch, SO_LISTS, 0, NULL);
	store_meta_set_i64(st, "changed_at", clock_wall_ms());
	sync_changes_flush(s, &ch);
	sync_changes_release(&ch);
	checkpoint_unless_pass(s);
}

/*
 * Stores user u, fetched after g was taken and within t's window, in a
 * transaction of its own with generation gen, and reports it; -EAGAIN
 * (nothing stored) when a write to it was accepted since g, or another
 * fetch of it stored it within t's window (sync_fetch_overtaken; checked
 * in the transaction: a write noted later has its refetch commit after
 * ours, a fetch that stores later finds ours).
 *
 * A rename is noted in the same transaction (a rename made through the
 * mount is stored here, so the next users list sees no change), and the
 * next pass renders its transcripts again (sync_list ends with
 * sync_rerender_pending). Not rendered here: the caller may be a close()
 * waiting on send_lock, and one user can be in most conversations.
 */
static int save_user(struct sync *s, const struct api_user *u, int64_t gen,
		     const struct gens *g, struct fetch_ticket *t)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	int changed = 0, renamed, r;

	renamed = sync_user_naming_changed(s, u);
	r = store_begin(st);
	if (r)
		return r;
	/* The fetch check last: when it passes, it records our store. */
	if (sync_written_since(s, g, SO_USER, u->id) ||
	    sync_fetch_overtaken(s, t, u->id)) {
		store_rollback(st);
		return -EAGAIN;
	}
	r = store_put_user(st, u, gen, &changed);
	if (!r && renamed)
		r = sync_rerender_note_users(s, &u->id, 1);
	if (r) {
		store_rollback(st);
		return r;
	}
	r = store_commit(st);
	if (!r && changed) {
		sync_changes_add(&ch, SO_USER, u->id, NULL);
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		sync_changes_flush(s, &ch);
	}
	sync_changes_release(&ch);
	return r;
}

int sync_user_fresh(struct sync *s, int64_t id, int64_t gen)
{
	uint64_t key = miss_key(SO_USER, id, NULL);
	struct fetch_ticket t;
	int r;

	if (missed_recently(s, key))
		return -ENOENT;
	r = sync_fetch_begin(s, SO_USER, id, &t);
	r = r ? r : -EAGAIN;
	for (int i = 0; i < WRITTEN_TRIES && r == -EAGAIN; i++) {
		struct api_user u;
		struct gens g;

		sync_gens_take(s, &g);
		sync_fetch_window(s, &t);
		r = api_user_get(s->d->http, id, &u);
		if (r == -ENOENT) {
			remember_miss(s, key);
			forget_user(s, id);
		}
		if (r)
			break;
		r = save_user(s, &u, gen, &g, &t);
		api_user_release(&u);
	}
	sync_fetch_end(s, &t);
	if (r == -EAGAIN)
		log_warn("user %lld: written to or stored by another fetch "
			 "during each of %d fetches; fetched again next pass",
			 (long long)id, WRITTEN_TRIES);
	return r;
}

int sync_fetch_user(struct sync *s, int64_t id)
{
	if (missed_recently(s, miss_key(SO_USER, id, NULL)))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	return sync_user_fresh(s, id,
			       store_meta_i64(s->d->store, "last_sync"));
}

/* Context of a lookup by email or external id. */
struct lookup {
	struct sync *s;
	struct gens g;		/* taken before the request */
	struct fetch_ticket t;	/* begun before it: any contact (id 0) */
	int found;
	int err;
};

/*
 * A match, stored unless a write to it or its removal (a 404 on another
 * thread), or another fetch's store of it, came after the lookup's
 * request began (sync_save_contact's -EAGAIN): stored anyway, the
 * lookup's copy would undo the removal, or the writer's (or the other
 * fetch's) fresher copy. The writer's refetch stores it; it still counts
 * as found.
 */
static int lookup_found(void *ctx, const struct api_contact *c)
{
	struct lookup *l = ctx;
	int r = sync_save_contact(l->s, c, &l->g, &l->t);

	if (r == -EAGAIN) {
		/* The write may have been to another contact of the same
		 * write slot, which refetches only its own: this one is
		 * fetched again, or a lookup of a contact the API has would
		 * answer ENOENT. A 404 now is a removal that won the race. */
		struct api_contact again;
		int gone;

		memset(&again, 0, sizeof(again));
		r = sync_fetch_contact_fresh(l->s, c->id, &again, &gone);
		api_contact_release(&again);
		if (!r && gone)
			return 0;
		if (r == -EAGAIN)
			r = 0;	/* overtaken each time: its writer's refetch */
	}
	if (r)
		l->err = r;
	else
		l->found++;
	return 0;
}

static int lookup_by(struct sync *s, int what, const char *key)
{
	uint64_t mk = miss_key(what, 0, key);
	struct lookup l = { .s = s };
	int r;

	if (missed_recently(s, mk))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	r = sync_fetch_begin(s, SO_CONTACT, 0, &l.t);
	if (r)
		return r;
	sync_gens_take(s, &l.g);
	if (what == 1)
		r = api_contacts_by_email(s->d->http, key, lookup_found, &l);
	else
		r = api_contacts_by_external_id(s->d->http, key, lookup_found,
						&l);
	sync_fetch_end(s, &l.t);
	r = r ? r : l.err;
	if (!r && !l.found) {
		remember_miss(s, mk);
		r = -ENOENT;
	}
	return r;
}

int sync_lookup_email(struct sync *s, const char *email)
{
	return lookup_by(s, 1, email);
}

int sync_lookup_external_id(struct sync *s, const char *ext)
{
	return lookup_by(s, 2, ext);
}
