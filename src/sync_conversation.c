// SPDX-License-Identifier: MIT
/*
 * sync_conversation.c: fetching one conversation (its object, messages,
 * contact and new attachments) and storing it in one transaction with its
 * transcript; and the per-pass contact claims, so a contact with many
 * conversations is fetched once and its name waited for, not its id shown.
 * Not the walk that picks conversations (sync.c) nor the threads (workers).
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
#include "render.h"
#include "store.h"
#include "sync_int.h"

/* How long a transcript waits for a claimed contact (its GET's deadline
 * is the real bound; this one only stops a lost wake-up from hanging). */
#define CONTACT_WAIT_MS 60000
#define ATTACHMENT_MAX ((size_t)64 << 20)

int sync_fetched_this_pass(struct sync *s, int64_t id)
{
	int found;

	pthread_mutex_lock(&s->lock);
	found = idset_has(&s->fetched, id);
	pthread_mutex_unlock(&s->lock);
	return found;
}

/*
 * Claims a contact for fetching in this pass: 1 if the caller should fetch
 * it, 0 if another conversation of the pass already did (or is doing so).
 * Outside a pass (sync_in_pass unset) always 1, and nothing is recorded:
 * such a fetch may come before a change in Drift that the next pass must
 * see. Without memory for the claim the caller fetches it unclaimed.
 */
static int claim_contact(struct sync *s, int64_t id)
{
	int claimed = 1;

	if (!sync_in_pass)
		return 1;
	pthread_mutex_lock(&s->lock);
	if (idset_has(&s->fetched, id))
		claimed = 0;
	else if (idset_add(&s->fetched, id) == 1 &&
		 s->ninflight < INFLIGHT_MAX)
		s->inflight[s->ninflight++] = id;
	pthread_mutex_unlock(&s->lock);
	return claimed;
}

/* Whether a claim of this pass holds contact id: stored, found gone, or
 * still in flight (a claimer whose fetch failed took its claim back). */
static int contact_claimed(struct sync *s, int64_t id)
{
	return sync_fetched_this_pass(s, id);
}

/* Records that the API has no contact id (a claimer's 404, or a removal on
 * any thread), for the other conversations of the pass. Without memory
 * the link stays, until the contact's next check. Also outside a pass: a
 * removal by the outbox or a lookup while a pass runs must reach its
 * workers, whose claim of the contact predates it; the set is emptied at
 * each pass's start and end. */
static void note_contact_gone(struct sync *s, int64_t id)
{
	pthread_mutex_lock(&s->lock);
	idset_add(&s->gone_contacts, id);
	pthread_mutex_unlock(&s->lock);
}

/* Whether contact id is in the gone set: in a pass, whether a claimer of
 * the pass found it gone (after waiting for one in flight); outside one,
 * whether it was removed since the last pass ended (take_contact). */
static int contact_gone(struct sync *s, int64_t id)
{
	int gone;

	pthread_mutex_lock(&s->lock);
	gone = idset_has(&s->gone_contacts, id);
	pthread_mutex_unlock(&s->lock);
	return gone;
}

/*
 * A claimed contact is stored (or found gone), or its fetch failed (failed
 * set: the claim is taken back, and the next conversation of the contact
 * fetches it): waiters may look.
 */
static void contact_settled(struct sync *s, int64_t id, int failed)
{
	if (!sync_in_pass)
		return;
	pthread_mutex_lock(&s->lock);
	if (failed)
		idset_del(&s->fetched, id);
	for (size_t i = 0; i < s->ninflight; i++)
		if (s->inflight[i] == id) {
			s->inflight[i] = s->inflight[--s->ninflight];
			break;
		}
	pthread_cond_broadcast(&s->contact_cond);
	pthread_mutex_unlock(&s->lock);
}

/*
 * Waits while another conversation of this pass is fetching contact id.
 * Returns 1 if it waited (the store may hold the contact now). Cannot
 * deadlock: a claimer stores its contact right after the GET, before it
 * renders anything (see sync_conversation).
 */
