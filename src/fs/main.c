// SPDX-License-Identifier: MIT
/* main.c: the driftfs command: options, wiring, mount and teardown. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <curl/curl.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "account.h"
#include "auth.h"
#include "clock.h"
#include "commit.h"
#include "config.h"
#include "driftfs.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "outbox.h"
#include "search.h"
#include "stats.h"
#include "store.h"
#include "sync.h"

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_RO,
	KEY_RW,
	KEY_OURS,
	KEY_TOKEN,
};

/* What the command line said beyond struct config. */
struct cli {
	struct config *cfg;
	char *source;		/* fstab's "driftfs#NAME": a label, unused */
	char *mountpoint;
	int foreground, debug, single, help, version, bad;
	int read_only;		/* -o ro (the last of ro and rw wins) */
};

static const struct fuse_opt spec[] = {
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("api_url=", KEY_OURS),
	FUSE_OPT_KEY("api-url=", KEY_OURS),
	FUSE_OPT_KEY("credentials=", KEY_OURS),
	FUSE_OPT_KEY("cache_dir=", KEY_OURS),
	FUSE_OPT_KEY("cache-dir=", KEY_OURS),
	FUSE_OPT_KEY("refresh=", KEY_OURS),
	FUSE_OPT_KEY("reconcile=", KEY_OURS),
	FUSE_OPT_KEY("offline", KEY_OURS),
	FUSE_OPT_KEY("offline=", KEY_OURS),
	FUSE_OPT_KEY("ca_file=", KEY_OURS),
	FUSE_OPT_KEY("ca-file=", KEY_OURS),
	FUSE_OPT_KEY("rate=", KEY_OURS),
	FUSE_OPT_KEY("timeout=", KEY_OURS),
	FUSE_OPT_KEY("conns=", KEY_OURS),
	FUSE_OPT_KEY("token=", KEY_TOKEN),
	FUSE_OPT_END,
};

/*
 * SIGUSR1 asks for a sync pass now. It is how `driftctl sync` asks a
 * read-only mount, whose .driftfs/ctl cannot be written. Every thread but
 * this one blocks the signal (the mask is set before any starts).
 */
struct kicker {
	pthread_t thread;
	sigset_t set;
	struct sync *sync;
	volatile sig_atomic_t stop;
	int started;
};

static void *kicker_main(void *arg)
{
	struct kicker *k = arg;
	int sig;

	while (!sigwait(&k->set, &sig) && !k->stop) {
		log_info("SIGUSR1: a sync pass is asked for");
		/* Does not wait: the pass runs on the sync thread. */
		sync_request(k->sync, 0);
	}
	return NULL;
}

/* Before any thread starts: they all inherit the mask. 0 or -errno. */
static int kicker_block(struct kicker *k)
{
	sigemptyset(&k->set);
	sigaddset(&k->set, SIGUSR1);
	return -pthread_sigmask(SIG_BLOCK, &k->set, NULL);
}

/* Once the sync thread runs (sync_request would run a pass here before).
 * 0 or -errno. */
static int kicker_start(struct kicker *k, struct sync *sync)
{
	int r;

	k->sync = sync;
	r = pthread_create(&k->thread, NULL, kicker_main, k);
	if (r)
		return -r;
	k->started = 1;
	return 0;
}

