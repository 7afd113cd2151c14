// SPDX-License-Identifier: MIT
/* outbox.c: durable, exactly-once delivery of accepted writes (see outbox.h). */
#include "outbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "clock.h"
#include "http.h"
#include "log.h"
#include "store.h"

#define RETRY_BASE_MS 1000
#define RETRY_CAP_MS (5 * 60 * 1000)
/* Seconds between two asks of an org gate that said no (account.h). */
#define GATE_WAIT_S 10
/*
 * How long after a 5xx or no answer a POST that may have landed is first
 * checked: a gateway's 504 can come while the backend is still storing the
 * write, and a check made before it is done misses it and sends a second
 * copy. DRIFTFS_TEST_LANDED_GRACE_MS replaces it (tests only, so a test of
 * this path need not wait 20 s).
 */
#define LANDED_GRACE_MS 20000

struct outbox {
	struct driftfs *d;
	struct outbox_hooks hooks;
	pthread_t thread;
	int started;
	pthread_mutex_t lock;	/* guards stop, kick and sending */
	pthread_cond_t cond;
	int stop;
	int kick;
	/* Serialises sends, so the worker and a close() never send one row
	 * twice at once. */
	pthread_mutex_t send_lock;
	/*
	 * The API refused the token (401) for a queued row: no row goes out
	 * before key_wait_until (wall ms), which backs off with each refusal
	 * in a row (key_refusals) up to RETRY_CAP_MS; every send asks auth
	 * for the token again, so a new login is used from the next try.
	 * Guarded by send_lock.
	 */
	int64_t key_wait_until;
	int64_t key_refusals;
};

struct outbox *outbox_new(struct driftfs *d, const struct outbox_hooks *hooks)
{
	struct outbox *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->d = d;
	o->hooks = *hooks;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->send_lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	return o;
}

void outbox_free(struct outbox *o)
{
	if (!o)
		return;
	outbox_stop(o);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->send_lock);
	pthread_cond_destroy(&o->cond);
	free(o);
}

/* The hooks that may be NULL: what fs.c is told. */
static void changed(struct outbox *o)
{
	if (o->hooks.changed)
		o->hooks.changed(o->hooks.ctx);
}

static void delivered(struct outbox *o)
{
	if (o->hooks.delivered)
		o->hooks.delivered(o->hooks.ctx);
}

static void lost(struct outbox *o)
{
	if (o->hooks.lost)
		o->hooks.lost(o->hooks.ctx);
}

static int64_t backoff(int64_t attempts)
{
	int64_t ms = RETRY_BASE_MS;

	while (attempts-- > 1 && ms < RETRY_CAP_MS)
		ms *= 2;
	return ms < RETRY_CAP_MS ? ms : RETRY_CAP_MS;
}

static int64_t landed_grace_ms(void)
{
	const char *v = getenv("DRIFTFS_TEST_LANDED_GRACE_MS");
	long ms = v && *v ? strtol(v, NULL, 10) : -1;

	return ms >= 0 && ms <= 600000 ? ms : LANDED_GRACE_MS;
}

/*
 * Whether a call that failed may have been carried out all the same:
 * unless the API answered 4xx (it refused the call, or asked for it later:
 * 408, 429), it may. A 5xx can come from a gateway that gave up after the
 * backend stored the change; no answer, a reset or a cut body tell nothing.
 */
static int maybe_landed(long status)
{
	return status < 400 || status >= 500;
}

/* Deletes a row; .driftfs/outbox lists one entry less. */
static int drop(struct outbox *o, int64_t seq)
{
	int r = store_outbox_delete(o->d->store, seq);

	changed(o);
	return r;
}

static int count_row(void *ctx, const struct outbox_row *row)
{
	(void)row;
	(*(int64_t *)ctx)++;
	return 0;
}

/*
 * A 401 for a row whose close() returned 0: the API refused the login, not
 * the write, which waits (in its state, next_try after the pause) for a
 * token it takes. Said once in .driftfs/errors per run of refusals.
 */
