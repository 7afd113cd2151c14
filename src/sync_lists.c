// SPDX-License-Identifier: MIT
/*
 * sync_lists.c: the pass's whole-list steps: users, playbooks and accounts
 * fetched whole, stored in one short transaction and pruned of what
 * disappeared; the contact attribute definitions; and the accounts refresh
 * after an edit. Not the conversations (sync_conversation.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "store.h"
#include "sync_int.h"

/*
 * Users, playbooks and accounts: full lists, pruned of what disappeared.
 * The list is fetched whole first and stored in one short transaction
 * afterwards: the write lock is never held across a request (its deadline,
 * its retries and their Retry-After pauses), which would make every other
 * writer (a lookup of an uncached object, the refetch after a write) time
 * out. LIST_MAX bounds what a list may hold in memory meanwhile.
 */
#define LIST_MAX ((size_t)64 << 20)

struct list_ctx {
	enum sync_object what;
	struct api_user *users;		/* SO_USER */
	struct api_object *objs;	/* SO_PLAYBOOK, SO_ACCOUNT */
	size_t n, alloc;
	size_t bytes;			/* held so far, against LIST_MAX */
};

static void list_ctx_release(struct list_ctx *l)
{
	for (size_t i = 0; i < l->n; i++) {
		if (l->users)
			api_user_release(&l->users[i]);
		else
			api_object_release(&l->objs[i]);
	}
	free(l->users);
	free(l->objs);
	memset(l, 0, sizeof(*l));
}

static int dup_str(char **dst, const char *src)
{
	*dst = buf_strdup_or_null(src);
	return src && !*dst ? -ENOMEM : 0;
}

static int dup_buf(struct buf *dst, const struct buf *src)
{
	*dst = (struct buf)BUF_INIT;
	return src->len ? buf_add(dst, src->data, src->len) : 0;
}

/* Makes room for one more row and counts its bytes against LIST_MAX. */
static int list_grow(struct list_ctx *l, size_t bytes)
{
	size_t esz = l->what == SO_USER ? sizeof(*l->users) : sizeof(*l->objs);
	void **v = l->what == SO_USER ? (void **)&l->users : (void **)&l->objs;

	l->bytes += bytes + esz;
	if (l->bytes > LIST_MAX) {
		log_error_event("sync: the %s list passes %zu bytes; not stored",
				l->what == SO_USER ? "users"
				: l->what == SO_PLAYBOOK ? "playbooks"
							 : "accounts",
				LIST_MAX);
		return -EFBIG;
	}
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 64;
		void *p = realloc(*v, na * esz);

		if (!p)
			return -ENOMEM;
		*v = p;
		l->alloc = na;
	}
	return 0;
}

static int take_user(void *ctx, const struct api_user *u)
{
	struct list_ctx *l = ctx;
	struct api_user *c;
	int r = list_grow(l, u->json.len);

	if (r)
		return r;
	c = &l->users[l->n];
	memset(c, 0, sizeof(*c));
	c->id = u->id;
	c->mtime = u->mtime;
	c->bot = u->bot;
	c->org = u->org;
	l->n++;		/* counted now: released with the rest on failure */
	r = dup_str(&c->email, u->email);
	r = r ? r : dup_str(&c->name, u->name);
	return r ? r : dup_buf(&c->json, &u->json);
}

static int take_object(void *ctx, const struct api_object *o)
{
	struct list_ctx *l = ctx;
	struct api_object *c;
	int r = list_grow(l, o->json.len);

	if (r)
		return r;
	c = &l->objs[l->n];
	memset(c, 0, sizeof(*c));
	c->id = o->id;
	c->mtime = o->mtime;
	l->n++;
	r = dup_str(&c->key, o->key);
	return r ? r : dup_buf(&c->json, &o->json);
}

/*
 * Refuses a users list naming another org than the cache's (defence in
 * depth: the org gate, account.h, keeps such a pass from starting).
 */
static int foreign_users(struct sync *s, const struct list_ctx *l)
{
	int64_t mine = store_meta_i64(s->d->store, "org_id"), org = 0;

	for (size_t i = 0; mine > 0 && i < l->n && org <= 0; i++) {
		org = l->users[i].org;
		if (org == mine)
			org = 0;
	}
	if (org <= 0)
		return 0;
	log_error_event("GET /users/list named Drift org %lld, and this cache "
			"is org %lld's: the list is not stored",
			(long long)org, (long long)mine);
	return -EACCES;
}

