/* SPDX-License-Identifier: MIT */
/*
 * render: turning stored rows into the text files of the tree.
 *
 * Pure functions with no I/O, so they are unit-tested directly and fuzzed:
 * no locks, any thread, nothing kept between calls. Each appends to out
 * (the caller's buffer, released by it) and returns 0 or buf.h's -ENOMEM
 * or -EFBIG; on an error out may hold part of the text.
 *
 * render knows the api's row types (api.h), none of its calls.
 */
#ifndef DRIFTFS_RENDER_H
#define DRIFTFS_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

struct api_message;

/*
 * Appends HTML as plain text: tags removed (<br>, </p>, </div> and </li>
 * become line breaks), entities decoded, terminal control characters
 * and escape sequences removed by the sanitiser (text.h, TEXT_LINES),
 * blank runs collapsed, no trailing newline.
 */
int render_html_text(const char *html, struct buf *out);

/* Appends "2026-11-23 10:00:05Z" for a time in ms since the epoch. */
int render_time(int64_t ms, struct buf *out);

/*
 * Appends one transcript block:
 *   [2026-11-23 10:00:05Z] Name (agent|contact|bot, chat|private_note):
 *   body text
 *   <blank line>
 * name and type come from the API and go through the sanitiser as one line
 * each (text.h); role is agent, contact or bot.
 */
int render_transcript_block(int64_t created_ms, const char *name,
			    const char *role, const char *type,
			    const char *html, struct buf *out);

/* The bytes of an author's name buffer, NUL included: a transcript (and
 * a search hit, search.c) cuts a longer name there. */
#define RENDER_NAME_MAX 256

/*
 * Names the author of m for the transcript: writes a NUL-terminated name
 * into name (size bytes) and points *role at a static "agent", "contact"
 * or "bot". Called on render_transcript()'s thread, once per message in
 * order; it is the caller's code (sync looks authors up in the cache, and
 * may wait there), so render itself stays free of I/O.
 */
typedef void (*render_author_fn)(void *ctx, const struct api_message *m,
				 char *name, size_t size, const char **role);

/*
 * The transcript's order, for qsort over struct api_message: oldest
 * createdAt first, then lower id. Pure.
 */
int render_message_order(const void *a, const void *b);

/*
 * Appends the transcript of n messages, in the order given (the caller
 * sorts them with render_message_order): one render_transcript_block()
 * each, named by author.
 */
int render_transcript(const struct api_message *msgs, size_t n,
		      render_author_fn author, void *ctx, struct buf *out);

#endif
