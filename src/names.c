// SPDX-License-Identifier: MIT
/* names.c: reversible encoding of API strings as entry names (see names.h). */
#include "names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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

static int must_escape(unsigned char c)
{
	return c < 0x20 || c == 0x7f || c == '/' || c == '%';
}

size_t names_encode(const char *s, size_t len, size_t budget, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
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
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t w = must_escape(c) ? 3 : 1;

		if (o + w > budget)
			break;
		if (w == 3) {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		} else {
			out[o++] = (char)c;
		}
	}
	if (i < len) {
		/* Too long: cut to make room for the hash, at a char boundary. */
		o = o < budget - HASH_SUFFIX ? o : budget - HASH_SUFFIX;
		while (o > 0 && ((unsigned char)out[o] & 0xc0) == 0x80)
			o--;
		/* Never leave half of a %XX escape behind. */
		if (o >= 1 && out[o - 1] == '%')
			o -= 1;
		else if (o >= 2 && out[o - 2] == '%')
			o -= 2;
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
