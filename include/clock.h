/* SPDX-License-Identifier: MIT */
/*
 * clock: the two clocks every layer reads, in milliseconds.
 *
 * clock_mono_ms() is for deadlines, timeouts and intervals (it never jumps);
 * clock_wall_ms() is for what is shown or stored (mtimes, expiry times,
 * "last activity"). Pure reads of clock_gettime(): no state, no locks, safe
 * from any thread; they cannot fail.
 */
#ifndef DRIFTFS_CLOCK_H
#define DRIFTFS_CLOCK_H

#include <stdint.h>

/* Milliseconds on a monotonic clock (CLOCK_MONOTONIC). */
int64_t clock_mono_ms(void);
/* Wall-clock milliseconds since the epoch (CLOCK_REALTIME). */
int64_t clock_wall_ms(void);

#endif
