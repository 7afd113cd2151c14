// SPDX-License-Identifier: MIT
/* fs.c: FUSE low-level operations and cache invalidation (see fs.h). */
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include "fs.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "commit.h"
#include "ctl.h"
#include "outbox.h"
#include "http.h"
#include "log.h"
#include "names.h"
#include "stats.h"
#include "store.h"
#include "tree.h"

/* Cached objects are invalidated on change, so the kernel may keep them. */
#define LONG_TIMEOUT 3600.0
#define CTL_MAX ((size_t)64 << 10)

/*
 * A node the kernel knows: one per inode it holds, so a traversal of a big
 * account makes hundreds of thousands. One allocation each: the name it was
 * first found by is stored inline.
 */
struct fnode {
	uint64_t ino;
	struct tnode t;
	uint64_t nlookup;
	uint64_t parent;	/* where it was last looked up */
	char *name;		/* its name there: first_name, or its own copy */
	struct fnode *next;	/* hash chain */
	/* Its group (see group_of): the notifier finds the nodes a change
	 * touches there, without a walk of the whole table. */
	struct fnode *gnext, **gpprev;	/* group chain; gpprev NULL: none */
	int64_t gid;
	uint8_t gcls;
	uint32_t gen;		/* directories: listing changes sent (dir_gen) */
	uint32_t mark, cmark;	/* the notifier's batch that last saw it */
	char first_name[];
};

static void fnode_free(struct fnode *n)
{
	tree_node_release(&n->t);
	if (n->name != n->first_name)
		free(n->name);
	free(n);
}

/*
 * Files a read-only mount rendered lately, for the reads that follow the
 * first one of a file (the kernel reads a large file in pieces). Kept for
 * a moment only, and dropped when the file is invalidated.
 */
#define RENDERED_SLOTS 4
#define RENDERED_MAX ((size_t)4 << 20)
#define RENDERED_TTL_MS 2000

/*
 * Versions of writable files processes took (struct read_base): a
 * contact.json is a few KiB, so the budget holds every writable file of a
 * few hundred contacts, and a traversal of those evicts nothing. A version
 * larger than READ_BASE_MAX is not kept; a file keeps at most
 * READ_BASE_PER_FILE (one per process and change). The least recently
 * noted or picked go first.
 */
#define READ_BASE_SLOTS 1024
#define READ_BASE_MAX ((size_t)256 << 10)
#define READ_BASE_BUDGET ((size_t)8 << 20)
#define READ_BASE_PER_FILE 16

/* A queued invalidation request (a copy of a sync change). */
struct pending {
	struct sync_change c;
	struct pending *next;
};

struct fs {
	struct driftfs *d;
	struct fuse_session *se;

	pthread_mutex_t lock;	/* guards the node table */
	struct fnode **buckets;
	size_t nbuckets, count;
	/* The node table again, by group (see group_of); nbuckets long. */
	struct fnode **groups;
	uint32_t batch;		/* notifier batches so far (fnode.mark) */

	pthread_mutex_t qlock;	/* guards the queue */
	pthread_cond_t qcond;
	struct pending *queue;
	int stop;
	pthread_t notifier;
	int notifier_started;

	struct scratch *scratch;	/* guarded by lock */
	pthread_mutex_t hlock;	/* guards handles */
	struct handle *handles;	/* open files and directories */
	uint64_t scratch_next;

	/* Contacts this mount deleted in the last minute (guarded by
	 * lock): "rm -r" goes on removing their parts after the contact
	 * itself has gone, and those removals succeed. */
	struct tombstone {
		int64_t id;
		int64_t until_ms;
	} tombs[16];

	/* Listing generations of the fixed directories (see dir_gen). */
	uint32_t fixed_gen[T__FIXED_END];

	/* Directory listings being read (see struct listing). */
	pthread_mutex_t llock;
	struct listing *listings;
	size_t nlistings;
	/* The kernel opens directories without asking us (no OPENDIR or
	 * RELEASEDIR round trips); readdir then carries no handle. */
	int no_opendir;
	/* A read-only mount (-o ro) where the kernel opens files without
	 * asking us too: reads carry no handle (see read_unopened). */
	int no_open;
	pthread_mutex_t rlock;	/* guards rendered[] */
	struct rendered {
		uint64_t ino;
		int64_t at_ms;
		struct buf data;
	} rendered[RENDERED_SLOTS];
	unsigned rnext;
	unsigned long rgen;	/* drops so far: a rendering begun before
				 * one may be stale, and is not kept */
	/* Logged at unmount (not in .driftfs/stats, which a second rsync
	 * must find unchanged). */
	unsigned long opens, unopened_reads;
	/*
	 * The versions of writable files (contact.json, tags, a user, an
	 * account, a message) that processes took, by inode and process:
	 * the bytes a read that reached us gave the process that read, and
	 * the content a process committed that the API took at once. An
	 * edit whose writer read the file through another descriptor (an
	 * open with O_TRUNC, a scratch file renamed over it, as vim and
	 * sed -i do) is compared with the version its own process took last
	 * (read_base_pick) rather than the cache, which may have moved on
	 * since (DESIGN §4): a field Drift changed meanwhile is not sent
	 * back, and a save that undoes the process's own last save is sent.
	 * A commit still queued is noted too, marked: the process's next
	 * save is its change on top of it (an undo of it is sent); if the
	 * outbox then refuses or cancels a write, the queued versions go
	 * (fs_outbox_lost), and the next save sends all its changes again.
	 * A read served by the kernel's page cache never reaches us, so a
	 * process that read only from it has no version here (then the
	 * cache is the base). bllock guards them; it is taken last, after a
	 * handle's lock.
	 */
	pthread_mutex_t bllock;
	struct read_base {
		uint64_t ino;		/* 0: a free slot */
		uint64_t proc;		/* the process that took it (caller_proc) */
		int queued;		/* a commit still in the outbox */
		unsigned long used;	/* bclock when noted or picked */
		struct buf data;
	} bases[READ_BASE_SLOTS];
	size_t bbytes;		/* bytes held by bases[] */
	unsigned long bclock;
};

/* An open file or directory. */
struct handle {
	struct buf data;	/* file bytes: snapshot at open, or the new
				   content of a file opened for writing */
	struct buf wbuf;	/* ctl: bytes written, not yet a whole line */
	int kind;
	struct tnode t;		/* the node, for the commit */
	char *path;		/* its tree path, for errors and the outbox */
	int writable;		/* opened for writing a tree file */
	uint64_t proc;		/* the process that opened it: the writer */
	int unread;		/* read-only: data not loaded yet (op_read) */
	int fd;			/* read-only attachment: its file, read with
				 * pread, never loaded whole (or -1) */
	int dirty;		/* written (or truncated) since the commit */
	/*
	 * Writable edits: the version the writer read, which the commit
	 * compares the new content with (see handle_take_base); then the
	 * version it committed last, once the API took it. Guarded by lock,
	 * like data.
	 */
	struct buf base;
	int based;		/* base holds one (else: the cache at close) */
	int base_known;		/* base is the writer's version; else it is
				 * the cache at open, and the commit picks a
				 * version readers took if any (O_TRUNC) */
	int seed_unread;	/* data holds the bytes loaded at open and
				 * nothing read them through this descriptor:
				 * cut to 0 before a write, they were not the
				 * writer's starting point */
	int note_read;		/* reads show the version loaded at open:
				 * the first one notes it (read_base_note) */
	uint64_t scratch;	/* inode of a scratch file, or 0 */
	/*
	 * Guards data, wbuf and dirty: a WRITE and a FLUSH of one handle can
	 * run at once (a forked child closing its copy of the descriptor
	 * while the parent writes), and so can a READ and a WRITE or
	 * truncate (two threads on one descriptor): a write may reallocate
	 * data, so a read copies what it replies with before unlocking.
	 */
	pthread_mutex_t lock;
	/* In fs->handles, so that those the kernel never released (a RELEASE
	 * still queued when the session ends) are freed at exit. */
	struct fs *fs;
	struct handle *prev, *next;
};

/*
 * A scratch file: a name that is not part of the tree (vim's swap file and
 * 4913, sed's temporary, rsync's .name.XXXXXX). Its bytes stay in memory and
 * never reach the API, unless it is renamed over a tree file: then its
 * content is committed to that file, and the scratch inode stays an alias of
 * the target until the kernel forgets it.
 */
struct scratch {
	uint64_t ino;
	uint64_t parent;
	char *name;		/* NULL once unlinked or renamed away */
	struct buf data;
	int64_t mtime_ms;
	struct tnode alias;	/* kind 0, or the node it was renamed over */
	struct scratch *next;
};

struct dirent_snap {
	char *name;
	struct tnode t;
	struct tattr a;
};

/*
 * A directory's entries, taken when a reader starts at offset 0 and kept
 * until a reader reaches the end, so that the offsets of one pass through
 * the directory index one listing. Readdir has no handle to hang it on (see
 * fs.no_opendir), so listings are kept by inode, a few at a time: a pass
 * abandoned half way (ls | head) is dropped when newer ones need the room.
 */
struct listing {
	uint64_t ino;
	unsigned refs;
	int attached;		/* still in fs.listings */
	struct dirent_snap *ents;
	size_t n, alloc;
	struct listing *next;
};

#define LISTINGS_MAX 8

static void reply_entry(fuse_req_t req, struct fs *f, const struct tnode *t,
			const struct tattr *a);
static struct scratch *scratch_by_name_locked(struct fs *f, uint64_t parent,
					      const char *name);
static struct scratch *scratch_by_ino_locked(struct fs *f, uint64_t ino);
static void scratch_attr(struct fs *f, const struct scratch *s,
			 struct tattr *a);
static void scratch_forget_locked(struct fs *f, uint64_t ino);
static int buf_write_at(struct buf *b, const char *data, size_t size,
			off_t off);

/* Whether this thread holds fs.lock (an error line then cannot name the
 * path: building it needs the lock). */
static __thread int nodes_locked;

static void nodes_lock(struct fs *f)
{
	pthread_mutex_lock(&f->lock);
	nodes_locked = 1;
}