static int wait_contact(struct sync *s, int64_t id)
{
	int64_t deadline = clock_mono_ms() + CONTACT_WAIT_MS;
	int waited = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		size_t i = 0;
		struct timespec ts;

		while (i < s->ninflight && s->inflight[i] != id)
			i++;
		if (i == s->ninflight || clock_mono_ms() >= deadline)
			break;
		waited = 1;
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		pthread_cond_timedwait(&s->contact_cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return waited;
}

/*
 * Writes one contact fetched after g was taken in its own transaction and
 * reports it; a contact written since then, or stored by another fetch
 * within t's window (its answer may be the newer one), is left alone and
 * -EAGAIN returned: the writer's refetch may be fresher, or not (it may
 * have asked before we did), so a caller that must not miss a change
 * fetches again (with new gens and a new window). The check is made
 * inside the transaction: a write noted after it has its refetch commit
 * after ours. A changed name
 * reaches its conversations' transcripts in the same transaction
 * (sync_put_contact).
 */
int sync_save_contact(struct sync *s, const struct api_contact *c,
		      const struct gens *g, struct fetch_ticket *t)
{
	struct changes ch = { 0 };
	int changed = 0, was_gone, r;

	r = store_begin(s->d->store);
	if (r)
		return r;
	/*
	 * The API has it: out of the gone set (else the conversations
	 * fetched until the next pass would store no link to it), before
	 * the check below. A removal (sync_forget_contact: a write noted,
	 * then the gone set) noted before the check is seen by it, and the
	 * contact put back in the set; one noted after it adds it after us.
	 */
	pthread_mutex_lock(&s->lock);
	was_gone = idset_has(&s->gone_contacts, c->id);
	if (was_gone)
		idset_del(&s->gone_contacts, c->id);
	pthread_mutex_unlock(&s->lock);
	/* Checked in the transaction (then s->lock, the allowed order): a
	 * write or a removal (sync_forget_contact notes one before its
	 * transaction) either committed before ours, and is seen here, or
	 * comes after ours; then, the same way, another fetch's store of it
	 * (last: when there is none, it records ours for the others). */
	if ((g && sync_written_since(s, g, SO_CONTACT, c->id)) ||
	    (t && sync_fetch_overtaken(s, t, c->id))) {
		store_rollback(s->d->store);
		if (was_gone)
			note_contact_gone(s, c->id);
		return -EAGAIN;
	}
	r = sync_put_contact(s, c, &changed, &ch);
	if (r) {
		store_rollback(s->d->store);
		sync_changes_release(&ch);
		if (was_gone)
			note_contact_gone(s, c->id);
		return r;
	}
	r = store_commit(s->d->store);
	if (!r && (changed || ch.n)) {
		sync_changes_add(&ch, SO_CONTACT, c->id, NULL);
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(s->d->store, "changed_at", clock_wall_ms());
		sync_changes_flush(s, &ch);
	}
	sync_changes_release(&ch);
	return r;
}

/* A conversation being fetched: everything stored in one transaction. */
struct conv_fetch {
	struct api_conversation conv;
	struct api_contact contact;
	struct api_message *msgs;
	size_t nmsgs, alloc;
	/* The ids in msgs: a message listed twice (offset paging while
	 * messages come and go, a rewound page) is kept once, as the
	 * messages table keeps it, or the transcript shows it twice. */
	struct idset ids;
	/* New attachments, their files written (parallel arrays). */
	struct api_attachment **atts;
	int64_t *att_msg, *att_mtime, *att_size;
	size_t natts;
	/* Their files, placed by the commit or removed at release. */
	struct store_staged staged;
};

static int take_message(void *ctx, struct api_message *m)
{
	struct conv_fetch *f = ctx;
	int r = idset_add(&f->ids, m->id);

	if (r < 0 && r != -EINVAL)
		return r;
	if (r == 0) {
		/* Listed again: the later copy is the fresher one. */
		for (size_t i = 0; i < f->nmsgs; i++)
			if (f->msgs[i].id == m->id) {
				api_message_release(&f->msgs[i]);
				f->msgs[i] = *m;
				memset(m, 0, sizeof(*m));
				return 0;
			}
	}
	if (f->nmsgs == f->alloc) {
		size_t na = f->alloc ? f->alloc * 2 : 64;
		struct api_message *p = realloc(f->msgs, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		f->msgs = p;
		f->alloc = na;
	}
	f->msgs[f->nmsgs++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

static void conv_fetch_release(struct conv_fetch *f)
{
	api_conversation_release(&f->conv);
	api_contact_release(&f->contact);
	for (size_t i = 0; i < f->nmsgs; i++)
		api_message_release(&f->msgs[i]);
	free(f->msgs);
	idset_release(&f->ids);
	free(f->att_size);
	free(f->atts);
	free(f->att_msg);
	free(f->att_mtime);
	store_staged_release(&f->staged);
	memset(f, 0, sizeof(*f));
}

struct download {
	struct sync *s;
	int64_t id;
};

/* Streams one attachment into the file store_attachment_blob() made. */
static int download_to(void *ctx, int fd, int64_t *size)
{
	const struct download *dl = ctx;

	return api_attachment_save(dl->s->d->http, dl->id, ATTACHMENT_MAX, fd,
				   size);
}

/* Whether id is among the attachments fetched for f already. */
static int att_seen(const struct conv_fetch *f, int64_t id)
{
	for (size_t k = 0; k < f->natts; k++)
		if (f->atts[k]->id == id)
			return 1;
	return 0;
}

/*
 * Downloads the attachments the cache does not hold yet, each straight
 * into its file (store_attachment_blob) through curl's small buffer, once
 * per id however often the conversation repeats it; the transaction then
 * stores only their rows. Nothing of their bytes stays in memory.
 *
 * One that cannot be had (too big, a timeout, a 5xx, a full disk) is
 * logged and left out: the conversation is stored without it, and it is
 * downloaded when the conversation is fetched again (it has no row). Only
 * running out of memory for the lists fails the conversation.
 */
static int fetch_attachments(struct sync *s, struct conv_fetch *f)
{
	size_t total = 0;

	for (size_t i = 0; i < f->nmsgs; i++)
		total += f->msgs[i].natt;
	if (!total)
		return 0;
	f->atts = calloc(total, sizeof(*f->atts));
	f->att_msg = calloc(total, sizeof(*f->att_msg));
	f->att_mtime = calloc(total, sizeof(*f->att_mtime));
	f->att_size = calloc(total, sizeof(*f->att_size));
	if (!f->atts || !f->att_msg || !f->att_mtime || !f->att_size)
		return -ENOMEM;
	for (size_t i = 0; i < f->nmsgs; i++) {
		for (size_t j = 0; j < f->msgs[i].natt; j++) {
			struct api_attachment *a = &f->msgs[i].att[j];
			struct download dl = { s, a->id };
			size_t k = f->natts;
			int r;

			if (att_seen(f, a->id) ||
			    store_has_attachment(s->d->store, a->id))
				continue;
			r = store_attachment_blob(s->d->store, &f->staged,
						  a->id, download_to, &dl,
						  &f->att_size[k]);
			if (r == -EFBIG) {
				/* Too big to cache: leave it out, keep the rest. */
				log_error_event("attachment %lld (%s): larger "
						"than %zu bytes, not shown",
						(long long)a->id, a->file_name,
						ATTACHMENT_MAX);
				continue;
			}
			if (r) {
				log_error_event("attachment %lld (%s): %s; not "
						"shown, fetched again with its "
						"conversation", (long long)a->id,
						a->file_name, strerror(-r));
				continue;
			}
			f->atts[k] = a;
			f->att_msg[k] = f->msgs[i].id;
			f->att_mtime[k] = f->msgs[i].created;
			f->natts = k + 1;
		}
	}
	return 0;
}

int sync_fetch_contact_fresh(struct sync *s, int64_t id,
			     struct api_contact *c, int *gone)
{
	struct fetch_ticket t;
	int r = sync_fetch_begin(s, SO_CONTACT, id, &t);

	*gone = 0;
	r = r ? r : -EAGAIN;
	for (int i = 0; i < WRITTEN_TRIES && r == -EAGAIN; i++) {
		struct gens g;

		api_contact_release(c);
		sync_gens_take(s, &g);
		sync_fetch_window(s, &t);
		r = api_contact_get(s->d->http, id, c);
		if (r == -ENOENT) {
			*gone = 1;
			r = 0;
			break;
		}
		if (!r)
			r = sync_save_contact(s, c, &g, &t);
	}
	sync_fetch_end(s, &t);
	return r;
}

/*
 * The conversation's contact, once a pass (claim_contact): fetched and
 * stored at once by its claimer, so the other conversations' transcripts
 * name it rather than show its id; the others wait for it. A claimer
 * whose fetch failed takes its claim back and fails its conversation;
 * a waiter then claims and fetches it itself, so no conversation is
 * stored without a contact the API has (it would stay so: an unchanged
 * conversation is not fetched again). *gone: the API has no such contact
 * (2: as the gone set remembers, not asked).
 * Any thread, no lock held.
 */
static int take_contact(struct sync *s, struct conv_fetch *f, int *gone)
{
	int64_t k = f->conv.contact_id;

	*gone = 0;
	/*
	 * Outside a pass (a lookup, a write's refetch, driftctl), a contact
	 * removed on a 404 since the last pass ended is not asked for again
	 * by each refetch of its conversations: they are stored without the
	 * link. The next pass asks again (the gone set is emptied when it
	 * starts, and its check of the removed contact's conversations
	 * refetches them), so one the API has again comes back then; a
	 * fetch that finds it meanwhile takes it out of the set
	 * (sync_save_contact).
	 */
	if (!sync_in_pass && contact_gone(s, k)) {
		*gone = 2;
		return 0;
	}
	for (;;) {
		int r;

		if (!claim_contact(s, k)) {
			wait_contact(s, k);
			if (contact_gone(s, k))
				*gone = 1;
			else if (!contact_claimed(s, k))
				continue;	/* its claimer failed */
			return 0;
		}
		r = sync_fetch_contact_fresh(s, k, &f->contact, gone);
		if (*gone)
			note_contact_gone(s, k);
		contact_settled(s, k, r != 0);
		if (r)
			return r;
		/* Gone from Drift: it goes at once, cached or not (a
		 * conversation stored while its claimer waited out its
		 * retries may link it), and its other conversations are
		 * checked. */
		if (*gone)
			sync_forget_contact(s, k);
		return 0;
	}
}

/* Waits for the contacts that wrote in the conversation and that another
 * thread of the pass is fetching, so the transcript, rendered inside the
 * transaction (where nothing waits), names them. */
static void wait_authors(struct sync *s, const struct conv_fetch *f)
{
	for (size_t i = 0; i < f->nmsgs; i++)
		if (!strcmp(f->msgs[i].author_type, "contact") &&
		    f->msgs[i].author_id != f->conv.contact_id)
			wait_contact(s, f->msgs[i].author_id);
}

/*
 * Fetches a conversation with its messages, contact and new attachments,
 * and stores them in one transaction. The network work happens before the
 * transaction, so the write lock is held only for the writes.
 *
 * The transcript is rendered inside that transaction, its authors named
 * from the cache as it is then (the contact fetched above is stored by
 * then, unless a writer's fresher copy is on its way): a rename committed
 * while we fetched is in it, and one committed after us renders this
 * conversation again from the messages we stored. Rendered before the
 * transaction, a rename stored in between would be undone for good.
 * Whether a write to the conversation was accepted since the fetch began
 * is asked inside the transaction too (a write noted later has its
 * refetch commit after ours), and whether another fetch of it (t: the
 * caller's ticket, sync_fetch_begin) stored it since our window began
 * (one that stores after us finds ours the same way): if so nothing is
 * stored and *again is set, and sync_conversation fetches again.
 */
static int fetch_conversation(struct sync *s, int64_t id,
			      struct fetch_ticket *t, int *again)
{
	struct store *st = s->d->store;
	struct conv_fetch f;
	struct sync_author who = { s, NULL, NULL };
	struct changes ch = { 0 };
	struct buf transcript = BUF_INIT;
	struct store_row old, back;
	struct gens g;
	char old_status[sizeof(ch.v[0].old_status)] = "";
	int old_found = 0, changed = 0, gone = 0, no_contact = 0, r;
	int64_t gone_contact = 0;

	memset(&f, 0, sizeof(f));
	sync_gens_take(s, &g);
	sync_fetch_window(s, t);
	r = api_conversation_get(s->d->http, id, &f.conv);
	/* Drift has no such conversation (deleted, or erased with its
	 * contact): a cached copy goes at once. Only the object's own GET
	 * says so. */
	gone = r == -ENOENT;
	if (!r)
		r = api_messages(s->d->http, id, take_message, &f);
	if (!gone && r == -ENOENT) {
		/*
		 * Its messages answered 404 (a page that went under a stale
		 * cursor, or the conversation deleted meanwhile): gone only
		 * if its GET now says so too; else the fetch failed and is
		 * tried again, and nothing is removed.
		 */
		struct api_conversation recheck;
		int r2 = api_conversation_get(s->d->http, id, &recheck);

		if (!r2)
			api_conversation_release(&recheck);
		gone = r2 == -ENOENT;
		r = gone ? -ENOENT : r2 ? r2 : -EIO;
	}
	if (r)
		goto out;
	if (f.nmsgs)
		qsort(f.msgs, f.nmsgs, sizeof(*f.msgs),
		      render_message_order);
	if (f.conv.contact_id > 0) {
		r = take_contact(s, &f, &no_contact);
		if (r)
			goto out;
		/* A deleted contact: the conversation is stored without a
		 * link to it (conversation.json still names it). One the
		 * gone set answered for is not asked for: the conversation
		 * joins the contact's recheck note, so the next pass asks
		 * (sync_recheck_pending) and links it if the API has the
		 * contact again. */
		if (no_contact == 2)
			gone_contact = f.conv.contact_id;
		if (no_contact)
			f.conv.contact_id = 0;
	}
	r = fetch_attachments(s, &f);
	if (r)
		goto out;
	wait_authors(s, &f);

	r = store_begin(st);
	if (r)
		goto out;
	/* Written while we fetched, or stored by another fetch that
	 * committed within our window (our answer may be the older one):
	 * fetched again (WRITTEN_TRIES). The fetch check comes last: when
	 * it passes, it records our store for the other fetches. */
	if (sync_written_since(s, &g, SO_CONVERSATION, id) ||
	    sync_fetch_overtaken(s, t, id)) {
		store_rollback(st);
		*again = 1;
		goto out;
	}
	/* Its contact removed while we fetched (sync_forget_contact notes a
	 * write before its transaction): no link to it. */
	if (f.conv.contact_id > 0 &&
	    sync_written_since(s, &g, SO_CONTACT, f.conv.contact_id) &&
	    store_one(st, Q_CONTACT, f.conv.contact_id, NULL, &old) == -ENOENT)
		f.conv.contact_id = 0;
	/* The gone contact saved again since the gone set answered (a
	 * pass's recheck found it: it may already have worked off the note
	 * this would join): linked after all. Transactions serialise, so a
	 * save that committed first is seen here. */
	if (gone_contact &&
	    !store_one(st, Q_CONTACT, gone_contact, NULL, &back)) {
		f.conv.contact_id = gone_contact;
		gone_contact = 0;
	}
	r = render_transcript(f.msgs, f.nmsgs, sync_author_of, &who,
			      &transcript);
	/* After the render: its author lookups reuse store_one's strings. */
	old_found = !r && !store_one(st, Q_CONV, id, NULL, &old);
	if (old_found)
		snprintf(old_status, sizeof(old_status), "%s",
			 old.text ? old.text : "");
	r = r ? r : store_clear_messages(st, id);
	for (size_t i = 0; i < f.nmsgs && !r; i++)
		r = store_put_message(st, &f.msgs[i]);
	for (size_t i = 0; i < f.natts && !r; i++)
		r = store_put_attachment(st, id, f.att_msg[i], f.att_mtime[i],
					 f.atts[i], f.att_size[i]);
	r = r ? r : store_put_conversation(st, &f.conv, &transcript, &changed);
	if (!r && gone_contact)
		r = sync_recheck_note(st, gone_contact, &id, 1, 0);
	if (r) {
		store_rollback(st);
		goto out;
	}
	r = store_commit_staged(st, &f.staged);
	if (r)
		goto out;
	if (changed || f.natts) {
		r = sync_changes_add(&ch, SO_CONVERSATION, id, NULL);
		if (!r)
			ch.v[ch.n - 1].contact = f.conv.contact_id;
		if (!r && old_found) {
			ch.v[ch.n - 1].old_contact = old.id2;
			snprintf(ch.v[ch.n - 1].old_status,
				 sizeof(ch.v[0].old_status), "%s", old_status);
		}
	}
	if (ch.n) {
		sync_changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(st, "changed_at", clock_wall_ms());
		sync_changes_flush(s, &ch);
	}
out:
	/* A cached copy goes; one not cached needs nothing, not even a
	 * line (the request's 404 is logged, and a conversation deleted
	 * after a list or a contact named it is no error of ours). */
	if (gone && !store_one(st, Q_CONV, id, NULL, &old) &&
	    sync_forget_conversation(s, id))
		log_warn("conversation %lld: gone from Drift, but could not be"
			 " removed from the cache yet", (long long)id);
	buf_release(&transcript);
	conv_fetch_release(&f);
	sync_changes_release(&ch);
	return r;
}

int sync_conversation(struct sync *s, int64_t id)
{
	struct fetch_ticket t;
	int r = sync_fetch_begin(s, SO_CONVERSATION, id, &t);

	for (int i = 0; i < WRITTEN_TRIES && !r; i++) {
		int again = 0;

		r = fetch_conversation(s, id, &t, &again);
		if (r || !again) {
			sync_fetch_end(s, &t);
			return r;
		}
	}
	sync_fetch_end(s, &t);
	if (r)
		return r;
	log_warn("conversation %lld: written to or stored by another fetch "
		 "during each of %d fetches; fetched again next pass",
		 (long long)id, WRITTEN_TRIES);
	return -EAGAIN;
}

void sync_note_contact_gone(struct sync *s, int64_t id)
{
	note_contact_gone(s, id);
}
