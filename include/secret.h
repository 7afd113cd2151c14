/* SPDX-License-Identifier: MIT */
/*
 * secret: wiping memory that held a secret (a token, a client secret, a
 * form body carrying one) before it is freed or left behind.
 *
 * Built on explicit_bzero(), which the compiler may not drop the way it may
 * drop a memset() of memory about to be freed. A leaf: no state, no locks,
 * safe from any thread. Neither function can fail; both accept NULL.
 */
#ifndef DRIFTFS_SECRET_H
#define DRIFTFS_SECRET_H

#include <stddef.h>

/* Zeroes the n bytes at p, in place (the memory stays the caller's). */
void secret_scrub(void *p, size_t n);

/* Zeroes the string s (up to its NUL) and frees it; s was malloc'd. */
void secret_free(char *s);

#endif
