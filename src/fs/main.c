// SPDX-License-Identifier: MIT
/* main.c: the driftfs command: options, wiring, mount and teardown. */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <curl/curl.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "auth.h"
#include "clock.h"
#include "commit.h"
#include "config.h"
#include "driftfs.h"
#include "exit_status.h"
#include "fs.h"
#include "http.h"
#include "log.h"
#include "outbox.h"
#include "sdnotify.h"
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
	KEY_FSNAME,
	KEY_SUBTYPE,
};

/*
 * What the command line said. driftfs's own options are kept as given and
 * applied once the ACCOUNT is known: the account decides which config file
 * they override.
 */
struct cli {
	char *source;		/* ACCOUNT ("driftfs#NAME" in old fstabs) */
	char *mountpoint;
	char **ours;		/* "name[=value]" of our options, in order */
	size_t n_ours;
	int foreground, debug, single, help, version, bad;
	int read_only;		/* -o ro (the last of ro and rw wins) */
	int fsname, subtype;	/* given by the user: theirs win */
	int shared;		/* allow_other or allow_root: FUSE's own */
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
	FUSE_OPT_KEY("log_level=", KEY_OURS),
	FUSE_OPT_KEY("log-level=", KEY_OURS),
	FUSE_OPT_KEY("uid=", KEY_OURS),
	FUSE_OPT_KEY("gid=", KEY_OURS),
	FUSE_OPT_KEY("umask=", KEY_OURS),
	FUSE_OPT_KEY("token=", KEY_TOKEN),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_END,
};

/*
 * SIGUSR1 asks for a sync pass now. It is how `driftctl sync` asks a
 * read-only mount, whose .driftfs/ctl cannot be written. Every thread but
 * this one blocks the signal (the mask is set before any starts).
 *
 * The stop signals (SIGTERM, SIGINT, SIGHUP, SIGQUIT) must reach the main
 * thread. libfuse's handler only sets the session's exit flag; the main
 * thread notices because its sem_wait (or, with -s, its read of
 * /dev/fuse) is interrupted, and libfuse's own workers block these
 * signals for that reason. A stop signal taken by one of our threads
 * (sync, outbox, notifier, ...) interrupted nothing, and the mount stayed
 * up until the next FUSE request. So they are blocked, like SIGUSR1,
 * before any of our threads starts, and unblocked again in the main
 * thread alone once all have started (kicker_unblock_stops); one sent in
 * between waits, pending, until then.
 */
struct kicker {
	pthread_t thread;
	sigset_t set;
	sigset_t stops;
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
	sigset_t all;

