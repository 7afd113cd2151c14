/* SPDX-License-Identifier: MIT */
/*
 * fuzz: what the libFuzzer harnesses of tests/fuzz/ share.
 *
 * Each harness is one LLVMFuzzerTestOneInput() that feeds its input to one
 * part of driftfs and checks that part's promises. A broken promise is an
 * abort() with the invariant named, which libFuzzer reports as a crash and
 * saves the input for.
 *
 * Multi-part inputs (a write and the stored copy it replaces, a walk over
 * several pages) separate their parts with FUZZ_SEP.
 */
#ifndef DRIFTFS_FUZZ_H
#define DRIFTFS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "log.h"

#define FUZZ_SEP "\n====\n"

#define FUZZ_ASSERT(cond, ...)                                               \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "%s:%d: invariant failed: %s: ",     \
				__FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			abort();                                             \
		}                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of n bytes (aborts when out of memory). */
static inline char *fuzz_dup(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (!s)
		abort();
	if (n)
		memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/*
 * The next part of *p (*n bytes left): its start and length; *p and *n move
 * past it and its separator. The last part runs to the end.
 */
static inline const char *fuzz_part(const char **p, size_t *n, size_t *len)
{
	const char *s = *p;
	const char *e = memmem(s, *n, FUZZ_SEP, sizeof(FUZZ_SEP) - 1);

	if (!e) {
		*len = *n;
		*p += *n;
		*n = 0;
	} else {
		*len = (size_t)(e - s);
		*n -= *len + sizeof(FUZZ_SEP) - 1;
		*p = e + sizeof(FUZZ_SEP) - 1;
	}
	return s;
}

/* Errors the code under test logs are expected: keep the run quiet. */
static inline void fuzz_quiet(void)
{
	log_setup(LOG_LVL_ERROR, 0);
}

/*
 * Asserts that json (len bytes) is a canonical rendering: it parses, and
 * rendering the result gives the same bytes.
 */
static inline void fuzz_assert_canonical(const char *what, const char *json,
					 size_t len)
{
	struct buf again = BUF_INIT;
	cJSON *v = json_parse(json ? json : "", len);

	FUZZ_ASSERT(v, "%s: the rendering does not parse back", what);
	FUZZ_ASSERT(!json_render(v, &again), "%s: cannot render", what);
	FUZZ_ASSERT(again.len == len && !memcmp(again.data, json, len),
		    "%s: rendering is not a fixed point", what);
	cJSON_Delete(v);
	buf_release(&again);
}

#endif
