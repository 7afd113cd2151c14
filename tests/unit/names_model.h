// SPDX-License-Identifier: MIT
/*
 * names_model.h: the tests' own model of how names.h escapes one
 * character, independent of names.c and text.c; shared by test_names.c and
 * the names fuzzer, which compare the encoder with it.
 */
#ifndef DRIFTFS_NAMES_MODEL_H
#define DRIFTFS_NAMES_MODEL_H

#include <stddef.h>

/*
 * The length of the character at s (n bytes left), and whether names.h
 * escapes it: controls, DEL, '/', '%', C1, bidi controls, U+2028/U+2029,
 * and each maximal piece of invalid UTF-8 (Unicode's table 3-7).
 */
static inline size_t names_model_char(const unsigned char *s, size_t n,
				      int *esc)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t k;
	long cp;

	if (c < 0x80) {
		*esc = c < 0x20 || c == 0x7f || c == '%' || c == '/';
		return 1;
	}
	*esc = 1;
	k = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
	    c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!k)
		return 1;
	lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
	cp = c & (0x7f >> k);
	for (size_t i = 1; i < k; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return i;
		cp = cp << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*esc = cp <= 0x9f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029;
	return k;
}

#endif
