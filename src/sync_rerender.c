// SPDX-License-Identifier: MIT
/*
 * sync_rerender.c: transcripts follow renames. A transcript is stored
 * rendered, with its authors' names; when what it shows of a user (name,
 * bot flag) or of a contact (name, else email) changes, the transcripts
 * that name them are rendered again from the cache, without a request,
 * byte for byte as a fresh fetch would render them: both paths name
 * authors with sync_author_of() and render with render_transcript().
 *
 * A contact's own conversations are few: they are rendered in the
 * transaction that stores the contact. A user may have written in most of
 * the cache, so the users whose naming changed are noted in the meta value
 * "rerender_users" in the transaction that stores them, and
 * sync_rerender_pending() renders their conversations right after, in
 * transactions of RERENDER_BATCH conversations: the write lock is never
 * held for long, and a crash in between leaves the note for the next pass.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "clock.h"
#include "log.h"
#include "render.h"
#include "store.h"
#include "sync_int.h"

#define PENDING_KEY "rerender_users"
/* Conversations re-rendered per transaction. */
#define RERENDER_BATCH 256

void sync_author_of(void *ctx, const struct api_message *m, char *name,
		    size_t size, const char **role)
{
	const struct sync_author *a = ctx;
	struct sync *s = a->s;
	const struct api_contact *c = a->contact;
	struct store_row row;

	if (!strcmp(m->author_type, "contact")) {
		*role = "contact";
		/* What Q_CONTACT_NAME gives once c is stored: coalesce(name,
		 * email). */
		if (c && c->id && c->id == m->author_id &&
		    (c->name || c->email))
			snprintf(name, size, "%s",
				 c->name ? c->name : c->email);
		else if (!store_one(s->d->store, Q_CONTACT_NAME, m->author_id,
				    NULL, &row) && row.name)
			snprintf(name, size, "%s", row.name);
		else if (a->wait && a->wait(s, m->author_id) &&
			 !store_one(s->d->store, Q_CONTACT_NAME, m->author_id,
				    NULL, &row) && row.name)
			snprintf(name, size, "%s", row.name);
		else
			snprintf(name, size, "Contact %lld",
				 (long long)m->author_id);
		return;
	}
	*role = m->bot ? "bot" : "agent";
	if (!store_one(s->d->store, Q_USER_NAME, m->author_id, NULL, &row) &&
	    row.name) {
		snprintf(name, size, "%s", row.name);
		if (row.id2)
			*role = "bot";
	} else {
		snprintf(name, size, "User %lld", (long long)m->author_id);
	}
}

/* Messages parsed back from the cache (api_parse_messages_page's cb). */
struct cached_msgs {
	struct api_message *v;
	size_t n, alloc;
};

