/* SPDX-License-Identifier: MIT */
/*
 * json: parsing API responses without losing 64-bit ids, and the canonical
 * rendering every JSON file in the tree uses.
 *
 * cJSON keeps numbers as doubles, which cannot hold every 64-bit id (Drift's
 * ids are "long"). json_parse() therefore rewrites every integer literal of
 * more than 15 digits into a cJSON_Raw node holding its exact digits before
 * anyone looks at it; json_i64() reads numbers of either form, and the
 * renderer prints Raw nodes verbatim.
 *
 * Canonical form: keys sorted bytewise, two-space indentation, a final
 * newline; the same object always renders to the same bytes. Strings escape
 * C0 controls and DEL, and also C1 controls (U+0080-U+009F), U+2028/U+2029
 * and the bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069) as
 * \uXXXX: lossless, and what the text sanitiser (text.h) would strip, so
 * cat of a JSON file cannot drive a terminal either. Invalid UTF-8 is left
 * as it is (JSON has no escape for a byte, and changing it would change the
 * value); a lone 0x9B byte is not a CSI to a terminal in UTF-8 mode.
 *
 * Ownership: json_parse() returns a tree the caller frees with cJSON_Delete().
 * Pure functions: no state, no locks, any thread.
 */
#ifndef DRIFTFS_JSON_H
#define DRIFTFS_JSON_H

#include <stdint.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"

/*
 * Parses len bytes. NULL with errno EINVAL on bad JSON (including an object
 * with a key twice: it has no one meaning, and an edit of it could not be
 * told from a change), ENOMEM.
 */
cJSON *json_parse(const char *text, size_t len);

/* Appends the canonical rendering of v (with a final newline). */
int json_render(const cJSON *v, struct buf *out);

/*
 * Reads an integral id or timestamp: a JSON integer, a big-integer Raw node,
 * or a string of decimal digits (some APIs quote ids). -EINVAL otherwise,
 * including fractions and values outside int64_t.
 */
int json_i64(const cJSON *v, int64_t *out);
int json_get_i64(const cJSON *obj, const char *key, int64_t *out);
/* The string member key of obj, or NULL when absent or not a string. */
const char *json_get_str(const cJSON *obj, const char *key);
/* The name of a contact's tag as Drift gives it, a string or an object
 * with a string "name"; NULL for another shape. Points into t. */
const char *json_tag_name(const cJSON *t);

#endif