static void nodes_unlock(struct fs *f)
{
	nodes_locked = 0;
	pthread_mutex_unlock(&f->lock);
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static size_t bucket_of(const struct fs *f, uint64_t ino)
{
	return (size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 20) % f->nbuckets;
}

static struct fnode *node_find_locked(struct fs *f, uint64_t ino)
{
	for (struct fnode *n = f->buckets[bucket_of(f, ino)]; n; n = n->next)
		if (n->ino == ino)
			return n;
	return NULL;
}

/*
 * Groups: the nodes one kind of change can touch, so the notifier's cost
 * follows what changed, not how many nodes the kernel holds.
 *   GK_CONTACT  (contact id): the contact's directory and files
 *   GK_CONV     (conversation id): its directory, files, links, and the
 *               message and attachment files found under it
 *   GK_KIND     (kind): links by email or external id, users, playbooks,
 *               accounts: small sets a change or a pruning looks through
 *   GK_ORPHAN   (0): message and attachment files whose conversation is
 *               not known (no parent in the table); checked by query
 */
enum { GK_NONE, GK_CONTACT, GK_CONV, GK_KIND, GK_ORPHAN };

static size_t group_bucket(size_t nb, int cls, int64_t id)
{
	return (size_t)(names_hash64(&id, sizeof(id), (uint64_t)cls) % nb);
}

static int group_of(struct fs *f, const struct tnode *t, uint64_t parent,
		    int64_t *id)
{
	const struct fnode *p;

	*id = t->id;
	switch (t->kind) {
	case T_CONTACT:
	case T_CONTACT_JSON:
	case T_CONTACT_TAGS:
	case T_CONTACT_TIMELINE:
	case T_CONTACT_CONVS:
		return GK_CONTACT;
	case T_CONV:
	case T_CONV_JSON:
	case T_TRANSCRIPT:
	case T_MESSAGES:
	case T_ATTACHMENTS:
	case T_CONV_CONTACT_LINK:
	case T_MESSAGES_NEW:
	case T_STATUS_LINK:
	case T_CONTACT_CONV_LINK:
		return GK_CONV;
	case T_MESSAGE_JSON:
	case T_ATTACHMENT:
		p = parent ? node_find_locked(f, parent) : NULL;
		if (p && (p->t.kind == T_MESSAGES ||
			  p->t.kind == T_ATTACHMENTS)) {
			*id = p->t.id;
			return GK_CONV;
		}
		*id = 0;
		return GK_ORPHAN;
	case T_EMAIL_LINK:
	case T_EXTID_LINK:
	case T_USER_EMAIL_LINK:
	case T_USER_JSON:
	case T_PLAYBOOK_JSON:
	case T_ACCOUNT_JSON:
		*id = t->kind;
		return GK_KIND;
	default:
		return GK_NONE;
	}
}

static void group_link_locked(struct fs *f, struct fnode *n, size_t nb)
{
	struct fnode **head = &f->groups[group_bucket(nb, n->gcls, n->gid)];

	n->gnext = *head;
	if (*head)
		(*head)->gpprev = &n->gnext;
	*head = n;
	n->gpprev = head;
}

static void group_unlink_locked(struct fnode *n)
{
	if (!n->gpprev)
		return;
	*n->gpprev = n->gnext;
	if (n->gnext)
		n->gnext->gpprev = n->gpprev;
	n->gnext = NULL;
	n->gpprev = NULL;
}

/* The first node of group (cls, id)'s bucket; follow gnext, and check
 * gcls and gid (a bucket holds other groups too). */
static struct fnode *group_first_locked(struct fs *f, int cls, int64_t id)
{
	return f->groups[group_bucket(f->nbuckets, cls, id)];
}

static void node_grow_locked(struct fs *f)
{
	size_t nb = f->nbuckets * 2;
	struct fnode **b = calloc(nb, sizeof(*b));
	struct fnode **g = calloc(nb, sizeof(*g));
	struct fnode **old_groups = f->groups;

	if (!b || !g) {
		free(b);
		free(g);
		return;
	}
	f->groups = g;
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = old_groups[i], *next;

		for (; n; n = next) {
			next = n->gnext;
			group_link_locked(f, n, nb);
		}
	}
	free(old_groups);
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = f->buckets[i], *next;

		for (; n; n = next) {
			size_t k;

			next = n->next;
			k = (size_t)((n->ino * 0x9e3779b97f4a7c15ULL) >> 20) % nb;
			n->next = b[k];
			b[k] = n;
		}
	}
	free(f->buckets);
	f->buckets = b;
	f->nbuckets = nb;
}

/*
 * Records one more kernel reference to t (found as name in parent).
 * Returns 0, or -EIO when another object already holds this inode number
 * (a hash collision: refused rather than confused).
 */
static int node_ref(struct fs *f, const struct tnode *t, uint64_t ino,
		    uint64_t parent, const char *name)
{
	struct fnode *n;
	int r = 0;

	nodes_lock(f);
	n = node_find_locked(f, ino);
	if (n) {
		if (n->t.kind != t->kind || n->t.id != t->id ||
		    (t->name && (!n->t.name || strcmp(t->name, n->t.name)))) {
			log_error_event("inode %llu: two objects share it; "
					"%s refused",
					(unsigned long long)ino, name);
			r = -EIO;
			goto out;
		}
		n->nlookup++;
		if (parent && strcmp(n->name, name)) {
			char *nm = strdup(name);

			if (nm) {
				if (n->name != n->first_name)
					free(n->name);
				n->name = nm;
				n->parent = parent;
			}
		}
		goto out;
	}
	n = calloc(1, sizeof(*n) + strlen(name) + 1);
	if (!n || tree_node_copy(&n->t, t)) {
		free(n);
		r = -ENOMEM;
		goto out;
	}
	strcpy(n->first_name, name);
	n->name = n->first_name;
	n->ino = ino;
	n->nlookup = 1;
	n->parent = parent;
	if (f->count >= f->nbuckets)
		node_grow_locked(f);
	n->next = f->buckets[bucket_of(f, ino)];
	f->buckets[bucket_of(f, ino)] = n;
	f->count++;
	n->gcls = (uint8_t)group_of(f, t, parent, &n->gid);
	if (n->gcls != GK_NONE)
		group_link_locked(f, n, f->nbuckets);
out:
	nodes_unlock(f);
	return r;
}

static void node_forget(struct fs *f, uint64_t ino, uint64_t nlookup)
{
	struct fnode **p, *n;

	if (ino < T__FIXED_END)
		return;
	nodes_lock(f);
	for (p = &f->buckets[bucket_of(f, ino)]; (n = *p); p = &n->next) {
		if (n->ino != ino)
			continue;
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		if (!n->nlookup) {
			*p = n->next;
			group_unlink_locked(n);
			if (n->t.kind == T_SCRATCH)
				scratch_forget_locked(f, ino);
			fnode_free(n);
			f->count--;
		}
		break;
	}
	nodes_unlock(f);
}

/* Copies the tree node of ino; fixed nodes need no table entry. */
static int node_get(struct fs *f, uint64_t ino, struct tnode *out)
{
	struct fnode *n;
	int r = 0;

	if (ino < T__FIXED_END) {
		out->kind = (int)ino;
		out->id = 0;
		out->name = NULL;
		return 0;
	}
	nodes_lock(f);
	n = node_find_locked(f, ino);
	if (n)
		r = tree_node_copy(out, &n->t);
	else
		r = -ESTALE;
	nodes_unlock(f);
	return r;
}

static double attr_timeout(int kind)
{
	switch (tree_access(kind)) {
	case TA_DYNAMIC:
	case TA_CTL:
		return 0;
	default:
		return LONG_TIMEOUT;
	}
}

/*
 * How many times the listing of directory ino was invalidated. The kernel
 * keeps a directory's listing while its mtime stays the same (an empty
 * listing has no pages for an invalidation to drop), so each invalidation
 * also moves the mtime on by a nanosecond, below the millisecond the API's
 * times have.
 */
static uint32_t dir_gen(struct fs *f, uint64_t ino)
{
	struct fnode *n;
	int held = nodes_locked;	/* a caller with the table locked */
	uint32_t g;

	if (!held)
		nodes_lock(f);
	if (ino < T__FIXED_END) {
		g = f->fixed_gen[ino];
	} else {
		n = node_find_locked(f, ino);
		g = n ? n->gen : 0;
	}
	if (!held)
		nodes_unlock(f);
	return g;
}

static void to_stat(struct fs *f, const struct tattr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = f->d->uid;
	st->st_gid = f->d->gid;
	st->st_size = a->size;
	st->st_blksize = 4096;
	st->st_blocks = (a->size + 511) / 512;
	st->st_mtim.tv_sec = a->mtime_ms / 1000;
	st->st_mtim.tv_nsec = (a->mtime_ms % 1000) * 1000000 + a->mtime_ns;
	if (S_ISDIR(a->mode))
		st->st_mtim.tv_nsec += dir_gen(f, a->ino) % 1000000;
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}

/* Replies with an errno the kernel and users can make sense of. */
static void reply_err(fuse_req_t req, int r)
{
	int e = r < 0 ? -r : r;

	if (e == ETIMEDOUT || e == ENETDOWN)
		e = EAGAIN;
	else if (e == EFBIG)
		e = EIO;	/* an answer too large to accept */
	fuse_reply_err(req, e);
}

/*
 * Writes "PATH" of ino (and "/name" when name is given) into out: the path
 * is rebuilt from the names the kernel looked nodes up by, up to a fixed
 * node. With try set, a node table this thread holds gives "inode N"
 * instead of a deadlock (see ctx_format).
 */
static void node_path_of(struct fs *f, uint64_t ino, const char *name,
			 char *out, size_t size, int try)
{
	char *parts[16];
	size_t n = 0, len;
	int i;

	if (try && nodes_locked) {
		len = (size_t)snprintf(out, size, "inode %llu",
				       (unsigned long long)ino);
		if (name && len < size)
			snprintf(out + len, size - len, "/%s", name);
		return;
	}
	nodes_lock(f);
	while (ino >= T__FIXED_END && n < 16) {
		struct fnode *node = node_find_locked(f, ino);

		if (!node || !node->name)
			break;
		parts[n] = strdup(node->name);
		if (!parts[n])
			break;
		n++;
		ino = node->parent;
	}
	nodes_unlock(f);
	len = (size_t)snprintf(out, size, "%s",
			       ino < T__FIXED_END ? tree_fixed_path((int)ino)
						  : "...");
	for (i = (int)n - 1; i >= 0; i--) {
		if (len < size)
			len += (size_t)snprintf(out + len, size - len, "%s%s",
						len ? "/" : "", parts[i]);
		free(parts[i]);
	}
	if (name && len < size)
		snprintf(out + len, size - len, "%s%s", len ? "/" : "", name);
}

static void node_path(struct fs *f, uint64_t ino, const char *name, char *out,
		      size_t size)
{
	node_path_of(f, ino, name, out, size, 0);
}

/* What a request works on, for its error lines (see set_context). */
struct req_context {
	struct fs *f;
	const char *op;
	uint64_t ino;
	int has_name;
	char name[256];
};

static __thread struct req_context req_ctx;

static void ctx_format(const void *arg, char *out, size_t size)
{
	const struct req_context *c = arg;
	char path[900];

	/* An error may be recorded with the node table held. */
	node_path_of(c->f, c->ino, c->has_name ? c->name : NULL, path,
		     sizeof(path), 1);
	snprintf(out, size, "%s %s", c->op, path);
}

