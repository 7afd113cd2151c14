/* SPDX-License-Identifier: MIT */
/*
 * buf: a growable byte buffer with an upper bound.
 *
 * Every buffer that holds data from the network or the user carries a limit,
 * so a misbehaving server cannot make us allocate without bound. The bytes
 * are always followed by a NUL that is not counted in len, so text users may
 * treat data as a C string.
 *
 * Ownership: the buffer owns data; buf_release() frees it and leaves an empty
 * buffer that can be reused. buf_detach() hands the bytes to the caller.
 *
 * A leaf with no state and no locks: a buffer belongs to one thread at a
 * time, its owner's. Functions return 0 or -errno (-ENOMEM, -EFBIG past the
 * limit, -EINVAL for a bad format), and leave the buffer as it was when
 * they fail. A buffer that held a secret is scrubbed first (secret.h).
 */
#ifndef DRIFTFS_BUF_H
#define DRIFTFS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;	/* NUL-terminated contents, NULL until first growth */
	size_t len;	/* bytes in use, excluding the terminating NUL */
	size_t alloc;	/* bytes allocated */
	size_t limit;	/* most bytes len may reach; 0 means BUF_DEFAULT_LIMIT */
};

#define BUF_DEFAULT_LIMIT ((size_t)256 << 20)
#define BUF_INIT { NULL, 0, 0, 0 }

void buf_init(struct buf *b, size_t limit);
void buf_release(struct buf *b);
/* Empties the buffer but keeps its allocation. */
void buf_reset(struct buf *b);
/* Returns 0, or -ENOMEM / -EFBIG when the limit would be passed. */
int buf_grow(struct buf *b, size_t extra);
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Returns the bytes (caller frees) and leaves b empty. Never NULL on success. */
char *buf_detach(struct buf *b, size_t *len);

/* strdup(s), or NULL for NULL (and when out of memory: a caller that must
 * tell the two apart checks s). The caller frees the copy. */
char *buf_strdup_or_null(const char *s);

#endif
