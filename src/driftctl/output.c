// SPDX-License-Identifier: MIT
/*
 * output.c: what driftctl prints and the exit status it returns: lines on
 * stderr and stdout through the sanitiser, the map from HTTP statuses and
 * errnos to exit statuses, and durations, sizes and times for people. It
 * holds no command and reads nothing.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "buf.h"
#include "driftctl_int.h"
#include "render.h"
#include "text.h"

/*
 * Writes one line to f through the sanitiser (text.h): the line may quote
 * the API (an error message, a scope, an outbox entry's last error), and
 * no API value may drive the user's terminal.
 */
static void __attribute__((format(printf, 3, 0)))
put_line(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;
	struct buf clean = BUF_INIT;

	if (!buf_vprintf(&b, fmt, ap) &&
	    !text_clean_buf(&clean, b.data ? b.data : "", b.len, 0))
		fprintf(f, "%s%s\n", prefix, clean.data ? clean.data : "");
	else
		fprintf(f, "%s(out of memory)\n", prefix);
	buf_release(&b);
	buf_release(&clean);
}

void __attribute__((format(printf, 1, 2))) cli_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line(stderr, "driftctl: ", fmt, ap);
	va_end(ap);
}

/* A line of output on stdout that holds a string from the API. */
void __attribute__((format(printf, 1, 2))) cli_show(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	put_line(stdout, "", fmt, ap);
	va_end(ap);
}

/* The exit status for an HTTP answer (0 = none arrived). */
int cli_exit_for_status(long status)
{
	if (status >= 200 && status < 300)
		return DX_OK;
	if (status == 401 || status == 403)
		return DX_AUTH;
	if (status == 429)
		return DX_RATE;
	/* A redirect is not followed: whatever answered is not the API. */
	if (status == 0 || status >= 500 || (status >= 300 && status < 400))
		return DX_API;
	return DX_REFUSED;
}

/* The exit status for a -errno (or 0) from the library. */
int cli_exit_for_errno(int e)
{
	switch (-e) {
	case 0:
		return DX_OK;
	case EACCES:
	case EPERM:
	case ENOKEY:
		return DX_AUTH;
	case EAGAIN:
		return DX_RATE;
	case ENOMEM:
	case ENOSPC:
	case EROFS:
	case EDQUOT:
	case ENOTDIR:
		return DX_LOCAL;
	case EINVAL:
	case ENOENT:
	case EEXIST:
		return DX_REFUSED;
	default:
		return DX_API;
	}
}

void cli_fmt_duration(char *out, size_t n, double s)
{
	long t = (long)(s + 0.5);

	if (t >= 3600)
		snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60,
			 t % 60);
	else
		snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

void cli_fmt_size(char *out, size_t n, long long bytes)
{
	if (bytes >= 1 << 30)
		snprintf(out, n, "%.1f GiB", bytes / (double)(1 << 30));
	else if (bytes >= 1 << 20)
		snprintf(out, n, "%.1f MiB", bytes / (double)(1 << 20));
	else if (bytes >= 1 << 10)
		snprintf(out, n, "%.1f KiB", bytes / 1024.0);
	else
		snprintf(out, n, "%lld bytes", bytes);
}

void cli_fmt_time(char *out, size_t n, int64_t ms)
{
	struct buf b = BUF_INIT;

	if (!ms || render_time(ms, &b) || !b.data)
		snprintf(out, n, "never");
	else
		snprintf(out, n, "%s", b.data);
	buf_release(&b);
}