/*
 * Sets the thread's error context to "op PATH". The path is only built if
 * an error is recorded: most requests succeed, and building it costs more
 * than answering them.
 */
static void set_context(struct fs *f, const char *op, uint64_t ino,
			const char *name)
{
	req_ctx.f = f;
	req_ctx.op = op;
	req_ctx.ino = ino;
	req_ctx.has_name = name != NULL;
	if (name)
		snprintf(req_ctx.name, sizeof(req_ctx.name), "%s", name);
	log_context_defer(ctx_format, &req_ctx);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *f = userdata;

	f->no_opendir = !!(conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	/*
	 * On a read-only mount nothing is committed at close(), so files
	 * need no OPEN, FLUSH or RELEASE either: op_open and op_flush answer
	 * ENOSYS once, and a warm cat or grep then makes no request at all.
	 * A read-write mount cannot: FLUSH is where close() commits.
	 */
	f->no_open = f->d->read_only &&
		     (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	/*
	 * Always readdirplus: one request lists and stats a directory.
	 * AUTO_INVAL_DATA: the kernel checks a directory's mtime when a pass
	 * through its cached listing starts, if an invalidation made its
	 * attributes stale (see dir_gen).
	 */
	conn->want |= conn->capable &
		      (FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS |
		       FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS |
		       FUSE_CAP_AUTO_INVAL_DATA);
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}


static void tomb_add(struct fs *f, int64_t id)
{
	size_t oldest = 0;

	nodes_lock(f);
	for (size_t i = 1; i < sizeof(f->tombs) / sizeof(f->tombs[0]); i++)
		if (f->tombs[i].until_ms < f->tombs[oldest].until_ms)
			oldest = i;
	f->tombs[oldest].id = id;
	f->tombs[oldest].until_ms = http_now_ms() + 60000;
	nodes_unlock(f);
}

static int tomb_has(struct fs *f, int64_t id)
{
	int found = 0;

	nodes_lock(f);
	for (size_t i = 0; i < sizeof(f->tombs) / sizeof(f->tombs[0]); i++)
		if (f->tombs[i].id == id &&
		    f->tombs[i].until_ms > http_now_ms())
			found = 1;
	nodes_unlock(f);
	return found;
}

/* Whether name in dir is (part of) a contact this mount just deleted. */
static int in_tomb(struct fs *f, const struct tnode *dir, const char *name)
{
	int64_t id = 0;

	if (dir->kind == T_CONTACT || dir->kind == T_CONTACT_CONVS)
		return tomb_has(f, dir->id);
	if (dir->kind == T_CONTACTS &&
	    sscanf(name, "%" SCNd64, &id) == 1 && id > 0)
		return tomb_has(f, id);
	return 0;
}

/* Looks name up among the scratch files; replies and returns 1 if found. */
static int lookup_scratch(fuse_req_t req, struct fs *f, uint64_t parent,
			  const char *name)
{
	struct tnode t = { T_SCRATCH, 0, NULL };
	struct scratch *s;
	struct tattr a;

	nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		scratch_attr(f, s, &a);
		t.id = (int64_t)(s->ino & ((UINT64_C(1) << 55) - 1));
	}
	nodes_unlock(f);
	if (!s)
		return 0;
	if (node_ref(f, &t, a.ino, parent, name))
		fuse_reply_err(req, EIO);
	else
		reply_entry(req, f, &t, &a);
	return 1;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *f = fs_of(req);
	struct fuse_entry_param e;
	struct tnode dir = { 0 }, child = { 0 };
	struct tattr a;
	int r;

	if (lookup_scratch(req, f, parent, name))
		return;
	r = node_get(f, parent, &dir);
	if (r)
		goto fail;
	set_context(f, "lookup", parent, name);
	r = tree_lookup(f->d, &dir, name, &child, &a);
	if (r == -ENOENT && in_tomb(f, &dir, name))
		r = tree_lookup_deleted(&dir, name, &child, &a);
	if (r)
		goto fail;
	r = node_ref(f, &child, a.ino, parent, name);
	if (r)
		goto fail;
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.generation = 1;
	e.attr_timeout = attr_timeout(child.kind);
	e.entry_timeout = LONG_TIMEOUT;
	to_stat(f, &a, &e.attr);
	if (fuse_reply_entry(req, &e))
		node_forget(f, a.ino, 1);
	goto out;
fail:
	reply_err(req, r);
out:
	tree_node_release(&dir);
	tree_node_release(&child);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	node_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		node_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct tattr a;
	struct stat st;
	int r;

	(void)fi;
	r = node_get(f, ino, &t);
	if (!r && t.kind == T_SCRATCH) {
		struct scratch *s;

		nodes_lock(f);
		s = scratch_by_ino_locked(f, ino);
		if (s)
			scratch_attr(f, s, &a);
		nodes_unlock(f);
		r = s ? 0 : -ENOENT;
	} else if (!r) {
		set_context(f, "getattr", ino, NULL);
		r = tree_getattr(f->d, &t, &a);
		/* Parts of a contact deleted a moment ago (rm -r is not done
		 * with them): placeholders, so the kernel lets it finish. */
		if (r == -ENOENT && t.kind >= T_CONTACT &&
		    t.kind <= T_CONTACT_CONVS && tomb_has(f, t.id)) {
			tree_attr_deleted(&t, &a);
			r = 0;
		}
	}
	if (r) {
		reply_err(req, r);
	} else {
		to_stat(f, &a, &st);
		fuse_reply_attr(req, &st, attr_timeout(t.kind));
	}
	tree_node_release(&t);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct tnode t = { 0 };
	struct tattr a;
	struct stat st;
	enum tree_access acc;
	int r;

	r = node_get(f, ino, &t);
	if (r)
		goto out;
	if (t.kind == T_SCRATCH) {
		struct scratch *s;

		/* Scratch files take any mode, owner or time, and keep ours. */
		nodes_lock(f);
		s = scratch_by_ino_locked(f, ino);
		if (s && (to_set & FUSE_SET_ATTR_SIZE) && !s->alias.kind) {
			if ((size_t)attr->st_size <= s->data.len) {
				s->data.len = (size_t)attr->st_size;
				if (s->data.data)
					s->data.data[s->data.len] = '\0';
			} else {
				r = buf_write_at(&s->data, "", 0,
						 attr->st_size);
			}
		}
		if (s)
			scratch_attr(f, s, &a);
		nodes_unlock(f);
		r = r ? r : s ? 0 : -ENOENT;
		goto out;
	}
	r = tree_getattr(f->d, &t, &a);
	if (r)
		goto out;
	acc = tree_access(t.kind);
	/* Mode and owner come from the tree; setting them to what they are
	 * is fine (editors and cp do it), changing them is not. */
	if (((to_set & FUSE_SET_ATTR_MODE) &&
	     (attr->st_mode & 07777) != (a.mode & 07777)) ||
	    ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != f->d->uid) ||
	    ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != f->d->gid)) {
		r = -EPERM;
		goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (acc == TA_RO || acc == TA_DYNAMIC || acc == TA_DIR ||
		    acc == TA_LINK) {
			r = -EACCES;
		} else if (h && h->writable) {
			pthread_mutex_lock(&h->lock);
			/* Emptied before any write or read through it (dd,
			 * rsync --inplace): the writer starts from what it
			 * read elsewhere, as after O_TRUNC. */
			if (!attr->st_size && !h->dirty && h->seed_unread)
				h->base_known = 0;
			if ((size_t)attr->st_size <= h->data.len) {
				h->data.len = (size_t)attr->st_size;
				if (h->data.data)
					h->data.data[h->data.len] = '\0';
			} else {
				r = buf_write_at(&h->data, "", 0,
						 attr->st_size);
			}
			h->dirty = 1;
			pthread_mutex_unlock(&h->lock);
		} else if (acc == TA_RW) {
			/* truncate(2) on a path: commit the shortened bytes. */
			struct buf b = BUF_INIT;
			char path[900];

			r = tree_content(f->d, &t, &b);
			if (!r && (size_t)attr->st_size < b.len)
				b.len = (size_t)attr->st_size;
			node_path(f, ino, NULL, path, sizeof(path));
			/* Cut from the cache now: that is its base too. */
			r = r ? r : commit_write(f->d, &t, path,
						 b.data ? b.data : "", b.len,
						 NULL, NULL);
			buf_release(&b);
		}
		if (r)
			goto out;
		r = tree_getattr(f->d, &t, &a);
		if (!r && h && h->writable) {
			/* Under the lock: a write may be growing it. */
			pthread_mutex_lock(&h->lock);
			a.size = (int64_t)h->data.len;
			pthread_mutex_unlock(&h->lock);
		}
	}
	/* Times are the API's to set; accept and keep ours (like cp -p). */
out:
	if (r) {
		reply_err(req, r);
	} else {
		to_stat(f, &a, &st);
		fuse_reply_attr(req, &st, t.kind == T_SCRATCH
						  ? 0 : attr_timeout(t.kind));
	}
	tree_node_release(&t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct buf b = BUF_INIT;
	int r = node_get(f, ino, &t);

	r = r ? r : tree_readlink(f->d, &t, &b);
	if (r)
		reply_err(req, r);
	else
		fuse_reply_readlink(req, b.data ? b.data : "");
	buf_release(&b);
	tree_node_release(&t);
}

/* A new handle, listed in f->handles. */
static struct handle *handle_new(struct fs *f)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	h->fd = -1;
	h->fs = f;
	pthread_mutex_lock(&f->hlock);
	h->next = f->handles;
	if (h->next)
		h->next->prev = h;
	f->handles = h;
	pthread_mutex_unlock(&f->hlock);
	return h;
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->fs->hlock);
	if (h->prev)
		h->prev->next = h->next;
	else
		h->fs->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&h->fs->hlock);
	buf_release(&h->data);
	buf_release(&h->wbuf);
	buf_release(&h->base);
	if (h->fd >= 0)
		close(h->fd);
	pthread_mutex_destroy(&h->lock);
	tree_node_release(&h->t);
	free(h->path);
	free(h);
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->ents[i].name);
		tree_node_release(&l->ents[i].t);
	}
	free(l->ents);
	free(l);
}

static int listing_add(void *ctx, const char *name, const struct tnode *child,
		       const struct tattr *a)
{
	struct listing *l = ctx;
	struct dirent_snap *e;

	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 32;
		struct dirent_snap *p = realloc(l->ents, na * sizeof(*p));

		if (!p)
			return -ENOMEM;
		l->ents = p;
		l->alloc = na;
	}
	e = &l->ents[l->n];
	e->name = strdup(name);
	if (!e->name || tree_node_copy(&e->t, child)) {
		free(e->name);
		return -ENOMEM;
	}
	e->a = *a;
	l->n++;
	return 0;
}

