// SPDX-License-Identifier: MIT
/* test_json.c: unit tests of exact parsing and canonical rendering (json.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "unit.h"

static cJSON *parse(const char *s)
{
	return json_parse(s, strlen(s));
}

/* Renders v; returns the text (caller frees) or NULL. */
static char *render(const cJSON *v)
{
	struct buf b = BUF_INIT;

	if (json_render(v, &b)) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* Parses text and checks that it renders to want. */
static void check_render(const char *text, const char *want)
{
	cJSON *v = parse(text);
	char *got = NULL;

	unit_ctx = text;
	REQUIRE(v);
	got = render(v);
	CHECK_EQ_STR(got, want);
	free(got);
	cJSON_Delete(v);
}

static void test_big_integers_exact(void)
{
	static const char text[] = "[9007199254740993, 9223372036854775807, "
				   "-9007199254740993, -9223372036854775808, "
				   "1234567890123456, 42]";
	static const int64_t want[] = { 9007199254740993LL,
					INT64_MAX,
					-9007199254740993LL,
					INT64_MIN,
					1234567890123456LL,
					42 };
	cJSON *v = parse(text), *c;
	char *got;
	int64_t n;
	size_t i = 0;

	REQUIRE(v);
	cJSON_ArrayForEach(c, v) {
		REQUIRE(i < sizeof(want) / sizeof(want[0]));
		n = 0;
		CHECK_EQ_INT(json_i64(c, &n), 0);
		CHECK_EQ_INT(n, want[i]);
		i++;
	}
	CHECK_EQ_INT(i, 6);
	got = render(v);
	CHECK_EQ_STR(got, "[\n  9007199254740993,\n  9223372036854775807,\n"
			  "  -9007199254740993,\n  -9223372036854775808,\n"
			  "  1234567890123456,\n  42\n]\n");
	free(got);
	cJSON_Delete(v);

	v = parse("{\"id\": 9007199254740993, \"n\": {\"id\": 18014398509481985}}");
	REQUIRE(v);
	CHECK_EQ_INT(json_get_i64(v, "id", &n), 0);
	CHECK_EQ_INT(n, 9007199254740993LL);
	CHECK_EQ_INT(json_get_i64(cJSON_GetObjectItem(v, "n"), "id", &n), 0);
	CHECK_EQ_INT(n, 18014398509481985LL);
	CHECK_EQ_INT(json_get_i64(v, "missing", &n), -EINVAL);
	cJSON_Delete(v);
}

/* An API list of ids: every big integer grows the text while it is parsed. */
static void test_many_big_integers(void)
{
	struct buf text = BUF_INIT;
	cJSON *v, *c;
	int64_t n;
	int i = 0;

	buf_adds(&text, "[");
	for (int k = 0; k < 500; k++)
		buf_printf(&text, "%s%lld", k ? "," : "",
			   1234567890123456789LL + k);
	buf_adds(&text, "]");
	errno = 0;
	v = json_parse(text.data, text.len);
	buf_release(&text);
	CHECK_EQ_INT(errno, 0);
	REQUIRE(v);
	cJSON_ArrayForEach(c, v) {
		CHECK_EQ_INT(json_i64(c, &n), 0);
		CHECK_EQ_INT(n, 1234567890123456789LL + i);
		i++;
	}
	CHECK_EQ_INT(i, 500);
	cJSON_Delete(v);
}

static void test_strings_untouched(void)
{
	cJSON *v;
	const cJSON *a;
	char *got;

	v = parse("\"12345678901234567890\"");
	REQUIRE(v);
	CHECK(cJSON_IsString(v));
	CHECK_EQ_STR(v->valuestring, "12345678901234567890");
	cJSON_Delete(v);

	/* Escaped quotes and backslashes must not end the string early. */
	v = parse("{\"a\": \"x\\\"12345678901234567\\\" y\", "
		  "\"b\": \"\\\\\", \"c\": 12345678901234567, "
		  "\"d\": \"\\\\\\\"99999999999999999\"}");
	REQUIRE(v);
	a = cJSON_GetObjectItem(v, "a");
	CHECK(cJSON_IsString(a));
	CHECK_EQ_STR(a ? a->valuestring : NULL, "x\"12345678901234567\" y");
	a = cJSON_GetObjectItem(v, "b");
	CHECK(cJSON_IsString(a));
	CHECK_EQ_STR(a ? a->valuestring : NULL, "\\");
	CHECK(cJSON_IsRaw(cJSON_GetObjectItem(v, "c")));
	a = cJSON_GetObjectItem(v, "d");
	CHECK(cJSON_IsString(a));
	CHECK_EQ_STR(a ? a->valuestring : NULL, "\\\"99999999999999999");
	got = render(v);
	CHECK_EQ_STR(got, "{\n  \"a\": \"x\\\"12345678901234567\\\" y\",\n"
			  "  \"b\": \"\\\\\",\n  \"c\": 12345678901234567,\n"
			  "  \"d\": \"\\\\\\\"99999999999999999\"\n}\n");
	free(got);
	cJSON_Delete(v);
}

/*
 * A string from the server that happens to start with U+0001 U+0002 is
 * still a string: it must not become a Raw node rendered verbatim (that
 * would let a server inject arbitrary text into a rendered JSON file).
 */
static void test_string_with_marker_bytes(void)
{
	cJSON *v = parse("[\"\\u0001\\u0002}, \\\"admin\\\": true\"]");
	char *got;

	REQUIRE(v);
	REQUIRE(v->child);
	CHECK(cJSON_IsString(v->child));
	CHECK_EQ_STR(v->child->valuestring, "\x01\x02}, \"admin\": true");
	got = render(v);
	CHECK_EQ_STR(got, "[\n  \"\\u0001\\u0002}, \\\"admin\\\": true\"\n]\n");
	free(got);
	cJSON_Delete(v);
}

/*
 * The same with raw 0x01 0x02 bytes (cJSON takes control bytes in strings
 * as they are), and keys that start with U+0001: found by
 * tests/fuzz/fuzz_json.c. The raw bytes made a Raw node whose text was
 * rendered verbatim; such keys kept the parser's internal marker.
 */
static void test_raw_marker_bytes_and_keys(void)
{
	cJSON *v = parse("[\"\x01\x02}, \\\"admin\\\": true\"]");
	char *got;

	REQUIRE(v);
	REQUIRE(v->child);
	CHECK(cJSON_IsString(v->child));
	CHECK_EQ_STR(v->child->valuestring, "\x01\x02}, \"admin\": true");
	got = render(v);
	CHECK_EQ_STR(got, "[\n  \"\\u0001\\u0002}, \\\"admin\\\": true\"\n]\n");
	free(got);
	cJSON_Delete(v);

	v = parse("{\"\\u0001k\": 1, \"\x01raw\": \"\x01\"}");
	REQUIRE(v);
	REQUIRE(v->child && v->child->next);
	CHECK_EQ_STR(v->child->string, "\x01k");
	CHECK_EQ_STR(v->child->next->string, "\x01raw");
	CHECK_EQ_STR(v->child->next->valuestring, "\x01");
	got = render(v);
	CHECK_EQ_STR(got, "{\n  \"\\u0001k\": 1,\n  \"\\u0001raw\": \"\\u0001\"\n}\n");
	free(got);
	cJSON_Delete(v);
}

/* An object with a key twice has no one meaning: refused, at any depth. */
static void test_duplicate_keys(void)
{
	static const char *const bad[] = { "{\"a\": 1, \"a\": 2}",
					   "[{\"b\": 1, \"a\": 1, \"b\": 1}]",
					   "{\"x\": {\"y\": {\"k\": 1, \"k\": 1}}}" };
	cJSON *v;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		errno = 0;
		CHECK(!parse(bad[i]));
		CHECK_EQ_INT(errno, EINVAL);
	}
	/* The same key in different objects is fine. */
	v = parse("{\"a\": {\"a\": 1}, \"b\": [{\"a\": 1}, {\"a\": 2}]}");
	CHECK(v != NULL);
	cJSON_Delete(v);
}

