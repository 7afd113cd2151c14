/* SPDX-License-Identifier: MIT */
/*
 * render: turning stored rows into the text files of the tree.
 *
 * Pure functions with no I/O, so they are unit-tested directly and fuzzed.
 */
#ifndef DRIFTFS_RENDER_H
#define DRIFTFS_RENDER_H

#include <stdint.h>

#include "buf.h"

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

#endif
