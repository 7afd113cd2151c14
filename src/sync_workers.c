// SPDX-License-Identifier: MIT
/*
 * sync_workers.c: the worker pool a pass fans its fetches out to: up to
 * cfg.conns threads (the caller's included) take ids from one shared list
 * until it is empty. What a fetch does is the caller's.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

#include "http.h"
#include "log.h"
#include "sync_int.h"

__thread int sync_in_pass;

static void *worker(void *arg)
{
	struct work *w = arg;

	log_context_set("sync");
	sync_in_pass = w->in_pass;
	for (;;) {
		size_t i;
		int r;

		pthread_mutex_lock(&w->lock);
		if (sync_stopping(w->s) && w->next < w->n) {
			/* Stopping: what is left counts as not fetched. */
			if (!w->failed)
				w->failed = -ECANCELED;
			w->cancelled = 1;
			w->nfailed += w->n - w->next;
			w->next = w->n;
		}
		i = w->next++;
		pthread_mutex_unlock(&w->lock);
		if (i >= w->n)
			break;
		r = w->fetch(w->s, w->ids[i]);
		sync_add_work_done(w->s);
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
void sync_run_workers(struct sync *s, struct work *work,
		      int (*fetch)(struct sync *, int64_t), int64_t *ids,
		      size_t n)
{
	pthread_t th[32];
	long nth = s->d->cfg.conns, started = 0;

	work->s = s;
	work->in_pass = sync_in_pass;
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