static int take_cached(void *ctx, struct api_message *m)
{
	struct cached_msgs *c = ctx;

	if (c->n == c->alloc) {
		size_t na = c->alloc ? c->alloc * 2 : 32;
		struct api_message *p = realloc(c->v, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		c->v = p;
		c->alloc = na;
	}
	c->v[c->n++] = *m;
	memset(m, 0, sizeof(*m));
	return 0;
}

static void cached_msgs_release(struct cached_msgs *c)
{
	for (size_t i = 0; i < c->n; i++)
		api_message_release(&c->v[i]);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

/*
 * Renders conversation conv again from its cached messages and stores the
 * transcript if its bytes changed, adding the change to ch. The messages
 * are parsed back by the parser that read them from the API, in the order
 * sync_conversation() sorts them (store_conversation_messages'), so the
 * bytes are those of a fresh fetch. In the caller's transaction; no
 * request, no wait. A conversation whose cache cannot be read back or
 * rendered is logged and left as it is (0); a store error is returned.
 */
static int rerender_one(struct sync *s, int64_t conv, struct changes *ch)
{
	struct store *st = s->d->store;
	struct sync_author who = { s, NULL, NULL };
	struct cached_msgs ms = { 0 };
	struct buf body = BUF_INIT, t = BUF_INIT;
	struct store_row row;
	char where[64], status[sizeof(ch->v[0].old_status)];
	char *next = NULL;
	int64_t contact;
	int changed = 0, r;

	r = store_one(st, Q_CONV, conv, NULL, &row);
	if (r == -ENOENT)
		return 0;	/* gone since it was listed */
	if (r)
		return r;
	contact = row.id2;
	snprintf(status, sizeof(status), "%s", row.text ? row.text : "");
	snprintf(where, sizeof(where), "(cache) conversation %lld",
		 (long long)conv);
	r = buf_adds(&body, "{\"data\":");
	r = r ? r : store_conversation_messages(st, conv, &body);
	r = r ? r : buf_addc(&body, '}');
	/* A store error is the transaction's; -EFBIG is this one's. */
	if (r && r != -EFBIG)
		goto out;
	if (!r)
		r = api_parse_messages_page(where, body.data, body.len, conv,
					    take_cached, &ms, &next);
	if (!r)
		r = render_transcript(ms.v, ms.n, sync_author_of, &who, &t);
	if (r && r != -ENOMEM) {
		log_error_event("conversation %lld: its transcript was not "
				"rendered again (%s); it is when the "
				"conversation is fetched", (long long)conv,
				strerror(-r));
		r = 0;
		goto out;
	}
	r = r ? r : store_set_transcript(st, conv, &t, &changed);
	if (!r && changed) {
		r = sync_changes_add(ch, SO_CONVERSATION, conv, NULL);
		if (!r) {
			/* Neither its contact nor its status moved. */
			ch->v[ch->n - 1].contact = contact;
			ch->v[ch->n - 1].old_contact = contact;
			snprintf(ch->v[ch->n - 1].old_status,
				 sizeof(ch->v[0].old_status), "%s", status);
		}
	}
out:
	free(next);
	cached_msgs_release(&ms);
	buf_release(&body);
	buf_release(&t);
	return r;
}

/* Whether two names differ, NULL being no name. */
static int names_differ(const char *a, const char *b)
{
	if (!a || !b)
		return !a != !b;
	return strcmp(a, b) != 0;
}

int sync_put_contact(struct sync *s, const struct api_contact *c,
		     int *changed, struct changes *ch)
{
	struct store *st = s->d->store;
	const char *shown = c->name ? c->name : c->email;
	int64_t *convs = NULL;
	size_t n = 0;
	struct store_row row;
	char *old = NULL;
	int found, renamed, r;

	/* Before the write: what transcripts show of it now. */
	found = !store_one(st, Q_CONTACT_NAME, c->id, NULL, &row);
	if (found && row.name) {
		old = strdup(row.name);
		if (!old)
			return -ENOMEM;
	}
	r = store_put_contact(st, c, changed);
	if (r)
		goto out;
	/*
	 * A new contact too: a transcript that could not name it shows
	 * "Contact <id>". Its conversations, by index, are where its messages
	 * are (a contact writes in its own conversations only).
	 */
	renamed = !found || names_differ(old, shown);
	if (!renamed)
		goto out;
	r = store_contact_conversations(st, c->id, &convs, &n);
	for (size_t i = 0; i < n && !r; i++)
		r = rerender_one(s, convs[i], ch);
out:
	free(convs);
	free(old);
	return r;
}

int sync_user_naming_changed(struct sync *s, const struct api_user *u)
{
	struct store_row row;

	if (store_one(s->d->store, Q_USER_NAME, u->id, NULL, &row))
		return 1;	/* new: transcripts showed "User <id>" */
	return names_differ(row.name, u->name) || !row.id2 != !u->bot;
}

/*
 * The note: "id:gen" entries, comma-separated (an older version's bare
 * "id" reads as gen 0). Noting a user again gives it a gen above every
 * other in the note, so sync_rerender_pending() clears only the entries
 * it read, unchanged: a rename stored while its batches ran (with the
 * name they did not render) stays noted.
 */
struct noted {
	int64_t id, gen;
};

struct notes {
	struct noted *v;
	size_t n, alloc;
};

static int notes_add(struct notes *l, int64_t id, int64_t gen)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		struct noted *q = realloc(l->v, na * sizeof(*q));

		if (!q)
			return -ENOMEM;
		l->v = q;
		l->alloc = na;
	}
	l->v[l->n].id = id;
	l->v[l->n++].gen = gen;
	return 0;
}

static int cmp_noted(const void *a, const void *b)
{
	const struct noted *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->gen < y->gen ? -1 : x->gen > y->gen;
}

/* Sorts by id, keeping each id's highest gen. */
static void notes_unique(struct notes *l)
{
	size_t k = 0;

	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_noted);
	for (size_t i = 0; i < l->n; i++) {
		if (k && l->v[k - 1].id == l->v[i].id)
			l->v[k - 1] = l->v[i];	/* ascending gen: the last */
		else
			l->v[k++] = l->v[i];
	}
	l->n = k;
}

/* Whether l (sorted, unique) holds exactly this entry. */
static int notes_has(const struct notes *l, const struct noted *e)
{
	return l && l->n &&
	       bsearch(e, l->v, l->n, sizeof(*l->v), cmp_noted) != NULL;
}

