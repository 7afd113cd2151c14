/* SPDX-License-Identifier: MIT */
/*
 * names: turning API strings (emails, external ids, file names) into entry
 * names that cannot break a listing, and back.
 *
 * An entry name never holds '/', NUL or a control character, is never "." or
 * "..", and is at most NAME_MAX bytes. The encoding is percent-escaping of
 * exactly the bytes that would break those rules plus '%' itself, so every
 * ordinary name is shown as it is. An empty string encodes as a lone "%".
 * The characters escaped, each of their bytes as %XX: C0 controls, DEL,
 * '/', '%', C1 controls (U+0080-U+009F, whose UTF-8 a terminal may take as
 * CSI or OSC), the bidi embedding, override and isolate controls
 * (U+202A-U+202E, U+2066-U+2069, which reorder what a listing shows), the
 * line and paragraph separators U+2028/U+2029, and every byte of invalid
 * UTF-8. Since '%' is always escaped, the encoding stays reversible.
 *
 * A string whose encoding would exceed the byte budget is cut (at a UTF-8
 * boundary) and ends in "%~" and 16 hex digits of a hash of the whole string.
 * "%~" never occurs otherwise, so such a name is recognisably not decodable:
 * it must be looked up by its stored encoded form.
 *
 * Pure functions: no state, no locks, any thread.
 */
#ifndef DRIFTFS_NAMES_H
#define DRIFTFS_NAMES_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define NAMES_MAX 255

/*
 * Encodes len bytes of s into out (at least budget + 1 bytes) as a name of at
 * most budget bytes (budget <= NAMES_MAX and >= 24). Returns the length.
 */
size_t names_encode(const char *s, size_t len, size_t budget, char *out);

/*
 * Decodes an entry name into out. -ENAMETOOLONG for a hashed (cut) name,
 * -EINVAL for a name the encoder cannot have produced.
 */
int names_decode(const char *name, struct buf *out);

/*
 * Whether the character at s (n > 0 bytes left) is one the encoding
 * escapes (see above; '/' aside, which only names need escaped), and its
 * length in *len: a whole character, or a maximal piece of invalid UTF-8.
 */
int names_must_escape(const char *s, size_t n, size_t *len);

/*
 * Appends len bytes of s to out with every character names_must_escape()
 * names as %XX per byte; '/' stays. For text whose lines must show each
 * value whole and inert (the tags file). 0 or -ENOMEM.
 */
int names_escape_buf(struct buf *out, const char *s, size_t len);

/*
 * Appends s (len bytes) to out with every %XX decoded; anything else stays
 * as it is. -EINVAL for a '%' not followed by two hex digits, or for %00
 * (no API string holds NUL).
 */
int names_unescape_buf(struct buf *out, const char *s, size_t len);

/* FNV-1a, 64 bits: stable across runs and machines (inode numbers use it). */
uint64_t names_hash64(const void *data, size_t len, uint64_t seed);

#endif