static void kicker_stop(struct kicker *k)
{
	if (!k->started)
		return;
	k->stop = 1;
	pthread_kill(k->thread, SIGUSR1);
	pthread_join(k->thread, NULL);
	k->started = 0;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [ACCOUNT] MOUNTPOINT\n"
	       "\n"
	       "Mounts a Drift account as a directory tree.\n"
	       "\n"
	       "general options:\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the version\n"
	       "    -f                     stay in the foreground\n"
	       "    -d, -o debug           debug output (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o opt[,opt...]        options, below, and FUSE's own\n"
	       "\n"
	       "driftfs options (also 'name = value' in %s):\n"
	       "    -o api_url=URL         API base URL (https://driftapi.com)\n"
	       "    -o credentials=FILE    token file (0600)\n"
	       "    -o cache_dir=DIR       cache directory (0700)\n"
	       "    -o refresh=SECONDS     seconds between syncs, 0 = never "
	       "(60)\n"
	       "    -o reconcile=SECONDS   deletions in Drift reach the cache "
	       "within this (86400)\n"
	       "    -o offline             never touch the network\n"
	       "    -o ca_file=FILE        extra CA bundle\n"
	       "    -o rate=N              cap on API requests per second\n"
	       "    -o timeout=SECONDS     deadline of one request (30)\n"
	       "    -o conns=N             concurrent requests when syncing "
	       "(4)\n"
	       "    -o ro                  read-only mount: no writes, and "
	       "files open with no\n"
	       "                           round trip to driftfs (fastest "
	       "cat and grep)\n"
	       "\n"
	       "The token comes from DRIFT_TOKEN or the credentials file, "
	       "never from the command line.\n",
	       prog, "$XDG_CONFIG_HOME/driftfs/config");
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cli *c = data;
	const char *eq;
	char name[64];
	size_t n;
	int r;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		c->help = 1;
		return 0;
	case KEY_VERSION:
		c->version = 1;
		return 0;
	case KEY_FOREGROUND:
		c->foreground = 1;
		return 0;
	case KEY_DEBUG:
		c->debug = c->foreground = 1;
		return 1;
	case KEY_SINGLE:
		c->single = 1;
		return 0;
	case KEY_RO:
	case KEY_RW:
		/* Noted, and passed on: the kernel enforces it. */
		c->read_only = key == KEY_RO;
		return 1;
	case KEY_TOKEN:
		fprintf(stderr, "driftfs: a token is never accepted on the "
				"command line (others can read it); set "
				"DRIFT_TOKEN or use the credentials file\n");
		c->bad = 1;
		return 0;
	case KEY_OURS:
		eq = strchr(arg, '=');
		n = eq ? (size_t)(eq - arg) : strlen(arg);
		snprintf(name, sizeof(name), "%.*s", (int)n, arg);
		r = config_set(c->cfg, name, eq ? eq + 1 : NULL);
		if (r) {
			fprintf(stderr, "driftfs: bad value for option %s\n",
				name);
			c->bad = 1;
		}
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (!c->mountpoint) {
			c->mountpoint = strdup(arg);
		} else if (!c->source) {
			c->source = c->mountpoint;
			c->mountpoint = strdup(arg);
		} else {
			fprintf(stderr, "driftfs: unexpected argument '%s'\n",
				arg);
			c->bad = 1;
		}
		return 0;
	default:
		return 1;
	}
}

/*
 * Every open attachment holds a descriptor of its file (it is read with
 * pread, never loaded whole): the soft limit (often 1024) is raised to the
 * hard one, so that many open attachments do not leave SQLite and curl
 * without descriptors.
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * The outbox's hooks (outbox.h): commit.c says what a row means and brings
 * the cache up to date after it; fs.c drops the kernel's copies. ctx is
 * the struct driftfs.
 */
static int outbox_landed(void *ctx, const struct outbox_row *row,
			 struct buf *found)
{
	return commit_landed(ctx, row, found);
}

static void outbox_applied(void *ctx, const struct outbox_row *row,
			   const struct buf *response)
{
	commit_applied(ctx, row, response);
}

static void outbox_gone(void *ctx, const struct outbox_row *row)
{
	commit_gone(ctx, row);
}

static void outbox_changed(void *ctx)
{
	fs_outbox_changed(((struct driftfs *)ctx)->fs);
}

static void outbox_delivered(void *ctx)
{
	fs_outbox_delivered(((struct driftfs *)ctx)->fs);
}

