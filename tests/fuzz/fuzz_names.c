// SPDX-License-Identifier: MIT
/*
 * fuzz_names.c: the entry-name encoder and decoder (names.h) as properties.
 *
 * Input: one byte choosing the budget, then any bytes as the API string.
 * - An encoded name is never empty, ".", "..", holds no '/', NUL or control
 *   byte, and fits the budget.
 * - It is cut and hashed ("%~" + 16 hex digits at the end) exactly when the
 *   full encoding would not fit; then decoding says -ENAMETOOLONG, and the
 *   kept prefix of valid UTF-8 is valid UTF-8. Otherwise decode(encode(x))
 *   gives x back.
 * - The input read as a name: decoding succeeds only for the encoder's own
 *   output (encoding the result gives the name back).
 */
#include <errno.h>

#include "../unit/names_model.h"
#include "fuzz.h"
#include "names.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

/* Whether s (n bytes) is well-formed UTF-8 (no overlongs or surrogates). */
static int utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], need, cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		if (n - i <= need)
			return 0;
		for (unsigned k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void check_encode(const char *s, size_t len, size_t budget)
{
	char out[NAMES_MAX + 1];
	struct buf dec = BUF_INIT;
	size_t full = 0, n;
	int hashed, r;

	memset(out, 'x', sizeof(out));
	n = names_encode(s, len, budget, out);
	for (size_t i = 0, k; i < len; i += k) {
		int esc;

		k = names_model_char((const unsigned char *)s + i, len - i, &esc);
		full += esc ? 3 * k : k;
	}
	if ((len == 1 && s[0] == '.') || (len == 2 && !memcmp(s, "..", 2)))
		full = 3 * len;
	FUZZ_ASSERT(n >= 1 && n <= budget, "length %zu, budget %zu", n, budget);
	FUZZ_ASSERT(out[n] == '\0' && strlen(out) == n, "a NUL inside");
	FUZZ_ASSERT(strcmp(out, ".") && strcmp(out, ".."), "a dot entry");
	for (size_t i = 0, k; i < n; i += k) {
		int esc;

		k = names_model_char((const unsigned char *)out + i, n - i, &esc);
		FUZZ_ASSERT(!esc || out[i] == '%', "byte 0x%02x at %zu",
			    (unsigned char)out[i], i);
	}
	hashed = n >= 18 && !memcmp(out + n - 18, "%~", 2);
	FUZZ_ASSERT(hashed == (full > budget),
		    "hashed %d but the full encoding is %zu of %zu", hashed,
		    full, budget);
	r = names_decode(out, &dec);
	if (hashed) {
		FUZZ_ASSERT(r == -ENAMETOOLONG, "a cut name decoded: %d", r);
		for (size_t i = n - 16; i < n; i++)
			FUZZ_ASSERT(strchr("0123456789abcdef", out[i]),
				    "hash digit '%c'", out[i]);
		/* The kept prefix decodes to a prefix of s. */
		if (utf8_valid((const unsigned char *)s, len)) {
			struct buf pre = BUF_INIT;
			char *head = fuzz_dup(out, n - 18);

			/* "." and ".." alone are no names (decode refuses
			 * them), but they are a cut name's fine prefix:
			 * "..%~<hash>" is neither. */
			int dots = !strcmp(head, ".") || !strcmp(head, "..");

			FUZZ_ASSERT(dots || !names_decode(head, &pre) ||
					    n == 18,
				    "the prefix '%s' does not decode", head);
			FUZZ_ASSERT(pre.len <= len &&
					    !memcmp(pre.data ? pre.data : "", s,
						    pre.len),
				    "the prefix is not a prefix of the string");
			FUZZ_ASSERT(utf8_valid((const unsigned char *)(pre.data
								       ? pre.data
								       : ""),
					       pre.len),
				    "cut inside a UTF-8 sequence");
			free(head);
			buf_release(&pre);
		}
	} else {
		FUZZ_ASSERT(r == 0, "own output refused: %d", r);
		FUZZ_ASSERT(dec.len == len &&
				    !memcmp(dec.data ? dec.data : "", s, len),
			    "decode(encode(x)) != x");
	}
	buf_release(&dec);
}

static void check_decode(const char *name)
{
	struct buf dec = BUF_INIT;
	char again[NAMES_MAX + 1];
	int r = names_decode(name, &dec);

	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -ENAMETOOLONG,
		    "unexpected result %d", r);
	if (!r) {
		names_encode(dec.data ? dec.data : "", dec.len, NAMES_MAX,
			     again);
		FUZZ_ASSERT(!strcmp(again, name), "non-canonical '%s' accepted",
			    name);
	}
	buf_release(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t budget;
	char *name;

	if (size < 1 || size > 4096)
		return 0;
	budget = 24 + data[0] % (NAMES_MAX - 24 + 1);
	check_encode((const char *)data + 1, size - 1, budget);
	check_encode((const char *)data + 1, size - 1, NAMES_MAX);
	name = fuzz_dup(data + 1, size - 1);
	check_decode(name);
	free(name);
	return 0;
}
