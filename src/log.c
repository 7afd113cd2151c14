// SPDX-License-Identifier: MIT
/* log.c: daemon log and the ring of recent errors (see log.h). */
#include "log.h"
#include "text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define ERR_RING 256
#define ERR_LINE 1024

static enum log_level threshold = LOG_LVL_INFO;
/* Each line's prefix on a plain stderr, and the syslog identifier. */
static const char *program = "driftfs";
static int to_syslog;
static int to_journal;	/* stderr is journald's stream: "<N>" prefixes */

/* The ring of recent errors: ring[(next - count + i) % ERR_RING], i < count. */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char ring[ERR_RING][ERR_LINE];
static unsigned ring_next, ring_count;
static unsigned long ring_total;
static long long ring_last_ms;

static __thread char context[512];
static __thread log_context_fn context_fn;	/* deferred, see resolve() */
static __thread const void *context_arg;

/* Writes a deferred context out, once. */
static void resolve(void)
{
	log_context_fn fn = context_fn;

	if (fn) {
		context_fn = NULL;
		context[0] = '\0';
		fn(context_arg, context, sizeof(context));
		text_clean(context, sizeof(context), context, strlen(context),
			   0);
	}
}

/*
 * Whether stderr is the stream systemd connected to the journal (a unit
 * running driftfs -f): $JOURNAL_STREAM names its device and inode. Then a
 * "<N>" prefix gives each line its priority, so that journalctl -p and
 * its colours tell errors from information.
 */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_set_program(const char *name)
{
	program = name;
}

void log_setup(enum log_level level, int use_syslog)
{
	threshold = level;
	/* The identifier journalctl -t selects (driftfs(1), LOGGING). */
	if (use_syslog && !to_syslog)
		openlog(program, LOG_PID, LOG_DAEMON);
	to_syslog = use_syslog;
	to_journal = !use_syslog && stderr_is_journal();
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const name[] = { "error", "warning", "info",
					    "debug" };
	char line[2048];

	if (level > threshold)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	/* Whatever a caller passed, no API value reaches the terminal. */
	text_clean(line, sizeof(line), line, strlen(line), 0);
	if (to_syslog)
		syslog(prio[level], "%s", line);
	else if (to_journal)
		fprintf(stderr, "<%d>%s: %s\n", prio[level], name[level],
			line);
	else
		fprintf(stderr, "%s: %s: %s\n", program, name[level], line);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_error_event(const char *fmt, ...)
{
	char text[ERR_LINE - 64], stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	va_list ap;
	char *slot;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	resolve();
	/*
	 * One error, one line (the ring is read line by line), and no
	 * escape sequence: API error messages end up here and are shown by
	 * cat .driftfs/errors.
	 */
	text_clean(text, sizeof(text), text, strlen(text), 0);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);

	pthread_mutex_lock(&ring_lock);
	slot = ring[ring_next];
	if (context[0])
		snprintf(slot, ERR_LINE, "%s %s: %s", stamp, context, text);
	else
		snprintf(slot, ERR_LINE, "%s %s", stamp, text);
	ring_next = (ring_next + 1) % ERR_RING;
	if (ring_count < ERR_RING)
		ring_count++;
	ring_total++;
	ring_last_ms = (long long)now * 1000;
	pthread_mutex_unlock(&ring_lock);

	if (context[0])
		log_warn("%s: %s", context, text);
	else
		log_warn("%s", text);
}

void log_context_set(const char *ctx)
{
	context_fn = NULL;
	text_clean(context, sizeof(context), ctx ? ctx : "",
		   ctx ? strlen(ctx) : 0, 0);
}

void log_context_defer(log_context_fn fn, const void *arg)
{
	context[0] = '\0';
	context_fn = fn;
	context_arg = arg;
}

const char *log_context(void)
{
	resolve();
	return context;
}

int log_errors_render(struct buf *out)
{
	int r = 0;

	pthread_mutex_lock(&ring_lock);
	for (unsigned i = 0; i < ring_count && !r; i++) {
		unsigned k = (ring_next + ERR_RING - ring_count + i) % ERR_RING;

		r = buf_printf(out, "%s\n", ring[k]);
	}
	pthread_mutex_unlock(&ring_lock);
	return r;
}

long long log_errors_last_ms(void)
{
	long long t;

	pthread_mutex_lock(&ring_lock);
	t = ring_last_ms;
	pthread_mutex_unlock(&ring_lock);
	return t;
}

unsigned long log_errors_total(void)
{
	unsigned long n;

	pthread_mutex_lock(&ring_lock);
	n = ring_total;
	pthread_mutex_unlock(&ring_lock);
	return n;
}