static int key_refused(struct outbox *o, const struct outbox_row *row)
{
	int64_t n = 0, wait = backoff(++o->key_refusals);

	o->key_wait_until = clock_wall_ms() + wait;
	store_outbox_update(o->d->store, row->seq, row->state, row->attempts,
			    o->key_wait_until,
			    "the access token was refused (HTTP 401)");
	if (o->key_refusals == 1) {
		store_outbox_each(o->d->store, count_row, &n);
		log_error_event("the access token was refused: %lld write%s "
				"wait%s; run driftctl login",
				(long long)n, n == 1 ? "" : "s",
				n == 1 ? "s" : "");
	}
	return -EINPROGRESS;
}

/*
 * A check that cannot succeed: the conversation it looks in is gone (404),
 * or the API refuses to show it (403; a 401 refuses the token, not the
 * check: key_refused()). The row is dropped with a line saying so; -errno
 * of that answer.
 */
static int drop_unchecked(struct outbox *o, const struct outbox_row *row,
			  int err)
{
	if (err == -ENOENT)
		log_error_event("%s %s dropped: delivery unknown, and the "
				"conversation is gone (HTTP 404), so it cannot "
				"land now",
				row->method, row->api_path);
	else
		log_error_event("%s %s refused: delivery unknown, and the API "
				"refuses to show whether it landed (HTTP "
				"403)",
				row->method, row->api_path);
	drop(o, row->seq);
	lost(o);
	if (err == -ENOENT && o->hooks.gone)
		o->hooks.gone(o->hooks.ctx, row);
	return err;
}

/*
 * Sends one row (the caller holds send_lock). queued: the worker sends it,
 * its close() long returned 0 (a 401 then keeps it). Returns 0 when
 * delivered (or found to have landed already), -EINPROGRESS when it stays
 * queued, or the errno of a definite refusal (row deleted).
 */
static int send_row(struct outbox *o, struct outbox_row *row,
		    struct buf *response, int queued)
{
	struct store *st = o->d->store;
	struct http_response resp;
	int idem = o->hooks.idempotent(row);
	int resend = !strcmp(row->state, "sending");
	char ctx[600];
	int r;

