// SPDX-License-Identifier: MIT
/* sync.c: background sync and on-demand fetches into the cache (see sync.h). */
#include "sync.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "api.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "render.h"
#include "store.h"

#define MISS_SLOTS 256
#define WRITE_SLOTS 256
#define MISS_TTL_MS 60000
#define ATTACHMENT_MAX ((size_t)64 << 20)
/* Contacts have no updatedAt and no list endpoint: each pass refreshes
 * this many cached contacts, in id order, wrapping around. */
#define CONTACT_ROTATION 200

/* A remembered "the API has no such object", so lookups of a missing name
 * (shells probing, tab completion) do not cost a request every time. */
struct miss {
	uint64_t key;
	int64_t until_ms;
};

/* At most one claimed contact per sync worker is in flight. */
#define INFLIGHT_MAX 64
/* How long a transcript waits for a claimed contact (its GET's deadline
 * is the real bound; this one only stops a lost wake-up from hanging). */
#define CONTACT_WAIT_MS 60000

struct sync {
	struct driftfs *d;
	sync_change_cb cb;
	void *cb_ctx;

	pthread_t thread;
	int thread_started;

	/* Guarded by lock. */
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

	/* Serialises whole passes (background and driftctl's). */
	pthread_mutex_t pass_lock;

	/* Contacts fetched during the current pass (guarded by lock), so
	 * the rotating refresh does not fetch them twice. */
	int64_t *fetched;
	size_t nfetched, afetched;
	/* Of those, the ones claimed and not yet stored (guarded by lock;
	 * contact_cond signals each one that settles): a transcript that
	 * names such a contact waits for it rather than render its id. */
	int64_t inflight[INFLIGHT_MAX];
	size_t ninflight;
	pthread_cond_t contact_cond;

	/* Write generations by object slot (guarded by lock), see
	 * sync_note_write(). */
	unsigned write_gen[WRITE_SLOTS];
	/* sync_refresh_accounts() calls begun (guarded by lock): each
	 * follows an accepted account edit, and fetches the whole list. */
	unsigned accounts_refreshes;
};

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

static int changes_add(struct changes *c, enum sync_object what, int64_t id,
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

static void changes_flush(struct sync *s, struct changes *c)
{
	if (c->n && s->cb)
		s->cb(s->cb_ctx, c->v, c->n);
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	c->n = 0;
}

static void changes_release(struct changes *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].key);
	free(c->v);
	memset(c, 0, sizeof(*c));
}

static void set_phase(struct sync *s, const char *phase, long done, long total)
{
	pthread_mutex_lock(&s->lock);
	snprintf(s->phase, sizeof(s->phase), "%s", phase);
	s->work_done = done;
	s->work_total = total;
	pthread_mutex_unlock(&s->lock);
}

static void add_work_done(struct sync *s)
{
	pthread_mutex_lock(&s->lock);
	s->work_done++;
	pthread_mutex_unlock(&s->lock);
}

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
	hit = m->key == key && m->until_ms > http_now_ms();
	pthread_mutex_unlock(&s->lock);
	return hit;
}

static void remember_miss(struct sync *s, uint64_t key)
{
	struct miss *m = &s->misses[key % MISS_SLOTS];

	pthread_mutex_lock(&s->lock);
	m->key = key;
	m->until_ms = http_now_ms() + MISS_TTL_MS;
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
	free(s->fetched);
	free(s);
}

/* Records id as fetched in this pass; the caller holds s->lock. */
static void note_fetched_locked(struct sync *s, int64_t id)
{
	if (s->nfetched == s->afetched) {
		size_t na = s->afetched ? s->afetched * 2 : 256;
		int64_t *p = realloc(s->fetched, na * sizeof(*p));

		if (p) {
			s->fetched = p;
			s->afetched = na;
		}
	}
	if (s->nfetched < s->afetched)
		s->fetched[s->nfetched++] = id;
}

static int fetched_locked(struct sync *s, int64_t id)
{
	for (size_t i = 0; i < s->nfetched; i++)
		if (s->fetched[i] == id)
			return 1;
	return 0;
}

static int fetched_this_pass(struct sync *s, int64_t id)
{
	int found;

	pthread_mutex_lock(&s->lock);
	found = fetched_locked(s, id);
	pthread_mutex_unlock(&s->lock);
	return found;
}

/*
 * Claims a contact for fetching in this pass: 1 if the caller should fetch
 * it, 0 if another conversation of the pass already did (or is doing so).
 */
