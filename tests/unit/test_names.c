// SPDX-License-Identifier: MIT
/* test_names.c: unit tests of entry-name encoding (names.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "names_model.h"
#include "unit.h"

#define SUFFIX 18 /* "%~" + 16 hex digits */

/* The encoded length of s when it fits, by the model. */
static size_t ref_need(const char *s, size_t len)
{
	size_t need = 0;
	int esc;

	if (len <= 2 && len && !memcmp(s, "..", len))
		return 3 * len;
	for (size_t i = 0, k; i < len; i += k) {
		k = names_model_char((const unsigned char *)s + i, len - i, &esc);
		need += esc ? 3 * k : k;
	}
	return need;
}

/* Encodes s (len bytes) with budget, checking the contract of every name. */
static size_t enc(const char *s, size_t len, size_t budget, char *out)
{
	size_t n;

	memset(out, 'Z', NAMES_MAX + 1);
	n = names_encode(s, len, budget, out);
	CHECK(n <= budget);
	CHECK_EQ_INT(strlen(out), n);
	/* Valid UTF-8 with nothing the encoding escapes but its '%'s. */
	for (size_t i = 0, k; i < n; i += k) {
		int esc;

		k = names_model_char((const unsigned char *)out + i, n - i, &esc);
		CHECK(!esc || out[i] == '%');
	}
	CHECK(strcmp(out, ".") && strcmp(out, ".."));
	return n;
}

/* Encodes and decodes s, expecting the name want (NULL: s itself). */
static void round_trip(const char *s, size_t len, const char *want)
{
	char out[NAMES_MAX + 1];
	struct buf b = BUF_INIT;

	enc(s, len, NAMES_MAX, out);
	if (want)
		CHECK_EQ_STR(out, want);
	else
		CHECK_EQ_MEM(out, strlen(out), s, len);
	CHECK_EQ_INT(names_decode(out, &b), 0);
	CHECK_EQ_MEM(b.data ? b.data : "", b.len, s, len);
	buf_release(&b);
}

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

