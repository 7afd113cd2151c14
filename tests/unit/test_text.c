// SPDX-License-Identifier: MIT
/* test_text.c: unit tests of the terminal-text sanitiser (text.h). */
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "unit.h"

/* Cleans in (n bytes) with flags and checks the result is want. */
static void check_n(const char *in, size_t n, unsigned flags,
		    const char *want)
{
	struct buf b = BUF_INIT;
	char *copy = malloc(n + 1);

	unit_ctx = in;
	CHECK_EQ_INT(text_clean_buf(&b, in, n, flags), 0);
	CHECK_EQ_MEM(b.data ? b.data : "", b.len, want, strlen(want));
	/* The same in place, and cleaning again changes nothing. */
	if (copy) {
		size_t m;

		memcpy(copy, in, n);
		m = text_clean(copy, n + 1, copy, n, flags);
		CHECK_EQ_MEM(copy, m, want, strlen(want));
		m = text_clean(copy, m + 1, copy, m, flags);
		CHECK_EQ_MEM(copy, m, want, strlen(want));
	}
	free(copy);
	buf_release(&b);
}

static void check(const char *in, const char *want)
{
	check_n(in, strlen(in), TEXT_LINES, want);
}

static void check_line(const char *in, const char *want)
{
	check_n(in, strlen(in), 0, want);
}

static void test_plain_text_unchanged(void)
{
	check("", "");
	check("hello, world", "hello, world");
	check("a\tb\nc", "a\tb\nc");
	check("é\xc2\xa0\xe2\x82\xac\xf0\x9f\x9a\x80", "é\xc2\xa0\xe2\x82\xac"
						      "\xf0\x9f\x9a\x80");
	/* Brackets and letters that follow no ESC are text. */
	check("]0;title [2J P+q ^x _y \\", "]0;title [2J P+q ^x _y \\");
}

static void test_csi(void)
{
	check("\x1b[31mred\x1b[0m", "red");
	check("\x1b[1;38;5;196mbold\x1b[m!", "bold!");
	check("a\x1b[2Jb\x1b[Hc", "abc");
	check("a\x1b[?1049hb", "ab");
	check("a\x1b[ qb", "ab");		/* an intermediate byte */
	/* 8-bit CSI, as UTF-8 U+009B. */
	check("a\xc2\x9b" "2Jb", "ab");
	check("a\xc2\x9b" "31;1mb", "ab");
	/* A CSI ends at a byte that cannot be in one. */
	check("a\x1b[12\xc3\xa9" "b", "a\xc3\xa9" "b");
	check("a\x1b[1\nb", "a\nb");
}

static void test_osc(void)
{
	/* Title, clipboard (OSC 52), hyperlink: nothing of them is left. */
	check("a\x1b]0;title\x07" "b", "ab");
	check("a\x1b]2;title\x1b\\b", "ab");
	check("a\x1b]52;c;ZXZpbA==\x07" "b", "ab");
	check("\x1b]8;;https://evil/\x1b\\link\x1b]8;;\x1b\\", "link");
	/* 8-bit OSC and ST, as UTF-8. */
	check("a\xc2\x9d" "0;title\xc2\x9c" "b", "ab");
	check("a\xc2\x9d" "0;title\x07" "b", "ab");
	check("a\x1b]0;title\xc2\x9c" "b", "ab");
	/* CAN and SUB abort it, as in a terminal. */
	check("a\x1b]0;t\x18" "b", "ab");
	check("a\x1b]0;t\x1a" "b", "ab");
}

static void test_string_controls(void)
{
	check("a\x1bP1$r0m\x1b\\b", "ab");		/* DCS */
	check("a\x1bXsos\x1b\\b", "ab");		/* SOS */
	check("a\x1b^pm\x1b\\b", "ab");		/* PM */
	check("a\x1b_apc\x1b\\b", "ab");		/* APC */
	check("a\xc2\x90" "dcs\xc2\x9c" "b", "ab");
	check("a\xc2\x98" "sos\xc2\x9c" "b", "ab");
	check("a\xc2\x9e" "pm\xc2\x9c" "b", "ab");
	check("a\xc2\x9f" "apc\xc2\x9c" "b", "ab");
	/* BEL ends only an OSC. */
	check("a\x1bPx\x07y\x1b\\b", "ab");
	/* An ESC that is not ST ends the payload and starts its own. */
	check("a\x1bPx\x1b[31mb", "ab");
	check("a\x1b]0;t\x1b" "cb", "ab");
}

static void test_unterminated_and_split(void)
{
	/* To the end of the string, and not a byte further. */
	check("a\x1b]0;title", "a");
	check("a\x1b]0;title\x1b", "a");
	check("a\x1bPpayload", "a");
	check("a\xc2\x9d" "0;t", "a");
	check("a\x1b[", "a");
	check("a\x1b[12;", "a");
	check("a\x1b", "a");
	check("a\xc2\x9b", "a");
	check("\x1b", "");
	/* Half a C1 character: not a control, but not text either. */
	check("a\xc2", "a?");
	/* Two halves of a C1 with something between do not join. */
	check("x\xc2\x7f\x94y", "x??y");
	check("x\xc2\x1b[1m\x85y", "x??y");
	check("x\xc2\x01\x9by", "x??y");
	/* ESC [ split by a dropped byte is not a CSI, and leaves no ESC. */
	check("a\x1b\x01[2Jb", "a[2Jb");
	/* The remnant of the brief: no "]0;title" left behind. */
	check("x\x1b]0;title\x07y\x1b]0;t2\x1b\\z", "xyz");
}

