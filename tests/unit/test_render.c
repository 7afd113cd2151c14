// SPDX-License-Identifier: MIT
/* test_render.c: unit tests of HTML-to-text and transcripts (render.h). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "render.h"
#include "unit.h"

/* Renders html and checks the text is exactly want. */
static void check_text(const char *html, const char *want)
{
	struct buf b = BUF_INIT;

	unit_ctx = html;
	CHECK_EQ_INT(render_html_text(html, &b), 0);
	CHECK_EQ_STR(b.data ? b.data : "", want);
	buf_release(&b);
}

static void test_tags_stripped(void)
{
	check_text("plain", "plain");
	check_text("", "");
	check_text("<b>bold</b> and <i>it</i>", "bold and it");
	check_text("<a href=\"https://x/?a=1&b=2\">link</a>", "link");
	check_text("<span style='color:red'>x</span><img src=y>z", "xz");
	check_text("<p></p>", "");
}

static void test_line_breaks(void)
{
	check_text("a<br>b", "a\nb");
	check_text("a<BR>b", "a\nb");
	check_text("a<br/>b", "a\nb");
	check_text("a<br />b", "a\nb");
	check_text("<p>a</p>b", "a\nb");
	check_text("<p>one</p><p>two</p>", "one\n\ntwo");
	check_text("<p class=\"x\">one</p>", "one");
	check_text("x<div>y</div>z", "x\ny\nz");
	/* Tags that merely start with p or br do not break lines. */
	check_text("a<pre>b</pre>c<brx>d", "abcd");
}

static void test_entities(void)
{
	check_text("&amp; &lt; &gt; &quot; &#39;", "& < > \" '");
	check_text("&#x1F680;", "\xf0\x9f\x9a\x80");
	check_text("&#X1f680;", "\xf0\x9f\x9a\x80");
	check_text("&#65;&#x41;", "AA");
	check_text("a&nbsp;b", "a\xc2\xa0" "b");
	check_text("&lt;br&gt;", "<br>");
	check_text("&amp;lt;", "&lt;");
	/* Invalid code points become U+FFFD, not bytes. */
	check_text("&#0;", "\xef\xbf\xbd");
	check_text("&#xD800;", "\xef\xbf\xbd");
	check_text("&#x110000;", "\xef\xbf\xbd");
}

/* HTML's Latin-1 names, end to end, and the typographic ones. */
static void test_named_entities(void)
{
	check_text("caf&eacute; cr&egrave;me br&ucirc;l&eacute;e",
		   "caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e");
	/* The first and the last of the range, and case is the name's. */
	check_text("&nbsp;&iexcl;&yuml;", "\xc2\xa0\xc2\xa1\xc3\xbf");
	check_text("&Eacute;&eacute;&ETH;&eth;&THORN;&thorn;",
		   "\xc3\x89\xc3\xa9\xc3\x90\xc3\xb0\xc3\x9e\xc3\xbe");
	check_text("&frac12;&times;&divide;&szlig;&AElig;",
		   "\xc2\xbd\xc3\x97\xc3\xb7\xc3\x9f\xc3\x86");
	check_text("&laquo;x&raquo; &copy; &reg; &deg;&plusmn;&micro;",
		   "\xc2\xabx\xc2\xbb \xc2\xa9 \xc2\xae \xc2\xb0\xc2\xb1"
		   "\xc2\xb5");
	check_text("&ndash;&mdash;&lsquo;&rsquo;&ldquo;&rdquo;&hellip;",
		   "\xe2\x80\x93\xe2\x80\x94\xe2\x80\x98\xe2\x80\x99"
		   "\xe2\x80\x9c\xe2\x80\x9d\xe2\x80\xa6");
	/* A soft hyphen is where a line may break, not text: grep finds
	 * the word whole. */
	check_text("extra&shy;ordinary", "extraordinary");
	check_text("&euro;5&trade;&bull;", "\xe2\x82\xac" "5\xe2\x84\xa2"
					   "\xe2\x80\xa2");
	/* Not a name: another case, no ';', a longer or shorter word. */
	check_text("&EACUTE; &eacute &eacutes; &eacut;",
		   "&EACUTE; &eacute &eacutes; &eacut;");
	check_text("&;", "&;");
	/* Decoded text is the API's: a numeric control still goes. */
	check_text("a&#x202e;b&#x2066;c", "abc");
	check_text("a&#x9d;0;title&#x9c;b", "ab");
	check_text("&#8232;x", "x");
}

static void test_unknown_entities_literal(void)
{
	check_text("&bogus;", "&bogus;");
	check_text("AT&T", "AT&T");
	check_text("a & b", "a & b");
	check_text("&", "&");
	check_text("&#;", "&#;");
	check_text("&#xZZ;", "&#xZZ;");
	check_text("&amp", "&amp");
	check_text("fish &chips; &amp; more", "fish &chips; & more");
}

