// SPDX-License-Identifier: MIT
/*
 * cmd_sync.c: driftctl sync: one sync pass into the cache driftfs uses,
 * or, when a mount serves that cache, asking the mount to do it (through
 * its .driftfs/ctl, or SIGUSR1 when it is read-only). The bar is
 * progress.c's; the pass itself is sync.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "ctl.h"
#include "driftctl_int.h"
#include "http.h"
#include "search.h"
#include "stats.h"
#include "store.h"
#include "sync.h"

struct sync_args {
	int progress;		/* 1 forced on, 0 forced off, -1 auto */
};

enum { O_PROGRESS = 1, O_NO_PROGRESS };

static const struct opt sync_opts[] = {
	{ "progress", 0, 0, O_PROGRESS },
	{ "no-progress", 0, 0, O_NO_PROGRESS },
	{ NULL, 0, 0, 0 },
};

static int sync_opt(struct cli *c, void *cmd, const struct opt *o,
		    const char *value)
{
	struct sync_args *sa = cmd;

	(void)c;
	if (!o) {
		cli_say("sync: unexpected argument '%s'", value);
		return DX_USAGE;
	}
	sa->progress = o->id == O_PROGRESS;
	return 0;
}

/* Total API requests made so far (from the stats counters). */
static long api_requests(void)
{
	struct buf b = BUF_INIT;
	long total = 0;

	if (!stats_render(&b) && b.data) {
		for (char *l = b.data; l && *l;) {
			char *nl = strchr(l, '\n');
			char *sp;

			if (nl)
				*nl = '\0';
			sp = strrchr(l, ' ');
			if (!strncmp(l, "api ", 4) &&
			    strncmp(l, "api retries", 11) && sp)
				total += strtol(sp + 1, NULL, 10);
			l = nl ? nl + 1 : NULL;
		}
	}
	buf_release(&b);
	return total;
}

/* Reads "NAME: N" of a status text; -1 when absent. */
static long status_number(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *l = text; l; l = strchr(l, '\n')) {
		if (*l == '\n')
			l++;
		if (!strncmp(l, name, n) && l[n] == ':')
			return strtol(l + n + 1, NULL, 10);
	}
	return -1;
}

/*
 * A read-only mount's ctl cannot be written: it is sent SIGUSR1 instead,
 * and its status read until a pass that started after the signal has
 * ended. Returns 0 or -errno.
 */
static int sync_by_signal(struct progress *p, long pid)
{
	struct buf b = BUF_INIT;
	int64_t deadline = clock_mono_ms() + CTL_SYNC_WAIT_MS;
	long want;
	int e = 0;

	if (progress_text(p, &b) || !b.data)
		e = -EIO;
	if (!e) {
		want = status_number(b.data, "sync_passes");
		/* A pass under way may have begun before the signal. */
		want += strstr(b.data, "\nsyncing: yes") ? 2 : 1;
		if (want <= 0)
			e = -EIO;
	}
	if (!e && kill((pid_t)pid, SIGUSR1))
		e = -errno;
	while (!e) {
		struct timespec ts = { 0, 200 * 1000000L };

		nanosleep(&ts, NULL);
		buf_reset(&b);
		if (progress_text(p, &b) || !b.data) {
			e = -EIO;
			break;
		}
		if (status_number(b.data, "sync_passes") >= want &&
		    !strstr(b.data, "\nsyncing: yes")) {
			if (!strstr(b.data, "\nlast_result: ok\n"))
				e = -EIO;
			break;
		}
		if (clock_mono_ms() >= deadline)
			e = -EAGAIN;
	}
	buf_release(&b);
	return e;
}