static int claim_contact(struct sync *s, int64_t id)
{
	int claimed = 0;

	pthread_mutex_lock(&s->lock);
	if (!fetched_locked(s, id)) {
		note_fetched_locked(s, id);
		claimed = 1;
		if (s->ninflight < INFLIGHT_MAX)
			s->inflight[s->ninflight++] = id;
	}
	pthread_mutex_unlock(&s->lock);
	return claimed;
}

/* A claimed contact is stored, or its fetch failed: waiters may look. */
static void contact_settled(struct sync *s, int64_t id)
{
	pthread_mutex_lock(&s->lock);
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
	int64_t deadline = http_now_ms() + CONTACT_WAIT_MS;
	int waited = 0;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		size_t i = 0;
		struct timespec ts;

		while (i < s->ninflight && s->inflight[i] != id)
			i++;
		if (i == s->ninflight || http_now_ms() >= deadline)
			break;
		waited = 1;
		ts.tv_sec = deadline / 1000;
		ts.tv_nsec = (deadline % 1000) * 1000000;
		pthread_cond_timedwait(&s->contact_cond, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
	return waited;
}

static size_t write_slot(enum sync_object what, int64_t id)
{
	return names_hash64(&id, sizeof(id), (uint64_t)what) % WRITE_SLOTS;
}

void sync_note_write(struct sync *s, enum sync_object what, int64_t id)
{
	pthread_mutex_lock(&s->lock);
	s->write_gen[write_slot(what, id)]++;
	pthread_mutex_unlock(&s->lock);
}

static void gens_take(struct sync *s, struct gens *g)
{
	pthread_mutex_lock(&s->lock);
	memcpy(g->g, s->write_gen, sizeof(g->g));
	g->accounts_refreshes = s->accounts_refreshes;
	pthread_mutex_unlock(&s->lock);
}

/* Whether a write to the object was accepted since g was taken. */
static int written_since(struct sync *s, const struct gens *g,
			 enum sync_object what, int64_t id)
{
	size_t k = write_slot(what, id);
	int w;

	pthread_mutex_lock(&s->lock);
	w = s->write_gen[k] != g->g[k];
	pthread_mutex_unlock(&s->lock);
	return w;
}

/*
 * Writes one contact fetched after g was taken in its own transaction and
 * reports it; a contact written since then is left alone (fresher data is
 * on its way from the writer).
 */
static int save_contact(struct sync *s, const struct api_contact *c,
			const struct gens *g)
{
	struct changes ch = { 0 };
	int changed = 0, r;

	if (g && written_since(s, g, SO_CONTACT, c->id))
		return 0;
	r = store_begin(s->d->store);
	if (r)
		return r;
	r = store_put_contact(s->d->store, c, &changed);
	if (r) {
		store_rollback(s->d->store);
		return r;
	}
	r = store_commit(s->d->store);
	if (!r && changed) {
		changes_add(&ch, SO_CONTACT, c->id, NULL);
		changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(s->d->store, "changed_at", http_wall_ms());
		changes_flush(s, &ch);
	}
	changes_release(&ch);
	return r;
}

/* A conversation being fetched: everything stored in one transaction. */
struct conv_fetch {
	struct api_conversation conv;
	struct api_contact contact;
	struct api_message *msgs;
	size_t nmsgs, alloc;
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

/* Who wrote a message, for the transcript: name and role. */
static void author_of(struct sync *s, const struct conv_fetch *f,
		      const struct api_message *m, char *name, size_t size,
		      const char **role)
{
	struct store_row row;

	if (!strcmp(m->author_type, "contact")) {
		const struct api_contact *c = &f->contact;

		*role = "contact";
		if (c->id && c->id == m->author_id && (c->name || c->email))
			snprintf(name, size, "%s", c->name ? c->name : c->email);
		else if (!store_one(s->d->store, Q_CONTACT_NAME, m->author_id,
				    NULL, &row) && row.name)
			snprintf(name, size, "%s", row.name);
		else if (wait_contact(s, m->author_id) &&
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

static int render_transcript(struct sync *s, const struct conv_fetch *f,
			     struct buf *out)
{
	int r = 0;

	for (size_t i = 0; i < f->nmsgs && !r; i++) {
		const struct api_message *m = &f->msgs[i];
		char name[256];
		const char *role;

		author_of(s, f, m, name, sizeof(name), &role);
		r = render_transcript_block(m->created, name, role, m->type,
					    m->body, out);
	}
	return r;
}

static int cmp_message(const void *a, const void *b)
{
	const struct api_message *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/*
 * Fetches a conversation with its messages, contact and new attachments,
 * and stores them in one transaction. The network work happens before the
 * transaction, so the write lock is held only for the writes.
 */
static int sync_conversation(struct sync *s, int64_t id)
{
	struct store *st = s->d->store;
	struct conv_fetch f;
	struct changes ch = { 0 };
	struct buf transcript = BUF_INIT;
	struct store_row old;
	struct gens g;
	int old_found, changed = 0, r;

	memset(&f, 0, sizeof(f));
	gens_take(s, &g);
	r = api_conversation_get(s->d->http, id, &f.conv);
	if (r)
		goto out;
	r = api_messages(s->d->http, id, take_message, &f);
	if (r)
		goto out;
	if (f.nmsgs)
		qsort(f.msgs, f.nmsgs, sizeof(*f.msgs), cmp_message);
	/*
	 * A contact with many conversations is fetched once a pass, and
	 * stored at once: the other conversations' transcripts wait for its
	 * name (wait_contact) rather than render its id.
	 */
	if (f.conv.contact_id > 0 && claim_contact(s, f.conv.contact_id)) {
		r = api_contact_get(s->d->http, f.conv.contact_id, &f.contact);
		if (r == -ENOENT)
			r = 0;	/* a deleted contact: the link dangles */
		if (!r && f.contact.id)
			r = save_contact(s, &f.contact, &g);
		contact_settled(s, f.conv.contact_id);
		if (r)
			goto out;
	}
	r = fetch_attachments(s, &f);
	if (r)
		goto out;
	r = render_transcript(s, &f, &transcript);
	if (r)
		goto out;

	/* Written while we fetched: the writer's own refetch is fresher. */
	if (written_since(s, &g, SO_CONVERSATION, id))
		goto out;
	old_found = !store_one(st, Q_CONV, id, NULL, &old);
	r = store_begin(st);
	if (r)
		goto out;
	r = store_clear_messages(st, id);
	for (size_t i = 0; i < f.nmsgs && !r; i++)
		r = store_put_message(st, &f.msgs[i]);
	for (size_t i = 0; i < f.natts && !r; i++)
		r = store_put_attachment(st, id, f.att_msg[i], f.att_mtime[i],
					 f.atts[i], f.att_size[i]);
	r = r ? r : store_put_conversation(st, &f.conv, &transcript, &changed);
	if (r) {
		store_rollback(st);
		goto out;
	}
	r = store_commit_staged(st, &f.staged);
	if (r)
		goto out;
	if (changed || f.natts) {
		r = changes_add(&ch, SO_CONVERSATION, id, NULL);
		if (!r)
			ch.v[ch.n - 1].contact = f.conv.contact_id;
		if (!r && old_found) {
			ch.v[ch.n - 1].old_contact = old.id2;
			snprintf(ch.v[ch.n - 1].old_status,
				 sizeof(ch.v[0].old_status), "%s",
				 old.text ? old.text : "");
		}
	}
	if (ch.n) {
		changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(st, "changed_at", http_wall_ms());
		changes_flush(s, &ch);
	}
out:
	if (r == -ENOENT)
		log_error_event("conversation %lld: not found", (long long)id);
	buf_release(&transcript);
	conv_fetch_release(&f);
	changes_release(&ch);
	return r;
}

/* Objects to fetch, shared by the workers. */
struct work {
	struct sync *s;
	int (*fetch)(struct sync *s, int64_t id);
	int64_t *ids;
	size_t n, next;
	int failed;		/* first error */
	size_t nfailed;
	pthread_mutex_t lock;
};

static void *worker(void *arg)
{
	struct work *w = arg;

	log_context_set("sync");
	for (;;) {
		size_t i;
		int r;

		pthread_mutex_lock(&w->lock);
		i = w->next++;
		pthread_mutex_unlock(&w->lock);
		if (i >= w->n)
			break;
		r = w->fetch(w->s, w->ids[i]);
		add_work_done(w->s);
		if (r) {
			pthread_mutex_lock(&w->lock);
			if (!w->failed)
				w->failed = r;
			w->nfailed++;
			/* The API is gone: every object left would only wait
			 * out its retries. They count as failed. */
			if (!http_reachable(w->s->d->http) && w->next < w->n) {
				w->nfailed += w->n - w->next;
				w->next = w->n;
			}
			pthread_mutex_unlock(&w->lock);
		}
	}
	return NULL;
}

/* Runs fetch over ids with up to cfg.conns threads (this one included). */
static void run_workers(struct sync *s, struct work *work,
			int (*fetch)(struct sync *, int64_t), int64_t *ids,
			size_t n)
{
	pthread_t th[32];
	long nth = s->d->cfg.conns, started = 0;

	work->s = s;
	work->fetch = fetch;
	work->ids = ids;
	work->n = n;
	pthread_mutex_init(&work->lock, NULL);
	if (nth > (long)(sizeof(th) / sizeof(th[0])))
		nth = (long)(sizeof(th) / sizeof(th[0]));
	if (nth > (long)n)
		nth = (long)n;
	for (long i = 1; i < nth; i++)
		if (!pthread_create(&th[i], NULL, worker, work))
			started = i;
	worker(work);
	for (long i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&work->lock);
}

/* What the walk of the conversation list collects. */
struct walk {
	struct sync *s;
	int64_t watermark;	/* stop at items older than this */
	int64_t newest;		/* the newest updatedAt seen */
	int older_seen;		/* an item older than the watermark came */
	int64_t *ids;
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

static int sync_conversations(struct sync *s)
{
	struct store *st = s->d->store;
	struct api_cursor cur = { 0 };
	struct walk w = { s, 0, 0, 0, NULL, 0, 0 };
	struct work work = { 0 };
	int r = 0;

	w.watermark = store_meta_i64(st, "conv_watermark");
	set_phase(s, "listing conversations", 0, 0);
	while (!cur.done && !r && !w.older_seen) {
		r = api_conversations_page(s->d->http, &cur, walk_item, &w);
		set_phase(s, "listing conversations", (long)w.n, 0);
	}
	api_cursor_release(&cur);
	if (r)
		goto out;

	set_phase(s, "fetching conversations", 0, (long)w.n);
	run_workers(s, &work, sync_conversation, w.ids, w.n);
	r = work.failed;
	if (r)
		log_error_event("sync: %zu of %zu changed conversations could "
				"not be fetched (first error: %s); they are "
				"retried next pass",
				work.nfailed, work.n, strerror(-r));
	/* Move the watermark only when nothing newer is left behind. */
	if (!r && w.newest > w.watermark)
		r = store_meta_set_i64(st, "conv_watermark", w.newest);
out:
	free(w.ids);
	return r;
}

int sync_forget_contact(struct sync *s, int64_t id)
{
	struct changes ch = { 0 };
	int r = store_delete_contact(s->d->store, id);

	if (!r) {
		changes_add(&ch, SO_CONTACT, id, NULL);
		changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(s->d->store, "changed_at", http_wall_ms());
		changes_flush(s, &ch);
	}
	changes_release(&ch);
	return r;
}

/* Refetches one cached contact; one the API no longer has is removed. */
static int refresh_contact(struct sync *s, int64_t id)
{
	struct api_contact c;
	struct gens g;
	int r;

	if (fetched_this_pass(s, id))
		return 0;
	gens_take(s, &g);
	r = api_contact_get(s->d->http, id, &c);
	if (!r) {
		r = save_contact(s, &c, &g);
		api_contact_release(&c);
		return r;
	}
	if (r != -ENOENT)
		return r;
	return sync_forget_contact(s, id);
}

static int collect_id(void *ctx, const struct store_row *row)
{
	struct walk *w = ctx;

	if (w->n == w->alloc)
		return 1;
	w->ids[w->n++] = row->id;
	return 0;
}

/* The rotating refresh of cached contacts (see CONTACT_ROTATION). */
static int sync_contacts(struct sync *s)
{
	struct walk w = { s, 0, 0, 0, NULL, 0, CONTACT_ROTATION };
	struct work work = { 0 };
	int64_t cursor = store_meta_i64(s->d->store, "contact_cursor");
	int r;

	w.ids = calloc(CONTACT_ROTATION, sizeof(*w.ids));
	if (!w.ids)
		return -ENOMEM;
	r = store_each(s->d->store, Q_CONTACTS_AFTER, cursor, NULL, collect_id,
		       &w);
	if (r >= 0 && w.n < CONTACT_ROTATION && cursor) {
		size_t before = w.n;

		/* Wrap around, up to where this round started. */
		r = store_each(s->d->store, Q_CONTACTS_AFTER, 0, NULL,
			       collect_id, &w);
		for (size_t i = before; i < w.n; i++) {
			if (w.ids[i] > cursor) {
				w.n = i;
				break;
			}
		}
	}
	if (r < 0)
		goto out;
	set_phase(s, "refreshing contacts", 0, (long)w.n);
	run_workers(s, &work, refresh_contact, w.ids, w.n);
	r = work.failed;
	if (!r && w.n)
		r = store_meta_set_i64(s->d->store, "contact_cursor",
				       w.ids[w.n - 1]);
out:
	free(w.ids);
	return r < 0 ? r : 0;
}

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
	*dst = src ? strdup(src) : NULL;
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

/* Stores a fetched list; the caller holds the transaction. */
static int store_list(struct sync *s, const struct list_ctx *l, int64_t gen,
		      const struct gens *g, struct changes *ch)
{
	int r = 0;

	for (size_t i = 0; i < l->n && !r; i++) {
		int changed = 0;

		if (l->what == SO_USER) {
			const struct api_user *u = &l->users[i];

			/* Written while we fetched: the writer refetches it
			 * (sync_fetch_user), so our copy may be older. It is
			 * still listed: tagged as seen, or the prune would
			 * delete what the writer stored. */
			if (written_since(s, g, SO_USER, u->id)) {
				r = store_keep_user(s->d->store, u->id, gen);
				continue;
			}
			r = store_put_user(s->d->store, u, gen, &changed);
			if (!r && changed)
				r = changes_add(ch, SO_USER, u->id, NULL);
		} else {
			const struct api_object *o = &l->objs[i];

			if (l->what == SO_PLAYBOOK)
				r = store_put_playbook(s->d->store, o, gen,
						       &changed);
			else
				r = store_put_account(s->d->store, o, gen,
						      &changed);
			if (!r && changed)
				r = changes_add(ch, l->what, o->id, o->key);
		}
	}
	return r;
}

static int sync_list(struct sync *s, enum sync_object what, int64_t gen)
{
	static const enum store_table table[] = {
		[SO_USER] = ST_USERS,
		[SO_PLAYBOOK] = ST_PLAYBOOKS,
		[SO_ACCOUNT] = ST_ACCOUNTS,
	};
	struct changes ch = { 0 };
	struct list_ctx l = { .what = what };
	struct gens g;
	int deleted = 0, r;

	gens_take(s, &g);
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
	r = store_list(s, &l, gen, &g, &ch);
	r = r ? r : store_prune(s->d->store, table[what], gen, &deleted);
	if (r) {
		store_rollback(s->d->store);
		goto out;
	}
	r = store_commit(s->d->store);
	if (!r && deleted)
		changes_add(&ch, SO_PRUNED, what, NULL);
	if (!r && (ch.n || deleted)) {
		changes_add(&ch, SO_LISTS, 0, NULL);
		store_meta_set_i64(s->d->store, "changed_at", http_wall_ms());
		changes_flush(s, &ch);
	}
out:
	list_ctx_release(&l);
	changes_release(&ch);
	return r;
}

int sync_refresh_accounts(struct sync *s)
{
	/* Before the fetch: a pass's list fetched before this point is not
	 * stored over ours (see sync_list). */
	pthread_mutex_lock(&s->lock);
	s->accounts_refreshes++;
	pthread_mutex_unlock(&s->lock);
	return sync_list(s, SO_ACCOUNT, http_wall_ms());
}

static int sync_attributes(struct sync *s)
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
				changes_add(&ch, SO_LISTS, 0, NULL);
				changes_flush(s, &ch);
			}
		}
	}
	buf_release(&now);
	buf_release(&old);
	changes_release(&ch);
	return r;
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

static int sync_pass(struct sync *s)
{
	int64_t gen = http_wall_ms();
	int r, first = 0;

	log_context_set("sync");
	set_phase(s, "users", 0, 0);
	r = sync_list(s, SO_USER, gen);
	first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	set_phase(s, "contact attributes", 0, 0);
	r = sync_attributes(s);
	/* Plans without these features answer 403/404: not a failure. */
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	set_phase(s, "playbooks", 0, 0);
	r = sync_list(s, SO_PLAYBOOK, gen);
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	set_phase(s, "accounts", 0, 0);
	r = sync_list(s, SO_ACCOUNT, gen);
	if (r != -EACCES && r != -ENOENT)
		first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	r = sync_conversations(s);
	first = first ? first : r;
	if (api_gone(s, r))
		goto out;
	r = sync_contacts(s);
	first = first ? first : r;
out:
	set_phase(s, "idle", 0, 0);
	pthread_mutex_lock(&s->lock);
	s->nfetched = 0;
	pthread_mutex_unlock(&s->lock);
	return first;
}

int sync_run_once(struct sync *s)
{
	int64_t start = http_wall_ms();
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
	s->last_end_ms = http_wall_ms();
	if (!r) {
		s->last_ok_ms = s->last_end_ms;
		store_meta_set_i64(s->d->store, "last_sync", s->last_ok_ms);
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->pass_lock);
	/* The gate (account.h) logs for itself. */
	if (r && r != -ENETDOWN && account_verified(s->d->account))
		log_warn("sync pass failed: %s", strerror(-r));
	return r;
}

static void *sync_thread(void *arg)
{
	struct sync *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		unsigned long serving = s->requested;
		long refresh = s->d->cfg.refresh;
		int r;

		pthread_mutex_unlock(&s->lock);
		r = sync_run_once(s);
		pthread_mutex_lock(&s->lock);
		(void)r;
		s->done_upto = serving;
		pthread_cond_broadcast(&s->cond);
		/* Sleep until the next pass is due or someone asks. */
		s->next_ms = refresh > 0 ? http_now_ms() + refresh * 1000 : 0;
		s->next_wall_ms = refresh > 0 ? http_wall_ms() + refresh * 1000 : 0;
		while (!s->stop && s->requested == serving) {
			struct timespec ts;
			int64_t due = s->next_ms;

			if (!due) {
				pthread_cond_wait(&s->cond, &s->lock);
				continue;
			}
			if (http_now_ms() >= due)
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

void sync_stop(struct sync *s)
{
	if (!s->thread_started)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->thread_started = 0;
}

int sync_request(struct sync *s, long timeout_ms)
{
	int64_t deadline = http_now_ms() + timeout_ms;
	unsigned long mine;
	int r = 0;

	if (!s->thread_started)
		return sync_run_once(s);
	pthread_mutex_lock(&s->lock);
	mine = ++s->requested;
	pthread_cond_broadcast(&s->cond);
	while (s->done_upto < mine && !s->stop) {
		struct timespec ts;

		if (http_now_ms() >= deadline) {
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

int sync_fetch_contact(struct sync *s, int64_t id)
{
	uint64_t key = miss_key(SO_CONTACT, id, NULL);
	struct api_contact c;
	struct gens g;
	int r;

	if (missed_recently(s, key))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	gens_take(s, &g);
	r = api_contact_get(s->d->http, id, &c);
	if (r == -ENOENT)
		remember_miss(s, key);
	if (r)
		return r;
	r = save_contact(s, &c, &g);
	api_contact_release(&c);
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
	r = sync_conversation(s, id);
	if (r == -ENOENT)
		remember_miss(s, key);
	return r;
}

int sync_fetch_user(struct sync *s, int64_t id)
{
	uint64_t key = miss_key(SO_USER, id, NULL);
	struct changes ch = { 0 };
	struct api_user u;
	int changed = 0, r;

	if (missed_recently(s, key))
		return -ENOENT;
	if (!account_verified(s->d->account))
		return -EIO;	/* as offline: the org gate is shut */
	r = api_user_get(s->d->http, id, &u);
	if (r == -ENOENT)
		remember_miss(s, key);
	if (r)
		return r;
	r = store_put_user(s->d->store, &u, store_meta_i64(s->d->store,
							    "last_sync"),
			   &changed);
	if (!r && changed) {
		changes_add(&ch, SO_USER, id, NULL);
		changes_add(&ch, SO_LISTS, 0, NULL);
		changes_flush(s, &ch);
	}
	changes_release(&ch);
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
	int r = save_contact(l->s, c, NULL);

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

static int add_time(struct buf *out, const char *key, int64_t ms)
{
	int r = buf_printf(out, "%s: ", key);

	if (!ms)
		return r ? r : buf_adds(out, "never\n");
	r = r ? r : render_time(ms, out);
	return r ? r : buf_addc(out, '\n');
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
	if (!r && s->running)
		r = buf_printf(out, "syncing: yes (%s, %ld/%ld)\n", s->phase,
			       s->work_done, s->work_total);
	else if (!r)
		r = buf_adds(out, "syncing: no\n");
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
