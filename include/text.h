/* SPDX-License-Identifier: MIT */
/*
 * text: the one filter every untrusted string passes before it reaches a
 * text file or a terminal.
 *
 * Strings from the API (message bodies and types, names, error messages,
 * report values) and everything written to the log, .driftfs/errors and
 * driftctl's output go through text_clean(), so that no API value can drive
 * the user's terminal (OSC 52 clipboard writes, title changes, screen
 * clears). JSON files do not: their renderer (json.h) escapes the same
 * characters as \uXXXX, which keeps the value and shows no control.
 *
 * What is removed, whole:
 * - CSI: ESC [ or U+009B, parameter and intermediate bytes (0x20-0x3F),
 *   and the final byte (0x40-0x7E) if there is one;
 * - string controls: OSC (ESC ] or U+009D), DCS (ESC P, U+0090), SOS
 *   (ESC X, U+0098), PM (ESC ^, U+009E) and APC (ESC _, U+009F), with their
 *   payload, up to and including the terminator: ST (ESC \ or U+009C), BEL
 *   for OSC, or CAN/SUB (which abort a sequence in a terminal). An ESC that
 *   is not ST also ends the payload and starts a sequence of its own. An
 *   unterminated one runs to the end of the input (never beyond), since a
 *   terminal would swallow that text too and a remnant such as "]0;title"
 *   tells the reader nothing;
 * - other escape sequences: ESC, intermediates 0x20-0x2F, a final
 *   0x30-0x7E (ESC c, ESC ( B, ESC 7 ...); an ESC before anything else goes
 *   alone;
 * - every other C0 control, DEL and C1 control (U+0080-U+009F as UTF-8);
 * - the bidi embedding, override and isolate controls U+202A-U+202E and
 *   U+2066-U+2069, which can make a line read in another order than it is
 *   stored (a header naming someone else). Marks (U+200E, U+200F) stay:
 *   they cannot reorder what follows them.
 *
 * What is changed: invalid UTF-8 (a stray byte, an overlong form, a
 * surrogate, a sequence cut short) becomes one '?' per maximal invalid
 * piece, not U+FFFD, so the output is never longer than the input and can
 * be cleaned in place. With TEXT_LINES newline and tab stay, CR goes, and
 * the line and paragraph separators U+2028 and U+2029 become newlines.
 * Without it (a single line: a header, a log line) newline, CR and tab
 * become spaces and U+2028/U+2029 too.
 *
 * The output is valid UTF-8 with none of the above, and cleaning it again
 * changes nothing. Pure functions, no locks: safe from any thread.
 */
#ifndef DRIFTFS_TEXT_H
#define DRIFTFS_TEXT_H

#include <stddef.h>

#include "buf.h"

/* Keep newlines and tabs (text files); otherwise the result is one line. */
#define TEXT_LINES 0x1u

/*
 * Cleans len bytes of src into dst (size bytes, size >= 1) and returns the
 * length written; dst is NUL-terminated. dst may be src (cleaning in
 * place), since the output never runs ahead of the input. If the result
 * does not fit in size - 1 bytes it is cut at a character boundary, so a
 * cut never leaves half a character. NUL bytes in src are dropped.
 */
size_t text_clean(char *dst, size_t size, const char *src, size_t len,
		  unsigned flags);

/*
 * Decodes the UTF-8 character at s (n > 0 bytes left): returns its length
 * and sets *cp; for invalid UTF-8, the length of the maximal invalid piece
 * (one byte, or a lead byte and the continuation bytes that could still
 * have belonged to it) with *cp -1. Overlong forms, surrogates and values
 * past U+10FFFF are invalid.
 */
size_t text_utf8_decode(const char *s, size_t n, long *cp);

/* Whether cp is a bidi embedding, override or isolate control. */
int text_is_bidi_control(long cp);

/* Appends the cleaned len bytes of s to out. Returns 0 or -ENOMEM. */
int text_clean_buf(struct buf *out, const char *s, size_t len,
		   unsigned flags);

/*
 * Percent-encodes s as a query string or form value does: every byte but
 * the unreserved ones (ALPHA, DIGIT, "-._~") as %XX. A new string the
 * caller frees; NULL when out of memory (what was built is scrubbed, since
 * s may be a secret).
 */
char *text_percent_encode(const char *s);

#endif