/* Asks the mount that serves this cache to sync, and shows its progress. */
static int sync_via_mount(struct cli *c, const char *mnt, long pid,
			  int progress)
{
	struct progress p = { 0 };
	char *ctl_path = NULL;
	int64_t start = clock_mono_ms();
	int fd = -1, r = DX_OK, e = 0, started = 0, ro = 0;

	cli_say(
	    "sync: the mount at %s (pid %ld) serves this cache; asking it to "
	    "sync",
	    mnt, pid);
	if (asprintf(&ctl_path, "%s/.driftfs/ctl", mnt) < 0 ||
	    asprintf(&p.status_path, "%s/.driftfs/status", mnt) < 0) {
		r = DX_LOCAL;
		goto out;
	}
	fd = open(ctl_path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == EROFS) {
		cli_say(
		    "sync: the mount is read-only; signalling it (SIGUSR1)");
		ro = 1;
	} else if (fd < 0) {
		e = -errno;
		goto out;
	}
	if (progress) {
		p.tty = isatty(STDERR_FILENO);
		started = !progress_start(&p);
	}
	if (ro)
		e = sync_by_signal(&p, pid);
	else if (write(fd, "sync\n", 5) != 5)
		e = errno ? -errno : -EIO;
	if (started)
		progress_stop(&p);
out:
	if (fd >= 0)
		close(fd);
	if (e) {
		cli_say("sync: the mount at %s could not sync: %s%s", mnt,
			strerror(-e),
			e == -EAGAIN
			    ? " (offline mode, the API rate limit, or a "
			      "pass that took over 10 minutes; see "
			      ".driftfs/errors)"
			    : " (see .driftfs/errors there)");
		r = e == -EAGAIN ? DX_API : cli_exit_for_errno(e);
	} else if (!r) {
		struct buf b = BUF_INIT;
		char el[32];

		cli_fmt_duration(el, sizeof(el),
				 (double)(clock_mono_ms() - start) / 1000.0);
		p.sync = NULL;
		if (!progress_text(&p, &b) && b.data) {
			const char *conv = strstr(b.data, "\nconversations: ");
			const char *msgs = strstr(b.data, "\nmessages: ");

			cli_say("sync: done by the mount in %s:%s%.*s%s%.*s",
				el, conv ? " " : "",
				conv ? (int)strcspn(conv + 1, "\n") : 0,
				conv ? conv + 1 : "", msgs ? ", " : "",
				msgs ? (int)strcspn(msgs + 1, "\n") : 0,
				msgs ? msgs + 1 : "");
		}
		buf_release(&b);
	}
	(void)c;
	free(ctl_path);
	free(p.status_path);
	return r;
}

/*
 * The search index of a cache made by an older version (or emptied for a
 * rebuild) is built here to the end, as a mount builds it in the
 * background: a cache only driftctl uses gets indexed too. Chunk by
 * chunk, each its own transaction, so Ctrl-C loses nothing; with show,
 * the progress on stderr (one line redrawn on a terminal, a line every
 * few seconds otherwise). 0 or -errno.
 */
#define INDEX_CHUNK 2000

static int build_index(struct store *st, int show)
{
	int tty = isatty(STDERR_FILENO), r, shown = 0;
	int64_t last = 0;

	while ((r = store_search_build_step(st, INDEX_CHUNK)) == 1) {
		int64_t done, total, ib, tb, now = clock_mono_ms();
		int ready;

		if (!show || (!tty && now - last < 5000) ||
		    store_search_progress(st, &done, &total, &ready, &ib, &tb))
			continue;
		last = now;
		fprintf(stderr, tty ? "\r\033[Ksearch index: building %lld/%lld"
				      " messages"
				    : "search index: building %lld/%lld"
				      " messages\n",
			(long long)done, (long long)total);
		fflush(stderr);
		shown = 1;
	}
	if (shown && tty)
		fputs("\r\033[K", stderr);
	if (shown)
		fprintf(stderr, "search index: %s\n",
			r ? strerror(-r) : "ready");
	return r;
}

