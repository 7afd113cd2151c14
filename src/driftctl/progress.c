// SPDX-License-Identifier: MIT
/*
 * progress.c: the progress of a sync pass, ours or a mount's, read from
 * status text with a "syncing:" line: a bar on a terminal, a line now and
 * then otherwise, drawn by a thread of its own; and the interrupt handler
 * that clears the bar. Starting the pass is cmd_sync.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "driftctl_int.h"
#include "http.h"
#include "sync.h"
#include "text.h"

static volatile sig_atomic_t bar_on_screen;

/* Fetches the status text the progress comes from. */
int progress_text(struct progress *p, struct buf *out)
{
	int fd, r = 0;
	char chunk[4096];
	ssize_t n;

	if (p->sync)
		return sync_status_render(p->sync, out);
	fd = open(p->status_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 && !r)
		r = buf_add(out, chunk, (size_t)n);
	close(fd);
	return r;
}

/* Parses "syncing: yes (PHASE, DONE/TOTAL)"; 0 when not syncing. */
static int parse_syncing(const char *text, char *phase, size_t n, long *done,
			 long *total)
{
	const char *l = strstr(text, "syncing: yes (");
	const char *comma, *end;

	*done = *total = 0;
	if (!l)
		return 0;
	l += strlen("syncing: yes (");
	end = strchr(l, '\n');
	if (!end)
		end = l + strlen(l);
	comma = end;
	while (comma > l && *comma != ',')
		comma--;
	if (comma == l)
		return 0;
	/* The file is a mount's, not ours: its bytes go to a terminal. */
	text_clean(phase, n, l, (size_t)(comma - l), 0);
	sscanf(comma + 1, " %ld/%ld", done, total);
	return 1;
}

/*
 * While the conversations sync, the status has their progress against the
 * account's total, "conversations_synced: DONE/TOTAL" (sync.c): the bar
 * shows that, with its rate and ETA, instead of the pass's own work.
 */
static void parse_account(const char *text, long *done, long *total)
{
	const char *l = strstr(text, "\nconversations_synced: ");
	long d, t;

	if (l && sscanf(l, "\nconversations_synced: %ld/%ld", &d, &t) == 2 &&
	    t > 0 && d >= 0) {
		*done = d < t ? d : t;
		*total = t;
	}
}

static int term_width(void)
{
	struct winsize ws;

	if (!ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) && ws.ws_col >= 40)
		return ws.ws_col;
	return 80;
}

/* One look at the pass: a bar on a terminal, a line now and then else. */
static void progress_tick(struct progress *p)
{
	struct buf b = BUF_INIT;
	char phase[96] = "", rate_s[32] = "", eta[32] = "", line[512];
	long done, total;
	int64_t now = clock_mono_ms();
	double rate = 0, el;

	if (progress_text(p, &b) || !b.data ||
	    !parse_syncing(b.data, phase, sizeof(phase), &done, &total)) {
		buf_release(&b);
		return;
	}
	parse_account(b.data, &done, &total);
	buf_release(&b);
	if (strcmp(phase, p->phase)) {
		snprintf(p->phase, sizeof(p->phase), "%s", phase);
		p->phase_start = now;
		p->phase_done0 = done;
		if (!p->tty) {
			cli_say("sync: %s", phase);
			p->last_line = now;
		}
	}
	el = (double)(now - p->phase_start) / 1000.0;
	if (el >= 0.5 && done > p->phase_done0) {
		rate = (double)(done - p->phase_done0) / el;
		snprintf(rate_s, sizeof(rate_s), "%.1f/s", rate);
		if (total > done) {
			cli_fmt_duration(eta, sizeof(eta),
					 (double)(total - done) / rate);
		}
	}
	if (!p->tty) {
		if (total > 0 && now - p->last_line >= 5000) {
			cli_say("sync: %s %ld/%ld%s%s%s%s%s", phase, done,
				total, rate_s[0] ? " (" : "", rate_s,
				eta[0] ? ", ETA " : "", eta,
				rate_s[0] ? ")" : "");
			p->last_line = now;
		}
		return;
	}
	if (total > 0) {
		int width = term_width(), bar, fill;
		char counts[96];
		int n = snprintf(counts, sizeof(counts), " %ld/%ld %s%s%s", done,
				 total, rate_s, eta[0] ? " ETA " : "", eta);

		bar = width - (int)strlen(phase) - n - 5;
		if (bar > 40)
			bar = 40;
		if (bar < 5)
			bar = 5;
		fill = (int)((double)bar * (double)(done < total ? done : total) /
			     (double)total);
		snprintf(line, sizeof(line), "%s [%.*s%.*s]%s", phase, fill,
			 "########################################", bar - fill,
			 "----------------------------------------", counts);
	} else if (done > 0) {
		snprintf(line, sizeof(line), "%s: %ld", phase, done);
	} else {
		static const char spin[] = "|/-\\";

		snprintf(line, sizeof(line), "%s %c", phase,
			 spin[(now / 250) % 4]);
	}
	line[term_width() - 1 < (int)sizeof(line) ? term_width() - 1
						  : (int)sizeof(line) - 1] =
		'\0';
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	p->drawn = 1;
	bar_on_screen = 1;
}

static void *progress_main(void *arg)
{
	struct progress *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		struct timespec ts;
		int64_t due = clock_mono_ms() + (p->tty ? 200 : 1000);

		pthread_mutex_unlock(&p->lock);
		progress_tick(p);
		pthread_mutex_lock(&p->lock);
		ts.tv_sec = due / 1000;
		ts.tv_nsec = (due % 1000) * 1000000;
		while (!p->stop && clock_mono_ms() < due)
			pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int progress_start(struct progress *p)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	return -pthread_create(&p->thread, NULL, progress_main, p);
}

void progress_stop(struct progress *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = 1;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	if (p->drawn) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	bar_on_screen = 0;
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
}

/* SIGINT/SIGTERM: clear the bar, say what state the cache is in, die. */
void progress_on_interrupt(int sig)
{
	static const char msg[] =
		"driftctl: sync interrupted; every conversation already "
		"stored stays, and the next sync carries on from there\n";

	ssize_t w = 0;

	if (bar_on_screen)
		w = write(STDERR_FILENO, "\r\033[K", 4);
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	signal(sig, SIG_DFL);
	raise(sig);
}
