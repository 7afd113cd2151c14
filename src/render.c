// SPDX-License-Identifier: MIT
/* render.c: transcript text from HTML message bodies (see render.h). */
#include "render.h"

#include "api.h"
#include "text.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int render_time(int64_t ms, struct buf *out)
{
	time_t t = (time_t)(ms / 1000);
	char tmp[40];
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		return buf_adds(out, "0000-00-00 00:00:00Z");
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%SZ", &tm);
	return buf_adds(out, tmp);
}

/* Appends code point cp as UTF-8 (invalid ones as U+FFFD). */
static int add_utf8(struct buf *out, unsigned long cp)
{
	char u[4];

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80)
		return buf_addc(out, (char)cp);
	if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		return buf_add(out, u, 2);
	}
	if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		return buf_add(out, u, 3);
	}
	u[0] = (char)(0xf0 | cp >> 18);
	u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	u[3] = (char)(0x80 | (cp & 0x3f));
	return buf_add(out, u, 4);
}

/*
 * HTML's named entities for U+00A0 .. U+00FF, in code point order (HTML 4's
 * Latin-1 set, which HTML 5 keeps): latin1[i] is U+00A0 + i.
 */
static const char *const latin1[96] = {
	"nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect",
	"uml", "copy", "ordf", "laquo", "not", "shy", "reg", "macr", "deg",
	"plusmn", "sup2", "sup3", "acute", "micro", "para", "middot", "cedil",
	"sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
	"Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig",
	"Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave", "Iacute",
	"Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute", "Ocirc", "Otilde",
	"Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml",
	"Yacute", "THORN", "szlig", "agrave", "aacute", "acirc", "atilde",
	"auml", "aring", "aelig", "ccedil", "egrave", "eacute", "ecirc", "euml",
	"igrave", "iacute", "icirc", "iuml", "eth", "ntilde", "ograve",
	"oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave",
	"uacute", "ucirc", "uuml", "yacute", "thorn", "yuml",
};

/*
 * The others a mail or chat editor writes: HTML's markup ones and the
 * typographic ones of its "special" and "symbol" sets. None is a control
 * or a blank that hides (no zwj, lrm, rlm: those stay as written).
 */
static const struct {
	const char *name;
	unsigned long cp;
} named[] = {
	{ "amp", '&' },	      { "lt", '<' },	     { "gt", '>' },
	{ "quot", '"' },      { "apos", '\'' },     { "ndash", 0x2013 },
	{ "mdash", 0x2014 },  { "lsquo", 0x2018 },   { "rsquo", 0x2019 },
	{ "sbquo", 0x201a },  { "ldquo", 0x201c },   { "rdquo", 0x201d },
	{ "bdquo", 0x201e },  { "dagger", 0x2020 },  { "Dagger", 0x2021 },
	{ "bull", 0x2022 },   { "hellip", 0x2026 },  { "permil", 0x2030 },
	{ "lsaquo", 0x2039 }, { "rsaquo", 0x203a },  { "euro", 0x20ac },
	{ "trade", 0x2122 },  { "ensp", 0x2002 },    { "emsp", 0x2003 },
	{ "thinsp", 0x2009 }, { "OElig", 0x152 },    { "oelig", 0x153 },
	{ "Scaron", 0x160 },  { "scaron", 0x161 },   { "Yuml", 0x178 },
	{ "fnof", 0x192 },    { "circ", 0x2c6 },     { "tilde", 0x2dc },
	{ "larr", 0x2190 },   { "rarr", 0x2192 },    { "uarr", 0x2191 },
	{ "darr", 0x2193 },   { "harr", 0x2194 },    { "minus", 0x2212 },
	{ "le", 0x2264 },     { "ge", 0x2265 },	     { "ne", 0x2260 },
	{ "infin", 0x221e },  { "prime", 0x2032 },   { "Prime", 0x2033 },
};

/*
 * The code point of the named entity of n bytes at name (exact case, as
 * HTML has it: &Eacute; is not &eacute;), or 0 for a name it does not
 * know.
 */
static unsigned long entity_named(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(latin1) / sizeof(latin1[0]); i++)
		if (strlen(latin1[i]) == n && !memcmp(name, latin1[i], n))
			return 0xa0 + i;
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (strlen(named[i].name) == n &&
		    !memcmp(name, named[i].name, n))
			return named[i].cp;
	return 0;
}

/*
 * Decodes the entity at s (which starts with '&'); returns bytes used. An
 * entity it does not know stays as written. What it decodes is the API's
 * as much as the rest of the body: a numeric one may name a control
 * (&#27;, &#x9b;, &#x202e;), which render_html_text()'s sanitiser removes
 * like a raw one. *r gets buf.h's error, if any.
 */
