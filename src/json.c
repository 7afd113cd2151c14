// SPDX-License-Identifier: MIT
/* json.c: exact 64-bit parsing and canonical rendering (see json.h). */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Marks a quoted big integer until it is turned back into a Raw node. A real
 * string can begin with U+0001 through a \u0001 escape or a raw 0x01 byte
 * (cJSON takes control bytes in strings as they are); such strings get one
 * more U+0001 in front (ESCAPE_MARK), removed again after parsing, so no
 * string from the API can pass for a marked integer.
 */
#define BIGINT_MARK "\x01\x02"
#define BIGINT_MARK_JSON "\\u0001\\u0002"
#define ESCAPE_MARK_JSON "\\u0001"
#define BIGINT_DIGITS 15

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Copies text, quoting integer literals too long for a double. */
static int quote_big_integers(const char *s, size_t len, struct buf *out)
{
	size_t i = 0, start = 0;
	int r;

	while (i < len) {
		char c = s[i];

		if (c == '"') {
			if ((len - i >= 7 &&
			     !strncasecmp(s + i + 1, "\\u0001", 6)) ||
			    (len - i >= 2 && s[i + 1] == '\x01')) {
				r = buf_add(out, s + start, i + 1 - start);
				r = r ? r : buf_adds(out, ESCAPE_MARK_JSON);
				if (r)
					return r;
				start = i + 1;
			}
			/* Skip the string, honouring backslash escapes. */
			for (i++; i < len && s[i] != '"'; i++)
				if (s[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (c == '-' || is_digit(c)) {
			size_t b = i, digits = 0;
			int integral = 1;

			if (s[i] == '-')
				i++;
			/* JSON has no leading zeros; cJSON would accept them. */
			if (i + 1 < len && s[i] == '0' && is_digit(s[i + 1]))
				return -EINVAL;
			while (i < len && is_digit(s[i])) {
				i++;
				digits++;
			}
			while (i < len && (s[i] == '.' || s[i] == 'e' ||
					   s[i] == 'E' || s[i] == '+' ||
					   s[i] == '-' || is_digit(s[i]))) {
				integral = 0;
				i++;
			}
			if (integral && digits > BIGINT_DIGITS) {
				r = buf_add(out, s + start, b - start);
				r = r ? r : buf_adds(out, "\"" BIGINT_MARK_JSON);
				r = r ? r : buf_add(out, s + b, i - b);
				r = r ? r : buf_addc(out, '"');
				if (r)
					return r;
				start = i;
			}
			continue;
		}
		i++;
	}
	return buf_add(out, s + start, len - start);
}

static void raw_from_marks(cJSON *v)
{
	for (cJSON *c = v; c; c = c->next) {
		char *vs = cJSON_IsString(c) ? c->valuestring : NULL;

		/* Keys are strings too, and got the same escape mark. */
		if (c->string && c->string[0] == '\x01' && c->string[1] == '\x01')
			memmove(c->string, c->string + 1, strlen(c->string));

		if (vs && vs[0] == '\x01' && vs[1] == '\x01') {
			memmove(vs, vs + 1, strlen(vs));
		} else if (vs && !strncmp(vs, BIGINT_MARK, 2)) {
			memmove(vs, vs + 2, strlen(vs + 2) + 1);
			c->type = cJSON_Raw | (c->type & cJSON_StringIsConst);
		}
		if (c->child)
			raw_from_marks(c->child);
	}
}

static int key_cmp(const void *a, const void *b);

/* Whether an object in v (at any depth) has a key twice. -ENOMEM. */
static int duplicate_keys(const cJSON *v)
{
	for (const cJSON *c = v; c; c = c->next) {
		size_t n = 0, i = 0;
		const cJSON **kids;
		int r = 0;

		if (c->child && (r = duplicate_keys(c->child)))
			return r;
		if (!cJSON_IsObject(c) || !c->child || !c->child->next)
			continue;
		for (const cJSON *k = c->child; k; k = k->next)
			n++;
		kids = malloc(n * sizeof(*kids));
		if (!kids)
			return -ENOMEM;
		for (const cJSON *k = c->child; k; k = k->next)
			kids[i++] = k;
		qsort(kids, n, sizeof(*kids), key_cmp);
		for (i = 1; i < n && !r; i++)
			r = !key_cmp(&kids[i - 1], &kids[i]);
		free(kids);
		if (r)
			return r;
	}
	return 0;
}

cJSON *json_parse(const char *text, size_t len)
{
	struct buf tmp = BUF_INIT;
	const char *end = NULL;
	cJSON *v = NULL;
	int r;

	/* Quoting adds at most 14 bytes to a token of at least 16. */
	buf_init(&tmp, 2 * len + 64);
	r = quote_big_integers(text, len, &tmp);
	if (r) {
		errno = -r == EINVAL ? EINVAL : ENOMEM;
		goto out;
	}
	v = cJSON_ParseWithLengthOpts(tmp.data ? tmp.data : "", tmp.len, &end,
				      0);
	/* Nothing but white space may follow the value. */
	while (v && end && end < tmp.data + tmp.len &&
	       (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
		end++;
	if (v && end != tmp.data + tmp.len) {
		cJSON_Delete(v);
		v = NULL;
	}
	if (!v) {
		errno = EINVAL;
		goto out;
	}
	raw_from_marks(v);
	/* A key given twice has no one meaning (which value would win?). */
	r = duplicate_keys(v);
	if (r) {
		cJSON_Delete(v);
		v = NULL;
		errno = r < 0 ? ENOMEM : EINVAL;
	}
out:
	buf_release(&tmp);
	return v;
}

/*
 * The code point of the UTF-8 character at p (which has at least a lead
 * byte) that is escaped although JSON allows it raw: a C1 control
 * (U+0080-U+009F; U+009B is a terminal's CSI), a line or paragraph
 * separator, a bidi embedding, override or isolate. The terminal text
 * sanitiser (text.h) removes the same; here an escape keeps the value and
 * still shows the reader nothing that drives the terminal or reorders the
 * line. 0 for anything else; *n is set to the character's length.
 */
static unsigned terminal_code_point(const unsigned char *p, size_t *n)
{
	unsigned cp;

	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
		*n = 2;
		return p[1];
	}
	if (p[0] != 0xe2 || (p[1] != 0x80 && p[1] != 0x81) || p[2] < 0x80 ||
	    p[2] > 0xbf)
		return 0;
	cp = 0x2000u | (unsigned)(p[1] & 0x3f) << 6 | (p[2] & 0x3fu);
	*n = 3;
	if ((cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069))
		return cp;
	return 0;
}

static int render_string(const char *s, struct buf *out)
{
	int r = buf_addc(out, '"');

	for (const unsigned char *p = (const unsigned char *)s; *p && !r; p++) {
		size_t n = 1;
		unsigned cp = *p >= 0x80 ? terminal_code_point(p, &n) : 0;

		if (cp) {
			r = buf_printf(out, "\\u%04x", cp);
			p += n - 1;
			continue;
		}
		switch (*p) {
		case '"':
			r = buf_adds(out, "\\\"");
			break;
		case '\\':
			r = buf_adds(out, "\\\\");
			break;
		case '\n':
			r = buf_adds(out, "\\n");
			break;
		case '\r':
			r = buf_adds(out, "\\r");
			break;
		case '\t':
			r = buf_adds(out, "\\t");
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				r = buf_printf(out, "\\u%04x", *p);
			else
				r = buf_addc(out, (char)*p);
		}
	}
	return r ? r : buf_addc(out, '"');
}

static int render_number(double d, struct buf *out)
{
	char tmp[64];

	if (!isfinite(d))
		return buf_adds(out, "null");
	if (d == floor(d) && fabs(d) < 9007199254740992.0)
		return buf_printf(out, "%" PRId64, (int64_t)d);
	/* The shortest form that reads back as the same double. */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	return buf_adds(out, tmp);
}

static int key_cmp(const void *a, const void *b)
{
	const cJSON *x = *(const cJSON *const *)a;
	const cJSON *y = *(const cJSON *const *)b;

	return strcmp(x->string ? x->string : "", y->string ? y->string : "");
}

static int indent(struct buf *out, int depth)
{
	int r = buf_addc(out, '\n');

	for (int i = 0; i < depth && !r; i++)
		r = buf_adds(out, "  ");
	return r;
}

static int render_value(const cJSON *v, struct buf *out, int depth);

static int render_object(const cJSON *v, struct buf *out, int depth)
{
	const cJSON **kids = NULL;
	size_t n = 0, i;
	int r = 0;

	for (const cJSON *c = v->child; c; c = c->next)
		n++;
	if (!n)
		return buf_adds(out, "{}");
	kids = malloc(n * sizeof(*kids));
	if (!kids)
		return -ENOMEM;
	i = 0;
	for (const cJSON *c = v->child; c; c = c->next)
		kids[i++] = c;
	qsort(kids, n, sizeof(*kids), key_cmp);
	r = buf_addc(out, '{');
	for (i = 0; i < n && !r; i++) {
		r = indent(out, depth + 1);
		r = r ? r : render_string(kids[i]->string ? kids[i]->string : "",
					  out);
		r = r ? r : buf_adds(out, ": ");
		r = r ? r : render_value(kids[i], out, depth + 1);
		if (!r && i + 1 < n)
			r = buf_addc(out, ',');
	}
	r = r ? r : indent(out, depth);
	r = r ? r : buf_addc(out, '}');
	free(kids);
	return r;
}

static int render_array(const cJSON *v, struct buf *out, int depth)
{
	int r;

	if (!v->child)
		return buf_adds(out, "[]");
	r = buf_addc(out, '[');
	for (const cJSON *c = v->child; c && !r; c = c->next) {
		r = indent(out, depth + 1);
		r = r ? r : render_value(c, out, depth + 1);
		if (!r && c->next)
			r = buf_addc(out, ',');
	}
	r = r ? r : indent(out, depth);
	return r ? r : buf_addc(out, ']');
}

static int render_value(const cJSON *v, struct buf *out, int depth)
{
	switch (v->type & 0xff) {
	case cJSON_False:
		return buf_adds(out, "false");
	case cJSON_True:
		return buf_adds(out, "true");
	case cJSON_NULL:
		return buf_adds(out, "null");
	case cJSON_Number:
		return render_number(v->valuedouble, out);
	case cJSON_Raw:
		return buf_adds(out, v->valuestring ? v->valuestring : "null");
	case cJSON_String:
		return render_string(v->valuestring ? v->valuestring : "", out);
	case cJSON_Array:
		return render_array(v, out, depth);
	case cJSON_Object:
		return render_object(v, out, depth);
	default:
		return -EINVAL;
	}
}

int json_render(const cJSON *v, struct buf *out)
{
	int r = render_value(v, out, 0);

	return r ? r : buf_addc(out, '\n');
}

static int parse_i64(const char *s, int64_t *out)
{
	char *end;
	long long n;

	if (!s || !*s || (!is_digit(*s) && *s != '-'))
		return -EINVAL;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

int json_i64(const cJSON *v, int64_t *out)
{
	double d;

	if (!v)
		return -EINVAL;
	if (cJSON_IsRaw(v) || cJSON_IsString(v))
		return parse_i64(v->valuestring, out);
	if (!cJSON_IsNumber(v))
		return -EINVAL;
	d = v->valuedouble;
	if (d != floor(d) || fabs(d) >= 9007199254740992.0)
		return -EINVAL;
	*out = (int64_t)d;
	return 0;
}

int json_get_i64(const cJSON *obj, const char *key, int64_t *out)
{
	if (!cJSON_IsObject(obj))
		return -EINVAL;
	return json_i64(cJSON_GetObjectItemCaseSensitive(obj, key), out);
}

const char *json_get_str(const cJSON *obj, const char *key)
{
	const cJSON *v;

	if (!cJSON_IsObject(obj))
		return NULL;
	v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *json_tag_name(const cJSON *t)
{
	return cJSON_IsString(t) ? t->valuestring : json_get_str(t, "name");
}