static void test_unterminated_tag(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(render_html_text("a <b", &b), 0);
	CHECK(b.len >= 1 && b.data[0] == 'a');
	CHECK(!b.data || !strchr(b.data, '\n'));
	buf_release(&b);
	CHECK_EQ_INT(render_html_text("<", &b), 0);
	buf_release(&b);
	CHECK_EQ_INT(render_html_text("x<br", &b), 0);
	CHECK(b.len >= 1 && b.data[0] == 'x');
	buf_release(&b);
	check_text("<b>ok</b>", "ok");
}

static void test_controls_stripped(void)
{
	check_text("\x1b[31mred\x1b[0m", "red");
	check_text("\x1b[1;38;5;196mbold\x1b[m!", "bold!");
	check_text("a\x07" "b\x08" "c\x7f" "d\x01", "abcd");
	check_text("a\tb\nc", "a\tb\nc");
	check_text("a\r\nb", "a\nb");
	/* C1 controls, as UTF-8 (U+009B is CSI) or from an entity. */
	check_text("x\xc2\x9b" "1my\xc2\x80z", "xyz");
	check_text("x&#x9b;1my", "xy");
	check_text("&#27;[31mx", "x");
	/*
	 * Nor when a dropped byte sat between the two halves of one (found
	 * by tests/fuzz/fuzz_render.c: c2 7f 94 came out as U+0094).
	 */
	check_text("x\xc2\x7f\x94y", "x??y");
	check_text("x\xc2\x1b[1m\x85y", "x??y");
	check_text("x\xc2&#1;\x9by", "x??y");
	/* Other UTF-8 survives, including U+00A0 (c2 a0). */
	check_text("é\xc2\xa0\xe2\x82\xac", "é\xc2\xa0\xe2\x82\xac");
}

/* Whole sequences go, not just their ESC and BEL (text.h has the rest). */
static void test_sequences_stripped_whole(void)
{
	check_text("a\x1b]0;title\x07" "b", "ab");
	check_text("a\x1b]52;c;ZXZpbA==\x1b\\b", "ab");
	check_text("a&#27;]0;title&#7;b", "ab");
	check_text("a\x1bPq#0;2;0;0;0\x1b\\b", "ab");
	check_text("a\x1b_apc\x1b\\b\x1b" "cc", "abc");
	check_text("a\xc2\x9d" "0;title\xc2\x9c" "b", "ab");
	check_text("a<br>\x1b]0;unterminated", "a");
	/* Bidi overrides cannot reorder the transcript. */
	check_text("a\xe2\x80\xae" "b", "ab");
}

static void test_trailing_and_blank_runs(void)
{
	check_text("hello<br><br>  ", "hello");
	check_text("hello \n\t", "hello");
	check_text("<p>hello</p>\n", "hello");
	check_text("a\n\n\n\n\nb", "a\n\nb");
	check_text("a<br><br><br><br>b", "a\n\nb");
	check_text("<br><br>a", "a");
	check_text("<p>a</p>\n<p>b</p>\n\n<p>c</p>", "a\n\nb\n\nc");
}

static void check_time(int64_t ms, const char *want)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(render_time(ms, &b), 0);
	CHECK_EQ_STR(b.data, want);
	buf_release(&b);
}

static void test_time(void)
{
	struct buf b = BUF_INIT;

	check_time(0, "1970-01-01 00:00:00Z");
	/* date -u -d @1795428005: Mon Nov 23 10:00:05 UTC 2026 */
	check_time(1795428005000LL, "2026-11-23 10:00:05Z");
	check_time(1795428005999LL, "2026-11-23 10:00:05Z");
	check_time(951782400000LL, "2000-02-29 00:00:00Z");
	/* Appends to what the buffer holds. */
	buf_adds(&b, "t=");
	CHECK_EQ_INT(render_time(0, &b), 0);
	CHECK_EQ_STR(b.data, "t=1970-01-01 00:00:00Z");
	buf_release(&b);
}

static void test_transcript_block(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(render_transcript_block(1795428005000LL, "Grace Hopper",
					     "agent", "chat",
					     "<p>Hello world</p>", &b),
		     0);
	CHECK_EQ_STR(b.data, "[2026-11-23 10:00:05Z] Grace Hopper (agent, "
			     "chat):\nHello world\n\n");
	/* A second block follows the first. */
	CHECK_EQ_INT(render_transcript_block(0, "Bot", "bot", "private_note",
					     "a<br>b", &b),
		     0);
	CHECK_EQ_STR(b.data, "[2026-11-23 10:00:05Z] Grace Hopper (agent, "
			     "chat):\nHello world\n\n"
			     "[1970-01-01 00:00:00Z] Bot (bot, private_note):\n"
			     "a\nb\n\n");
	buf_release(&b);

	CHECK_EQ_INT(render_transcript_block(1795428005000LL, "X", "contact",
					     "chat", "", &b),
		     0);
	CHECK_EQ_STR(b.data, "[2026-11-23 10:00:05Z] X (contact, chat):\n\n");
	buf_release(&b);
}