	snprintf(ctx, sizeof(ctx), "outbox %lld %s", (long long)row->seq,
		 row->path);
	log_context_set(ctx);
	/* A POST that may have landed is checked before it is sent again. */
	if (resend && o->hooks.checked(row)) {
		struct buf found = BUF_INIT;

		r = o->hooks.landed(o->hooks.ctx, row, &found);
		if (r == 1) {
			log_info("%s: already delivered before; not resent", ctx);
			drop(o, row->seq);
			/* As after a success: the cache fetches the object
			 * the check found. */
			o->hooks.applied(o->hooks.ctx, row, &found);
			delivered(o);
			if (response) {
				*response = found;
				buf_init(&found, 0);
			}
			buf_release(&found);
			return 0;
		}
		buf_release(&found);
		if (r == -EKEYREJECTED)
			return key_refused(o, row);
		if (r == -ENOENT || r == -EACCES)
			return drop_unchecked(o, row, r);
		if (r < 0) {
			store_outbox_update(st, row->seq, "sending",
					    row->attempts,
					    clock_wall_ms() + backoff(row->attempts + 1),
					    "delivery unknown; checking again later");
			return -EINPROGRESS;
		}
	}
	/*
	 * A row waits the grace before it is checked or sent again even when
	 * a crash cuts this send short: the restart must neither check it
	 * nor, idempotent, resend it (and the writes after it) while the
	 * backend may still be storing this one.
	 */
	r = store_outbox_update(st, row->seq, "sending", row->attempts + 1,
				idem || o->hooks.checked(row)
					? clock_wall_ms() + landed_grace_ms()
					: row->next_try,
				row->last_error);
	if (r)
		return r;
	row->attempts++;
	/*
	 * No retry within the call, idempotent or not: a 5xx or a lost
	 * answer may be a write the backend is still storing, and a resend
	 * within the second could land before it, the late one last (an
	 * edit undone by its own earlier copy). The row waits the grace.
	 */
	r = http_call(o->d->http, row->method, row->api_path,
		      "application/json", row->body.data ? row->body.data : "",
		      row->body.len, 0, HTTP_NO_RETRY | HTTP_REFUSAL_LOGGED,
		      &resp);
	if (r && resp.status == 401 && r != -EAGAIN && queued) {
		http_response_release(&resp);
		return key_refused(o, row);
	}
	if (resp.status >= 200 && resp.status < 300) {
		/* The API took the token: the pause is over. */
		o->key_refusals = 0;
		o->key_wait_until = 0;
	}
	/* A delete sent again found its object gone: the first one did it.
	 * Again means by an earlier call: within this one (HTTP_NO_RETRY)
	 * only a 401 is tried again, and a refused token deleted nothing. */
	if (r == -ENOENT && resp.status == 404 && o->hooks.is_delete(row) &&
	    row->attempts > 1) {
		log_info("%s: gone already (an earlier try deleted it)", ctx);
		buf_reset(&resp.body);
		r = 0;
	}
	if (!r) {
		drop(o, row->seq);
		if (response) {
			*response = resp.body;
			buf_init(&resp.body, 0);
		}
		o->hooks.applied(o->hooks.ctx, row,
				 response ? response : &resp.body);
		delivered(o);
	} else if (http_transient(resp.status) || r == -EAGAIN) {
		/*
		 * A POST that may have landed stays "sending", so the next
		 * try checks first, after a grace period: the backend may
		 * still be storing it. Only a 4xx (408, 429; a 401 whose
		 * token could not be refreshed for now: -EAGAIN) says it
		 * did not land.
		 */
		int left = resp.attempts > 0 && maybe_landed(resp.status);
		int unsure = !idem && left;
		int64_t wait = backoff(row->attempts);

		/* A request that never left (no token, the rate limiter's
		 * deadline, no memory) cannot have landed: no check, no
		 * grace. One that may have waits the grace before it is
		 * checked or, idempotent, sent again. */
		if (left && (idem || o->hooks.checked(row)) &&
		    wait < landed_grace_ms())
			wait = landed_grace_ms();
		store_outbox_update(st, row->seq, unsure ? "sending" : "pending",
				    row->attempts, clock_wall_ms() + wait,
				    resp.message[0] ? resp.message
						    : "transient failure");
		r = -EINPROGRESS;
	} else {
		log_error_event("%s %s refused: HTTP %ld%s%s", row->method,
				row->api_path, resp.status,
				resp.message[0] ? ": " : "", resp.message);
		drop(o, row->seq);
		lost(o);
		/* A 404: the object may be gone from Drift, and then from
		 * the cache at once (DESIGN.md §3). */
		if (resp.status == 404 && o->hooks.gone)
			o->hooks.gone(o->hooks.ctx, row);
	}
	http_response_release(&resp);
	return r;
}

int outbox_submit(struct outbox *o, struct outbox_row *row,
		  struct buf *response)
{
	struct outbox_row cur;
	int r;

	row->created = clock_wall_ms();
	/*
	 * send_lock is taken before the row exists, so the worker cannot
	 * send it first: a refusal it met would drop the row, and this
	 * close() would find it gone and report success.
	 */
	pthread_mutex_lock(&o->send_lock);
	r = store_outbox_add(o->d->store, row);
	if (r) {
		pthread_mutex_unlock(&o->send_lock);
		return r;
	}
	changed(o);
	/* Unverified, the worker asks the gate (account.h) before it sends:
	 * a close() does not wait on that. */
	if (http_offline(o->d->http) || !account_verified(o->d->account)) {
		pthread_mutex_unlock(&o->send_lock);
		return -EINPROGRESS;
	}
	/* An older write to the same object is still queued: this one
	 * waits behind it, or the older would land last and win. */
	if (store_outbox_behind(o->d->store, row->seq, row->object)) {
		pthread_mutex_unlock(&o->send_lock);
		r = -EINPROGRESS;
		goto kick;
	}
	/* Sent as the store holds it, as the worker would send it. */
	r = store_outbox_get(o->d->store, row->seq, &cur);
	if (!r) {
		r = send_row(o, &cur, response, 0);
		store_outbox_row_release(&cur);
	}
	pthread_mutex_unlock(&o->send_lock);
kick:
	if (r == -EINPROGRESS) {
		pthread_mutex_lock(&o->lock);
		o->kick = 1;
		pthread_cond_signal(&o->cond);
		pthread_mutex_unlock(&o->lock);
	}
	return r;
}

