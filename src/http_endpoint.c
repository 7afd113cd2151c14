// SPDX-License-Identifier: MIT
/*
 * http_endpoint.c: the names .driftfs/stats counts requests under, "GET
 * /conversations/{id}", with ids and API values left out and the number of
 * names bounded. The counting itself is stats.c's.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"

/* How many endpoint names .driftfs/stats counts apart; the rest: "other". */
#define MAX_ENDPOINTS 64

/* The endpoint names seen so far (see http_stats_endpoint()). */
static pthread_mutex_t endpoints_lock = PTHREAD_MUTEX_INITIALIZER;
static char endpoints[MAX_ENDPOINTS][160];
static size_t n_endpoints;

/*
 * How a path segment shows in an endpoint name: numbers (and n_n, n.n) as
 * {id}; a word of the API's own vocabulary (lowercase ASCII letters,
 * digits and '_', at most 32 bytes: "list", "token_info", "oauth2") as it
 * is; anything else (an account id, a tag, whatever a next link names) as
 * {name}, so that no API value becomes a stats name byte for byte.
 */
static const char *segment_class(const char *seg, size_t n)
{
	int letters = 0, dot = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)seg[i];

		if (c >= 'a' && c <= 'z')
			letters = 1;
		else if (c == '.')
			dot = 1;
		else if (!isdigit(c) && c != '_')
			return "{name}";
	}
	if (!letters)
		return "{id}";
	return dot || n > 32 ? "{name}" : NULL;
}

/* The endpoint name for stats: the path with ids replaced by {id}. */
void http_endpoint_name(const char *method, const char *path, char *out,
			size_t size)
{
	size_t o = (size_t)snprintf(out, size, "%s ", method);
	const char *p = path;
	const char *prev = NULL;	/* the segment before, and its length */
	size_t prev_len = 0;

	while (*p && *p != '?' && o + 8 < size) {
		const char *seg = p + 1, *end = seg + strcspn(seg, "/?");
		const char *cls = end > seg ? segment_class(seg, end - seg)
					    : NULL;

		/* DELETE /contacts/{id}/tags/<tag>: a tag is the user's word
		 * even when it looks like the API's ("new", "vip"). Not
		 * /tags/delete/_bulk, which goes on. */
		if (prev && prev_len == 4 && !memcmp(prev, "tags", 4) &&
		    end > seg && (*end == '\0' || *end == '?'))
			cls = "{name}";
		prev = seg;
		prev_len = (size_t)(end - seg);

		if (cls) {
			o += (size_t)snprintf(out + o, size - o, "/%s", cls);
		} else {
			size_t n = (size_t)(end - p);

			if (o + n >= size)
				n = size - o - 1;
			memcpy(out + o, p, n);
			o += n;
		}
		p = end;
	}
	out[o < size ? o : size - 1] = '\0';
}

/*
 * Bounds the endpoint names .driftfs/stats keeps apart: the first
 * MAX_ENDPOINTS distinct ones are themselves, any later one is "other",
 * since a counter is never freed and paths can come from the API (next
 * links). Far more than the API's own endpoints.
 */
void http_stats_endpoint(char *name, size_t size)
{
	size_t i;

	pthread_mutex_lock(&endpoints_lock);
	for (i = 0; i < n_endpoints; i++)
		if (!strcmp(endpoints[i], name))
			break;
	if (i == n_endpoints && n_endpoints < MAX_ENDPOINTS)
		snprintf(endpoints[n_endpoints++], sizeof(endpoints[0]), "%s",
			 name);
	else if (i == n_endpoints)
		snprintf(name, size, "other");
	pthread_mutex_unlock(&endpoints_lock);
}