static void notes_release(struct notes *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* The note, into l (sorted, unique); junk in the value is skipped. */
static int pending_read(struct store *st, struct notes *l)
{
	struct buf val = BUF_INIT;
	const char *p, *end;
	int r = store_meta_get(st, PENDING_KEY, &val);

	if (r == -ENOENT)
		return 0;
	if (r)
		return r;
	p = val.data;
	end = p + val.len;
	while (p && p < end && !r) {
		char tok[48];
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t len = (size_t)((comma ? comma : end) - p);
		char *e;
		long long id, gen = 0;

		if (len && len < sizeof(tok)) {
			memcpy(tok, p, len);
			tok[len] = 0;
			id = strtoll(tok, &e, 10);
			if (*e == ':')
				gen = strtoll(e + 1, &e, 10);
			if (!*e && id > 0 && gen >= 0)
				r = notes_add(l, id, gen);
		}
		p = comma ? comma + 1 : NULL;
	}
	buf_release(&val);
	notes_unique(l);
	return r;
}

/* Writes the note: l's entries not in done (NULL: none). */
static int pending_write(struct store *st, const struct notes *l,
			 const struct notes *done)
{
	struct buf val = BUF_INIT;
	int r = 0;

	for (size_t i = 0; i < l->n && !r; i++)
		if (!notes_has(done, &l->v[i]))
			r = buf_printf(&val, "%s%lld:%lld", val.len ? "," : "",
				       (long long)l->v[i].id,
				       (long long)l->v[i].gen);
	r = r ? r : store_meta_set(st, PENDING_KEY, val.data ? val.data : "",
				   val.len);
	buf_release(&val);
	return r;
}

int sync_rerender_note_users(struct sync *s, const int64_t *ids, size_t n)
{
	struct notes l = { 0 };
	int64_t gen = 0;
	int r;

	if (!n)
		return 0;
	r = pending_read(s->d->store, &l);
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].gen > gen)
			gen = l.v[i].gen;
	/* Above every gen noted: also above what a re-render under way
	 * read, so it does not clear these. */
	for (size_t i = 0; i < n && !r; i++)
		r = notes_add(&l, ids[i], gen + 1);
	if (!r) {
		notes_unique(&l);
		r = pending_write(s->d->store, &l, NULL);
	}
	notes_release(&l);
	return r;
}

/* Re-renders convs[0..n) in transactions of RERENDER_BATCH, reporting
 * each batch's changes after its commit. */
static int rerender_batches(struct sync *s, const int64_t *convs, size_t n)
{
	struct store *st = s->d->store;
	struct changes ch = { 0 };
	int r = 0;

	for (size_t i = 0; i < n && !r; i += RERENDER_BATCH) {
		size_t end = n - i > RERENDER_BATCH ? i + RERENDER_BATCH : n;

		r = store_begin(st);
		if (r)
			break;	/* no transaction of ours to roll back */
		for (size_t k = i; k < end && !r; k++)
			r = rerender_one(s, convs[k], &ch);
		if (r) {
			store_rollback(st);
			break;
		}
		r = store_commit(st);
		if (!r && ch.n) {
			store_meta_set_i64(st, "changed_at", clock_wall_ms());
			sync_changes_flush(s, &ch);
		}
		sync_changes_release(&ch);
	}
	sync_changes_release(&ch);
	return r;
}

int sync_rerender_pending(struct sync *s)
{
	struct store *st = s->d->store;
	struct notes l = { 0 }, now = { 0 };
	int64_t *ids = NULL, *convs = NULL;
	size_t nconvs = 0;
	int r;

	r = pending_read(st, &l);
	if (r || !l.n)
		goto out;
	ids = malloc(l.n * sizeof(*ids));
	if (!ids) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l.n; i++)
		ids[i] = l.v[i].id;
	r = store_user_conversations(st, ids, l.n, &convs, &nconvs);
	r = r ? r : rerender_batches(s, convs, nconvs);
	if (r)
		goto out;	/* the note stays for the next pass */
	/* Only the entries done, unchanged: another thread may have noted
	 * more since, or the same user again (a higher gen). */
	r = store_begin(st);
	if (r)
		goto out;
	r = pending_read(st, &now);
	r = r ? r : pending_write(st, &now, &l);
	if (r)
		store_rollback(st);
	else
		r = store_commit(st);
out:
	if (r)
		log_error_event("sync: transcripts naming renamed users not "
				"rendered again yet (%s); the next pass tries",
				strerror(-r));
	notes_release(&l);
	notes_release(&now);
	free(ids);
	free(convs);
	return r;
}
