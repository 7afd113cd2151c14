// SPDX-License-Identifier: MIT
/* names.c: reversible encoding of API strings as entry names (see names.h). */
#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

#define HASH_SUFFIX 18 /* "%~" + 16 hex digits */

uint64_t names_hash64(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int names_must_escape(const char *s, size_t n, size_t *len)
{
	unsigned char c = (unsigned char)s[0];
	long cp;

	if (c < 0x80) {
		*len = 1;
		return c < 0x20 || c == 0x7f || c == '%';
	}
	*len = text_utf8_decode(s, n, &cp);
	return cp < 0 || cp <= 0x9f || cp == 0x2028 || cp == 0x2029 ||
	       text_is_bidi_control(cp);
}

static void put_escaped(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[3 * i] = '%';
		out[3 * i + 1] = hex[c >> 4];
		out[3 * i + 2] = hex[c & 15];
	}
}

int names_escape_buf(struct buf *out, const char *s, size_t len)
{
	int r = 0;

	for (size_t i = 0, n; i < len && !r; i += n) {
		if (names_must_escape(s + i, len - i, &n)) {
			r = buf_grow(out, 3 * n);
			if (!r) {
				put_escaped(out->data + out->len, s + i, n);
				out->len += 3 * n;
				out->data[out->len] = '\0';
			}
		} else {
			r = buf_add(out, s + i, n);
		}
	}
	return r;
}

/*
 * Encodes whole characters of s while they fit in budget bytes of out;
 * returns the length written and sets *used to the bytes of s consumed.
 * A character (and all of its escapes) goes whole or not at all, so a
 * cut never splits one, raw or escaped.
 */
static size_t encode_chars(const char *s, size_t len, size_t budget,
			   char *out, size_t *used)
{
	size_t o = 0, i = 0;

	while (i < len) {
		size_t n;
		int esc = names_must_escape(s + i, len - i, &n) || s[i] == '/';
		size_t w = esc ? 3 * n : n;

		if (o + w > budget)
			break;
		if (esc)
			put_escaped(out + o, s + i, n);
		else
			memcpy(out + o, s + i, n);
		o += w;
		i += n;
	}
	*used = i;
	return o;
}

size_t names_encode(const char *s, size_t len, size_t budget, char *out)
{
	size_t o = 0, i;

	if (len == 0) {
		out[0] = '%';
		out[1] = '\0';
		return 1;
	}
	if ((len == 1 && s[0] == '.') || (len == 2 && !memcmp(s, "..", 2))) {
		for (i = 0; i < len; i++)
			o += (size_t)sprintf(out + o, "%%2E");
		return o;
	}
	o = encode_chars(s, len, budget, out, &i);
	if (i < len) {
		/* Too long: the characters that fit before the hash. */
		o = encode_chars(s, len, budget - HASH_SUFFIX, out, &i);
		o += (size_t)sprintf(out + o, "%%~%016llx",
				     (unsigned long long)names_hash64(s, len, 0));
	}
	out[o] = '\0';
	return o;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int names_decode(const char *name, struct buf *out)
{
	char again[NAMES_MAX + 1];
	size_t start = out->len;
	int r = 0;

	if (!strcmp(name, "%"))
		return 0;
	for (const char *p = name; *p && !r; p++) {
		int hi, lo;

		if (*p != '%') {
			r = buf_addc(out, *p);
			continue;
		}
		if (p[1] == '~')
			return -ENAMETOOLONG;
		hi = hexval(p[1]);
		lo = hi < 0 ? -1 : hexval(p[2]);
		if (lo < 0)
			return -EINVAL;
		r = buf_addc(out, (char)(hi << 4 | lo));
		p += 2;
	}
	if (r || strlen(name) > NAMES_MAX)
		return r ? r : -EINVAL;
	/* Only the encoder's own output decodes: one string, one name. */
	names_encode(out->data ? out->data + start : "", out->len - start,
		     NAMES_MAX, again);
	return strcmp(again, name) ? -EINVAL : 0;
}

int names_unescape_buf(struct buf *out, const char *s, size_t len)
{
	int r = 0;

	for (size_t i = 0; i < len && !r; i++) {
		int hi, lo;

		if (s[i] != '%') {
			r = buf_addc(out, s[i]);
			continue;
		}
		hi = i + 1 < len ? hexval(s[i + 1]) : -1;
		lo = hi < 0 || i + 2 >= len ? -1 : hexval(s[i + 2]);
		if (lo < 0 || (hi == 0 && lo == 0))
			return -EINVAL;
		r = buf_addc(out, (char)(hi << 4 | lo));
		i += 2;
	}
	return r;
}