/* Takes l out of fs.listings (under llock); freed once nobody reads it. */
static void listing_detach_locked(struct fs *f, struct listing *l)
{
	for (struct listing **pp = &f->listings; *pp; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			f->nlistings--;
			break;
		}
	}
	l->attached = 0;
	if (!l->refs)
		listing_free(l);
}

/*
 * The listing of dir (inode ino) that a read from off goes on with: a new
 * one at offset 0 (a new pass: rewinddir, or a new ls), else the one this
 * pass started, rebuilt only if it was dropped. Referenced; see listing_put.
 */
static int listing_get(struct fs *f, uint64_t ino, const struct tnode *dir,
		       off_t off, struct listing **out)
{
	struct listing *l, *old = NULL;
	int r;

	if (off > 0) {
		pthread_mutex_lock(&f->llock);
		for (l = f->listings; l; l = l->next)
			if (l->ino == ino)
				break;
		if (l)
			l->refs++;
		pthread_mutex_unlock(&f->llock);
		if (l) {
			*out = l;
			return 0;
		}
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->ino = ino;
	r = tree_list(f->d, dir, listing_add, l);
	if (r) {
		listing_free(l);
		return r;
	}
	l->refs = 1;
	l->attached = 1;
	pthread_mutex_lock(&f->llock);
	for (struct listing *o = f->listings; o; o = o->next)
		if (o->ino == ino)
			old = o;
	if (old)
		listing_detach_locked(f, old);
	l->next = f->listings;
	f->listings = l;
	f->nlistings++;
	/* Over the limit: drop the oldest passes nobody is reading now. */
	while (f->nlistings > LISTINGS_MAX) {
		struct listing *victim = NULL;

		for (struct listing *o = f->listings->next; o; o = o->next)
			if (!o->refs)
				victim = o;
		if (!victim)
			break;
		listing_detach_locked(f, victim);
	}
	pthread_mutex_unlock(&f->llock);
	*out = l;
	return 0;
}

/* Drops a reference; a pass read to its end drops the listing too. */
static void listing_put(struct fs *f, struct listing *l, int finished)
{
	pthread_mutex_lock(&f->llock);
	l->refs--;
	if (finished && l->attached)
		listing_detach_locked(f, l);
	else if (!l->refs && !l->attached)
		listing_free(l);
	pthread_mutex_unlock(&f->llock);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	int r;

	/* Telling the kernel that opendir is not needed makes every later
	 * opendir and closedir free: directories then have no handle. */
	if (f->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	r = node_get(f, ino, &t);
	if (r) {
		reply_err(req, r);
		return;
	}
	/* The outbox changes without sync changes: never cached. */
	fi->fh = 0;
	fi->cache_readdir = t.kind != T_OUTBOX;
	fi->keep_cache = t.kind != T_OUTBOX;
	fuse_reply_open(req, fi);
	tree_node_release(&t);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       int plus)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 };
	struct listing *l = NULL;
	char *buf = NULL;
	size_t used = 0, i = 0;
	int r;

	if (off < 0) {
		reply_err(req, -EINVAL);
		return;
	}
	r = node_get(f, ino, &dir);
	if (!r) {
		set_context(f, "readdir", ino, NULL);
		r = listing_get(f, ino, &dir, off, &l);
	}
	tree_node_release(&dir);
	if (!r) {
		buf = malloc(size ? size : 1);
		if (!buf)
			r = -ENOMEM;
	}
	if (r) {
		if (l)
			listing_put(f, l, 0);
		reply_err(req, r);
		return;
	}
	for (i = (size_t)off; i < l->n; i++) {
		struct dirent_snap *e = &l->ents[i];
		struct stat st;
		size_t need;

		to_stat(f, &e->a, &st);
		if (plus) {
			struct fuse_entry_param ep;

			memset(&ep, 0, sizeof(ep));
			ep.ino = e->a.ino;
			ep.generation = 1;
			ep.attr = st;
			ep.attr_timeout = attr_timeout(e->t.kind);
			ep.entry_timeout = LONG_TIMEOUT;
			need = fuse_add_direntry_plus(req, buf + used,
						      size - used, e->name,
						      &ep, (off_t)i + 1);
			if (need > size - used)
				break;
			/* The kernel now holds a reference to this entry. */
			if (node_ref(f, &e->t, e->a.ino, ino, e->name))
				break;
		} else {
			need = fuse_add_direntry(req, buf + used, size - used,
						 e->name, &st, (off_t)i + 1);
			if (need > size - used)
				break;
		}
		used += need;
	}
	/*
	 * The pass ends with the read past the last entry (the kernel asks
	 * once more after the last one, and must not make us list again).
	 */
	listing_put(f, l, (size_t)off >= l->n);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

#define WRITE_MAX ((size_t)16 << 20)

/*
 * The process that made request req, as one number: FUSE gives the
 * calling thread's id, and an editor may read on one thread and save on
 * another, so its thread group's id; with the group's start time, so that
 * a pid used again later is another process. 0 when /proc cannot say.
 */
static uint64_t caller_proc(fuse_req_t req)
{
	pid_t tid = fuse_req_ctx(req)->pid;
	unsigned long long start = 0;
	long tgid = 0;
	char path[64], line[512], *p;
	FILE *fp;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	fp = fopen(path, "re");
	while (fp && fgets(line, sizeof(line), fp))
		if (!strncmp(line, "Tgid:", 5)) {
			tgid = strtol(line + 5, NULL, 10);
			break;
		}
	if (fp)
		fclose(fp);
	if (tgid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", tgid);
	fp = fopen(path, "re");
	p = fp && fgets(line, sizeof(line), fp) ? strrchr(line, ')') : NULL;
	/* Field 22, counted after the ')' that ends the command name. */
	if (p && sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			"%*u %*u %*d %*d %*d %*d %*d %*d %llu", &start) != 1)
		start = 0;
	if (fp)
		fclose(fp);
	return ((uint64_t)start << 22) ^ (uint64_t)tgid;
}

/* Frees the version in b (bllock held). */
static void read_base_drop_locked(struct fs *f, struct read_base *b)
{
	f->bbytes -= b->data.len;
	b->ino = 0;
	buf_release(&b->data);
}

/*
 * Notes data as the version of the file ino that process pid took last
 * (see fs.bases). ino is the tree's inode of the file (tree_ino), not the
 * kernel's: a scratch file renamed over it stays an alias of it.
 */
static void read_base_note(struct fs *f, uint64_t ino, uint64_t proc,
			   int queued, const char *data, size_t len)
{
	struct read_base *slot = NULL, *mine = NULL, *lru = NULL, *b;
	size_t n = 0;

	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
		b = &f->bases[i];
		if (b->ino == ino && b->proc == proc) {
			if (b->data.len == len &&
			    !memcmp(b->data.data ? b->data.data : "", data,
				    len)) {
				/* Read again: now the most recent. */
				b->used = ++f->bclock;
				b->queued = queued;
				goto out;
			}
			n++;
			if (!mine || b->used < mine->used)
				mine = b;
		}
		if (!b->ino && !slot)
			slot = b;
		if (b->ino && (!lru || b->used < lru->used))
			lru = b;
	}
	if (len > READ_BASE_MAX) {
		/* The writer may start from this one, which is not kept:
		 * the older ones are not it, and would be taken for it. */
		for (size_t i = 0; i < READ_BASE_SLOTS; i++)
			if (f->bases[i].ino == ino && f->bases[i].proc == proc)
				read_base_drop_locked(f, &f->bases[i]);
		goto out;
	}
	if (n >= READ_BASE_PER_FILE)
		slot = mine;
	else if (!slot)
		slot = lru;
	if (slot->ino)
		read_base_drop_locked(f, slot);
	/* Within the budget: the least recently used go. */
	while (f->bbytes + len > READ_BASE_BUDGET) {
		lru = NULL;
		for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
			b = &f->bases[i];
			if (b->ino && (!lru || b->used < lru->used))
				lru = b;
		}
		read_base_drop_locked(f, lru);
	}
	if (!buf_add(&slot->data, data, len)) {
		slot->ino = ino;
		slot->proc = proc;
		slot->queued = queued;
		slot->used = ++f->bclock;
		f->bbytes += len;
	} else {
		buf_release(&slot->data);	/* no memory: not kept */
	}
out:
	pthread_mutex_unlock(&f->bllock);
}

/*
 * Copies into out the version of ino that the writer of data, process
 * pid, read: the one that process took last (it read it, or committed it),
 * else, as its read may have been served from the kernel's page cache, the
 * version any process took that is closest to data (commit_base_distance;
 * the most recent of those as close). None when data is exactly a version
 * kept that is not the newest: writing back an older version whole is a
 * restore (or an undo of a change), and only the cache as base sends it;
 * the newest written back unchanged is no change. 0, or -ENOENT when there
 * is none.
 */
static int read_base_pick(struct fs *f, uint64_t ino, uint64_t proc,
			  const char *data, size_t len, struct buf *out)
{
	struct read_base *best = NULL, *newest = NULL, *b;
	uint64_t bestd = 0, d;
	int r = -ENOENT, own = 0;

	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++) {
		b = &f->bases[i];
		if (b->ino == ino && proc && b->proc == proc &&
		    (!own || b->used > best->used)) {
			best = b;
			own = 1;
		}
	}
	for (size_t i = 0; i < READ_BASE_SLOTS && !own; i++) {
		b = &f->bases[i];
		if (b->ino != ino)
			continue;
		if (!newest || b->used > newest->used)
			newest = b;
		d = commit_base_distance(data, len,
					 b->data.data ? b->data.data : "",
					 b->data.len);
		if (!best || d < bestd || (d == bestd && b->used > best->used)) {
			best = b;
			bestd = d;
		}
	}
	if (best && !own && bestd == 0 && best != newest)
		best = NULL;
	if (best) {
		best->used = ++f->bclock;
		r = buf_add(out, best->data.data ? best->data.data : "",
			    best->data.len);
	}
	pthread_mutex_unlock(&f->bllock);
	return r;
}

/*
 * The base of an edit through a new writable descriptor h. Opened without
 * O_TRUNC (seeded), the writer starts from the bytes open loaded (it reads
 * them through an O_RDWR descriptor, and `>>` appends to them), so that is
 * it. With O_TRUNC the writer read the file, if at all, through another
 * descriptor: the commit picks among the versions readers took
 * (read_base_pick); base holds the cache now for when none is kept, which
 * is at least older than anything that comes while the file is open.
 * Without one, the commit compares with the cache at close.
 */
