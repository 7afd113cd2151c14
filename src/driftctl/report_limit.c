// SPDX-License-Identifier: MIT
/*
 * report_limit.c: Drift's limit of REPORT_LIMIT conversation reports a
 * minute, counted per API host in its report-calls file so that every
 * driftctl of the account counts against the same minute. The report
 * itself is cmd_report.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "driftctl_int.h"
#include "http.h"

#define REPORT_WINDOW_MS 60000

/* Calls to the report endpoint in the last minute (the limiter's file). */
int report_limit_calls_recent(const char *dir)
{
	char *path = NULL, line[64];
	int64_t now = clock_wall_ms();
	int n = 0;
	FILE *f;

	if (asprintf(&path, "%s/report-calls", dir) < 0)
		return 0;
	f = fopen(path, "re");
	free(path);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		long long t = strtoll(line, NULL, 10);

		if (t > now - REPORT_WINDOW_MS && t <= now + 1000)
			n++;
	}
	fclose(f);
	return n;
}

/*
 * Takes one of the REPORT_LIMIT calls a minute allowed, waiting for one
 * to free up (or failing with DX_RATE under no_wait). The calls are kept
 * as wall-clock ms, one a line, in DIR/report-calls under an flock, so
 * every driftctl of this account counts against the same minute.
 */
int report_limit_slot(const char *dir, int no_wait)
{
	char *path = NULL, line[64];
	int64_t t[REPORT_LIMIT + 1], now;
	struct buf out = BUF_INIT;
	size_t n = 0;
	int fd = -1, r = 0;
	FILE *f = NULL;

	if (asprintf(&path, "%s/report-calls", dir) < 0)
		return DX_LOCAL;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX)) {
		cli_say("report: %s: %s", path, strerror(errno));
		r = DX_LOCAL;
		goto out;
	}
	f = fdopen(dup(fd), "r");
	now = clock_wall_ms();
	while (f && fgets(line, sizeof(line), f)) {
		int64_t v = strtoll(line, NULL, 10);

		if (v <= now - REPORT_WINDOW_MS || v > now + 1000)
			continue;
		/* Keep the newest REPORT_LIMIT, in order. */
		if (n == REPORT_LIMIT) {
			memmove(t, t + 1, (REPORT_LIMIT - 1) * sizeof(*t));
			n--;
		}
		t[n++] = v;
	}
	if (n >= REPORT_LIMIT) {
		int64_t wait = t[n - REPORT_LIMIT] + REPORT_WINDOW_MS - now;

		if (no_wait) {
			cli_say(
			    "report: %d reports in the last minute, Drift's "
			    "limit; the next is allowed in %lld s (without "
			    "--no-wait, driftctl waits)",
			    REPORT_LIMIT, (long long)(wait + 999) / 1000);
			r = DX_RATE;
			goto out;
		}
		cli_say("report: %d reports in the last minute, Drift's limit: "
			"waiting %lld s",
			REPORT_LIMIT, (long long)(wait + 999) / 1000);
		if (wait > 0) {
			struct timespec ts = { wait / 1000,
					       (wait % 1000) * 1000000 };

			while (nanosleep(&ts, &ts) && errno == EINTR)
				;
		}
		memmove(t, t + 1, (n - 1) * sizeof(*t));
		n--;
		now = clock_wall_ms();
	}
	t[n++] = now;
	for (size_t i = 0; i < n && !r; i++)
		r = buf_printf(&out, "%lld\n", (long long)t[i]);
	if (r || ftruncate(fd, 0) ||
	    pwrite(fd, out.data, out.len, 0) != (ssize_t)out.len) {
		cli_say("report: cannot record the call in %s", path);
		r = DX_LOCAL;
	}
out:
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	buf_release(&out);
	free(path);
	return r;
}

