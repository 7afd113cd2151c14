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

/* Decodes the entity at s (which starts with '&'); returns bytes used. */
static size_t decode_entity(const char *s, struct buf *tmp)
{
	static const struct {
		const char *name;
		unsigned long cp;
	} named[] = {
		{ "amp", '&' },	   { "lt", '<' },     { "gt", '>' },
		{ "quot", '"' },   { "apos", '\'' },  { "nbsp", 0xa0 },
		{ "mdash", 0x2014 }, { "ndash", 0x2013 }, { "hellip", 0x2026 },
		{ "rsquo", 0x2019 }, { "lsquo", 0x2018 }, { "rdquo", 0x201d },
		{ "ldquo", 0x201c }, { "copy", 0xa9 },  { "reg", 0xae },
		{ "trade", 0x2122 }, { "euro", 0x20ac },
	};
	const char *semi = memchr(s, ';', strnlen(s, 13));
	size_t len;

	if (!semi)
		goto literal;
	len = (size_t)(semi - s) + 1;
	if (s[1] == '#') {
		unsigned long cp = 0;
		const char *p = s + 2;
		int base = 10, digits = 0;

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
		add_utf8(tmp, cp);
		return len;
	}
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		size_t n = strlen(named[i].name);

		if (n == len - 2 && !strncmp(s + 1, named[i].name, n)) {
			add_utf8(tmp, named[i].cp);
			return len;
		}
	}
literal:
	buf_addc(tmp, '&');
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
			p += decode_entity(p, &tmp);
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
