// SPDX-License-Identifier: MIT
/* render.c: transcript text from HTML message bodies (see render.h). */
#include "render.h"

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

/* Appends text with control characters and blank-line runs removed. */
static int add_clean(struct buf *out, const char *s, size_t len)
{
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			continue;
		if (c == 0x1b) {
			/* Drop the whole escape sequence, not just ESC. */
			if (i + 1 < len && s[i + 1] == '[') {
				i += 2;
				while (i < len && !((unsigned char)s[i] >= 0x40 &&
						    (unsigned char)s[i] <= 0x7e))
					i++;
			}
			continue;
		}
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
			continue;
		/*
		 * C1 controls (U+0080-U+009F) are terminal controls too. The
		 * check is on the output, so that a byte dropped between the
		 * two halves cannot join them.
		 */
		if (c >= 0x80 && c <= 0x9f && out->len &&
		    (unsigned char)out->data[out->len - 1] == 0xc2) {
			out->data[--out->len] = '\0';
			continue;
		}
		if (c == '\n') {
			/* At most one blank line in a row, none leading. */
			if (out->len == 0 ||
			    (out->len >= 2 && out->data[out->len - 1] == '\n' &&
			     out->data[out->len - 2] == '\n'))
				continue;
		}
		r = buf_addc(out, (char)c);
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
	if (!r && tmp.len)
		r = add_clean(&clean, tmp.data, tmp.len);
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
	struct buf clean_name = BUF_INIT;
	int r;

	r = buf_addc(out, '[');
	r = r ? r : render_time(created_ms, out);
	r = r ? r : buf_adds(out, "] ");
	r = r ? r : add_clean(&clean_name, name, strlen(name));
	for (size_t i = 0; !r && i < clean_name.len; i++)
		if (clean_name.data[i] == '\n' || clean_name.data[i] == '\t')
			clean_name.data[i] = ' ';
	r = r ? r : buf_add(out, clean_name.data ? clean_name.data : "",
			    clean_name.len);
	r = r ? r : buf_printf(out, " (%s, %s):\n", role, type);
	r = r ? r : render_html_text(html, out);
	if (!r && out->len && out->data[out->len - 1] != '\n')
		r = buf_addc(out, '\n');
	r = r ? r : buf_addc(out, '\n');
	buf_release(&clean_name);
	return r;
}
