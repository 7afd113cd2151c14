// SPDX-License-Identifier: MIT
/*
 * sync_idset.c: a set of positive int64 ids (open addressing, linear
 * probing, deletion by backward shift), for the pass's contact claims: a
 * first sync of a large account claims one contact per conversation, and
 * a list scanned per claim made that O(conversations x contacts).
 * No locking of its own: the caller's lock guards it (sync_int.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "sync_int.h"

#define IDSET_MIN 64

static size_t slot_of(const struct idset *set, int64_t id)
{
	return names_hash64(&id, sizeof(id), 0x1d5e7) & (set->cap - 1);
}

static int grow(struct idset *set)
{
	size_t cap = set->cap ? set->cap * 2 : IDSET_MIN;
	int64_t *v = calloc(cap, sizeof(*v)), *old = set->v;
	size_t oldcap = set->cap;

	if (!v)
		return -ENOMEM;
	set->v = v;
	set->cap = cap;
	set->n = 0;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i])
			idset_add(set, old[i]);
	free(old);
	return 0;
}

int idset_add(struct idset *set, int64_t id)
{
	size_t i;

	if (id <= 0)
		return -EINVAL;
	/* At most half full: probes stay short. */
	if ((set->n + 1) * 2 > set->cap) {
		int r = grow(set);

		if (r)
			return r;
	}
	for (i = slot_of(set, id); set->v[i]; i = (i + 1) & (set->cap - 1))
		if (set->v[i] == id)
			return 0;
	set->v[i] = id;
	set->n++;
	return 1;
}

int idset_has(const struct idset *set, int64_t id)
{
	if (!set->n || id <= 0)
		return 0;
	for (size_t i = slot_of(set, id); set->v[i];
	     i = (i + 1) & (set->cap - 1))
		if (set->v[i] == id)
			return 1;
	return 0;
}

void idset_del(struct idset *set, int64_t id)
{
	size_t mask = set->cap - 1, i, j;

	if (!set->n || id <= 0)
		return;
	for (i = slot_of(set, id); set->v[i] != id; i = (i + 1) & mask)
		if (!set->v[i])
			return;
	/* Backward shift: each later entry of the run moves into the hole
	 * unless its home lies cyclically in (hole, its slot]. */
	for (j = (i + 1) & mask; set->v[j]; j = (j + 1) & mask) {
		size_t home = slot_of(set, set->v[j]);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			set->v[i] = set->v[j];
			i = j;
		}
	}
	set->v[i] = 0;
	set->n--;
}

void idset_clear(struct idset *set)
{
	/* A first sync's thousands of claims are not kept for the small
	 * passes after it. */
	if (set->cap > 16 * IDSET_MIN) {
		idset_release(set);
		return;
	}
	if (set->n)
		memset(set->v, 0, set->cap * sizeof(*set->v));
	set->n = 0;
}

void idset_release(struct idset *set)
{
	free(set->v);
	memset(set, 0, sizeof(*set));
}