/* Whether an accounts refresh began after g was taken. */
static int accounts_refreshed_since(struct sync *s, const struct gens *g)
{
	int w;

	pthread_mutex_lock(&s->lock);
	w = s->accounts_refreshes != g->accounts_refreshes;
	pthread_mutex_unlock(&s->lock);
	return w;
}

/*
 * Stores a fetched list; the caller holds the transaction. The users whose
 * naming in transcripts changes are noted in it (sync_rerender_note_users)
 * for sync_rerender_pending() after the commit, as are those the prune
 * deletes (note_pruned_users). The users left alone because a write
 * overtook the list go to again[0..*nagain) (l->n slots, the caller's),
 * for sync_list to fetch again after the commit.
 */
static int store_list(struct sync *s, const struct list_ctx *l, int64_t gen,
		      const struct gens *g, struct fetch_ticket *t,
		      struct changes *ch, int64_t *again, size_t *nagain)
{
	int64_t *renamed = NULL;
	size_t nrenamed = 0;
	int r = 0;

	*nagain = 0;
	if (l->what == SO_USER && l->n) {
		renamed = calloc(l->n, sizeof(*renamed));
		if (!renamed)
			return -ENOMEM;
	}

	for (size_t i = 0; i < l->n && !r; i++) {
		int changed = 0;

		if (l->what == SO_USER) {
			const struct api_user *u = &l->users[i];

			/* Written while we fetched (or a user of the same
			 * write slot was): our copy may be older than the
			 * writer's, or newer (Drift changed it after the
			 * writer's refetch asked), so it is fetched again
			 * after the commit (sync_user_fresh). It is still
			 * listed: tagged as seen, or the prune would delete
			 * what the writer stored. The same when another
			 * fetch of the user (a write's refetch) stored it
			 * while the list was asked for: which answer is the
			 * newer cannot be told, so it is asked again. Else
			 * our store is recorded for the fetches in flight
			 * (sync_fetch_overtaken). */
			if (sync_written_since(s, g, SO_USER, u->id) ||
			    sync_fetch_overtaken(s, t, u->id)) {
				r = store_keep_user(s->d->store, u->id, gen);
				again[(*nagain)++] = u->id;
				continue;
			}
			if (sync_user_naming_changed(s, u))
				renamed[nrenamed++] = u->id;
			r = store_put_user(s->d->store, u, gen, &changed);
			if (!r && changed)
				r = sync_changes_add(ch, SO_USER, u->id, NULL);
		} else {
			const struct api_object *o = &l->objs[i];

			if (l->what == SO_PLAYBOOK)
				r = store_put_playbook(s->d->store, o, gen,
						       &changed);
			else
				r = store_put_account(s->d->store, o, gen,
						      &changed);
			if (!r && changed)
				r = sync_changes_add(ch, l->what, o->id,
						     o->key);
		}
	}
	r = r ? r : sync_rerender_note_users(s, renamed, nrenamed);
	free(renamed);
	return r;
}

/*
 * Fetches again, one by one, the users a write overtook in the list
 * (store_list), each stored unless a write overtakes it too (then again,
 * up to WRITTEN_TRIES); one the API no longer has is removed. The pass's
 * thread, after the list's commit, no transaction held. Returns the
 * first failure; the others are still tried (the next pass's list
 * brings what they missed).
 */
static int refetch_users(struct sync *s, const int64_t *ids, size_t n,
			 int64_t gen)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int r = sync_user_fresh(s, ids[i], gen);

		if (r && r != -ENOENT && !first)
			first = r;
		if (r && !http_reachable(s->d->http))
			break;	/* nothing more gets an answer */
	}
	return first;
}

/*
 * The users the prune is about to delete: their messages are shown as
 * "User <id>" from now on, so their transcripts are rendered again too
 * (sync_rerender_pending). In the list's transaction.
 */
static int note_pruned_users(struct sync *s, int64_t gen)
{
	int64_t *ids = NULL;
	size_t n = 0;
	int r = store_users_unseen(s->d->store, gen, &ids, &n);

	r = r ? r : sync_rerender_note_users(s, ids, n);
	free(ids);
	return r;
}