static void test_transcript_name_controls(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(render_transcript_block(
			     1795428005000LL,
			     "Gr\x07" "ace \x1b[31mHop\x1b[0mper\x7f\xc2\x9b",
			     "agent", "chat", "hi", &b),
		     0);
	CHECK_EQ_STR(b.data, "[2026-11-23 10:00:05Z] Grace Hopper (agent, "
			     "chat):\nhi\n\n");
	buf_release(&b);
	/* A newline in a name must not start a line of its own. */
	CHECK_EQ_INT(render_transcript_block(0, "Eve\n[1970-01-01] Mallory",
					     "contact", "chat", "x", &b),
		     0);
	CHECK_EQ_STR(b.data, "[1970-01-01 00:00:00Z] Eve [1970-01-01] Mallory "
			     "(contact, chat):\nx\n\n");
	buf_release(&b);
}

/* The message type is the API's too: it gets no escape into the header. */
static void test_transcript_type_controls(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(render_transcript_block(0, "X", "agent",
					     "chat\x1b]0;title\x07\x1b[2J\n"
					     "\xc2\x9b" "1mx",
					     "hi", &b),
		     0);
	CHECK_EQ_STR(b.data, "[1970-01-01 00:00:00Z] X (agent, chat x):\nhi"
			     "\n\n");
	buf_release(&b);
	/* The name loses whole sequences too, and bidi overrides. */
	CHECK_EQ_INT(render_transcript_block(0, "Eve\x1b]0;title\x07 "
					     "\xe2\x80\xae" "tnega",
					     "contact", "chat", "x", &b),
		     0);
	CHECK_EQ_STR(b.data, "[1970-01-01 00:00:00Z] Eve tnega (contact, "
			     "chat):\nx\n\n");
	buf_release(&b);
}

/* A render_author_fn for the test: contacts by id, the rest as bots. */
static void test_author(void *ctx, const struct api_message *m, char *name,
			size_t size, const char **role)
{
	int *calls = ctx;

	(*calls)++;
	if (!strcmp(m->author_type, "contact")) {
		snprintf(name, size, "Contact %lld", (long long)m->author_id);
		*role = "contact";
	} else {
		snprintf(name, size, "Robo");
		*role = "bot";
	}
}

/* A transcript is its messages' blocks in the order given, each named by
 * the caller's author function, called once a message. */
static void test_transcript(void)
{
	char hi[] = "<p>Hi</p>", ab[] = "a<br>b";
	struct api_message m[2];
	struct buf b = BUF_INIT;
	int calls = 0;

	memset(m, 0, sizeof(m));
	m[0].created = 1795428005000LL;
	m[0].author_id = 7;
	snprintf(m[0].author_type, sizeof(m[0].author_type), "contact");
	snprintf(m[0].type, sizeof(m[0].type), "chat");
	m[0].body = hi;
	snprintf(m[1].author_type, sizeof(m[1].author_type), "user");
	snprintf(m[1].type, sizeof(m[1].type), "private_note");
	m[1].body = ab;
	CHECK_EQ_INT(render_transcript(m, 2, test_author, &calls, &b), 0);
	CHECK_EQ_INT(calls, 2);
	CHECK_EQ_STR(b.data, "[2026-11-23 10:00:05Z] Contact 7 (contact, "
			     "chat):\nHi\n\n"
			     "[1970-01-01 00:00:00Z] Robo (bot, private_note):\n"
			     "a\nb\n\n");
	buf_release(&b);
	/* No messages, no text, no calls. */
	CHECK_EQ_INT(render_transcript(m, 0, test_author, &calls, &b), 0);
	CHECK_EQ_INT(calls, 2);
	CHECK_EQ_INT((int)b.len, 0);
	buf_release(&b);
}

int main(void)
{
	UNIT_RUN(test_tags_stripped);
	UNIT_RUN(test_line_breaks);
	UNIT_RUN(test_entities);
	UNIT_RUN(test_named_entities);
	UNIT_RUN(test_unknown_entities_literal);
	UNIT_RUN(test_unterminated_tag);
	UNIT_RUN(test_controls_stripped);
	UNIT_RUN(test_sequences_stripped_whole);
	UNIT_RUN(test_trailing_and_blank_runs);
	UNIT_RUN(test_time);
	UNIT_RUN(test_transcript_block);
	UNIT_RUN(test_transcript_name_controls);
	UNIT_RUN(test_transcript_type_controls);
	UNIT_RUN(test_transcript);
	return unit_summary();
}