int outbox_cancel(struct outbox *o, int64_t seq)
{
	struct outbox_row row;
	int r;

	pthread_mutex_lock(&o->send_lock);
	r = store_outbox_get(o->d->store, seq, &row);
	if (!r) {
		store_outbox_row_release(&row);
		r = drop(o, seq);
		lost(o);
	}
	pthread_mutex_unlock(&o->send_lock);
	return r;
}

static void *worker(void *arg)
{
	struct outbox *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!o->stop) {
		struct outbox_row row;
		int r, gate = 0, held = 0;

		o->kick = 0;
		pthread_mutex_unlock(&o->lock);
		r = -ENOENT;
		if (!http_offline(o->d->http)) {
			pthread_mutex_lock(&o->send_lock);
			r = store_outbox_next(o->d->store, clock_wall_ms(), &row);
			/* Nothing goes out before the API has named the
			 * cache's org (account.h). */
			gate = !r && !account_verified(o->d->account);
			/* The token was refused: nothing goes out until the
			 * pause ends. */
			held = !r && !gate &&
			       clock_wall_ms() < o->key_wait_until;
			if (!r && !gate && !held)
				send_row(o, &row, NULL, 1);
			if (!r)
				store_outbox_row_release(&row);
			if (held)
				r = -EAGAIN;
			pthread_mutex_unlock(&o->send_lock);
			/* Asked with no lock held: a close() waits on none.
			 * Yes: the next round sends. */
			if (gate && !account_gate(o->d->account))
				gate = 0;
			else if (gate)
				r = -EAGAIN;
		}
		pthread_mutex_lock(&o->lock);
		if (r && !o->stop && !o->kick) {
			/* Nothing due: look again in a second, or when kicked;
			 * a gate that said no, in GATE_WAIT_S. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += gate ? GATE_WAIT_S : 1;
			pthread_cond_timedwait(&o->cond, &o->lock, &ts);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

struct legacy {
	char *(*object_key)(const char *kind, int64_t target);
	int64_t *seq;
	char **key;
	size_t n, cap;
};

static int collect_legacy(void *ctx, const struct outbox_row *row)
{
	struct legacy *l = ctx;
	char *key;

	/* Target 0 was also an account edit's, any account: unknown. */
	if (row->object[0] || !row->target)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		int64_t *s = realloc(l->seq, cap * sizeof(*s));
		char **k = s ? realloc(l->key, cap * sizeof(*k)) : NULL;

		if (s)
			l->seq = s;
		if (!k)
			return -ENOMEM;
		l->key = k;
		l->cap = cap;
	}
	key = l->object_key(row->kind, row->target);
	if (!key)
		return -ENOMEM;
	l->seq[l->n] = row->seq;
	l->key[l->n++] = key;
	return 0;
}

/*
 * Rows queued by a version that kept no object key ('') are ordered against
 * every row, so one that cannot go blocks the whole outbox: their key is
 * named from their kind and target, as commit.c names it now (the
 * object_key hook). Rows with target 0 keep the wildcard (an account edit
 * then had target 0).
 */
static void name_legacy_objects(struct outbox *o)
{
	struct legacy l = { .object_key = o->hooks.object_key };
	int r = store_outbox_each(o->d->store, collect_legacy, &l);

	for (size_t i = 0; i < l.n; i++) {
		if (!r)
			r = store_outbox_set_object(o->d->store, l.seq[i],
						    l.key[i]);
		free(l.key[i]);
	}
	if (r)
		log_warn("outbox: cannot name the objects of rows from an "
			 "older version: %s", strerror(-r));
	free(l.seq);
	free(l.key);
}

int outbox_start(struct outbox *o)
{
	int r;

	name_legacy_objects(o);
	r = pthread_create(&o->thread, NULL, worker, o);

	if (r)
		return -r;
	o->started = 1;
	return 0;
}

void outbox_stop(struct outbox *o)
{
	if (!o->started)
		return;
	pthread_mutex_lock(&o->lock);
	o->stop = 1;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	pthread_join(o->thread, NULL);
	o->started = 0;
}