static void check_i64(const char *text, int want_r, int64_t want)
{
	cJSON *v = parse(text);
	int64_t n = 0x5a5a;

	unit_ctx = text;
	REQUIRE(v);
	CHECK_EQ_INT(json_i64(v->child, &n), want_r);
	if (!want_r)
		CHECK_EQ_INT(n, want);
	cJSON_Delete(v);
}

static void test_i64(void)
{
	int64_t n;

	check_i64("[0]", 0, 0);
	check_i64("[42]", 0, 42);
	check_i64("[-7]", 0, -7);
	check_i64("[9007199254740991]", 0, 9007199254740991LL);
	check_i64("[9223372036854775807]", 0, INT64_MAX);
	check_i64("[-9223372036854775808]", 0, INT64_MIN);
	check_i64("[\"123\"]", 0, 123);
	check_i64("[\"-5\"]", 0, -5);
	check_i64("[\"9223372036854775807\"]", 0, INT64_MAX);
	check_i64("[1.5]", -EINVAL, 0);
	check_i64("[-0.25]", -EINVAL, 0);
	check_i64("[1e300]", -EINVAL, 0);
	check_i64("[\"1.5\"]", -EINVAL, 0);
	check_i64("[99999999999999999999]", -EINVAL, 0);
	check_i64("[-9223372036854775809]", -EINVAL, 0);
	check_i64("[9223372036854775808]", -EINVAL, 0);
	check_i64("[\"99999999999999999999\"]", -EINVAL, 0);
	check_i64("[\"\"]", -EINVAL, 0);
	check_i64("[\"12abc\"]", -EINVAL, 0);
	check_i64("[\" 12\"]", -EINVAL, 0);
	check_i64("[\"-\"]", -EINVAL, 0);
	check_i64("[true]", -EINVAL, 0);
	check_i64("[null]", -EINVAL, 0);
	check_i64("[{}]", -EINVAL, 0);
	unit_ctx = NULL;
	CHECK_EQ_INT(json_i64(NULL, &n), -EINVAL);
}

