// SPDX-License-Identifier: MIT
/*
 * sync_fetch.c: the on-demand fetchers (contact, conversation, user, by
 * email, by external id) that a lookup of an uncached object (FUSE), a
 * write's refetch (commit) or ctl runs on its own thread, the removal of a
 * contact or a conversation the API answered 404 for (and the WAL
 * checkpoint that follows a removal), and the one-minute memory of
 * misses. Not the pass (sync.c).
 */
#include <errno.h>
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

void sync_checkpoint_due(struct sync *s)
{
	unsigned long n;

	pthread_mutex_lock(&s->lock);
	n = s->deleted;
	s->deleted = 0;
	pthread_mutex_unlock(&s->lock);
	/* Kept short by a reader: tried again after the next deletion or
	 * pass. */
	if (n && store_checkpoint(s->d->store))
		sync_deleted_note(s, n);
}

/* Outside a pass, an on-demand removal checkpoints now; a pass under way
 * does it at its end. */
static void checkpoint_unless_pass(struct sync *s)
{
	int running;

	pthread_mutex_lock(&s->lock);
	running = s->running;
	pthread_mutex_unlock(&s->lock);
	if (!running)
		sync_checkpoint_due(s);
}

int sync_forget_conversation(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	struct store_row old;
	char status[sizeof(ch.v[0].old_status)] = "";
	int64_t contact = 0;
	int found = 0, r;

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

int sync_forget_contact(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	struct store_row row;
	int64_t *convs = NULL;
	size_t n = 0;
	int had, r;

	had = !store_one(st, Q_CONTACT, id, NULL, &row);
	r = store_contact_conversation_ids(st, id, &convs, &n);
	r = r ? r : store_delete_contact(st, id);
	if (r)
		goto out;
	if (had) {
		log_info("contact %lld: gone from Drift; removed from the "
			 "cache", (long long)id);
		sync_changes_add(&ch, SO_CONTACT, id, NULL);
		if (ch.n)
			ch.v[0].gone = 1;
		/* Their links to it went (store_delete_contact). */
		for (size_t i = 0; i < n; i++)
			if (!sync_changes_add(&ch, SO_CONVERSATION, convs[i],
					      NULL))
				ch.v[ch.n - 1].old_contact = id;
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(st, "changed_at", clock_wall_ms());
		sync_changes_flush(s, &ch);
	}
	/*
	 * An erasure (GDPR) takes the contact's conversations too: each is
	 * fetched again, and those that 404 go (sync_conversation). A
	 * failure here is not the contact's: the reconcile finds them.
	 */
	for (size_t i = 0; i < n; i++) {
		int rc = sync_conversation(s, convs[i]);

		if (rc && rc != -ENOENT)
			log_warn("contact %lld removed: conversation %lld not "
				 "checked (%s); the reconcile will",
				 (long long)id, (long long)convs[i],
				 strerror(-rc));
	}
	checkpoint_unless_pass(s);
out:
	free(convs);
	sync_changes_release(&ch);
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
		struct store_row row;

		remember_miss(s, key);
		/* Cached, and gone from Drift: it goes from the cache too. */
		if (!store_one(s->d->store, Q_CONTACT, id, NULL, &row))
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

	r = store_begin(st);
	r = r ? r : store_delete_user(st, id, &found);
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

int sync_fetch_user(struct sync *s, int64_t id)
{
	uint64_t key = miss_key(SO_USER, id, NULL);
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	struct api_user u;
	int changed = 0, renamed, r;

	if (missed_recently(s, key))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	r = api_user_get(s->d->http, id, &u);
	if (r == -ENOENT) {
		remember_miss(s, key);
		forget_user(s, id);
	}
	if (r)
		return r;
	/*
	 * A rename made through the mount is stored here, so the next users
	 * list sees no change: note the user in the same transaction, and
	 * the next pass renders its transcripts again (sync_list ends with
	 * sync_rerender_pending). Not rendered here: the caller may be a
	 * close() waiting on send_lock, and one user can be in most
	 * conversations.
	 */
	renamed = sync_user_naming_changed(s, &u);
	r = store_begin(st);
	r = r ? r : store_put_user(st, &u, store_meta_i64(st, "last_sync"),
				   &changed);
	if (!r && renamed)
		r = sync_rerender_note_users(s, &u.id, 1);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
	if (!r && changed) {
		sync_changes_add(&ch, SO_USER, id, NULL);
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		sync_changes_flush(s, &ch);
	}
	sync_changes_release(&ch);
	api_user_release(&u);
	return r;
}

/* Context of a lookup by email or external id. */
struct lookup {
	struct sync *s;
	int found;
	int err;
};

static int lookup_found(void *ctx, const struct api_contact *c)
{
	struct lookup *l = ctx;
	int r = sync_save_contact(l->s, c, NULL);

	if (r)
		l->err = r;
	else
		l->found++;
	return 0;
}

static int lookup_by(struct sync *s, int what, const char *key)
{
	uint64_t mk = miss_key(what, 0, key);
	struct lookup l = { s, 0, 0 };
	int r;

	if (missed_recently(s, mk))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	if (what == 1)
		r = api_contacts_by_email(s->d->http, key, lookup_found, &l);
	else
		r = api_contacts_by_external_id(s->d->http, key, lookup_found,
						&l);
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
