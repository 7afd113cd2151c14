// SPDX-License-Identifier: MIT
/* test_buf.c: unit tests of bounded growable buffers (buf.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "unit.h"

static void test_add(void)
{
	struct buf b = BUF_INIT;

	CHECK(b.data == NULL);
	CHECK_EQ_INT(buf_adds(&b, "ab"), 0);
	CHECK_EQ_INT(buf_addc(&b, 'c'), 0);
	CHECK_EQ_INT(buf_add(&b, "d\0e", 3), 0);
	CHECK_EQ_INT(b.len, 6);
	CHECK_EQ_MEM(b.data, b.len, "abcd\0e", 6);
	CHECK_EQ_INT(b.data[b.len], '\0');
	CHECK_EQ_INT(buf_add(&b, NULL, 0), 0);
	CHECK_EQ_INT(b.len, 6);
	buf_release(&b);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.len, 0);
	/* Released buffers are reusable; release twice is harmless. */
	CHECK_EQ_INT(buf_adds(&b, "again"), 0);
	CHECK_EQ_STR(b.data, "again");
	buf_release(&b);
	buf_release(&b);
}

static void test_limit(void)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK_EQ_INT(buf_adds(&b, "12345"), 0);
	/* Exactly the limit is allowed. */
	CHECK_EQ_INT(buf_adds(&b, "67890"), 0);
	CHECK_EQ_INT(b.len, 10);
	CHECK_EQ_INT(buf_addc(&b, 'x'), -EFBIG);
	CHECK_EQ_INT(buf_adds(&b, "xyz"), -EFBIG);
	CHECK_EQ_INT(buf_printf(&b, "%d", 1), -EFBIG);
	CHECK_EQ_INT(b.len, 10);
	CHECK_EQ_STR(b.data, "1234567890");

	buf_reset(&b);
	CHECK_EQ_INT(buf_adds(&b, "abcdef"), 0);
	/* A refused add leaves the contents as they were, not half added. */
	CHECK_EQ_INT(buf_adds(&b, "ghijk"), -EFBIG);
	CHECK_EQ_INT(b.len, 6);
	CHECK_EQ_STR(b.data, "abcdef");
	CHECK_EQ_INT(buf_printf(&b, "%s", "0123456789"), -EFBIG);
	CHECK_EQ_INT(b.len, 6);
	CHECK_EQ_STR(b.data, "abcdef");
	CHECK_EQ_INT(buf_adds(&b, "ghij"), 0);
	CHECK_EQ_STR(b.data, "abcdefghij");
	/* Sizes that would overflow are refused, not wrapped. */
	CHECK_EQ_INT(buf_grow(&b, SIZE_MAX), -EFBIG);
	CHECK_EQ_INT(buf_grow(&b, SIZE_MAX - 3), -EFBIG);
	CHECK_EQ_STR(b.data, "abcdefghij");
	buf_release(&b);
	/* The limit survives a release. */
	CHECK_EQ_INT(buf_adds(&b, "01234567890"), -EFBIG);
	buf_release(&b);
}

static void test_default_limit(void)
{
	struct buf b = BUF_INIT;

	/* Refused up front: nothing is allocated for it. */
	CHECK_EQ_INT(buf_grow(&b, BUF_DEFAULT_LIMIT + 1), -EFBIG);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(buf_adds(&b, "x"), 0);
	CHECK_EQ_INT(buf_grow(&b, BUF_DEFAULT_LIMIT), -EFBIG);
	CHECK_EQ_STR(b.data, "x");
	buf_release(&b);
}

static void test_printf_growth(void)
{
	struct buf b = BUF_INIT;
	char big[1000];
	size_t want = 0;
	int ok = 1;

	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_EQ_INT(buf_printf(&b, "%s", ""), 0);
	CHECK_EQ_INT(b.len, 0);
	CHECK(b.data && b.data[0] == '\0');
	for (int i = 0; i < 2000; i++) {
		int r = buf_printf(&b, "%d:%s;", i, i % 100 ? "x" : big);

		ok &= r == 0;
		want += (size_t)snprintf(NULL, 0, "%d:%s;", i,
					 i % 100 ? "x" : big);
	}
	CHECK(ok);
	CHECK_EQ_INT(b.len, want);
	CHECK_EQ_INT(strlen(b.data), want);
	CHECK(b.alloc > b.len);
	CHECK(!strncmp(b.data, "0:qqq", 5));
	CHECK(strstr(b.data, ";1:x;2:x;") != NULL);
	CHECK(strstr(b.data, ";1999:x;") != NULL);
	CHECK(b.data[b.len - 1] == ';');
	buf_release(&b);
}

static void test_reset(void)
{
	struct buf b = BUF_INIT;
	size_t alloc;
	char *data;

	CHECK_EQ_INT(buf_adds(&b, "something long enough"), 0);
	alloc = b.alloc;
	data = b.data;
	buf_reset(&b);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(b.alloc, alloc);
	CHECK(b.data == data);
	CHECK_EQ_STR(b.data, "");
	buf_release(&b);
	buf_reset(&b);
	CHECK_EQ_INT(b.len, 0);
}

static void test_detach(void)
{
	struct buf b = BUF_INIT;
	size_t len = 99;
	char *p;

	/* An empty buffer detaches as "", never NULL. */
	p = buf_detach(&b, &len);
	CHECK(p != NULL);
	CHECK_EQ_INT(len, 0);
	/* Not CHECK_EQ_STR: an unterminated result must not be read on. */
	CHECK_EQ_INT(p ? p[0] : -1, '\0');
	free(p);

	CHECK_EQ_INT(buf_printf(&b, "%s-%d", "id", 42), 0);
	p = buf_detach(&b, &len);
	CHECK_EQ_STR(p, "id-42");
	CHECK_EQ_INT(len, 5);
	CHECK(b.data == NULL);
	CHECK_EQ_INT(b.len, 0);
	CHECK_EQ_INT(b.alloc, 0);
	/* The buffer is usable again, independently of the detached bytes. */
	CHECK_EQ_INT(buf_adds(&b, "next"), 0);
	CHECK_EQ_STR(b.data, "next");
	CHECK_EQ_STR(p, "id-42");
	free(p);
	p = buf_detach(&b, NULL);
	CHECK_EQ_STR(p, "next");
	free(p);
	buf_release(&b);
}

int main(void)
{
	UNIT_RUN(test_add);
	UNIT_RUN(test_limit);
	UNIT_RUN(test_default_limit);
	UNIT_RUN(test_printf_growth);
	UNIT_RUN(test_reset);
	UNIT_RUN(test_detach);
	return unit_summary();
}
