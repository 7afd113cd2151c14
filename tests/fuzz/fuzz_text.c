// SPDX-License-Identifier: MIT
/*
 * fuzz_text.c: the terminal-text sanitiser (text.h).
 *
 * Input: one flags byte (bit 0: TEXT_LINES), one byte of room for the cut,
 * then the text. Checked, for the text cleaned whole, cut, and in place:
 * - no ESC, no C1 control (U+0080-U+009F), no C0 control but newline and
 *   tab (and those only with TEXT_LINES), no DEL, no bidi override or
 *   isolate, no U+2028/U+2029;
 * - valid UTF-8 (no overlong form, surrogate or value past U+10FFFF);
 * - never longer than the input; a cut is a prefix of the whole result
 *   that ends at a character boundary and fits the room;
 * - cleaning in place gives the same bytes, and cleaning again changes
 *   nothing.
 */
#include "fuzz.h"
#include "text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

/* Checks s (n bytes) and returns the number of characters in it. */
static size_t check_clean(const unsigned char *s, size_t n, int lines)
{
	size_t i = 0, chars = 0;

	while (i < n) {
		unsigned char c = s[i];
		unsigned long cp;
		size_t len;

		FUZZ_ASSERT(c != 0x1b, "ESC at %zu", i);
		FUZZ_ASSERT(c >= 0x20 || (lines && (c == '\n' || c == '\t')),
			    "control 0x%02x at %zu", c, i);
		FUZZ_ASSERT(c != 0x7f, "DEL at %zu", i);
		if (c < 0x80) {
			i++;
			chars++;
			continue;
		}
		FUZZ_ASSERT(c >= 0xc2 && c <= 0xf4, "bad lead 0x%02x at %zu",
			    c, i);
		len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		FUZZ_ASSERT(i + len <= n, "a character cut short at %zu", i);
		cp = c & (0x7f >> len);
		for (size_t k = 1; k < len; k++) {
			FUZZ_ASSERT((s[i + k] & 0xc0) == 0x80,
				    "bad continuation at %zu", i + k);
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		FUZZ_ASSERT(cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u
							   : 0x10000u),
			    "overlong U+%04lX at %zu", cp, i);
		FUZZ_ASSERT(cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff),
			    "invalid U+%04lX at %zu", cp, i);
		FUZZ_ASSERT(cp > 0x9f, "C1 control U+%04lX at %zu", cp, i);
		FUZZ_ASSERT(cp != 0x2028 && cp != 0x2029,
			    "separator U+%04lX at %zu", cp, i);
		FUZZ_ASSERT(!(cp >= 0x202a && cp <= 0x202e) &&
				    !(cp >= 0x2066 && cp <= 0x2069),
			    "bidi control U+%04lX at %zu", cp, i);
		i += len;
		chars++;
	}
	return chars;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf whole = BUF_INIT, again = BUF_INIT;
	unsigned flags;
	size_t room, n, cut_len, m;
	char *in, *cut;
	const char *text;

	if (size < 2 || size > 65536)
		return 0;
	flags = data[0] & 1 ? TEXT_LINES : 0;
	room = (size_t)data[1] + 1;
	text = (const char *)data + 2;
	n = size - 2;

	FUZZ_ASSERT(!text_clean_buf(&whole, text, n, flags), "clean failed");
	FUZZ_ASSERT(whole.len <= n, "longer than the input: %zu > %zu",
		    whole.len, n);
	check_clean((const unsigned char *)(whole.data ? whole.data : ""),
		    whole.len, flags & TEXT_LINES);

	/* Again: nothing changes. */
	FUZZ_ASSERT(!text_clean_buf(&again, whole.data ? whole.data : "",
				    whole.len, flags),
		    "clean failed");
	FUZZ_ASSERT(again.len == whole.len &&
			    !memcmp(again.data ? again.data : "",
				    whole.data ? whole.data : "", whole.len),
		    "cleaning twice changed the text");

	/* In place: the same bytes. */
	in = fuzz_dup(text, n);
	m = text_clean(in, n + 1, in, n, flags);
	FUZZ_ASSERT(m == whole.len && !memcmp(in, whole.data ? whole.data : "",
					      m),
		    "in place differs");
	FUZZ_ASSERT(in[m] == '\0', "not NUL-terminated");

	/* Cut: a prefix of the whole, at a boundary, within the room. */
	cut = malloc(room);
	if (!cut)
		abort();
	cut_len = text_clean(cut, room, text, n, flags);
	FUZZ_ASSERT(cut_len < room && cut[cut_len] == '\0',
		    "the cut overflows its room");
	FUZZ_ASSERT(cut_len <= whole.len &&
			    !memcmp(cut, whole.data ? whole.data : "", cut_len),
		    "the cut is not a prefix of the whole");
	check_clean((const unsigned char *)cut, cut_len, flags & TEXT_LINES);
	if (cut_len < whole.len)
		FUZZ_ASSERT(((unsigned char)whole.data[cut_len] & 0xc0) != 0x80,
			    "cut inside a character");
	free(cut);
	free(in);
	buf_release(&whole);
	buf_release(&again);
	return 0;
}