int sync_list(struct sync *s, enum sync_object what, int64_t gen)
{
	static const enum store_table table[] = {
		[SO_USER] = ST_USERS,
		[SO_PLAYBOOK] = ST_PLAYBOOKS,
		[SO_ACCOUNT] = ST_ACCOUNTS,
	};
	struct changes ch = { 0 };
	struct list_ctx l = { .what = what };
	struct gens g;
	struct fetch_ticket t = { 0 };
	int64_t *again = NULL;
	size_t nagain = 0;
	int deleted = 0, r;

	sync_gens_take(s, &g);
	/* The users a fetch of one user stores while the list is asked
	 * for (a lookup's ticket: the ids are not known yet). */
	if (what == SO_USER) {
		r = sync_fetch_begin(s, SO_USER, 0, &t);
		if (r)
			goto out;
	}
	if (what == SO_USER)
		r = api_users_list(s->d->http, take_user, &l);
	else if (what == SO_PLAYBOOK)
		r = api_playbooks(s->d->http, take_object, &l);
	else
		r = api_accounts(s->d->http, take_object, &l);
	if (!r && what == SO_USER)
		r = foreign_users(s, &l);
	if (r)
		goto out;
	if (what == SO_USER && l.n) {
		again = calloc(l.n, sizeof(*again));
		if (!again) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = store_begin(s->d->store);
	if (r)
		goto out;
	/*
	 * An account edit's refresh began while we fetched: its list was
	 * fetched after the edit, ours perhaps before, so ours would undo
	 * the edit, and its prune delete rows only the refresh saw. The
	 * refresh stores its own list. Checked inside the transaction, so a
	 * refresh that begins later stores after our commit.
	 */
	if (what == SO_ACCOUNT && accounts_refreshed_since(s, &g)) {
		store_rollback(s->d->store);
		goto out;
	}
	r = store_list(s, &l, gen, &g, &t, &ch, again, &nagain);
	if (!r && what == SO_USER)
		r = note_pruned_users(s, gen);
	r = r ? r : store_prune(s->d->store, table[what], gen, &deleted);
	if (r) {
		store_rollback(s->d->store);
		goto out;
	}
	r = store_commit(s->d->store);
	if (!r && deleted)
		sync_changes_add(&ch, SO_PRUNED, what, NULL);
	if (!r && (ch.n || deleted)) {
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(s->d->store, "changed_at", clock_wall_ms());
		sync_changes_flush(s, &ch);
	}
	/* Before the renames' render below, which then has theirs too. */
	if (!r && nagain)
		r = refetch_users(s, again, nagain, gen);
out:
	sync_fetch_end(s, &t);
	free(again);
	list_ctx_release(&l);
	sync_changes_release(&ch);
	/* Renamed users reach the transcripts, also those noted by an
	 * earlier pass or a fetch that could not finish them. */
	if (what == SO_USER && r != -ENOMEM)
		sync_rerender_pending(s);
	return r;
}

int sync_refresh_accounts(struct sync *s)
{
	/* Before the fetch: a pass's list fetched before this point is not
	 * stored over ours (see sync_list). */
	pthread_mutex_lock(&s->lock);
	s->accounts_refreshes++;
	pthread_mutex_unlock(&s->lock);
	return sync_list(s, SO_ACCOUNT, clock_wall_ms());
}

int sync_attributes(struct sync *s)
{
	struct buf now = BUF_INIT, old = BUF_INIT;
	struct changes ch = { 0 };
	int r;

	r = api_contact_attributes(s->d->http, &now);
	if (!r) {
		store_meta_get(s->d->store, "attributes", &old);
		if (old.len != now.len ||
		    memcmp(old.data ? old.data : "", now.data ? now.data : "",
			   now.len)) {
			r = store_meta_set(s->d->store, "attributes", now.data,
					   now.len);
			if (!r) {
				sync_changes_add(&ch, SO_LISTS, 0, NULL);
				sync_changes_flush(s, &ch);
			}
		}
	}
	buf_release(&now);
	buf_release(&old);
	sync_changes_release(&ch);
	return r;
}