/* Whether the n bytes at s are complete UTF-8 sequences (no cut one). */
static int utf8_whole(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = s[i] < 0x80 ? 1 : s[i] >= 0xf0 ? 4 :
					     s[i] >= 0xe0 ? 3 :
					     s[i] >= 0xc0 ? 2 : 0;

		if (!k || i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

/*
 * Checks a name for a string too long for budget: the budget is respected,
 * it ends in "%~" and 16 hex digits, the part before is whole UTF-8 and
 * whole escapes that decode to a prefix of s, and the name does not decode.
 */
static void check_cut(const char *s, size_t len, size_t budget)
{
	char out[NAMES_MAX + 1], prefix[NAMES_MAX + 1];
	struct buf b = BUF_INIT;
	size_t n, p;

	n = enc(s, len, budget, out);
	REQUIRE(n >= SUFFIX);
	p = n - SUFFIX;
	CHECK(out[p] == '%' && out[p + 1] == '~');
	for (size_t i = p + 2; i < n; i++)
		CHECK(is_hex(out[i]));
	CHECK(utf8_whole((const unsigned char *)out, p));
	/* The cut keeps most of the budget: at most one char or escape lost. */
	CHECK(p + SUFFIX + 3 >= budget);
	memcpy(prefix, out, p);
	prefix[p] = '\0';
	for (size_t i = 0; i < p; i++)
		if (prefix[i] == '%')
			CHECK(i + 2 < p && is_hex(prefix[i + 1]) &&
			      is_hex(prefix[i + 2]));
	if (p) {
		CHECK_EQ_INT(names_decode(prefix, &b), 0);
		CHECK(b.len <= len && !memcmp(b.data, s, b.len));
	}
	buf_release(&b);
	CHECK_EQ_INT(names_decode(out, &b), -ENAMETOOLONG);
	buf_release(&b);
}

static void test_ordinary_unchanged(void)
{
	static const char *const names[] = {
		"hello.txt", "a b c",	  "user@example.com", "ümlaut-é",
		"🚀 launch",  "~",	  "...",	      ".hidden",
		"a.",	      "x..y",	  "tag:vip",	      "C:\\dir",
		"#hash",      "?q=1&r=2", "\"quoted\"",	      "'",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		unit_ctx = names[i];
		round_trip(names[i], strlen(names[i]), NULL);
	}
}

static void test_escapes(void)
{
	round_trip("a/b", 3, "a%2Fb");
	round_trip("/", 1, "%2F");
	round_trip("100%", 4, "100%25");
	round_trip("%2F", 3, "%252F");
	round_trip("%~", 2, "%25~");
	round_trip("\x01", 1, "%01");
	round_trip("\x1f", 1, "%1F");
	round_trip("\x1b[31m", 5, "%1B[31m");
	round_trip("line\nbreak", 10, "line%0Abreak");
	round_trip("tab\there", 8, "tab%09here");
	round_trip("del\x7f", 4, "del%7F");
	round_trip("a\0b", 3, "a%00b");
	/* Valid UTF-8 is shown as it is ... */
	round_trip("\xc3\xa9", 2, "\xc3\xa9");
	round_trip("\xe2\x80\x8f", 3, "\xe2\x80\x8f");	/* RLM stays */
	round_trip("\xf0\x9f\x9a\x80", 4, "\xf0\x9f\x9a\x80");
	/* ... but not C1 controls (U+0085, U+009B: CSI) ... */
	round_trip("a\xc2\x85" "b", 4, "a%C2%85b");
	round_trip("\xc2\x9b" "31m", 5, "%C2%9B31m");
	round_trip("\xc2\x80\xc2\x9f\xc2\xa0", 6, "%C2%80%C2%9F\xc2\xa0");
	/* ... nor bidi controls (U+202E: "evil" shown as "live") ... */
	round_trip("\xe2\x80\xae" "evil", 7, "%E2%80%AEevil");
	round_trip("\xe2\x80\xaa\xe2\x81\xa6\xe2\x81\xa9", 9,
		   "%E2%80%AA%E2%81%A6%E2%81%A9");
	/* ... nor line and paragraph separators ... */
	round_trip("a\xe2\x80\xa8" "b\xe2\x80\xa9", 8,
		   "a%E2%80%A8b%E2%80%A9");
	/* ... nor any byte of invalid UTF-8. */
	round_trip("\xff", 1, "%FF");
	round_trip("a\x80z", 3, "a%80z");
	round_trip("\xc3", 1, "%C3");
	round_trip("\xe2\x80", 2, "%E2%80");
	round_trip("\xc0\xaf", 2, "%C0%AF");		/* overlong '/' */
	round_trip("\xed\xa0\x80", 3, "%ED%A0%80");	/* surrogate */
	round_trip("\xf4\x90\x80\x80", 4, "%F4%90%80%80");
}

/* The tags file's escaping: the same set, but '/' stays; and back. */
static void test_escape_buf(void)
{
	static const struct {
		const char *s, *want;
	} t[] = {
		{ "sales/emea", "sales/emea" },
		{ "50%off", "50%25off" },
		{ "a\nb", "a%0Ab" },
		{ "\xe2\x80\xae" "evil", "%E2%80%AEevil" },
		{ "\xc2\x85x\xff", "%C2%85x%FF" },
		{ "Zo\xc3\xab \xf0\x9f\x9a\x80",
		  "Zo\xc3\xab \xf0\x9f\x9a\x80" },
	};
	static const char *const bad[] = { "%", "a%4", "%G0", "%00", "x%0" };
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unit_ctx = t[i].s;
		buf_reset(&b);
		CHECK_EQ_INT(names_escape_buf(&b, t[i].s, strlen(t[i].s)), 0);
		CHECK_EQ_STR(b.data, t[i].want);
		buf_reset(&b);
		CHECK_EQ_INT(names_unescape_buf(&b, t[i].want,
						strlen(t[i].want)), 0);
		CHECK_EQ_STR(b.data, t[i].s);
	}
	/* Decoding is lenient about what it need not refuse. */
	buf_reset(&b);
	CHECK_EQ_INT(names_unescape_buf(&b, "%41%e2%80%ae/", 13), 0);
	CHECK_EQ_STR(b.data, "A\xe2\x80\xae/");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		buf_reset(&b);
		CHECK_EQ_INT(names_unescape_buf(&b, bad[i], strlen(bad[i])),
			     -EINVAL);
	}
	buf_release(&b);
}

