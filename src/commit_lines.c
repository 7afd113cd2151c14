// SPDX-License-Identifier: MIT
/* commit_lines.c: the planners of the one-a-line files (a contact's tags and
 * timeline, the unsubscribe list), and the tag calls contact.json shares.
 * Pure: no store, no HTTP. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_write.h"
#include "commit_int.h"
#include "json.h"
#include "names.h"

/* Tag changes: one call to add the new ones, one per removed tag. */
int commit_plan_tag_changes(struct commit_plan *p, int64_t id, char **add,
			    size_t nadd, char **del, size_t ndel)
{
	struct api_write_req req;
	int r = 0;

	if (nadd)
		r = commit_plan_add(p, "tag_add", id,
				    api_write_tags_add(id, add, nadd, &req),
				    &req);
	for (size_t i = 0; i < ndel && !r; i++)
		r = commit_plan_add(p, "tag_delete", id,
				    api_write_tag_delete(id, del[i], &req),
				    &req);
	return r;
}

/*
 * Splits text into its non-empty lines (trimmed of \r). A NUL byte is
 * refused: no name or event can hold one, and cutting the line there would
 * send something the user did not write.
 */
static int split_lines(const char *data, size_t len, char ***out, size_t *n)
{
	char **v = NULL;
	size_t cap = 0, line = 0;
	int r = 0;

	*n = 0;
	*out = NULL;
	for (size_t i = 0; i < len && !r;) {
		size_t e = i;

		while (e < len && data[e] != '\n')
			e++;
		size_t l = e - i;

		line++;
		if (memchr(data + i, '\0', l)) {
			r = commit_invalid("line %zu holds a NUL byte", line);
			break;
		}
		while (l && data[i + l - 1] == '\r')
			l--;
		if (l && *n == cap) {
			char **p = realloc(v, (cap ? cap * 2 : 8) * sizeof(*v));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			v = p;
			cap = cap ? cap * 2 : 8;
		}
		if (l && !(v[*n] = strndup(data + i, l)))
			r = -ENOMEM;
		else if (l)
			(*n)++;
		i = e + 1;
	}
	if (r) {
		/* The caller sees nothing to free. */
		commit_free_list(v, *n);
		*n = 0;
		return r;
	}
	*out = v;
	return 0;
}

/*
 * A \u0000 escape in JSON text: cJSON decodes it into a NUL, which cuts
 * the string there, as a raw NUL would.
 */
int commit_refuse_nul_escape(const char *data, size_t len, const char *where)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] != '\\')
			continue;
		if (len - i >= 6 && !memcmp(data + i + 1, "u0000", 5))
			return commit_invalid("%sa \\u0000 escape at offset %zu (text "
				       "cannot hold a NUL)", where, i);
		i++;	/* the escaped character */
	}
	return 0;
}

static int in_list(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

/*
 * Replaces each line of the tags file with the tag it names: the file shows
 * tags %XX-escaped (api.c, names.h), so "a%0Ab" is the tag "a\nb" and
 * "50%25off" is "50%off". A '%' that starts no escape is refused.
 */
static int decode_tag_lines(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct buf b = BUF_INIT;
		int r = names_unescape_buf(&b, v[i], strlen(v[i]));

		if (r == -EINVAL)
			r = commit_invalid("tag line %zu: a '%%' must begin a %%XX "
				    "escape other than %%00 (write %%25 for "
				    "'%%')",
				    i + 1);
		if (r) {
			buf_release(&b);
			return r;
		}
		free(v[i]);
		v[i] = buf_detach(&b, NULL);
	}
	return 0;
}

/*
 * tags: the new set of lines against the one the writer read (both the
 * file's escaped text, so both are decoded before they are compared).
 */