static void test_render_canonical(void)
{
	check_render("{}", "{}\n");
	check_render("[]", "[]\n");
	check_render("{\"a\":{},\"b\":[]}", "{\n  \"a\": {},\n  \"b\": []\n}\n");
	check_render("{\"b\":1,\"a\":{\"d\":[1,2],\"c\":null},\"A\":true,"
		     "\"\":false}",
		     "{\n  \"\": false,\n  \"A\": true,\n  \"a\": {\n"
		     "    \"c\": null,\n    \"d\": [\n      1,\n      2\n"
		     "    ]\n  },\n  \"b\": 1\n}\n");
	/* Bytewise: 'z' (0x7a) before "é" (0xc3 0xa9), "ab" after "a". */
	check_render("{\"é\":1,\"z\":2,\"ab\":3,\"a\":4}",
		     "{\n  \"a\": 4,\n  \"ab\": 3,\n  \"z\": 2,\n  \"é\": 1\n}\n");
	check_render("[[[]]]", "[\n  [\n    []\n  ]\n]\n");
	check_render("\"x\"", "\"x\"\n");
	check_render("true", "true\n");
}

static void test_render_escapes(void)
{
	cJSON *v = cJSON_CreateString("q\"b\\s\nt\tc\x01\x10\x19 é🚀 </>");
	char *got;

	REQUIRE(v);
	got = render(v);
	CHECK_EQ_STR(got, "\"q\\\"b\\\\s\\nt\\tc\\u0001\\u0010\\u0019 é🚀 "
			  "</>\"\n");
	free(got);
	cJSON_Delete(v);
	/* The same through the parser, keys escaped like values. */
	check_render("{\"k\\n\\\"\":\"\\u001f\\u00e9\"}",
		     "{\n  \"k\\n\\\"\": \"\\u001f\xc3\xa9\"\n}\n");
}

/*
 * What the text sanitiser (text.h) removes is escaped, so that cat of a
 * JSON file shows no terminal control and no reordered text, while the
 * value parses back unchanged: ESC and DEL, C1 controls (U+009B is CSI,
 * U+009D OSC), the line and paragraph separators, bidi overrides.
 */
static void test_render_escapes_terminal_controls(void)
{
	cJSON *v = cJSON_CreateString("a\x1b]0;t\x07" "b\x7f\xc2\x9b" "2J"
				      "\xc2\x80\xc2\x9f\xc2\xa0"
				      "\xe2\x80\xa8\xe2\x80\xa9"
				      "\xe2\x80\xaa\xe2\x80\xae\xe2\x81\xa6"
				      "\xe2\x81\xa9\xe2\x80\x8e\xe2\x80\xa7");
	cJSON *back;
	char *got;

	REQUIRE(v);
	got = render(v);
	CHECK_EQ_STR(got, "\"a\\u001b]0;t\\u0007b\\u007f\\u009b2J"
			  "\\u0080\\u009f\xc2\xa0\\u2028\\u2029"
			  "\\u202a\\u202e\\u2066\\u2069\xe2\x80\x8e"
			  "\xe2\x80\xa7\"\n");
	back = got ? json_parse(got, strlen(got)) : NULL;
	CHECK(back && cJSON_IsString(back) &&
	      !strcmp(back->valuestring, v->valuestring));
	cJSON_Delete(back);
	free(got);
	cJSON_Delete(v);
}

static void check_double(double d, const char *want)
{
	cJSON *v = cJSON_CreateNumber(d);
	char *got;

	REQUIRE(v);
	got = render(v);
	CHECK_EQ_STR(got, want);
	free(got);
	cJSON_Delete(v);
}

static void test_render_numbers(void)
{
	char *got;
	cJSON *v;

	check_double(0.1, "0.1\n");
	check_double(1.5, "1.5\n");
	check_double(-2.25, "-2.25\n");
	check_double(123.456, "123.456\n");
	check_double(0.1 + 0.2, "0.30000000000000004\n");
	check_double(1.0 / 3, "0.3333333333333333\n");
	check_double(1.0, "1\n");
	check_double(-2.0, "-2\n");
	check_double(0.0, "0\n");
	check_double(1700000000000.0, "1700000000000\n");
	/* Whatever the spelling, a double must read back as itself. */
	for (double d = 1e-9; d < 1e22; d *= 7.3) {
		v = cJSON_CreateNumber(d);
		got = render(v);
		CHECK(got && strtod(got, NULL) == d);
		free(got);
		cJSON_Delete(v);
	}
	check_render("[1.0, 2.50, 1e2, -0.5, 12345678901234567890]",
		     "[\n  1,\n  2.5,\n  100,\n  -0.5,\n"
		     "  12345678901234567890\n]\n");
}

