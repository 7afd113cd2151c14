/* SPDX-License-Identifier: MIT */
/*
 * stats: named counters behind .driftfs/stats (API calls by endpoint and
 * status, retries, cache hits). Thread-safe; names are copied.
 */
#ifndef DRIFTFS_STATS_H
#define DRIFTFS_STATS_H

#include "buf.h"

void stats_add(const char *name, long n);
long stats_get(const char *name);
/* Appends "name value" lines, sorted by name. */
int stats_render(struct buf *out);
/* Forgets every counter (tests, and at exit so leak checkers stay quiet). */
void stats_clear(void);

#endif