static void test_two_byte_escapes(void)
{
	check("a\x1b" "cb", "ab");		/* RIS */
	check("a\x1b" "7b\x1b" "8c", "abc");	/* save, restore */
	check("a\x1b(Bb", "ab");		/* designate G0 */
	check("a\x1b#8b", "ab");		/* DECALN */
	check("a\x1b=b\x1b>c", "abc");
	check("a\x1b" "Db\x1bMc", "abc");	/* 7-bit IND, RI */
	/* ESC before a non-ASCII character goes alone. */
	check("a\x1b\xc3\xa9", "a\xc3\xa9");
}

static void test_c0_c1_del(void)
{
	check("a\x07" "b\x08" "c\x7f" "d\x01" "e", "abcde");
	check_n("a\0b", 3, TEXT_LINES, "ab");
	check("a\r\nb", "a\nb");
	check("a\x0b" "b\x0c" "c", "abc");
	/* Every C1 control, as UTF-8, goes. */
	for (unsigned c = 0x80; c <= 0x9f; c++) {
		char in[8] = { 'a', (char)0xc2, (char)c, 'b', 0 };

		/* Those that open a sequence take "b" with them. */
		check(in, c == 0x9b || c == 0x9d || c == 0x90 || c == 0x98 ||
				  c == 0x9e || c == 0x9f
			  ? "a"
			  : "ab");
	}
	/* U+00A0 right after the C1 range is text. */
	check("\xc2\xa0", "\xc2\xa0");
}

static void test_single_line(void)
{
	check_line("a\nb\tc\rd", "a b c d");
	check_line("one\r\ntwo", "one  two");
	check_line("a\x1b]0;t\x07\nb", "a b");
	check_line("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a b c");
}

static void test_invalid_utf8(void)
{
	check("a\xff" "b", "a?b");
	check("a\x80" "b", "a?b");			/* stray continuation */
	check("a\xc0\xaf" "b", "a??b");		/* overlong '/' */
	check("a\xe0\x80\xaf" "b", "a???b");		/* overlong */
	check("a\xed\xa0\x80" "b", "a???b");		/* a surrogate */
	check("a\xf4\x90\x80\x80" "b", "a????b");	/* past U+10FFFF */
	check("a\xe2\x82" "b", "a?b");			/* cut short */
	check("a\xf0\x9f\x9a" "b", "a?b");
	check("a\xe2\x82", "a?");
}

static void test_separators_and_bidi(void)
{
	check("a\xe2\x80\xa8" "b\xe2\x80\xa9" "c", "a\nb\nc");
	/* Overrides, embeddings and isolates go ... */
	check("x\xe2\x80\xae" "evil\xe2\x80\xac" "y", "xevily");
	check("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xad", "");
	check("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9z", "z");
	/* ... marks and other formatting stay. */
	check("\xe2\x80\x8e\xe2\x80\x8f\xe2\x80\x8b", "\xe2\x80\x8e\xe2\x80\x8f"
						     "\xe2\x80\x8b");
	check("\xe2\x81\xa5\xe2\x81\xaa", "\xe2\x81\xa5\xe2\x81\xaa");
}

static void test_cut_on_boundary(void)
{
	char out[8];
	size_t n;

	/* "aé€" is 1 + 2 + 3 bytes: 5 bytes of room keep "aé" only. */
	n = text_clean(out, 6, "a\xc3\xa9\xe2\x82\xac", 6, 0);
	CHECK_EQ_MEM(out, n, "a\xc3\xa9", 3);
	CHECK(out[n] == '\0');
	n = text_clean(out, 7, "a\xc3\xa9\xe2\x82\xac", 6, 0);
	CHECK_EQ_MEM(out, n, "a\xc3\xa9\xe2\x82\xac", 6);
	n = text_clean(out, 1, "abc", 3, 0);
	CHECK_EQ_INT((int)n, 0);
	CHECK(out[0] == '\0');
	/* Dropped sequences take no room. */
	n = text_clean(out, 4, "\x1b[2Jabcdef", 10, 0);
	CHECK_EQ_MEM(out, n, "abc", 3);
}

int main(void)
{
	UNIT_RUN(test_plain_text_unchanged);
	UNIT_RUN(test_csi);
	UNIT_RUN(test_osc);
	UNIT_RUN(test_string_controls);
	UNIT_RUN(test_unterminated_and_split);
	UNIT_RUN(test_two_byte_escapes);
	UNIT_RUN(test_c0_c1_del);
	UNIT_RUN(test_single_line);
	UNIT_RUN(test_invalid_utf8);
	UNIT_RUN(test_separators_and_bidi);
	UNIT_RUN(test_cut_on_boundary);
	return unit_summary();
}