static void test_render_order_independent(void)
{
	static const char a[] = "{\"id\":9007199254740993,\"name\":\"x\","
				"\"tags\":[\"b\",\"a\"],\"m\":{\"y\":1,\"x\":2}}";
	static const char b[] = "{\"m\":{\"x\":2,\"y\":1},\"tags\":[\"b\",\"a\"],"
				"\"name\":\"x\",\"id\":9007199254740993}";
	cJSON *va = parse(a), *vb = parse(b);
	char *ra = NULL, *rb = NULL;

	REQUIRE(va && vb);
	ra = render(va);
	rb = render(vb);
	CHECK_EQ_STR(ra, rb);
	free(ra);
	free(rb);
	cJSON_Delete(va);
	cJSON_Delete(vb);
}

static void test_render_fixed_point(void)
{
	static const char text[] =
		"{\"z\":[1,2.5,-0.1,null,true,false,\"s\\u0007\\\"\"],"
		"\"id\":-9223372036854775808,\"nested\":{\"b\":{\"c\":[[],{}]},"
		"\"a\":\"é🚀\\n\\t\\\\\"},\"big\":12345678901234567890123,"
		"\"f\":1e-7,\"g\":6.02e23}";
	cJSON *v = parse(text), *w = NULL;
	char *r1 = NULL, *r2 = NULL;

	REQUIRE(v);
	r1 = render(v);
	REQUIRE(r1);
	w = parse(r1);
	CHECK(w != NULL);
	if (w)
		r2 = render(w);
	CHECK_EQ_STR(r2, r1);
	free(r1);
	free(r2);
	cJSON_Delete(v);
	cJSON_Delete(w);
}

static void check_bad(const char *text)
{
	cJSON *v;

	unit_ctx = text;
	errno = 0;
	v = parse(text);
	CHECK(v == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	cJSON_Delete(v);
}

static void test_malformed(void)
{
	check_bad("");
	check_bad(" ");
	check_bad("{");
	check_bad("[1,]");
	check_bad("[1 2]");
	check_bad("{\"a\" 1}");
	check_bad("{'a':1}");
	check_bad("nul");
	check_bad("\"unterminated");
	check_bad("\"unterminated\\\"");
	check_bad("[12345678901234567890");
	check_bad("[1234567890123456789x]");
	check_bad("{\"a\":-}");
	check_bad("[--12345678901234567]");
}

/* Two documents, or a document and junk, are not one JSON value. */
static void test_trailing_garbage(void)
{
	check_bad("{} x");
	check_bad("[1] ]");
	check_bad("{\"a\":1}{\"b\":2}");
}

/* JSON forbids leading zeros; a big integer is no exception. */
static void test_big_integer_leading_zeros(void)
{
	check_bad("[00000000000000001]");
	check_bad("[-00000000000000001]");
	check_bad("[0123]");
}

static void test_deep_nesting(void)
{
	struct buf b = BUF_INIT;
	cJSON *v;

	for (int i = 0; i < 5000; i++)
		buf_addc(&b, '[');
	errno = 0;
	v = json_parse(b.data, b.len);
	CHECK(v == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	cJSON_Delete(v);
	/* Balanced: rejected or parsed, but never a crash. */
	for (int i = 0; i < 5000; i++)
		buf_addc(&b, ']');
	v = json_parse(b.data, b.len);
	if (v) {
		char *got = render(v);

		CHECK(got != NULL);
		free(got);
	}
	cJSON_Delete(v);
	buf_release(&b);
}

int main(void)
{
	UNIT_RUN(test_big_integers_exact);
	UNIT_RUN(test_many_big_integers);
	UNIT_RUN(test_strings_untouched);
	UNIT_RUN(test_string_with_marker_bytes);
	UNIT_RUN(test_raw_marker_bytes_and_keys);
	UNIT_RUN(test_duplicate_keys);
	UNIT_RUN(test_i64);
	UNIT_RUN(test_render_canonical);
	UNIT_RUN(test_render_escapes);
	UNIT_RUN(test_render_escapes_terminal_controls);
	UNIT_RUN(test_render_numbers);
	UNIT_RUN(test_render_order_independent);
	UNIT_RUN(test_render_fixed_point);
	UNIT_RUN(test_malformed);
	UNIT_RUN(test_trailing_garbage);
	UNIT_RUN(test_big_integer_leading_zeros);
	UNIT_RUN(test_deep_nesting);
	return unit_summary();
}
