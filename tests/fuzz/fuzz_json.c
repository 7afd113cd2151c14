// SPDX-License-Identifier: MIT
/*
 * fuzz_json.c: exact parsing and canonical rendering (json.h).
 *
 * Input: any bytes as a JSON text. When json_parse() accepts it:
 * - the canonical rendering parses back and renders to the same bytes;
 * - it holds no raw control byte (strings are escaped), ends in a newline;
 * - json_parse() read the same document as cJSON itself: same types
 *   (a big-integer Raw node where cJSON has a number, with the same value),
 *   same keys and strings, so no string can pass for a number or inject
 *   text into the rendering, and every Raw node is an integer literal;
 * - json_i64() of a Raw node that fits gives exactly its digits.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static void check_raw(const cJSON *v)
{
	const char *s = v->valuestring, *d = s + (s[0] == '-');
	int64_t n;

	FUZZ_ASSERT(strlen(d) > 15 && strspn(d, "0123456789") == strlen(d) &&
			    d[0] != '0',
		    "Raw node '%s' is not a big integer literal", s);
	if (!json_i64(v, &n)) {
		char back[32];

		snprintf(back, sizeof(back), "%" PRId64, n);
		FUZZ_ASSERT(!strcmp(back, s), "json_i64 read %s as %s", s,
			    back);
	}
}

/* Walks ours (json_parse) and theirs (cJSON) side by side. */
static void same_tree(const cJSON *a, const cJSON *b, int depth)
{
	for (; a || b; a = a->next, b = b->next) {
		FUZZ_ASSERT(a && b, "different number of members at depth %d",
			    depth);
		FUZZ_ASSERT((a->string == NULL) == (b->string == NULL) &&
				    (!a->string || !strcmp(a->string, b->string)),
			    "key '%s' read as '%s'", b->string ? b->string : "",
			    a->string ? a->string : "");
		if (cJSON_IsRaw(a)) {
			FUZZ_ASSERT(cJSON_IsNumber(b),
				    "'%s' became a Raw number", b->valuestring
								? b->valuestring
								: "?");
			check_raw(a);
			FUZZ_ASSERT(strtod(a->valuestring, NULL) == b->valuedouble,
				    "big integer %s changed value",
				    a->valuestring);
			continue;
		}
		FUZZ_ASSERT((a->type & 0xff) == (b->type & 0xff),
			    "type %d read as %d", b->type & 0xff, a->type & 0xff);
		if (cJSON_IsString(a))
			FUZZ_ASSERT(!strcmp(a->valuestring, b->valuestring),
				    "string changed");
		if (cJSON_IsNumber(a))
			FUZZ_ASSERT(a->valuedouble == b->valuedouble ||
					    (isnan(a->valuedouble) &&
					     isnan(b->valuedouble)),
				    "number changed");
		same_tree(a->child, b->child, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out = BUF_INIT;
	cJSON *v, *theirs;

	if (size > 65536)
		return 0;
	v = json_parse((const char *)data, size);
	if (!v)
		return 0;
	FUZZ_ASSERT(!json_render(v, &out), "cannot render");
	FUZZ_ASSERT(out.len && out.data[out.len - 1] == '\n', "no final newline");
	for (size_t i = 0; i < out.len; i++)
		FUZZ_ASSERT((unsigned char)out.data[i] >= 0x20 ||
				    out.data[i] == '\n',
			    "raw control byte 0x%02x in the rendering",
			    (unsigned char)out.data[i]);
	fuzz_assert_canonical("json", out.data, out.len);
	theirs = cJSON_ParseWithLength((const char *)data, size);
	if (theirs)
		same_tree(v, theirs, 0);
	cJSON_Delete(theirs);
	cJSON_Delete(v);
	buf_release(&out);
	return 0;
}