static size_t decode_entity(const char *s, struct buf *tmp, int *r)
{
	unsigned long cp;
	const char *semi = memchr(s, ';', strnlen(s, 13));
	size_t len;

	if (!semi)
		goto literal;
	len = (size_t)(semi - s) + 1;
	if (s[1] == '#') {
		const char *p = s + 2;
		int base = 10, digits = 0;

		cp = 0;
		if (*p == 'x' || *p == 'X') {
			base = 16;
			p++;
		}
		for (; p < semi; p++, digits++) {
			int v;

			if (*p >= '0' && *p <= '9')
				v = *p - '0';
			else if (base == 16 && *p >= 'a' && *p <= 'f')
				v = *p - 'a' + 10;
			else if (base == 16 && *p >= 'A' && *p <= 'F')
				v = *p - 'A' + 10;
			else
				goto literal;
			cp = cp * (unsigned long)base + (unsigned long)v;
			if (cp > 0x10ffff)
				cp = 0x110000;
		}
		if (!digits)
			goto literal;
		*r = add_utf8(tmp, cp);
		return len;
	}
	cp = entity_named(s + 1, len - 2);
	if (cp == 0xad)
		return len;	/* &shy;: a hint where to break, no text (it
				 * would hide inside a word from grep) */
	if (cp) {
		*r = add_utf8(tmp, cp);
		return len;
	}
literal:
	*r = buf_addc(tmp, '&');
	return 1;
}

/* Whether the tag at s ('<' ...) ends a line: br, p, div, li, tr, h1-6. */
static int tag_breaks_line(const char *s)
{
	static const char *const tags[] = { "br", "p", "/p", "div", "/div",
					    "li", "/li", "tr", "/tr", "h1",
					    "h2", "h3", "/h1", "/h2", "/h3" };

	s++;
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		size_t n = strlen(tags[i]);

		if (!strncasecmp(s, tags[i], n) &&
		    (s[n] == '>' || s[n] == ' ' || s[n] == '/' || s[n] == '\t'))
			return 1;
	}
	return 0;
}

/* Appends clean text with blank-line runs removed. */
static int add_collapsed(struct buf *out, const char *s, size_t len)
{
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		if (s[i] == '\n') {
			/* At most one blank line in a row, none leading. */
			if (out->len == 0 ||
			    (out->len >= 2 && out->data[out->len - 1] == '\n' &&
			     out->data[out->len - 2] == '\n'))
				continue;
		}
		r = buf_addc(out, s[i]);
	}
	return r;
}

int render_html_text(const char *html, struct buf *out)
{
	struct buf tmp = BUF_INIT, clean = BUF_INIT;
	const char *p = html;
	int r = 0;

	while (*p && !r) {
		if (*p == '<') {
			const char *end = strchr(p, '>');

			if (!end) {
				r = buf_adds(&tmp, p);
				break;
			}
			if (tag_breaks_line(p))
				r = buf_addc(&tmp, '\n');
			p = end + 1;
		} else if (*p == '&') {
			p += decode_entity(p, &tmp, &r);
		} else {
			size_t n = strcspn(p, "<&");

			r = buf_add(&tmp, p, n);
			p += n;
		}
	}
	/*
	 * The sanitiser (text.h) runs on the decoded text, so an entity such
	 * as &#27; is caught, and before the blank runs are collapsed, so a
	 * sequence dropped between two newlines cannot keep a run alive.
	 */
	if (!r && tmp.len) {
		tmp.len = text_clean(tmp.data, tmp.len + 1, tmp.data, tmp.len,
				     TEXT_LINES);
		r = add_collapsed(&clean, tmp.data, tmp.len);
	}
	/* No trailing blank lines or spaces. */
	while (!r && clean.len && (clean.data[clean.len - 1] == '\n' ||
				   clean.data[clean.len - 1] == ' ' ||
				   clean.data[clean.len - 1] == '\t'))
		clean.data[--clean.len] = '\0';
	if (!r && clean.len)
		r = buf_add(out, clean.data, clean.len);
	buf_release(&tmp);
	buf_release(&clean);
	return r;
}

int render_transcript_block(int64_t created_ms, const char *name,
			    const char *role, const char *type,
			    const char *html, struct buf *out)
{
	int r;

	r = buf_addc(out, '[');
	r = r ? r : render_time(created_ms, out);
	r = r ? r : buf_adds(out, "] ");
	/* Name and type are the API's: one line each, no controls. */
	r = r ? r : text_clean_buf(out, name, strlen(name), 0);
	r = r ? r : buf_printf(out, " (%s, ", role);
	r = r ? r : text_clean_buf(out, type, strlen(type), 0);
	r = r ? r : buf_adds(out, "):\n");
	r = r ? r : render_html_text(html, out);
	if (!r && out->len && out->data[out->len - 1] != '\n')
		r = buf_addc(out, '\n');
	r = r ? r : buf_addc(out, '\n');
	return r;
}

int render_transcript(const struct api_message *msgs, size_t n,
		      render_author_fn author, void *ctx, struct buf *out)
{
	int r = 0;

	for (size_t i = 0; i < n && !r; i++) {
		const struct api_message *m = &msgs[i];
		char name[RENDER_NAME_MAX];
		const char *role;

		author(ctx, m, name, sizeof(name), &role);
		r = render_transcript_block(m->created, name, role, m->type,
					    m->body, out);
	}
	return r;
}

int render_message_order(const void *a, const void *b)
{
	const struct api_message *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}
