// SPDX-License-Identifier: MIT
/* commit_base.c: commit_base_distance(): which of the versions readers took a
 * writer read, by how far each lies from what it writes. Pure. */
#include "commit.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "commit_int.h"
#include "json.h"

/*
 * Fields that move on with every change in Drift and that a writer cannot
 * change: two versions that differ in one are different versions, however
 * alike the rest.
 */
static int version_marker(const char *name)
{
	return commit_attribute_counter(name) || !strcmp(name, "updatedAt") ||
	       !strcmp(name, "updateDateTime");
}

/* Adds the differences of two JSON objects to *markers and *fields. */
static void json_distance(const cJSON *a, const cJSON *b, uint64_t *markers,
			  uint64_t *fields)
{
	const cJSON *x, *y;

	cJSON_ArrayForEach(x, a) {
		y = cJSON_GetObjectItemCaseSensitive(b, x->string);
		if (cJSON_IsObject(x) && cJSON_IsObject(y))
			json_distance(x, y, markers, fields);
		else if (!y || !cJSON_Compare(x, y, 1))
			(*(version_marker(x->string) ? markers : fields))++;
	}
	cJSON_ArrayForEach(y, b)
		if (!cJSON_GetObjectItemCaseSensitive(a, y->string))
			(*(version_marker(y->string) ? markers : fields))++;
}

/* A line's extent: non-empty, trimmed of \r (as split_lines reads it). */
struct line {
	const char *s;
	size_t n;
};

/* The non-empty lines of text, or NULL (*n 0 for none). */
static struct line *lines_of(const char *text, size_t len, size_t *n)
{
	struct line *v = calloc(len / 2 + 1, sizeof(*v));

	*n = 0;
	for (size_t i = 0; v && i < len;) {
		const char *e = memchr(text + i, '\n', len - i);
		size_t l = e ? (size_t)(e - text) - i : len - i;
		size_t next = i + l + 1;

		while (l && text[i + l - 1] == '\r')
			l--;
		if (l)
			v[(*n)++] = (struct line){ text + i, l };
		i = next;
	}
	return v;
}

/* Lines of a not among those of b. */
static uint64_t lines_missing(const struct line *a, size_t na,
			      const struct line *b, size_t nb)
{
	uint64_t d = 0;

	for (size_t i = 0; i < na; i++) {
		size_t j = 0;

		while (j < nb && (b[j].n != a[i].n ||
				  memcmp(b[j].s, a[i].s, a[i].n)))
			j++;
		d += j == nb;
	}
	return d;
}

uint64_t commit_base_distance(const char *a, size_t alen, const char *b,
			      size_t blen)
{
	cJSON *ja = json_parse(a, alen), *jb = NULL;
	uint64_t markers = 0, fields = 0;

	if (cJSON_IsObject(ja))
		jb = json_parse(b, blen);
	if (cJSON_IsObject(ja) && cJSON_IsObject(jb)) {
		json_distance(ja, jb, &markers, &fields);
	} else {
		size_t na, nb;
		struct line *la = lines_of(a, alen, &na);
		struct line *lb = lines_of(b, blen, &nb);

		if (la && lb)
			fields = lines_missing(la, na, lb, nb) +
				 lines_missing(lb, nb, la, na);
		else
			fields = UINT32_MAX;	/* no memory: the farthest */
		free(la);
		free(lb);
	}
	cJSON_Delete(ja);
	cJSON_Delete(jb);
	if (fields > UINT32_MAX)
		fields = UINT32_MAX;
	return markers << 32 | fields;
}