static void outbox_lost(void *ctx)
{
	fs_outbox_lost(((struct driftfs *)ctx)->fs);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct driftfs d;
	struct cli cli;
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop = NULL;
	char *conf_path = NULL, *mnt_abs = NULL;
	struct account acc = { 0 };
	struct auth *auth = NULL;
	struct kicker kick = { 0 };
	struct search_build *build = NULL;
	int ret = 1, mounted = 0, note = -1;

	memset(&d, 0, sizeof(d));
	memset(&cli, 0, sizeof(cli));
	config_harden_process();
	raise_fd_limit();
	log_setup(LOG_LVL_INFO, 0);
	if (config_defaults(&d.cfg)) {
		fprintf(stderr, "driftfs: out of memory\n");
		return 1;
	}
	cli.cfg = &d.cfg;
	conf_path = config_default_path();
	if (conf_path && config_load_file(&d.cfg, conf_path))
		goto out;
	if (fuse_opt_parse(&args, &cli, spec, opt_proc) || cli.bad)
		goto out;
	if (cli.help) {
		usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (cli.version) {
		printf("driftfs %s (libfuse %s, %s)\n", DRIFTFS_VERSION,
		       fuse_pkgversion(), curl_version());
		ret = 0;
		goto out;
	}
	if (!cli.mountpoint) {
		fprintf(stderr, "driftfs: no mountpoint (see driftfs -h)\n");
		goto out;
	}
	log_setup(cli.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, 0);
	if (config_validate(&d.cfg))
		goto out;
	/* The token source refreshes OAuth tokens as they expire. */
	auth = auth_new(&d.cfg);
	/* The source holds its own copy; fusermount3 and ps need none. */
	config_forget_env("DRIFT_TOKEN");
	if (!auth && !d.cfg.offline)
		goto out;

	/* Everything with threads or libraries starts before the fork only
	 * if it keeps no threads: curl's global state and SQLite files. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "driftfs: libcurl failed to initialise\n");
		goto out;
	}
	d.uid = getuid();
	d.gid = getgid();
	d.started_ms = clock_wall_ms();
	d.read_only = cli.read_only;
	{
		struct http_opts ho;

		http_opts_from_config(&ho, &d.cfg,
				      auth ? auth_http(auth) : NULL);
		d.http = http_new(&ho);
	}
	if (!d.http) {
		log_err("out of memory");
		goto out_curl;
	}
	/* One cache per Drift org (account.h): which org, which cache. */
	if (account_open(&acc, &d.cfg, d.http, auth, 1))
		goto out_curl;
	d.store = store_open(acc.dir);
	if (!d.store) {
		log_err("cannot open the cache in %s: %s", acc.dir,
			strerror(errno));
		goto out_curl;
	}
	if (account_check_store(&acc, d.store))
		goto out_curl;
	d.account = &acc;
	/* A later login to another org must not reach this cache. */
	if (auth && acc.org)
		auth_pin_org(auth, acc.org);
	d.fs = fs_new(&d);
	d.sync = d.fs ? sync_new(&d, fs_on_change, d.fs) : NULL;
	d.outbox = outbox_new(&d, &(struct outbox_hooks){
		.idempotent = commit_idempotent,
		.is_delete = commit_is_delete,
		.checked = commit_checked,
		.landed = outbox_landed,
		.applied = outbox_applied,
		.object_key = commit_object_key,
		.changed = outbox_changed,
		.delivered = outbox_delivered,
		.lost = outbox_lost,
		.gone = outbox_gone,
		.ctx = &d,
	});
	if (!d.fs || !d.sync || !d.outbox) {
		log_err("out of memory");
		goto out_curl;
	}

	if (fuse_opt_add_arg(&args, "-odefault_permissions,fsname=driftfs,"
				    "subtype=driftfs"))
		goto out_curl;
	se = fuse_session_new(&args, fs_ops(), sizeof(struct fuse_lowlevel_ops),
			      d.fs);
	if (!se)
		goto out_curl;
	if (fuse_set_signal_handlers(se))
		goto out_session;
	/* Before the mount: resolving the path afterwards would ask
	 * ourselves, and nobody answers yet. */
	mnt_abs = realpath(cli.mountpoint, NULL);
	if (fuse_session_mount(se, cli.mountpoint))
		goto out_signals;
	mounted = 1;
	if (fuse_daemonize(cli.foreground))
		goto out_unmount;
	if (!cli.foreground) {
		log_setup(LOG_LVL_INFO, 1);
		/*
		 * SQLite's locks are fcntl locks, which the fork did not give
		 * the daemon: its connections would hold none, and another
		 * process opening the cache (driftctl) would take itself for
		 * the only one, reset the WAL index and, at its close, remove
		 * the WAL this process goes on writing to. Opened again here;
		 * the first open was for the checks before the mount.
		 */
		store_close(d.store);
		d.store = store_open(acc.dir);
		acc.st = d.store;
		if (!d.store) {
			log_err("cannot open the cache in %s: %s", acc.dir,
				strerror(errno));
			goto out_unmount;
		}
	}
	/* Before the note: `driftctl sync` may signal from then on. */
	if (kicker_block(&kick))
		goto out_unmount;
	/* So that `driftctl sync` asks this mount instead of racing it. */
	if (mnt_abs)
		note = config_mount_note(acc.dir, mnt_abs);

	/* The outbox starts first: writes left by an earlier run go out
	 * before the first sync pass can show stale data over them. */
	if (fs_start(d.fs, se) ||
	    outbox_start(d.outbox) || sync_start(d.sync) ||
	    kicker_start(&kick, d.sync)) {
		log_err("cannot start worker threads");
		goto out_unmount;
	}
	/* An index for a cache of an older version (search.h). */
	build = search_build_start(d.store);
	if (cli.single) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		if (!loop)
			goto out_unmount;
		fuse_loop_cfg_set_max_threads(loop, 16);
		fuse_loop_cfg_set_idle_threads(loop, 8);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	ret = ret ? 1 : 0;
out_unmount:
	/* On every path, a start that failed half way too: no worker may
	 * outlive the session the notifier and the outbox's hooks notify
	 * (each stop is a no-op for a thread that never started). */
	kicker_stop(&kick);
	search_build_stop(build);
	sync_stop(d.sync);
	outbox_stop(d.outbox);
	fs_stop(d.fs);
	if (mounted)
		fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_curl:
	outbox_free(d.outbox);
	sync_free(d.sync);
	fs_free(d.fs);
	http_free(d.http);
	store_close(d.store);
	curl_global_cleanup();
	stats_clear();
out:
	if (note >= 0)
		close(note);
	auth_free(auth);
	free(mnt_abs);
	account_release(&acc);
	free(conf_path);
	free(cli.mountpoint);
	free(cli.source);
	config_release(&d.cfg);
	fuse_opt_free_args(&args);
	return ret;
}