static void handle_take_base(struct fs *f, struct handle *h, int seeded,
			     int readable)
{
	int r;

	buf_init(&h->base, WRITE_MAX);
	if (seeded)
		r = buf_add(&h->base, h->data.data ? h->data.data : "",
			    h->data.len);
	else
		r = tree_content(f->d, &h->t, &h->base);
	h->based = !r;
	h->base_known = seeded;
	h->seed_unread = seeded;
	h->note_read = seeded && readable;
	if (r)
		buf_release(&h->base);
}

static struct scratch *scratch_by_name_locked(struct fs *f, uint64_t parent,
					      const char *name)
{
	for (struct scratch *s = f->scratch; s; s = s->next)
		if (s->parent == parent && s->name && !strcmp(s->name, name))
			return s;
	return NULL;
}

static struct scratch *scratch_by_ino_locked(struct fs *f, uint64_t ino)
{
	for (struct scratch *s = f->scratch; s; s = s->next)
		if (s->ino == ino)
			return s;
	return NULL;
}

static void scratch_free(struct scratch *s)
{
	free(s->name);
	buf_release(&s->data);
	tree_node_release(&s->alias);
	free(s);
}

/* Drops a scratch file the kernel has forgotten and no name reaches. */
static void scratch_forget_locked(struct fs *f, uint64_t ino)
{
	for (struct scratch **p = &f->scratch; *p; p = &(*p)->next) {
		struct scratch *s = *p;

		if (s->ino == ino && !s->name) {
			*p = s->next;
			scratch_free(s);
			return;
		}
	}
}

static void scratch_attr(struct fs *f, const struct scratch *s,
			 struct tattr *a)
{
	memset(a, 0, sizeof(*a));
	if (s->alias.kind && !tree_getattr(f->d, &s->alias, a)) {
		a->ino = s->ino;
		return;
	}
	a->ino = s->ino;
	a->mode = S_IFREG | 0644;
	a->nlink = s->name ? 1 : 0;
	a->size = (int64_t)s->data.len;
	a->mtime_ms = s->mtime_ms;
}

static void reply_entry(fuse_req_t req, struct fs *f, const struct tnode *t,
			const struct tattr *a)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = a->ino;
	e.generation = 1;
	e.attr_timeout = t->kind == T_SCRATCH ? 0 : attr_timeout(t->kind);
	e.entry_timeout = t->kind == T_SCRATCH ? 0 : LONG_TIMEOUT;
	to_stat(f, a, &e.attr);
	if (fuse_reply_entry(req, &e))
		node_forget(f, a->ino, 1);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct scratch *s = NULL;
	struct handle *h = NULL;
	struct tnode dir = { 0 }, t = { T_SCRATCH, 0, NULL };
	struct tattr a;
	int r;

	(void)mode;
	r = node_get(f, parent, &dir);
	if (!r && tree_access(dir.kind) != TA_DIR)
		r = -ENOTDIR;
	tree_node_release(&dir);
	if (!r && strlen(name) > 255)
		r = -ENAMETOOLONG;
	if (r)
		goto fail;
	s = calloc(1, sizeof(*s));
	h = handle_new(f);
	if (!s || !h || !(s->name = strdup(name))) {
		r = -ENOMEM;
		goto fail;
	}
	buf_init(&s->data, WRITE_MAX);
	s->parent = parent;
	s->mtime_ms = http_wall_ms();
	nodes_lock(f);
	if (scratch_by_name_locked(f, parent, name)) {
		nodes_unlock(f);
		r = -EEXIST;
		goto fail;
	}
	t.id = (int64_t)++f->scratch_next;
	s->ino = tree_ino(&t);
	s->next = f->scratch;
	f->scratch = s;
	scratch_attr(f, s, &a);
	nodes_unlock(f);
	s = NULL;
	r = node_ref(f, &t, a.ino, parent, name);
	if (r)
		goto fail;
	h->kind = T_SCRATCH;
	h->scratch = a.ino;
	h->writable = 1;
	buf_init(&h->wbuf, CTL_MAX);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	{
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.ino = a.ino;
		e.generation = 1;
		to_stat(f, &a, &e.attr);
		if (fuse_reply_create(req, &e, fi)) {
			node_forget(f, a.ino, 1);
			handle_free(h);
		}
	}
	return;
fail:
	if (s) {
		free(s->name);
		free(s);
	}
	/* Listed by handle_new: unlisted here, or fs_free meets it again. */
	handle_free(h);
	reply_err(req, r);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct handle *h = NULL;
	int acc_mode = fi->flags & O_ACCMODE, r;
	char path[900];
	enum tree_access acc;

	if (f->no_open) {
		reply_err(req, -ENOSYS);
		return;
	}
	r = node_get(f, ino, &t);
	if (r)
		goto fail;
	set_context(f, "open", ino, NULL);
	__atomic_add_fetch(&f->opens, 1, __ATOMIC_RELAXED);
	h = handle_new(f);
	if (!h) {
		r = -ENOMEM;
		goto fail;
	}
	buf_init(&h->wbuf, CTL_MAX);
	buf_init(&h->data, WRITE_MAX);
	h->kind = t.kind;
	if (t.kind == T_SCRATCH) {
		struct scratch *s;

		nodes_lock(f);
		s = scratch_by_ino_locked(f, ino);
		if (s && s->alias.kind)
			r = tree_node_copy(&t, &s->alias);
		else if (!s)
			r = -ENOENT;
		nodes_unlock(f);
		if (r)
			goto fail;
		if (t.kind == T_SCRATCH) {
			h->scratch = ino;
			h->writable = acc_mode != O_RDONLY;
			if (fi->flags & O_TRUNC) {
				nodes_lock(f);
				s = scratch_by_ino_locked(f, ino);
				if (s)
					buf_reset(&s->data);
				nodes_unlock(f);
			}
			fi->fh = (uintptr_t)h;
			fi->direct_io = 1;
			if (fuse_reply_open(req, fi))
				handle_free(h);
			tree_node_release(&t);
			return;
		}
		h->kind = t.kind;
	}
	acc = tree_access(t.kind);
	if (acc == TA_DIR) {
		r = -EISDIR;
		goto fail;
	}
	if (acc_mode != O_RDONLY && (acc == TA_RO || acc == TA_DYNAMIC ||
				     acc == TA_LINK)) {
		r = -EACCES;
		goto fail;
	}
	if (acc_mode != O_RDONLY && (acc == TA_RW || acc == TA_WO)) {
		/* Writes build the new content; close() commits it. */
		h->writable = 1;
		h->proc = caller_proc(req);
		node_path(f, ino, NULL, path, sizeof(path));
		h->path = strdup(path);
		r = h->path ? tree_node_copy(&h->t, &t) : -ENOMEM;
		if (r)
			goto fail;
		/* O_TRUNC alone changes nothing: shells truncate and dup the
		 * descriptor before the first write, and closing the copy
		 * must not commit an empty file. */
		if (!(fi->flags & O_TRUNC) && acc == TA_RW)
			r = tree_content(f->d, &t, &h->data);
		if (r)
			goto fail;
		if (acc == TA_RW)
			handle_take_base(f, h, !(fi->flags & O_TRUNC),
					 acc_mode == O_RDWR);
		fi->direct_io = 1;
	} else if (acc_mode == O_RDONLY) {
		if (acc == TA_DYNAMIC || acc == TA_CTL) {
			r = tree_content(f->d, &t, &h->data);
			if (r)
				goto fail;
			fi->direct_io = 1;
		} else {
			/*
			 * Loaded by the first read that reaches us: with the
			 * pages cached (keep_cache), most opens never read,
			 * and a traversal then costs no query per file.
			 */
			r = tree_node_copy(&h->t, &t);
			if (r)
				goto fail;
			h->unread = 1;
			fi->keep_cache = 1;
			fi->noflush = 1;
		}
	} else {
		fi->direct_io = 1;	/* ctl */
	}
	fi->fh = (uintptr_t)h;
	if (fuse_reply_open(req, fi))
		handle_free(h);
	tree_node_release(&t);
	return;
fail:
	handle_free(h);
	reply_err(req, r);
	tree_node_release(&t);
}

/*
 * Copies size bytes of src from off into *out (NULL and *n 0 past its
 * end), for a reply sent once src's lock is dropped. A read replies from a
 * copy, never from src: a write or truncate of the same descriptor may
 * reallocate src as soon as the lock is free, and once the kernel has the
 * reply, the reader may close the file and a release on another thread
 * free the handle while this one is still returning from writev() (where
 * a sanitizer's interceptor reads the buffer again). Reads that reach the
 * daemon are rare (keep_cache), so the copy costs little.
 */
static int slice_copy(const struct buf *src, size_t size, off_t off,
		      char **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (off < 0 || (size_t)off >= src->len)
		return 0;
	if (size > src->len - (size_t)off)
		size = src->len - (size_t)off;
	*out = malloc(size);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, src->data + off, size);
	*n = size;
	return 0;
}

/* Replies r, or the n bytes of copy (from slice_copy), and frees copy. */
static void reply_copy(fuse_req_t req, int r, char *copy, size_t n)
{
	if (r)
		reply_err(req, r);
	else
		fuse_reply_buf(req, copy, n);
	free(copy);
}

/* As slice_copy, from a file (an attachment's): up to size bytes of fd
 * from off into *out, for reply_copy. */