int commit_plan_tags(const struct commit_input *in, struct commit_plan *p)
{
	char **now = NULL, **was = NULL, **add, **del;
	size_t nnow = 0, nwas = 0, nadd = 0, ndel = 0, blen;
	const char *base = commit_edit_base(in, &blen);
	int r;

	r = split_lines(in->data, in->len, &now, &nnow);
	r = r ? r : split_lines(base ? base : "", blen, &was, &nwas);
	r = r ? r : decode_tag_lines(now, nnow);
	r = r ? r : decode_tag_lines(was, nwas);
	if (r) {
		commit_free_list(now, nnow);
		commit_free_list(was, nwas);
		return r;
	}
	add = calloc(nnow + 1, sizeof(*add));
	del = calloc(nwas + 1, sizeof(*del));
	for (size_t i = 0; add && i < nnow; i++)
		if (!in_list(was, nwas, now[i]) && !in_list(add, nadd, now[i]))
			add[nadd++] = strdup(now[i]);
	for (size_t i = 0; del && i < nwas; i++)
		if (!in_list(now, nnow, was[i]))
			del[ndel++] = strdup(was[i]);
	r = add && del
		? commit_plan_tag_changes(p, in->id, add, nadd, del, ndel)
		: -ENOMEM;
	commit_free_list(add, nadd);
	commit_free_list(del, ndel);
	commit_free_list(now, nnow);
	commit_free_list(was, nwas);
	return r;
}

/* timeline: each line an event (text, or JSON {event, createdAt}). */
int commit_plan_timeline(const struct commit_input *in, struct commit_plan *p)
{
	struct api_write_req req;
	char **lines = NULL;
	size_t n = 0;
	cJSON **bodies;
	int r = split_lines(in->data, in->len, &lines, &n);

	if (r)
		return r;
	if (!n) {
		commit_free_list(lines, n);
		return commit_invalid("no event (one a line)");
	}
	bodies = calloc(n, sizeof(*bodies));
	for (size_t i = 0; bodies && i < n && !r; i++) {
		const char *event = lines[i];
		cJSON *j = lines[i][0] == '{' ? json_parse(lines[i],
							   strlen(lines[i]))
					      : NULL;
		int64_t at = 0;

		if (lines[i][0] == '{') {
			const cJSON *f;
			char where[32];

			snprintf(where, sizeof(where), "line %zu: ", i + 1);
			r = commit_refuse_nul_escape(lines[i], strlen(lines[i]), where);
			if (r) {
				cJSON_Delete(j);
				bodies[i] = NULL;
				break;
			}
			event = json_get_str(j, "event");
			f = cJSON_GetObjectItemCaseSensitive(j, "createdAt");
			if (!j || !event || !*event)
				r = commit_invalid("line %zu: JSON events need "
						  "a string 'event'",
					    i + 1);
			else if (f && (json_i64(f, &at) || at <= 0))
				r = commit_invalid("line %zu: 'createdAt' must "
						  "be ms since the epoch",
					    i + 1);
		}
		bodies[i] = r ? NULL : api_write_timeline_body(in->id, event, at);
		cJSON_Delete(j);
	}
	/* All lines are valid before any is sent. */
	for (size_t i = 0; bodies && i < n; i++) {
		if (!r)
			r = commit_plan_add(p, "timeline", in->id,
					    api_write_timeline(bodies[i], &req),
					    &req);
		else
			cJSON_Delete(bodies[i]);
	}
	free(bodies);
	commit_free_list(lines, n);
	return r;
}

/* unsubscribe: one email a line, one call for all. */
int commit_plan_unsubscribe(const struct commit_input *in,
			    struct commit_plan *p)
{
	struct api_write_req req;
	char **lines = NULL;
	size_t n = 0;
	int r = split_lines(in->data, in->len, &lines, &n);

	if (r)
		return r;
	for (size_t i = 0; i < n && !r; i++)
		if (!strchr(lines[i], '@') || strchr(lines[i], ' '))
			r = commit_invalid("line %zu is not an email address",
				    i + 1);
	if (!r && !n)
		r = commit_invalid("no email address (one a line)");
	/* Target 0: the org's one unsubscribe list. */
	if (!r)
		r = commit_plan_add(p, "unsubscribe", 0,
				    api_write_unsubscribe(lines, n, &req),
				    &req);
	commit_free_list(lines, n);
	return r;
}
