/* SPDX-License-Identifier: MIT */
/*
 * unit: the header-only harness every tests/unit/test_*.c includes.
 *
 * A test is a static void function; main() runs each with UNIT_RUN() and
 * returns unit_summary(). A CHECK that fails prints file:line and the values
 * to stdout and marks the running test failed, then carries on, so one run
 * shows every broken expectation; REQUIRE returns from the test at once,
 * for preconditions (a NULL pointer) that later checks would dereference.
 * A table-driven test sets unit_ctx to the row it checks.
 *
 * The last line a binary prints is "test_name: N passed, M failed", counting
 * tests (not checks); the exit status is 1 when any test failed, so
 * `make unit` fails with it.
 */
#ifndef DRIFTFS_UNIT_H
#define DRIFTFS_UNIT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int unit_passed;		/* tests that ran without a failed check */
static int unit_failed;		/* tests with at least one failed check */
static int unit_cur_failed;	/* failed checks in the running test */
static const char *unit_cur_name; /* name of the running test */
static int unit_saved_stderr = -1; /* fd 2 while unit_quiet() hides it */
/*
 * Optional: the input a loop is checking, printed with each failure so a
 * table-driven test names the row that broke. Cleared before every test.
 */
static const char *unit_ctx;

/* Prints s (n bytes) quoted, with unprintable bytes as \xNN. */
static void __attribute__((unused))
unit_print_bytes(const char *s, size_t n)
{
	if (!s) {
		fputs("(null)", stdout);
		return;
	}
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void __attribute__((unused))
unit_fail_head(const char *file, int line)
{
	unit_cur_failed++;
	printf("%s:%d: %s: ", file, line, unit_cur_name ? unit_cur_name : "?");
	if (unit_ctx) {
		fputs("[", stdout);
		unit_print_bytes(unit_ctx, strlen(unit_ctx));
		fputs("] ", stdout);
	}
}

static void __attribute__((unused))
unit_check(int ok, const char *expr, const char *file, int line)
{
	if (ok)
		return;
	unit_fail_head(file, line);
	printf("CHECK(%s) failed\n", expr);
	fflush(stdout);
}

static void __attribute__((unused))
unit_check_int(long long a, long long b, const char *ea, const char *eb,
	       const char *file, int line)
{
	if (a == b)
		return;
	unit_fail_head(file, line);
	printf("%s == %s failed: %lld != %lld\n", ea, eb, a, b);
	fflush(stdout);
}

static void __attribute__((unused))
unit_check_u64(uint64_t a, uint64_t b, const char *ea, const char *eb,
	       const char *file, int line)
{
	if (a == b)
		return;
	unit_fail_head(file, line);
	printf("%s == %s failed: 0x%016llx != 0x%016llx\n", ea, eb,
	       (unsigned long long)a, (unsigned long long)b);
	fflush(stdout);
}

static void __attribute__((unused))
unit_check_mem(const char *a, size_t na, const char *b, size_t nb,
	       const char *ea, const char *eb, const char *file, int line)
{
	if (a && b && na == nb && !memcmp(a, b, na))
		return;
	unit_fail_head(file, line);
	printf("%s == %s failed:\n  got      ", ea, eb);
	unit_print_bytes(a, na);
	fputs("\n  expected ", stdout);
	unit_print_bytes(b, nb);
	putchar('\n');
	fflush(stdout);
}

static void __attribute__((unused))
unit_check_str(const char *a, const char *b, const char *ea, const char *eb,
	       const char *file, int line)
{
	unit_check_mem(a, a ? strlen(a) : 0, b, b ? strlen(b) : 0, ea, eb,
		       file, line);
}

#define CHECK(cond) unit_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ_INT(a, b) \
	unit_check_int((long long)(a), (long long)(b), #a, #b, __FILE__, \
		       __LINE__)
#define CHECK_EQ_U64(a, b) \
	unit_check_u64((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, \
		       __LINE__)
#define CHECK_EQ_STR(a, b) unit_check_str((a), (b), #a, #b, __FILE__, __LINE__)
/* Compares a (na bytes) with b (nb bytes): for data holding NULs. */
#define CHECK_EQ_MEM(a, na, b, nb) \
	unit_check_mem((a), (na), (b), (nb), #a, #b, __FILE__, __LINE__)
/* Like CHECK, but leaves the test when cond is false. */
#define REQUIRE(cond)                                                   \
	do {                                                            \
		if (!(cond)) {                                          \
			unit_check(0, #cond, __FILE__, __LINE__);       \
			return;                                         \
		}                                                       \
	} while (0)

static void __attribute__((unused))
unit_run(void (*fn)(void), const char *name)
{
	unit_cur_name = name;
	unit_cur_failed = 0;
	unit_ctx = NULL;
	fn();
	if (unit_cur_failed) {
		unit_failed++;
		printf("FAIL %s\n", name);
	} else {
		unit_passed++;
	}
	fflush(stdout);
	unit_cur_name = NULL;
}

#define UNIT_RUN(fn) unit_run(fn, #fn)

/*
 * Hides stderr (on) or brings it back (off): for calls that are expected to
 * log an error, so a passing run stays quiet. Failures go to stdout.
 */
static void __attribute__((unused)) unit_quiet(int on)
{
	int null;

	fflush(stderr);
	if (on && unit_saved_stderr < 0) {
		null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (null < 0)
			return;
		unit_saved_stderr = dup(2);
		dup2(null, 2);
		close(null);
	} else if (!on && unit_saved_stderr >= 0) {
		dup2(unit_saved_stderr, 2);
		close(unit_saved_stderr);
		unit_saved_stderr = -1;
	}
}

/* Prints the summary line named after the test file; returns the status. */
static int __attribute__((unused)) unit_summary_for(const char *file)
{
	const char *base = strrchr(file, '/');
	size_t n;

	base = base ? base + 1 : file;
	n = strcspn(base, ".");
	unit_quiet(0);
	printf("%.*s: %d passed, %d failed\n", (int)n, base, unit_passed,
	       unit_failed);
	fflush(stdout);
	return unit_failed ? 1 : 0;
}

#define unit_summary() unit_summary_for(__FILE__)

#endif
