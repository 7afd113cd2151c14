// SPDX-License-Identifier: MIT
/* stats.c: named counters (see stats.h). */
#include "stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

/*
 * A sorted array: there are a few dozen counter names at most, so a binary
 * search under one lock costs less than any cleverer structure would save.
 */
struct counter {
	char *name;
	long value;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter *counters;
static size_t count, alloc;

/* Index of name, or of where it would be inserted (negated, minus one). */
static long find(const char *name)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(counters[mid].name, name);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

void stats_add(const char *name, long n)
{
	long i;

	pthread_mutex_lock(&lock);
	i = find(name);
	if (i >= 0) {
		counters[i].value += n;
		goto out;
	}
	i = -i - 1;
	if (count == alloc) {
		size_t na = alloc ? alloc * 2 : 32;
		struct counter *p = realloc(counters, na * sizeof(*p));

		if (!p)
			goto out;
		counters = p;
		alloc = na;
	}
	memmove(counters + i + 1, counters + i,
		(count - (size_t)i) * sizeof(*counters));
	counters[i].name = strdup(name);
	if (!counters[i].name) {
		memmove(counters + i, counters + i + 1,
			(count - (size_t)i) * sizeof(*counters));
		goto out;
	}
	counters[i].value = n;
	count++;
out:
	pthread_mutex_unlock(&lock);
}

long stats_get(const char *name)
{
	long i, v = 0;

	pthread_mutex_lock(&lock);
	i = find(name);
	if (i >= 0)
		v = counters[i].value;
	pthread_mutex_unlock(&lock);
	return v;
}

int stats_render(struct buf *out)
{
	int r = 0;

	pthread_mutex_lock(&lock);
	/* Names are ours, but one may quote a path: no control goes out. */
	for (size_t i = 0; i < count && !r; i++) {
		const char *n = counters[i].name;

		r = text_clean_buf(out, n, strlen(n), 0);
		r = r ? r : buf_printf(out, " %ld\n", counters[i].value);
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void stats_clear(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < count; i++)
		free(counters[i].name);
	free(counters);
	counters = NULL;
	count = alloc = 0;
	pthread_mutex_unlock(&lock);
}