static void test_dots_and_empty(void)
{
	char out[NAMES_MAX + 1];

	round_trip(".", 1, "%2E");
	round_trip("..", 2, "%2E%2E");
	CHECK_EQ_INT(names_encode("", 0, NAMES_MAX, out), 1);
	CHECK_EQ_STR(out, "%");
	round_trip("", 0, "%");
}

/* xorshift64: deterministic across runs and machines. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void test_random_round_trip(void)
{
	uint64_t seed = 0x5eed1234abcdULL;
	char s[128], out[NAMES_MAX + 1];
	struct buf b = BUF_INIT;
	int fitted = 0, cut = 0;

	for (int iter = 0; iter < 20000; iter++) {
		size_t len = 1 + rnd(&seed) % 100, budget, need;
		int ascii = rnd(&seed) % 2;

		budget = 24 + rnd(&seed) % (NAMES_MAX - 24 + 1);
		for (size_t i = 0; i < len; i++) {
			uint64_t v = rnd(&seed);

			/* Half the strings favour the bytes that need escapes. */
			s[i] = ascii ? "a/%\x01\x7f.\n~"[v % 8] : (char)v;
		}
		need = ref_need(s, len);
		if (need > budget) {
			if (ascii) {
				check_cut(s, len, budget);
				cut++;
			}
			continue;
		}
		fitted++;
		CHECK_EQ_INT(enc(s, len, budget, out), need);
		CHECK(!strstr(out, "%~"));
		for (char *p = strchr(out, '%'); p; p = strchr(p + 1, '%'))
			CHECK(is_hex(p[1]) && is_hex(p[2]) &&
			      !(p[1] >= 'a' && p[1] <= 'f') &&
			      !(p[2] >= 'a' && p[2] <= 'f'));
		buf_reset(&b);
		CHECK_EQ_INT(names_decode(out, &b), 0);
		CHECK_EQ_MEM(b.data ? b.data : "", b.len, s, len);
	}
	buf_release(&b);
	/* The generator must exercise both paths. */
	CHECK(fitted > 5000);
	CHECK(cut > 500);
}

static void test_long_ascii(void)
{
	char s[300], out[NAMES_MAX + 1];

	memset(s, 'a', sizeof(s));
	for (size_t budget = 24; budget <= NAMES_MAX; budget++)
		check_cut(s, sizeof(s), budget);
	CHECK_EQ_INT(enc(s, sizeof(s), NAMES_MAX, out), NAMES_MAX);
	CHECK(!memcmp(out, s, NAMES_MAX - SUFFIX));
}

static void test_long_utf8(void)
{
	static const char *const units[] = { "é", "🚀", "€", "aé", "a🚀",
					     "ab🚀", "é/", "🚀%" };
	char s[320];

	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t n = strlen(units[u]), len = 0;

		while (len + n <= 300) {
			memcpy(s + len, units[u], n);
			len += n;
		}
		for (size_t budget = 24; budget <= NAMES_MAX; budget++)
			check_cut(s, len, budget);
	}
}

static void test_long_escapes(void)
{
	static const char *const units[] = { "/", "a/", "ab/", "%", "\x01a" };
	char s[300];

	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		size_t n = strlen(units[u]);

		for (size_t i = 0; i < sizeof(s); i++)
			s[i] = units[u][i % n];
		for (size_t budget = 24; budget <= NAMES_MAX; budget++)
			check_cut(s, sizeof(s), budget);
	}
}