static int pread_copy(int fd, size_t size, off_t off, char **out, size_t *n)
{
	int r = 0;

	*n = 0;
	*out = malloc(size ? size : 1);
	if (!*out)
		return -ENOMEM;
	while (*n < size) {
		ssize_t got = pread(fd, *out + *n, size - *n, off + (off_t)*n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			r = -errno;
		if (got <= 0)
			break;
		*n += (size_t)got;
	}
	return r;
}

/* Forgets what a read-only mount rendered of ino (it changed). */
static void rendered_drop(struct fs *f, uint64_t ino)
{
	if (!f->no_open)
		return;
	pthread_mutex_lock(&f->rlock);
	f->rgen++;
	for (size_t i = 0; i < RENDERED_SLOTS; i++)
		if (f->rendered[i].ino == ino) {
			f->rendered[i].ino = 0;
			buf_release(&f->rendered[i].data);
		}
	pthread_mutex_unlock(&f->rlock);
}

/*
 * A read without a handle (a read-only mount, see op_init). The first
 * piece renders the file; the pieces after it come from that rendering
 * while it is fresh. Dynamic files are rendered for every read.
 */
static void read_unopened(struct fs *f, fuse_req_t req, fuse_ino_t ino,
			  size_t size, off_t off)
{
	struct buf data = BUF_INIT;
	struct tnode t = { 0 };
	struct rendered *slot = NULL;
	int64_t now = http_now_ms();
	unsigned long gen;
	char *copy = NULL;
	size_t n = 0;
	int r, keep;

	r = node_get(f, ino, &t);
	if (r) {
		reply_err(req, r);
		return;
	}
	if (t.kind == T_ATTACHMENT) {
		/* Read from its file, never rendered whole into a slot. */
		int fd;

		set_context(f, "read", ino, NULL);
		fd = tree_content_fd(f->d, &t);

		tree_node_release(&t);
		if (fd < 0) {
			reply_err(req, fd);
			return;
		}
		__atomic_add_fetch(&f->unopened_reads, 1, __ATOMIC_RELAXED);
		r = pread_copy(fd, size, off, &copy, &n);
		close(fd);
		reply_copy(req, r, copy, n);
		return;
	}
	keep = tree_access(t.kind) != TA_DYNAMIC &&
	       tree_access(t.kind) != TA_CTL;
	pthread_mutex_lock(&f->rlock);
	gen = f->rgen;
	for (size_t i = 0; i < RENDERED_SLOTS && keep && off > 0 && !slot; i++)
		if (f->rendered[i].ino == ino &&
		    now - f->rendered[i].at_ms < RENDERED_TTL_MS)
			slot = &f->rendered[i];
	/* Copied under the lock, replied after it: rendered_drop() (the
	 * notifier) waits on rlock, and must not wait on the kernel taking
	 * a reply. */
	if (slot)
		r = slice_copy(&slot->data, size, off, &copy, &n);
	pthread_mutex_unlock(&f->rlock);
	if (slot) {
		tree_node_release(&t);
		reply_copy(req, r, copy, n);
		return;
	}
	set_context(f, "read", ino, NULL);
	__atomic_add_fetch(&f->unopened_reads, 1, __ATOMIC_RELAXED);
	r = tree_content(f->d, &t, &data);
	tree_node_release(&t);
	if (r) {
		reply_err(req, r);
		buf_release(&data);
		return;
	}
	r = slice_copy(&data, size, off, &copy, &n);
	reply_copy(req, r, copy, n);
	pthread_mutex_lock(&f->rlock);
	if (keep && data.len > size && data.len <= RENDERED_MAX &&
	    f->rgen == gen) {
		slot = &f->rendered[f->rnext++ % RENDERED_SLOTS];
		for (size_t i = 0; i < RENDERED_SLOTS; i++)
			if (f->rendered[i].ino == ino)
				slot = &f->rendered[i];
		buf_release(&slot->data);
		slot->data = data;
		slot->ino = ino;
		slot->at_ms = now;
	} else {
		buf_release(&data);
	}
	pthread_mutex_unlock(&f->rlock);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *copy = NULL;
	size_t n = 0;
	int r = 0;

	if (!h) {
		read_unopened(f, req, ino, size, off);
		return;
	}
	if (h->scratch) {
		struct scratch *s;

		nodes_lock(f);
		s = scratch_by_ino_locked(f, h->scratch);
		if (s)
			r = slice_copy(&s->data, size, off, &copy, &n);
		nodes_unlock(f);
		reply_copy(req, r, copy, n);
		return;
	}
	/*
	 * A snapshot taken by the first read; later reads share it. Copied
	 * under the lock: a write or truncate of this descriptor on another
	 * thread reallocates h->data under it.
	 */
	pthread_mutex_lock(&h->lock);
	if (h->unread && h->t.kind == T_ATTACHMENT && h->fd < 0) {
		set_context(f, "read", ino, NULL);
		r = tree_content_fd(f->d, &h->t);
		if (r >= 0) {
			h->fd = r;
			r = 0;
		}
	}
	if (h->fd >= 0) {
		r = pread_copy(h->fd, size, off, &copy, &n);
		pthread_mutex_unlock(&h->lock);
		reply_copy(req, r, copy, n);
		return;
	}
	if (h->unread && !r) {
		set_context(f, "read", ino, NULL);
		r = tree_content(f->d, &h->t, &h->data);
		if (!r)
			h->unread = 0;
		else
			buf_reset(&h->data);
		if (!r && tree_access(h->t.kind) == TA_RW)
			read_base_note(f, tree_ino(&h->t),
				       caller_proc(req), 0,
				       h->data.data ? h->data.data : "",
				       h->data.len);
	} else if (h->writable) {
		h->seed_unread = 0;
		if (h->note_read && !h->dirty) {
			/* A reader here may save through another descriptor
			 * or a scratch file: it read this version. */
			h->note_read = 0;
			read_base_note(f, tree_ino(&h->t),
				       caller_proc(req), 0,
				       h->data.data ? h->data.data : "",
				       h->data.len);
		}
	}
	if (!r)
		r = slice_copy(&h->data, size, off, &copy, &n);
	pthread_mutex_unlock(&h->lock);
	reply_copy(req, r, copy, n);
}

/*
 * Runs every complete line in the ctl buffer (all of it when all is set).
 * The lines are taken out under the handle's lock and run outside it: a
 * "sync" can take minutes.
 */
static int ctl_run_lines(struct fs *f, struct handle *h, int all)
{
	char *nl, *lines = NULL;
	size_t n;
	int r = 0;

	pthread_mutex_lock(&h->lock);
	nl = h->wbuf.len ? memrchr(h->wbuf.data, '\n', h->wbuf.len) : NULL;
	n = nl ? (size_t)(nl - h->wbuf.data) + 1 : (all ? h->wbuf.len : 0);
	if (n) {
		lines = malloc(n);
		if (lines) {
			memcpy(lines, h->wbuf.data, n);
			memmove(h->wbuf.data, h->wbuf.data + n,
				h->wbuf.len - n);
			h->wbuf.len -= n;
			h->wbuf.data[h->wbuf.len] = '\0';
		} else {
			r = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&h->lock);
	if (lines)
		r = ctl_command(f->d, lines, n);
	free(lines);
	return r;
}

/* Writes data at off into b, zero-filling any gap. */
static int buf_write_at(struct buf *b, const char *data, size_t size,
			off_t off)
{
	size_t end;
	int r;

	if (off < 0)
		return -EINVAL;
	end = (size_t)off + size;
	if (end > b->len) {
		r = buf_grow(b, end - b->len);
		if (r)
			return r;
		memset(b->data + b->len, 0, end - b->len);
		b->len = end;
		b->data[end] = '\0';
	}
	memcpy(b->data + off, data, size);
	return 0;
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	/*
	 * An append (O_APPEND, also when set later by fcntl: the kernel sends
	 * the descriptor's flags with each write) goes at the end of the
	 * bytes this file holds, not at off: the kernel takes off from the
	 * size it last saw, and that is not the buffer's length for a file
	 * whose size shows something else (a `new` file shows the id of what
	 * it last created, and its buffer starts empty) or that another
	 * descriptor changed. NUL bytes at the front made the JSON invalid.
	 */
	int append = (fi->flags & O_APPEND) != 0;
	int r;

	(void)ino;
	if (h->kind == T_CTL_CTL) {
		pthread_mutex_lock(&h->lock);
		r = buf_add(&h->wbuf, data, size);
		pthread_mutex_unlock(&h->lock);
		r = r ? r : ctl_run_lines(f, h, 0);
	} else if (h->scratch) {
		struct scratch *s;

		nodes_lock(f);
		s = scratch_by_ino_locked(f, h->scratch);
		r = s ? buf_write_at(&s->data, data, size,
				     append ? (off_t)s->data.len : off)
		      : -ENOENT;
		if (s)
			s->mtime_ms = http_wall_ms();
		nodes_unlock(f);
	} else if (h->writable) {
		pthread_mutex_lock(&h->lock);
		r = buf_write_at(&h->data, data, size,
				 append ? (off_t)h->data.len : off);
		h->dirty = 1;
		pthread_mutex_unlock(&h->lock);
	} else {
		r = -EBADF;
	}
	if (r == -EFBIG)
		fuse_reply_err(req, EFBIG);	/* past WRITE_MAX */
	else if (r)
		reply_err(req, r);
	else
		fuse_reply_write(req, size);
}

/* Commits a written tree file once: close() and fsync() both come here. */
static int handle_commit(struct fs *f, struct handle *h)
{
	struct buf picked = BUF_INIT;
	const struct buf *base;
	int r, queued;

	if (!h->writable || h->scratch)
		return 0;
	/* Held through the commit: a concurrent write waits for it. */
	pthread_mutex_lock(&h->lock);
	if (!h->dirty) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	h->dirty = 0;
	base = h->based ? &h->base : NULL;
	buf_init(&picked, WRITE_MAX);
	if (h->based && !h->base_known &&
	    !read_base_pick(f, tree_ino(&h->t), h->proc,
			    h->data.data ? h->data.data : "", h->data.len,
			    &picked))
		base = &picked;
	r = commit_write(f->d, &h->t, h->path, h->data.data ? h->data.data : "",
			 h->data.len, base, &queued);
	if (!r && tree_access(h->t.kind) == TA_RW)
		/* The writer's next save, through another descriptor,
		 * starts from what it wrote (an undo of it is a change). */
		read_base_note(f, tree_ino(&h->t), h->proc, queued,
			       h->data.data ? h->data.data : "", h->data.len);
	if (!r && h->based && !queued) {
		/* The API took it: a later commit of this descriptor (an
		 * fsync, then more) is the writer's change on top of that.
		 * Queued, the outbox may still refuse it, and the writer's
		 * version stays what it read: a later commit sends again
		 * what this one changed. */
		buf_reset(&h->base);
		h->based = !buf_add(&h->base, h->data.data ? h->data.data : "",
				    h->data.len);
		h->base_known = 1;
	}

	buf_release(&picked);
	pthread_mutex_unlock(&h->lock);
	if (r)
		log_context_set(NULL);
	return r;
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r = 0;

	(void)ino;
	if (!h) {
		/* Unopened (op_init): once ENOSYS, the kernel stops asking. */
		reply_err(req, -ENOSYS);
		return;
	}
	if (h->kind == T_CTL_CTL)
		r = ctl_run_lines(f, h, 1);
	else
		r = handle_commit(f, h);
	reply_err(req, r);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	(void)datasync;
	op_flush(req, ino, fi);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)ino;
	if (!h) {
		fuse_reply_err(req, 0);
		return;
	}
	/* Normally flush() has committed already; this is the last chance. */
	handle_commit(fs_of(req), h);
	handle_free(h);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* Removes a scratch name; 0, or -ENOENT when it is no scratch file. */
static int scratch_unlink(struct fs *f, uint64_t parent, const char *name)
{
	struct scratch *s;

	nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		free(s->name);
		s->name = NULL;
		if (!node_find_locked(f, s->ino))
			scratch_forget_locked(f, s->ino);
	}
	nodes_unlock(f);
	return s ? 0 : -ENOENT;
}

/*
 * unlink and rmdir: scratch files go; a contact or a message is deleted
 * through the API; .driftfs/outbox/<n>.json cancels a pending write; what
 * the API cannot delete is EPERM. Inside a contact that is already gone,
 * removing is a no-op, so "rm -r contacts/<id>" finishes cleanly.
 */
static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 }, child = { 0 };
	struct tattr a;
	char path[900];
	int r;

	if (!scratch_unlink(f, parent, name)) {
		fuse_reply_err(req, 0);
		return;
	}
	r = node_get(f, parent, &dir);
	if (r)
		goto out;
	set_context(f, "unlink", parent, name);
	/* The contact went first (rm -r removed contact.json): its parts,
	 * and then its directory, go quietly. */
	if (in_tomb(f, &dir, name)) {
		r = 0;
		goto out;
	}
	r = tree_lookup(f->d, &dir, name, &child, &a);
	if (r)
		goto out;
	node_path(f, parent, name, path, sizeof(path));
	switch (child.kind) {
	case T_CONTACT:
	case T_CONTACT_JSON:
		r = commit_delete(f->d, &child, path);
		if (!r)
			tomb_add(f, child.id);
		break;
	case T_MESSAGE_JSON:
		r = commit_delete(f->d, &child, path);
		break;
	case T_CONTACT_TAGS:
	case T_CONTACT_TIMELINE:
	case T_CONTACT_CONVS:
	case T_CONTACT_CONV_LINK:
		/* Parts of a contact: they go when the contact goes. */
		r = -EPERM;
		break;
	case T_OUTBOX_ITEM:
		r = outbox_cancel(f->d->outbox, child.id);
		break;
	default:
		r = -EPERM;
	}
