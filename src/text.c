// SPDX-License-Identifier: MIT
/* text.c: the sanitiser for untrusted text bound for a terminal (text.h). */
#include "text.h"

#include <string.h>

#include "secret.h"

#define ESC 0x1b
#define BEL 0x07
#define CAN 0x18
#define SUB 0x1a

/*
 * Decodes the UTF-8 character at s (n > 0 bytes left, s[0] >= 0x80).
 * Returns its length and sets *cp, or, for invalid input, returns the
 * length of the maximal invalid piece (the lead byte and the continuation
 * bytes that could still have been part of a valid character) with *cp
 * set to -1. Overlong forms, surrogates and values past U+10FFFF are
 * invalid (the ranges of Unicode's table 3-7).
 */
static size_t utf8_decode(const unsigned char *s, size_t n, long *cp)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;
	long v;

	*cp = -1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 1;
	}
	for (i = 1; i < need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi)
			return i;
		v = v << 6 | (s[i] & 0x3f);
		lo = 0x80;
		hi = 0xbf;
	}
	*cp = v;
	return need;
}

/* Skips a CSI's parameters, intermediates and final byte from s[i]. */
static size_t skip_csi(const unsigned char *s, size_t len, size_t i)
{
	while (i < len && s[i] >= 0x20 && s[i] <= 0x3f)
		i++;
	if (i < len && s[i] >= 0x40 && s[i] <= 0x7e)
		i++;
	return i;
}

/*
 * Skips a string control's payload from s[i] up to and including its
 * terminator (see text.h). An ESC other than ST is left for the caller.
 */
static size_t skip_string(const unsigned char *s, size_t len, size_t i,
			  int osc)
{
	for (; i < len; i++) {
		if ((osc && s[i] == BEL) || s[i] == CAN || s[i] == SUB)
			return i + 1;
		if (s[i] == ESC)
			return i + 1 < len && s[i + 1] == '\\' ? i + 2 : i;
		if (s[i] == 0xc2 && i + 1 < len && s[i + 1] == 0x9c)
			return i + 2;
	}
	return len;
}

/* Skips the rest of the sequence that ESC at s[i - 1] begins. */
static size_t skip_escape(const unsigned char *s, size_t len, size_t i)
{
	if (i >= len)
		return i;
	switch (s[i]) {
	case '[':
		return skip_csi(s, len, i + 1);
	case ']':
		return skip_string(s, len, i + 1, 1);
	case 'P':
	case 'X':
	case '^':
	case '_':
		return skip_string(s, len, i + 1, 0);
	default:
		break;
	}
	while (i < len && s[i] >= 0x20 && s[i] <= 0x2f)
		i++;
	if (i < len && s[i] >= 0x30 && s[i] <= 0x7e)
		i++;
	return i;
}

/* Skips what the C1 control cp (its bytes end before s[i]) begins. */
static size_t skip_c1(const unsigned char *s, size_t len, size_t i, long cp)
{
	switch (cp) {
	case 0x9b:
		return skip_csi(s, len, i);
	case 0x9d:
		return skip_string(s, len, i, 1);
	case 0x90:
	case 0x98:
	case 0x9e:
	case 0x9f:
		return skip_string(s, len, i, 0);
	default:
		return i;
	}
}

int text_is_bidi_control(long cp)
{
	return (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t text_utf8_decode(const char *s, size_t n, long *cp)
{
	const unsigned char *u = (const unsigned char *)s;

	if (u[0] < 0x80) {
		*cp = u[0];
		return 1;
	}
	return utf8_decode(u, n, cp);
}

size_t text_clean(char *dst, size_t size, const char *src, size_t len,
		  unsigned flags)
{
	const unsigned char *s = (const unsigned char *)src;
	int lines = !!(flags & TEXT_LINES);
	size_t i = 0, o = 0;

	while (i < len) {
		const unsigned char *from = s + i;
		unsigned char c = s[i];
		size_t n = 1;
		char sub = 0;
		long cp;

		/*
		 * Decide what the character at i becomes (n bytes copied
		 * from s + i, or the one byte sub, or nothing) before
		 * anything is written: in place, dst + o may be src + i.
		 */
		if (c == ESC) {
			i = skip_escape(s, len, i + 1);
			continue;
		}
		if (c < 0x20 || c == 0x7f) {
			i++;
			if (c == '\n' || c == '\t')
				sub = lines ? (char)c : ' ';
			else if (c == '\r' && !lines)
				sub = ' ';
			else
				continue;
			from = NULL;
		} else if (c >= 0x80) {
			n = utf8_decode(s + i, len - i, &cp);
			i += n;
			if (cp < 0) {
				sub = '?';
				from = NULL;
			} else if (cp <= 0x9f) {
				i = skip_c1(s, len, i, cp);
				continue;
			} else if (cp == 0x2028 || cp == 0x2029) {
				sub = lines ? '\n' : ' ';
				from = NULL;
			} else if (text_is_bidi_control(cp)) {
				continue;
			}
		} else {
			i++;
		}
		if (!from)
			n = 1;
		/* A character that does not fit ends the text: the cut. */
		if (o + n > size - 1)
			break;
		if (from)
			memmove(dst + o, from, n);
		else
			dst[o] = sub;
		o += n;
	}
	dst[o] = '\0';
	return o;
}

int text_clean_buf(struct buf *out, const char *s, size_t len,
		   unsigned flags)
{
	int r = buf_grow(out, len);

	if (r)
		return r;
	out->len += text_clean(out->data + out->len, len + 1, s, len, flags);
	return 0;
}

char *text_percent_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		int r;

		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
			r = buf_addc(&b, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			r = buf_add(&b, e, 3);
		}
		if (r) {
			secret_scrub(b.data, b.len);
			buf_release(&b);
			return NULL;
		}
	}
	return buf_detach(&b, NULL);
}