static void test_long_names_differ(void)
{
	char a[301], b[301], ea[NAMES_MAX + 1], eb[NAMES_MAX + 1];

	memset(a, 'x', sizeof(a));
	memset(b, 'x', sizeof(b));
	b[300] = 'y';
	enc(a, sizeof(a), NAMES_MAX, ea);
	enc(b, sizeof(b), NAMES_MAX, eb);
	CHECK(strcmp(ea, eb) != 0);
	/* A string one byte shorter is cut too, and differs as well. */
	enc(a, sizeof(a) - 1, NAMES_MAX, eb);
	CHECK(strcmp(ea, eb) != 0);
	/* Same input, same name. */
	enc(a, sizeof(a), NAMES_MAX, eb);
	CHECK_EQ_STR(ea, eb);
}

static void test_decode_malformed(void)
{
	static const char *const bad[] = { "%G1", "%4", "a%", "%%", "%1G",
					   "x%4" };
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		unit_ctx = bad[i];
		CHECK_EQ_INT(names_decode(bad[i], &b), -EINVAL);
	}
	buf_release(&b);
}

/*
 * names.h: -EINVAL for "a name the encoder cannot have produced". A name
 * that decodes to a string whose real name is different would give one API
 * object two names (e.g. "%41" and "A").
 */
static void test_decode_noncanonical(void)
{
	static const char *const bad[] = { "%41", "%2e", "%2f", "a%2Eb",
					   "%2E%2E%2E", "a\x01", "%7e" };
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&b);
		unit_ctx = bad[i];
		CHECK_EQ_INT(names_decode(bad[i], &b), -EINVAL);
	}
	buf_release(&b);
}

/*
 * The empty name (the empty string is "%") into a buffer that holds nothing
 * yet: found by tests/fuzz/fuzz_names.c, which saw the check add an offset
 * to the buffer's NULL data pointer (undefined behaviour).
 */
static void test_decode_empty(void)
{
	struct buf b = BUF_INIT;

	CHECK_EQ_INT(names_decode("", &b), -EINVAL);
	CHECK_EQ_INT(b.len, 0);
	buf_release(&b);
	CHECK_EQ_INT(names_decode("%", &b), 0);
	CHECK_EQ_INT(b.len, 0);
	buf_release(&b);
}

static void test_hash64(void)
{
	/* FNV-1a 64: offset basis, and the published vectors for "a", "foobar". */
	CHECK_EQ_U64(names_hash64("", 0, 0), 0xcbf29ce484222325ULL);
	CHECK_EQ_U64(names_hash64("a", 1, 0), 0xaf63dc4c8601ec8cULL);
	CHECK_EQ_U64(names_hash64("foobar", 6, 0), 0x85944171f73967e8ULL);
	CHECK_EQ_U64(names_hash64("a", 1, 0), names_hash64("ab", 1, 0));
	CHECK(names_hash64("a", 1, 1) != names_hash64("a", 1, 0));
	CHECK(names_hash64("a", 1, 0) != names_hash64("b", 1, 0));
}

int main(void)
{
	UNIT_RUN(test_ordinary_unchanged);
	UNIT_RUN(test_escapes);
	UNIT_RUN(test_escape_buf);
	UNIT_RUN(test_dots_and_empty);
	UNIT_RUN(test_random_round_trip);
	UNIT_RUN(test_long_ascii);
	UNIT_RUN(test_long_utf8);
	UNIT_RUN(test_long_escapes);
	UNIT_RUN(test_long_names_differ);
	UNIT_RUN(test_decode_malformed);
	UNIT_RUN(test_decode_noncanonical);
	UNIT_RUN(test_decode_empty);
	UNIT_RUN(test_hash64);
	return unit_summary();
}