out:
	if (r == -EPERM)
		log_error_event("the API cannot delete this");
	reply_err(req, r);
	tree_node_release(&dir);
	tree_node_release(&child);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fuse_reply_err(req, EPERM);
}

/*
 * rename: a scratch file renamed over a writable tree file commits its
 * content there (sed -i, rsync, editors that write a temporary and rename
 * it); scratch to another scratch name just moves it. Tree files are not
 * renamed (EPERM): their names come from the API.
 */
static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 }, target = { 0 };
	struct buf content = BUF_INIT, base = BUF_INIT;
	struct scratch *s, *old;
	struct tattr a;
	char path[900];
	uint64_t ino = 0;
	int r, based, queued;

	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		ino = s->ino;
		r = buf_add(&content, s->data.data ? s->data.data : "",
			    s->data.len);
	} else {
		r = -EPERM;
	}
	nodes_unlock(f);
	if (r)
		goto out;
	r = node_get(f, newparent, &dir);
	if (r)
		goto out;
	set_context(f, "rename", newparent, newname);
	r = tree_lookup(f->d, &dir, newname, &target, &a);
	if (r == -ENOENT) {
		/* Scratch to scratch: move the name (replacing any other). */
		nodes_lock(f);
		old = scratch_by_name_locked(f, newparent, newname);
		if (old) {
			free(old->name);
			old->name = NULL;
		}
		s = scratch_by_ino_locked(f, ino);
		if (s) {
			char *nm = strdup(newname);

			r = nm ? 0 : -ENOMEM;
			if (nm) {
				free(s->name);
				s->name = nm;
				s->parent = newparent;
			}
		}
		nodes_unlock(f);
		goto out;
	}
	if (r)
		goto out;
	if (flags & RENAME_NOREPLACE) {
		r = -EEXIST;
		goto out;
	}
	node_path(f, newparent, newname, path, sizeof(path));
	/*
	 * Whoever filled the scratch file read the target, if at all,
	 * through a descriptor of its own (vim and sed -i read it first,
	 * and rename from the same process): compare with the version it
	 * took (read_base_pick), else the cache now. What it commits is its
	 * next version (marked while queued: see fs.bases).
	 */
	based = !read_base_pick(f, a.ino, caller_proc(req),
				content.data ? content.data : "", content.len,
				&base);
	r = commit_write(f->d, &target, path, content.data ? content.data : "",
			 content.len, based ? &base : NULL, &queued);
	if (r)
		goto out;
	if (tree_access(target.kind) == TA_RW)
		read_base_note(f, a.ino, caller_proc(req), queued,
			       content.data ? content.data : "", content.len);
	/* The kernel now calls the scratch inode by the target's name. */
	nodes_lock(f);
	s = scratch_by_ino_locked(f, ino);
	if (s) {
		free(s->name);
		s->name = NULL;
		tree_node_release(&s->alias);
		tree_node_copy(&s->alias, &target);
	}
	nodes_unlock(f);
out:
	reply_err(req, r);
	buf_release(&content);
	buf_release(&base);
	tree_node_release(&dir);
	tree_node_release(&target);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.statfs = op_statfs,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.create = op_create,
	.mkdir = op_mkdir,
	.rename = op_rename,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &ops;
}

struct fs *fs_new(struct driftfs *d)
{
	struct fs *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->d = d;
	f->nbuckets = 1024;
	f->buckets = calloc(f->nbuckets, sizeof(*f->buckets));
	f->groups = calloc(f->nbuckets, sizeof(*f->groups));
	if (!f->buckets || !f->groups) {
		free(f->buckets);
		free(f->groups);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->llock, NULL);
	pthread_mutex_init(&f->qlock, NULL);
	pthread_mutex_init(&f->hlock, NULL);
	pthread_mutex_init(&f->rlock, NULL);
	pthread_mutex_init(&f->bllock, NULL);
	pthread_cond_init(&f->qcond, NULL);
	return f;
}

void fs_free(struct fs *f)
{
	if (!f)
		return;
	fs_stop(f);
	for (size_t i = 0; i < f->nbuckets; i++) {
		struct fnode *n = f->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			fnode_free(n);
		}
	}
	while (f->queue) {
		struct pending *p = f->queue;

		f->queue = p->next;
		free(p->c.key);
		free(p);
	}
	while (f->listings) {
		struct listing *l = f->listings;

		f->listings = l->next;
		listing_free(l);
	}
	while (f->handles)
		handle_free(f->handles);
	/* Scratch files still named at the end (the kernel never forgets
	 * those: it sends no FORGET once the session ends). */
	while (f->scratch) {
		struct scratch *s = f->scratch;

		f->scratch = s->next;
		scratch_free(s);
	}
	for (size_t i = 0; i < RENDERED_SLOTS; i++)
		buf_release(&f->rendered[i].data);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		buf_release(&f->bases[i].data);
	free(f->buckets);
	free(f->groups);
	pthread_mutex_destroy(&f->bllock);
	pthread_mutex_destroy(&f->rlock);
	pthread_mutex_destroy(&f->hlock);
	pthread_mutex_destroy(&f->lock);
	pthread_mutex_destroy(&f->llock);
	pthread_mutex_destroy(&f->qlock);
	pthread_cond_destroy(&f->qcond);
	free(f);
}

void fs_on_change(void *ctx, const struct sync_change *c, size_t n)
{
	struct fs *f = ctx;

	pthread_mutex_lock(&f->qlock);
	for (size_t i = 0; i < n; i++) {
		struct pending *p = calloc(1, sizeof(*p));

		if (!p)
			break;
		p->c = c[i];
		p->c.key = c[i].key ? strdup(c[i].key) : NULL;
		p->next = f->queue;
		f->queue = p;
	}
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qlock);
}

void fs_outbox_lost(struct fs *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		if (f->bases[i].ino && f->bases[i].queued)
			read_base_drop_locked(f, &f->bases[i]);
	pthread_mutex_unlock(&f->bllock);
}

void fs_outbox_delivered(struct fs *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&f->bllock);
	for (size_t i = 0; i < READ_BASE_SLOTS; i++)
		f->bases[i].queued = 0;
	pthread_mutex_unlock(&f->bllock);
}

void fs_outbox_changed(struct fs *f)
{
	if (!f || !f->se)
		return;
	nodes_lock(f);
	f->fixed_gen[T_OUTBOX]++;
	nodes_unlock(f);
	fuse_lowlevel_notify_inval_inode(f->se, T_OUTBOX, 0, 0);
}

/* One invalidation to send once the node table is unlocked. */
struct inval {
	uint64_t ino;		/* inode, or parent for an entry */
	char *name;		/* NULL: invalidate the inode */
};

struct inval_list {
	struct inval *v;
	size_t n, alloc;
};

static void inval_add(struct inval_list *l, uint64_t ino, const char *name)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 64;
		struct inval *p = realloc(l->v, na * sizeof(*p));

		if (!p)
			return;
		l->v = p;
		l->alloc = na;
	}
	l->v[l->n].ino = ino;
	l->v[l->n].name = name ? strdup(name) : NULL;
	if (name && !l->v[l->n].name)
		return;
	l->n++;
}

/*
 * A node whose fate needs a query (is it gone? whose is it?): copied out
 * of the table, so the query runs with the node lock released.
 */
struct cand {
	uint64_t ino;
	struct tnode t;
	uint64_t parent;
	char *name;		/* its name in parent, or NULL */
	int orphan;		/* GK_ORPHAN: its conversation unknown */
	int inode_sent;		/* its inode is invalidated already */
};

struct cand_list {
	struct cand *v;
	size_t n, alloc;
};

/* What one batch of changes costs the notifier (in .driftfs/stats). */
struct notify_cost {
	long visits;		/* nodes looked at */
	long queries;		/* store queries */
};

static void cand_add_locked(struct cand_list *l, struct fnode *n,
			    int orphan, int inode_sent)
{
	struct cand *c;

	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		struct cand *p = realloc(l->v, na * sizeof(*p));

		if (!p)
			return;
		l->v = p;
		l->alloc = na;
	}
	c = &l->v[l->n];
	memset(c, 0, sizeof(*c));
	if (tree_node_copy(&c->t, &n->t))
		return;
	c->name = n->parent && n->name ? strdup(n->name) : NULL;
	c->ino = n->ino;
	c->parent = c->name ? n->parent : 0;
	c->orphan = orphan;
	c->inode_sent = inode_sent;
	l->n++;
}

/* Node n is touched by the batch: its inode (once) and, if gone, its name. */
static void hit_locked(struct fs *f, struct fnode *n, int gone,
		       struct inval_list *l)
{
	if (n->mark != f->batch) {
		n->mark = f->batch;
		inval_add(l, n->ino, NULL);
		if (tree_access(n->t.kind) == TA_DIR)
			n->gen++;
	}
	if (gone && n->parent && n->name)
		inval_add(l, n->parent, n->name);
}

/* Every node of group (cls, id), each once per batch. */
#define FOR_GROUP(f, n, cls, id)                                            \
	for (struct fnode *n = group_first_locked(f, cls, id); n;           \
	     n = n->gnext)                                                  \
		if (n->gcls == (cls) && n->gid == (id))