int cmd_sync(struct cli *c, int argc, char **argv, int from)
{
	struct sync_args sa = { -1 };
	struct progress p = { 0 };
	struct sigaction sact;
	int64_t counts[STORE_COUNTS], start;
	char *mnt = NULL, *lock_path = NULL;
	long pid = 0;
	int r, e, lock_fd = -1, started = 0, show;

	r = cli_parse_args(c, argc, argv, from, sync_opts, sync_opt, &sa);
	if (r || c->help)
		return r;
	cli_set_log_level(c, 0);
	if (config_validate(&c->d.cfg))
		return DX_USAGE;
	if (c->d.cfg.offline) {
		cli_say("sync: offline mode: there is nothing to sync from");
		return DX_API;
	}
	show = sa.progress >= 0 ? sa.progress : isatty(STDERR_FILENO);
	/* The token's org picks the cache, and the mount serving it. */
	r = cli_open_http(c, 1);
	r = r ? r : cli_open_dir(c, 1);
	if (r)
		goto out;
	/* A mount of this cache does the pass itself: no second writer,
	 * no double work, and its kernel caches stay right. */
	mnt = config_mount_find(c->dir, &pid);
	if (mnt) {
		r = sync_via_mount(c, mnt, pid, show);
		goto out;
	}
	/* Two driftctl syncs of one cache take turns. */
	if (asprintf(&lock_path, "%s/sync.lock", c->dir) < 0) {
		lock_path = NULL;
		r = DX_LOCAL;
		goto out;
	}
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB)) {
		cli_say("sync: another driftctl sync of this cache is running; "
			"waiting for it");
		flock(lock_fd, LOCK_EX);
	}
	r = cli_open_store(c);
	if (r)
		goto out;
	c->d.started_ms = clock_wall_ms();
	c->d.sync = sync_new(&c->d, NULL, NULL);
	if (!c->d.sync) {
		r = DX_LOCAL;
		goto out;
	}
	memset(&sact, 0, sizeof(sact));
	sact.sa_handler = progress_on_interrupt;
	sigaction(SIGINT, &sact, NULL);
	sigaction(SIGTERM, &sact, NULL);
	if (show) {
		p.tty = isatty(STDERR_FILENO);
		p.sync = c->d.sync;
		started = !progress_start(&p);
	}
	start = clock_mono_ms();
	e = sync_run_once(c->d.sync);
	if (started)
		progress_stop(&p);
	/* What is stored, pass or not, gets indexed (a failure here is
	 * the index's alone: the next sync or mount carries on). */
	r = build_index(c->d.store, show);
	if (r)
		cli_say("sync: building the search index: %s; the next sync "
			"carries on", strerror(-r));
	r = 0;
	if (e) {
		cli_say(
		    "sync: the pass failed: %s; what it stored stays, and the "
		    "next sync retries the rest%s",
		    strerror(-e),
		    e == -EACCES ? " (the token was refused: run driftctl "
				   "login)"
				 : "");
		r = cli_exit_for_errno(e);
		if (r == DX_REFUSED)
			r = DX_API;
		goto out;
	}
	if (!store_counts(c->d.store, counts)) {
		char el[32];

		cli_fmt_duration(el, sizeof(el),
				 (double)(clock_mono_ms() - start) / 1000.0);
		cli_say("sync: done in %s: %lld conversations, %lld messages, "
			"%lld contacts, %lld users, %lld attachments (%ld API "
			"requests)",
			el, (long long)counts[STORE_N_CONVERSATIONS],
			(long long)counts[STORE_N_MESSAGES],
			(long long)counts[STORE_N_CONTACTS],
			(long long)counts[STORE_N_USERS],
			(long long)counts[STORE_N_ATTACHMENTS], api_requests());
	}
out:
	if (lock_fd >= 0)
		close(lock_fd);
	free(lock_path);
	free(mnt);
	return r;
}

const char cli_usage_sync[] =
	"usage: driftctl sync [--progress | --no-progress]\n"
	"\n"
	"Runs one sync pass into the cache driftfs uses, without mounting.\n"
	"When a driftfs mount of the same cache is running, that mount is\n"
	"asked to do the pass instead. On a terminal a progress bar shows\n"
	"counts, rate and ETA; --progress on a pipe prints plain lines.\n";
