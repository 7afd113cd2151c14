// SPDX-License-Identifier: MIT
/*
 * fuzz_render.c: HTML message bodies into transcript text (render.h).
 *
 * Input: 8 bytes of a time in ms, then a sender name, FUZZ_SEP, the HTML
 * body, and optionally FUZZ_SEP and a message type (the whole input is also
 * rendered as one body). Checked:
 * - the text holds no terminal control: no byte below 0x20 but newline and
 *   tab, no DEL, no ESC, no C1 control (U+0080-U+009F as UTF-8);
 * - no leading newline, no more than one blank line in a row, no trailing
 *   newline, space or tab;
 * - a transcript block is one header line "[time] name (role, type):", the
 *   text, and a blank line; the name cannot break the header line;
 * - with a fuzzed type too, the header is still one clean line (the
 *   sanitiser itself has tests/fuzz/fuzz_text.c).
 */
#include "fuzz.h"
#include "render.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

static void check_clean(const char *what, const char *s, size_t n, int lines)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		FUZZ_ASSERT(c >= 0x20 || (lines && c == '\n') || c == '\t',
			    "%s: control byte 0x%02x at %zu", what, c, i);
		FUZZ_ASSERT(c != 0x7f, "%s: DEL at %zu", what, i);
		FUZZ_ASSERT(!(c == 0xc2 && i + 1 < n &&
			      (unsigned char)s[i + 1] >= 0x80 &&
			      (unsigned char)s[i + 1] <= 0x9f),
			    "%s: C1 control U+%04X at %zu", what,
			    (unsigned char)s[i + 1], i);
	}
}

static void check_text(const char *s, size_t n)
{
	check_clean("text", s, n, 1);
	if (!n)
		return;
	FUZZ_ASSERT(s[0] != '\n', "a leading newline");
	FUZZ_ASSERT(s[n - 1] != '\n' && s[n - 1] != ' ' && s[n - 1] != '\t',
		    "trailing white space 0x%02x", (unsigned char)s[n - 1]);
	FUZZ_ASSERT(!memmem(s, n, "\n\n\n", 3), "two blank lines in a row");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf text = BUF_INIT, block = BUF_INIT;
	const char *p, *name, *html, *type;
	size_t n, nlen, hlen, tlen;
	char *all, *nm, *body, *ty;
	int64_t ms = 0;
	const char *nl, *head_end;

	if (size < 8 || size > 65536)
		return 0;
	all = fuzz_dup(data, size);
	FUZZ_ASSERT(!render_html_text(all, &text), "render failed");
	check_text(text.data ? text.data : "", text.len);

	memcpy(&ms, data, 8);
	p = (const char *)data + 8;
	n = size - 8;
	name = fuzz_part(&p, &n, &nlen);
	html = fuzz_part(&p, &n, &hlen);
	type = fuzz_part(&p, &n, &tlen);
	nm = fuzz_dup(name, nlen);
	body = fuzz_dup(html, hlen);
	ty = fuzz_dup(type, tlen);
	FUZZ_ASSERT(!render_transcript_block(ms, nm, "agent", "chat", body,
					     &block),
		    "block failed");
	FUZZ_ASSERT(block.len >= 2 && block.data[0] == '[' &&
			    !memcmp(block.data + block.len - 2, "\n\n", 2),
		    "a block is [header, text, blank line]");
	nl = memchr(block.data, '\n', block.len);
	head_end = memmem(block.data, block.len, " (agent, chat):\n", 16);
	FUZZ_ASSERT(head_end && nl == head_end + 15,
		    "the name broke the header line");
	check_clean("header", block.data, (size_t)(nl - block.data), 0);
	/* The text between header and blank line is the body's text. */
	buf_reset(&text);
	FUZZ_ASSERT(!render_html_text(body, &text), "render failed");
	check_text(text.data ? text.data : "", text.len);
	FUZZ_ASSERT((size_t)(block.data + block.len - (nl + 1)) ==
				text.len + 1 + (text.len ? 1 : 0) &&
			    !memcmp(nl + 1, text.data ? text.data : "",
				    text.len),
		    "the block's text is not the body's");
	/* The type is the API's too. */
	buf_reset(&block);
	FUZZ_ASSERT(!render_transcript_block(ms, nm, "agent", ty, body,
					     &block),
		    "block failed");
	nl = memchr(block.data, '\n', block.len);
	FUZZ_ASSERT(nl && nl > block.data + 3 && nl[-1] == ':' &&
			    nl[-2] == ')',
		    "the type broke the header line");
	check_clean("header", block.data, (size_t)(nl - block.data), 0);
	free(ty);
	free(nm);
	free(body);
	free(all);
	buf_release(&text);
	buf_release(&block);
	return 0;
}