static void hit_ino_locked(struct fs *f, const struct tnode *t,
			   struct inval_list *l, struct notify_cost *cost)
{
	struct fnode *n = node_find_locked(f, tree_ino(t));

	if (n && n->t.kind == t->kind && n->t.id == t->id) {
		cost->visits++;
		hit_locked(f, n, 0, l);
	}
}

static void hit_kind_locked(struct fs *f, int kind, struct inval_list *l,
			    struct notify_cost *cost)
{
	FOR_GROUP(f, n, GK_KIND, kind) {
		if (n->t.kind != kind)
			continue;
		cost->visits++;
		hit_locked(f, n, 0, l);
	}
}

/* Candidates for a query of the group, each once per batch. */
static void cand_group_locked(struct fs *f, int cls, int64_t id, int kind,
			      struct cand_list *cl, struct notify_cost *cost)
{
	FOR_GROUP(f, n, cls, id) {
		if (kind && n->t.kind != kind)
			continue;
		cost->visits++;
		if (n->cmark == f->batch)
			continue;
		n->cmark = f->batch;
		cand_add_locked(cl, n, cls == GK_ORPHAN, 0);
	}
}

/*
 * The nodes one change touches, under the node lock. *once holds what the
 * batch needs only once: 1 the contact links, 2 the user links, 4 the
 * orphans.
 */
static void change_locked(struct fs *f, const struct sync_change *c,
			  int *once, struct inval_list *l,
			  struct cand_list *cl, struct notify_cost *cost)
{
	static const int pruned_kind[] = {
		[SO_USER] = T_USER_JSON,
		[SO_PLAYBOOK] = T_PLAYBOOK_JSON,
		[SO_ACCOUNT] = T_ACCOUNT_JSON,
	};
	struct tnode t = { 0 };

	switch (c->what) {
	case SO_CONTACT:
		FOR_GROUP(f, n, GK_CONTACT, c->id) {
			if (n->t.id != c->id)
				continue;
			cost->visits++;
			hit_locked(f, n, 0, l);
			/* A deleted contact's directory goes: by query. */
			if (n->t.kind == T_CONTACT && n->cmark != f->batch) {
				n->cmark = f->batch;
				cand_add_locked(cl, n, 0, 1);
			}
		}
		/* Which contact an email names may have changed. */
		if (!(*once & 1)) {
			*once |= 1;
			hit_kind_locked(f, T_EMAIL_LINK, l, cost);
			hit_kind_locked(f, T_EXTID_LINK, l, cost);
		}
		break;
	case SO_CONVERSATION:
		/* Both the old and the new contact's conversations/ list. */
		t.kind = T_CONTACT_CONVS;
		if (c->old_contact) {
			t.id = c->old_contact;
			hit_ino_locked(f, &t, l, cost);
		}
		if (c->contact && c->contact != c->old_contact) {
			t.id = c->contact;
			hit_ino_locked(f, &t, l, cost);
		}
		FOR_GROUP(f, n, GK_CONV, c->id) {
			int k = n->t.kind;

			cost->visits++;
			if (k == T_STATUS_LINK || k == T_CONTACT_CONV_LINK) {
				/* Moved to another status or contact: the
				 * old name goes. */
				hit_locked(f, n, 1, l);
			} else if (k == T_MESSAGE_JSON || k == T_ATTACHMENT) {
				/* Changed, and perhaps gone: by query. */
				hit_locked(f, n, 0, l);
				if (n->cmark != f->batch) {
					n->cmark = f->batch;
					cand_add_locked(cl, n, 0, 1);
				}
			} else {
				hit_locked(f, n, 0, l);
			}
		}
		/* Once a batch: settle() checks each orphan against every
		 * conversation the batch changed. */
		if (!(*once & 4)) {
			*once |= 4;
			cand_group_locked(f, GK_ORPHAN, 0, 0, cl, cost);
		}
		break;
	case SO_USER:
		t.kind = T_USER_JSON;
		t.id = c->id;
		hit_ino_locked(f, &t, l, cost);
		if (!(*once & 2)) {
			*once |= 2;
			hit_kind_locked(f, T_USER_EMAIL_LINK, l, cost);
		}
		break;
	case SO_PLAYBOOK:
		t.kind = T_PLAYBOOK_JSON;
		t.id = c->id;
		hit_ino_locked(f, &t, l, cost);
		break;
	case SO_ACCOUNT:
		FOR_GROUP(f, n, GK_KIND, T_ACCOUNT_JSON) {
			cost->visits++;
			if (n->t.kind == T_ACCOUNT_JSON && c->key &&
			    n->t.name && !strcmp(n->t.name, c->key))
				hit_locked(f, n, 0, l);
		}
		break;
	case SO_PRUNED:
		/* Rows of a full list were removed: which, by query. */
		if (c->id == SO_USER || c->id == SO_PLAYBOOK ||
		    c->id == SO_ACCOUNT)
			cand_group_locked(f, GK_KIND, pruned_kind[c->id],
					  pruned_kind[c->id], cl, cost);
		break;
	case SO_LISTS:
		break;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The queries, with no lock held; what they find joins l. convs (sorted,
 * nconvs long; NULL: unknown) are the conversations the batch changed.
 */
static void settle(struct fs *f, struct cand_list *cl, const int64_t *convs,
		   size_t nconvs, struct inval_list *l,
		   struct notify_cost *cost)
{
	for (size_t i = 0; i < cl->n; i++) {
		struct cand *c = &cl->v[i];
		struct store_row row = { 0 };
		struct tattr a;
		int k = c->t.kind, r, gone, mine;

		cost->queries++;
		if (k == T_CONTACT) {
			r = store_one(f->d->store, Q_CONTACT, c->t.id, NULL,
				      &row);
		} else if (k == T_MESSAGE_JSON || k == T_ATTACHMENT) {
			r = store_one(f->d->store,
				      k == T_MESSAGE_JSON ? Q_MESSAGE
							  : Q_ATTACHMENT,
				      c->t.id, NULL, &row);
		} else {
			r = tree_getattr(f->d, &c->t, &a);
		}
		gone = r == -ENOENT;
		/* An orphan changed if its row names any conversation the
		 * batch changed, not only the one that found it. */
		mine = c->inode_sent || gone ||
		       (!r && c->orphan &&
			(!convs || bsearch(&row.id2, convs, nconvs,
					   sizeof(*convs), cmp_i64)));
		if (!c->inode_sent && mine)
			inval_add(l, c->ino, NULL);
		if (gone && c->parent && c->name)
			inval_add(l, c->parent, c->name);
	}
}

/*
 * The invalidations a batch of changes needs. Lock order: the node lock is
 * taken alone here (the queue lock is released first), and no store query
 * runs while it is held: a lookup never waits behind the notifier's
 * queries, and the cost of a batch follows the nodes the changes touch.
 */
static void collect(struct fs *f, struct pending *batch,
		    struct inval_list *l)
{
	static const int lists[] = {
		T_CONTACTS,	  T_USERS,	  T_CONVS,	    T_BY_EMAIL,
		T_BY_EXTID,	  T_USERS_BY_EMAIL, T_STATUS_OPEN,  T_STATUS_CLOSED,
		T_STATUS_PENDING, T_STATUS_BULK,    T_STATS_JSON,   T_ATTRIBUTES,
		T_PLAYBOOKS,	  T_ACCOUNTS,
	};
	struct cand_list cl = { 0 };
	struct notify_cost cost = { 0, 0 };
	int64_t *convs = NULL;
	size_t nconvs = 0, total = 0;
	int any_lists = 0, once = 0;

	for (struct pending *p = batch; p; p = p->next) {
		if (p->c.what == SO_LISTS || p->c.what == SO_PRUNED)
			any_lists = 1;
		total++;
	}
	/* Without it (no memory), every orphan is invalidated: too many,
	 * never too few. */
	convs = malloc((total ? total : 1) * sizeof(*convs));
	for (struct pending *p = batch; p && convs; p = p->next)
		if (p->c.what == SO_CONVERSATION)
			convs[nconvs++] = p->c.id;
	if (convs)
		qsort(convs, nconvs, sizeof(*convs), cmp_i64);
	nodes_lock(f);
	if (!++f->batch)
		f->batch = 1;	/* 0 is no batch's (fresh nodes) */
	if (any_lists) {
		for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
			inval_add(l, (uint64_t)lists[i], NULL);
			f->fixed_gen[lists[i]]++;
		}
	}
	for (struct pending *p = batch; p; p = p->next)
		change_locked(f, &p->c, &once, l, &cl, &cost);
	nodes_unlock(f);

	settle(f, &cl, convs, nconvs, l, &cost);
	free(convs);
	for (size_t i = 0; i < cl.n; i++) {
		tree_node_release(&cl.v[i].t);
		free(cl.v[i].name);
	}
	free(cl.v);
	stats_add("notifier visits", cost.visits);
	stats_add("notifier queries", cost.queries);
}

static void *notifier(void *arg)
{
	struct fs *f = arg;

	pthread_mutex_lock(&f->qlock);
	while (!f->stop) {
		struct pending *batch;
		struct inval_list l = { 0 };

		if (!f->queue) {
			pthread_cond_wait(&f->qcond, &f->qlock);
			continue;
		}
		batch = f->queue;
		f->queue = NULL;
		pthread_mutex_unlock(&f->qlock);

		collect(f, batch, &l);
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].name)
				fuse_lowlevel_notify_inval_entry(
					f->se, l.v[i].ino, l.v[i].name,
					strlen(l.v[i].name));
			else {
				rendered_drop(f, l.v[i].ino);
				fuse_lowlevel_notify_inval_inode(f->se,
								 l.v[i].ino, 0,
								 0);
			}
			free(l.v[i].name);
		}
		stats_add("kernel invalidations", (long)l.n);
		free(l.v);
		while (batch) {
			struct pending *p = batch;

			batch = p->next;
			free(p->c.key);
			free(p);
		}
		pthread_mutex_lock(&f->qlock);
	}
	pthread_mutex_unlock(&f->qlock);
	return NULL;
}

int fs_start(struct fs *f, struct fuse_session *se)
{
	int r;

	f->se = se;
	r = pthread_create(&f->notifier, NULL, notifier, f);
	if (r)
		return -r;
	f->notifier_started = 1;
	return 0;
}

void fs_stop(struct fs *f)
{
	if (!f->notifier_started)
		return;
	log_info("served %lu file opens and %lu reads without an open%s",
		 f->opens, f->unopened_reads,
		 f->no_open ? " (read-only: files open without a request)"
			    : "");
	pthread_mutex_lock(&f->qlock);
	f->stop = 1;
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qlock);
	pthread_join(f->notifier, NULL);
	f->notifier_started = 0;
}
