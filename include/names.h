/* SPDX-License-Identifier: MIT */
/*
 * names: turning API strings (emails, external ids, file names) into entry
 * names that cannot break a listing, and back.
 *
 * An entry name never holds '/', NUL or a control character, is never "." or
 * "..", and is at most NAME_MAX bytes. The encoding is percent-escaping of
 * exactly the bytes that would break those rules plus '%' itself, so every
 * ordinary name is shown as it is. An empty string encodes as a lone "%".
 *
 * A string whose encoding would exceed the byte budget is cut (at a UTF-8
 * boundary) and ends in "%~" and 16 hex digits of a hash of the whole string.
 * "%~" never occurs otherwise, so such a name is recognisably not decodable:
 * it must be looked up by its stored encoded form.
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

/* FNV-1a, 64 bits: stable across runs and machines (inode numbers use it). */
uint64_t names_hash64(const void *data, size_t len, uint64_t seed);

#endif