	sigemptyset(&k->set);
	sigaddset(&k->set, SIGUSR1);
	sigemptyset(&k->stops);
	sigaddset(&k->stops, SIGTERM);
	sigaddset(&k->stops, SIGINT);
	sigaddset(&k->stops, SIGHUP);
	sigaddset(&k->stops, SIGQUIT);
	all = k->stops;
	sigaddset(&all, SIGUSR1);
	return -pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* Main thread, once every thread of ours has started: it alone takes the
 * stop signals (the threads libfuse starts block them themselves). */
static void kicker_unblock_stops(struct kicker *k)
{
	pthread_sigmask(SIG_UNBLOCK, &k->stops, NULL);
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

/*
 * Readiness for systemd (Type=notify): READY=1 once the mount answers, not
 * merely once it exists. A thread stats .driftfs/status inside the mount,
 * which waits until the session loop has answered FUSE's INIT and the
 * lookups; an aborted session fails the stat instead, and so does the
 * bare directory once the mount is gone (it has no .driftfs), and nothing
 * is sent. Only started when $NOTIFY_SOCKET is set; joined after the
 * unmount (which ends a stat still waiting).
 *
 * READY=1 never follows STOPPING=1: both are sent under lock, and the
 * thread sends nothing once stopping is set (ready_stopping(), main
 * thread). The lock is a leaf: nothing else is taken while it is held.
 */
struct ready {
	pthread_t thread;
	pthread_mutex_t lock;
	char *path;		/* <mountpoint>/.driftfs/status, ours */
	int stopping;		/* under lock */
	int started;
};

static void *ready_main(void *arg)
{
	struct ready *rd = arg;
	struct stat st;
	char msg[64];
	int r = 1;

	if (stat(rd->path, &st))
		return NULL;
	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%ld", (long)getpid());
	pthread_mutex_lock(&rd->lock);
	if (!rd->stopping)
		r = sdnotify_send(msg);
	pthread_mutex_unlock(&rd->lock);
	if (r < 0)
		log_warn("could not tell systemd the mount is ready");
	else if (!r)
		log_debug("told systemd the mount is ready");
	return NULL;
}

/* Main thread, once the session's threads can answer. */
static void ready_start(struct ready *rd, const char *mnt)
{
	const char *ns = getenv("NOTIFY_SOCKET");

	if (!ns || !*ns)
		return;
	if (asprintf(&rd->path, "%s/.driftfs/status", mnt) < 0) {
		rd->path = NULL;
		return;
	}
	pthread_mutex_init(&rd->lock, NULL);
	if (!pthread_create(&rd->thread, NULL, ready_main, rd))
		rd->started = 1;
	else
		pthread_mutex_destroy(&rd->lock);
}

/*
 * Main thread, when the loop has ended (send: STOPPING=1) or a start
 * failed half way: no READY=1 from then on. Idempotent.
 */
static void ready_stopping(struct ready *rd, int send)
{
	if (rd->started)
		pthread_mutex_lock(&rd->lock);
	if (!rd->stopping && send)
		sdnotify_send("STOPPING=1");
	rd->stopping = 1;
	if (rd->started)
		pthread_mutex_unlock(&rd->lock);
}

static void ready_join(struct ready *rd)
{
	if (rd->started) {
		pthread_join(rd->thread, NULL);
		pthread_mutex_destroy(&rd->lock);
	}
	rd->started = 0;
	free(rd->path);
	rd->path = NULL;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [ACCOUNT] MOUNTPOINT\n"
	       "\n"
	       "Mounts a Drift account as a directory tree. ACCOUNT (default: "
	       "$DRIFTFS_ACCOUNT,\n"
	       "else 'default') picks a profile: its own config file, "
	       "credentials and cache.\n"
	       "\n"
	       "general options:\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the version\n"
	       "    -f                     stay in the foreground, log to "
	       "stderr\n"
	       "    -d, -o debug           FUSE's request trace and "
	       "log_level=debug (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o opt[,opt...]        options, below, and FUSE's own\n"
	       "\n"
	       "driftfs options (also 'name = value' in the account's config "
	       "file,\n"
	       "%s for 'default'):\n"
	       "    -o api_url=URL         API base URL (https://driftapi.com)\n"
	       "    -o credentials=FILE    token file (0600)\n"
	       "    -o cache_dir=DIR       cache directory (0700)\n"
	       "    -o refresh=SECONDS     seconds between syncs (60); 0 = one "
	       "at mount, then\n"
	       "                           only when asked (.driftfs/ctl, "
	       "SIGUSR1)\n"
	       "    -o reconcile=SECONDS   deletions in Drift reach the cache "
	       "within this (86400)\n"
	       "    -o offline             never touch the network\n"
	       "    -o ca_file=FILE        CA bundle trusted besides the "
	       "system's CAs;\n"
	       "                           verification is never off\n"
	       "    -o rate=N              cap on API requests per second "
	       "(adaptive)\n"
	       "    -o timeout=SECONDS     deadline of one request (30)\n"
	       "    -o conns=N             most requests in flight, whole "
	       "daemon (4)\n"
	       "    -o log_level=LEVEL     error, warning, info (default) or "
	       "debug\n"
	       "    -o uid=N, -o gid=N     owner and group of every file "
	       "(the mounting user's)\n"
	       "    -o umask=OOO           mode bits to clear on every file "
	       "(none)\n"
	       "    -o fsname=NAME         the source df and mount show "
	       "(driftfs:ACCOUNT)\n"
	       "    -o ro                  read-only mount: no writes, and "
	       "files open with no\n"
	       "                           round trip to driftfs (fastest "
	       "cat and grep)\n"
	       "\n"
	       "mount(8)'s own options (noauto, user, _netdev, nofail, "
	       "x-systemd.*, ...) are\n"
	       "ignored. The token comes from DRIFT_TOKEN or the credentials "
	       "file, never from\n"
	       "the command line. Exit status: 0 ok (also a foreground mount "
	       "stopped by\n"
	       "SIGTERM, SIGINT or SIGHUP), 1 usage, 2 no token or a refused "
	       "credentials\n"
	       "file, 6 local failure (see driftfs(1)).\n",
	       prog, "$XDG_CONFIG_HOME/driftfs/config");
}

/*
 * Options meant for mount(8) or systemd that reach us through mount.fuse3
 * or an fstab line: they mean nothing to a mount and FUSE would refuse
 * them as unknown.
 */
static int mount_only_opt(const char *arg)
{
	static const char *const names[] = {
		"auto", "noauto", "user", "nouser", "users", "owner", "group",
		"_netdev", "nofail", "defaults", "nodelalloc", NULL,
	};

	/* util-linux spells some of its own X-mount.mkdir, X-mount.owner=. */
	if (!strncasecmp(arg, "x-", 2) || !strncmp(arg, "comment=", 8))
		return 1;
	for (int i = 0; names[i]; i++)
		if (!strcmp(arg, names[i]))
			return 1;
	return 0;
}

/* Keeps one of our options for later (see struct cli). */
static int keep_ours(struct cli *c, const char *arg)
{
	char **n = realloc(c->ours, (c->n_ours + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	c->ours = n;
	n[c->n_ours] = strdup(arg);
	if (!n[c->n_ours])
		return -ENOMEM;
	c->n_ours++;
	return 0;
}

/* Applies the kept options over the account's config. 0 or DX_USAGE. */
static int apply_ours(struct cli *c, struct config *cfg)
{
	for (size_t i = 0; i < c->n_ours; i++) {
		const char *arg = c->ours[i], *eq = strchr(arg, '=');
		char name[64];
		size_t n = eq ? (size_t)(eq - arg) : strlen(arg);

		snprintf(name, sizeof(name), "%.*s", (int)n, arg);
		if (config_set(cfg, name, eq ? eq + 1 : NULL)) {
			fprintf(stderr, "driftfs: bad value for option %s\n",
				name);
			return DX_USAGE;
		}
	}
	return 0;
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct cli *c = data;

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
		if (keep_ours(c, arg)) {
			fprintf(stderr, "driftfs: out of memory\n");
			c->bad = 1;
		}
		return 0;
	case KEY_FSNAME:
		c->fsname = 1;
		return 1;
	case KEY_SUBTYPE:
		c->subtype = 1;
		return 1;
	case FUSE_OPT_KEY_OPT:
		if (!strcmp(arg, "allow_other") || !strcmp(arg, "allow_root"))
			c->shared = 1;
		return mount_only_opt(arg) ? 0 : 1;
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
	struct ready ready = { 0 };
	struct search_build *build = NULL;
	const char *account;
	char *fsname = NULL;
	enum log_level level;
	int ret = DX_USAGE, mounted = 0, note = -1;

	/*
	 * glibc gives each thread that mallocs under contention an arena of
	 * its own, up to 8 per core, and each keeps what its thread freed:
	 * with FUSE's 16 workers, the sync's and a cache connection for each,
	 * a long-lived mount's RSS crept up by what sat free in a dozen
	 * arenas. Four serve two cores as well (make soak measures it).
	 */
	mallopt(M_ARENA_MAX, 4);
	/*
	 * Each FUSE worker has a buffer of 1 MiB and more, freed when an idle
	 * worker above the eight kept ends. glibc's mmap threshold rises to
	 * the size of the first mmapped block freed, after which these
	 * buffers come from the arenas, and what a worker's exit frees stays
	 * there, in pieces. A fixed threshold (it stops the rise) keeps them
	 * mmapped: an ended worker's buffer goes back to the system.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	memset(&d, 0, sizeof(d));
	memset(&cli, 0, sizeof(cli));
	config_harden_process();
	raise_fd_limit();
	log_setup(LOG_LVL_INFO, 0);
	if (fuse_opt_parse(&args, &cli, spec, opt_proc) || cli.bad)
		goto out;
	if (cli.help) {
		usage(argv[0]);
		ret = DX_OK;
		goto out;
	}
	if (cli.version) {
		printf("driftfs %s (libfuse %s, %s)\n", DRIFTFS_VERSION,
		       fuse_pkgversion(), curl_version());
		ret = DX_OK;
		goto out;
	}
	if (!cli.mountpoint) {
		fprintf(stderr, "driftfs: no mountpoint (see driftfs -h)\n");
		goto out;
	}
	/* "driftfs#NAME" is how fstab named the program and the source in
	 * one field before fuse.TYPE; mount.fuse3 may still hand it over. */
	account = cli.source ? cli.source : config_account_default();
	if (!strncmp(account, "driftfs#", 8))
		account += 8;
	if (config_account_valid(account)) {
		fprintf(stderr, "driftfs: ACCOUNT '%s': 1 to 64 letters, "
				"digits, '.', '_' or '-', not starting with "
				"'.' or '-'\n",
			account);
		goto out;
	}
	switch (config_defaults_for(&d.cfg, account)) {
	case 0:
		break;
	case -ENOENT:
		/* Status 1: the environment is to fix, and a unit does not
		 * restart for it (RestartPreventExitStatus=). */
		fprintf(stderr, "driftfs: no home directory: $HOME is unset "
				"and the password database has none for uid "
				"%ld; set HOME (or XDG_CONFIG_HOME and "
				"XDG_CACHE_HOME)\n",
			(long)geteuid());
		goto out;
	default:
		fprintf(stderr, "driftfs: out of memory\n");
		ret = DX_LOCAL;
		goto out;
	}
	conf_path = config_path_for(account);
	if (conf_path && config_load_file(&d.cfg, conf_path))
		goto out;
	if (apply_ours(&cli, &d.cfg))
		goto out;
	/* -d means everything: FUSE's trace and our own debug lines. */
	level = cli.debug ? LOG_LVL_DEBUG
	      : d.cfg.log_level >= 0 ? (enum log_level)d.cfg.log_level
				     : LOG_LVL_INFO;
	log_setup(level, 0);
	if (config_validate(&d.cfg))
		goto out;
	/* The token source refreshes OAuth tokens as they expire. */
	auth = auth_new(&d.cfg);
	/* Before anything can change errno: the same status as driftctl's
	 * for no token (exit_status.h). */
	ret = !auth && errno != ENOMEM ? DX_AUTH : DX_LOCAL;
	/* The source holds its own copy; fusermount3 and ps need none. */
	config_forget_env("DRIFT_TOKEN");
	if (!auth && !d.cfg.offline)
		goto out;
	ret = DX_LOCAL;

	/* Everything with threads or libraries starts before the fork only
	 * if it keeps no threads: curl's global state and SQLite files. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		fprintf(stderr, "driftfs: libcurl failed to initialise\n");
		goto out;
	}
	d.uid = d.cfg.uid >= 0 ? (uid_t)d.cfg.uid : getuid();
	d.gid = d.cfg.gid >= 0 ? (gid_t)d.cfg.gid : getgid();
	/* As sshfs users expect to be told: without allow_other the kernel
	 * lets nobody but the mounting user in, whatever owner it shows. */
	if (!cli.shared && (d.uid != getuid() || d.gid != getgid()))
		log_warn("uid=%ld, gid=%ld without allow_other: only uid %ld "
			 "can use this mount, whichever owner its files show "
			 "(the kernel refuses every other user); add -o "
			 "allow_other (user_allow_other in /etc/fuse.conf)",
			 (long)d.uid, (long)d.gid, (long)getuid());
	d.started_ms = clock_wall_ms();
	d.read_only = cli.read_only;
	{
		struct http_opts ho;

		http_opts_from_config(&ho, &d.cfg,
				      auth ? auth_http(auth) : NULL);
		d.http = http_new(&ho);
	}
	if (!d.http) {
		/* Anything but memory is ca_file's, said by http_new(). */
		if (errno == ENOMEM)
			log_err("out of memory");
		else
			ret = DX_USAGE;
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

	/* The user's fsname= and subtype= win; by default two mounts of
	 * two accounts differ in df and mount. */
	if (asprintf(&fsname, "-odefault_permissions%s%s%s",
		     cli.fsname ? "" : ",fsname=driftfs:",
		     cli.fsname ? "" : d.cfg.account,
		     cli.subtype ? "" : ",subtype=driftfs") < 0) {
		fsname = NULL;
		goto out_curl;
	}
	if (fuse_opt_add_arg(&args, fsname))
		goto out_curl;
	se = fuse_session_new(&args, fs_ops(), sizeof(struct fuse_lowlevel_ops),
			      d.fs);
	if (!se) {
		/* It has said why: nearly always an option FUSE does not
		 * know. */
		ret = DX_USAGE;
		goto out_curl;
	}
	if (fuse_set_signal_handlers(se))
		goto out_session;
	/* Before the mount: resolving the path afterwards would ask
	 * ourselves, and nobody answers yet. The session mounts (and at exit
	 * unmounts) this absolute path: fuse_daemonize() moves to / even with
	 * -f, and a relative one would then name nothing at the unmount. */
	mnt_abs = realpath(cli.mountpoint, NULL);
	if (!mnt_abs) {
		int e = errno;

		if (e == ENOMEM) {
			log_err("out of memory");
		} else if (e == ENOTCONN) {
			log_err("mountpoint %s: %s (a mount left by a driftfs "
				"that died: fusermount3 -uz %s)",
				cli.mountpoint, strerror(e), cli.mountpoint);
		} else {
			log_err("mountpoint %s: %s", cli.mountpoint,
				strerror(e));
			ret = DX_USAGE;
		}
		goto out_signals;
	}
	if (fuse_session_mount(se, mnt_abs))
		goto out_signals;
	mounted = 1;
	if (fuse_daemonize(cli.foreground))
		goto out_unmount;
	if (!cli.foreground) {
		/* The parent has exited: systemd would refuse a MAINPID from
		 * this child (NotifyAccess=main), so tell it nothing. Only
		 * this thread runs yet, so the environment is ours to change.
		 * Units run driftfs -f. */
		unsetenv("NOTIFY_SOCKET");
		log_setup(level, 1);
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
	note = config_mount_note(acc.dir, mnt_abs);

	/* The outbox starts first: writes left by an earlier run go out
	 * before the first sync pass can show stale data over them. */
	fs_set_single_thread(d.fs, cli.single);
	if (fs_start(d.fs, se) ||
	    outbox_start(d.outbox) || sync_start(d.sync) ||
	    kicker_start(&kick, d.sync)) {
		log_err("cannot start worker threads");
		goto out_unmount;
	}
	log_info("account %s mounted on %s (%s, cache %s)", d.cfg.account,
		 mnt_abs, d.cfg.api_url, acc.dir);
	/* An index for a cache of an older version (search.h). */
	build = search_build_start(d.store);
	ready_start(&ready, mnt_abs);
	kicker_unblock_stops(&kick);
	if (cli.single) {
		ret = fuse_session_loop(se);
	} else {
		loop = fuse_loop_cfg_create();
		if (!loop)
			goto out_unmount;
		fuse_loop_cfg_set_max_threads(loop, DRIFTFS_FUSE_THREADS);
		fuse_loop_cfg_set_idle_threads(loop, 8);
		ret = fuse_session_loop_mt(se, loop);
		fuse_loop_cfg_destroy(loop);
	}
	/* A positive value is the signal that ended the loop (libfuse
	 * >= 3.10: SIGTERM, SIGINT, SIGHUP): a stop asked for, as an
	 * unmount is. Only an error of the session is a failure. */
	ret = ret < 0 ? DX_LOCAL : DX_OK;
	ready_stopping(&ready, 1);
out_unmount:
	ready_stopping(&ready, 0);
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
	ready_join(&ready);
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
	for (size_t i = 0; i < cli.n_ours; i++)
		free(cli.ours[i]);
	free(cli.ours);
	free(fsname);
	config_release(&d.cfg);
	fuse_opt_free_args(&args);
	return ret;
}
