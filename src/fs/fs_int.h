/* SPDX-License-Identifier: MIT */
/*
 * fs_int: what the files of the FUSE side (src/fs/) share, and nothing the
 * rest of driftfs may use: struct fs, the node table's, handles', scratch
 * files', listings' and versions' structs, and the functions one file of
 * src/fs/ calls in another. include/fs.h is the public contract.
 *
 * Every function here returns 0 or -errno unless it says otherwise.
 *
 * Threads:
 *   - FUSE worker threads (fuse_session_loop_mt, up to 16; one with -s)
 *     run the op_* handlers (ops.c, handle.c, listing.c, scratch.c,
 *     rendered.c). Each handler replies exactly once.
 *   - The notifier thread (notify.c, started by fs_start) turns sync
 *     changes into kernel invalidations; it never runs a request.
 *   - Any thread that stores a sync change (the sync thread and its
 *     workers, a FUSE thread's on-demand fetch, the outbox worker's
 *     refetch) calls fs_on_change (queue lock only); the outbox's
 *     worker, and FUSE threads committing through the outbox, call
 *     fs_outbox_changed / _lost / _delivered.
 *   - main's thread runs fs_new, fs_start, fs_stop and fs_free, with no
 *     FUSE worker or notifier running during fs_free.
 *
 * Locks, outermost first (a thread holding one takes only those below):
 *   1. struct handle.lock: one open file's bytes, write buffer and base.
 *      Held through the commit at close (handle_commit -> commit_write),
 *      so everything commit and the outbox take nests inside it,
 *      including the outbox's send lock, which calls fs_outbox_changed
 *      (node table lock) and fs_outbox_lost/delivered (bases lock).
 *   2. fs.lock, the node table lock (fs_nodes_lock): the node table and its
 *      groups, fixed_gen, the notifier's batch marks, scratch files,
 *      scratch_next, tombstones and the query names (queries.c). Taken
 *      inside a handle's lock (an error line names its path:
 *      fs_node_path_of) and inside the outbox's send lock. While it is
 *      held: tree_getattr of a scratch file's alias (the store's pool
 *      lock), and log and stats lines; never a handle's
 *      lock, never the queue lock, never a FUSE notification.
 *      fs_nodes_locked says whether this thread holds it (fs_dir_gen and
 *      fs_node_path_of then do not take it again).
 *   3. fs.bllock, the versions' lock (read_base.c): innermost; taken
 *      inside a handle's lock and the outbox's send lock, and nothing is
 *      taken under it.
 *   Leaves, never held while taking another lock of the FUSE side (and
 *   held over no store query, HTTP request or FUSE reply):
 *   - fs.qlock: the notifier's queue, evicted query names and stop flag
 *     (with qcond);
 *   - fs.hlock: the list of open handles;
 *   - fs.llock: the directory listings being read;
 *   - fs.rlock: the read-only mount's rendered slots.
 *   The notifier takes qlock and the node table lock one at a time, never
 *   together, and runs no store query with the node table locked; it sends
 *   its kernel notifications with no lock of the FUSE side held. The one
 *   notification sent with locks held is fs_outbox_changed()'s inode
 *   invalidation of .driftfs/outbox, from close() under a handle's lock
 *   and the outbox's send_lock: an inode invalidation takes no directory
 *   lock in the kernel, so it cannot wait on a request that waits on them.
 */
#ifndef DRIFTFS_FS_INT_H
#define DRIFTFS_FS_INT_H

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "buf.h"
#include "fs.h"
#include "sync.h"
#include "tree.h"

/* Cached objects are invalidated on change, so the kernel may keep them. */
#define LONG_TIMEOUT 3600.0
/* Search results are not invalidated: they are kept for a moment only. */
#define SEARCH_TIMEOUT 1.0
#define CTL_MAX ((size_t)64 << 10)

/*
 * A node the kernel knows: one per inode it holds, so a traversal of a big
 * account makes hundreds of thousands (350 000 for a stat of every file of
 * 300 000 messages), and the bytes of one node are what the daemon's
 * memory grows by: 72 here and about 8 of the tables' (161 in all when
 * each node was a malloc of pointers and 64-bit fields, in two tables of
 * pointers).
 *
 * Nodes live in the table's blocks (struct fs.blocks, FNODE_BLOCK nodes a
 * block, never moved: a pointer to a node stays valid until the node is
 * forgotten), and link to each other by index: FNODE_NONE, or the node's
 * number in the blocks. Blocks are not given back as nodes go: a freed
 * slot is the next node's, so the memory one traversal took serves the
 * next. The kind is a byte; the object's id is not stored
 * when the inode number carries it (tree.h: (kind << 56) | id, the case of
 * nearly every node); the name is stored inline when it is short. Anything
 * else (a longer name, an id the inode number hashed, the name of a
 * name-keyed kind: tree_kind_named) lives in a struct fnode_ext the node
 * points to (FN_EXT). Read them through fs_fnode_tnode(), fs_fnode_id()
 * and fs_fnode_name(), with the node table lock held.
 */
#define FNODE_INLINE 21		/* bytes of the inline name, NUL included */
#define FNODE_BLOCK 4096
#define FNODE_NONE UINT32_MAX
/* nlookup saturated: the kernel's count is no longer known, so the node
 * stays until unmount rather than go while the kernel may still use it. */
#define FNODE_PINNED UINT32_MAX

enum {
	FN_EXT = 1,		/* area holds a struct fnode_ext pointer */
};

struct fnode {
	uint64_t ino;		/* 0: a free slot of the blocks */
	uint64_t parent;	/* where it was last looked up */
	/* Its group (tree_touch_group; enum tree_group in tree.h): the
	 * notifier finds the nodes a change touches there, without a walk
	 * of the whole table, so its cost follows what changed, not how
	 * many nodes the kernel holds. The chain is doubly linked, so a
	 * FORGET unlinks a node of a big group at once. */
	int64_t gid;
	uint32_t gnext, gprev;	/* group chain (gprev FNODE_NONE: first);
				 * gnext chains the free slots too */
	/* Lookups the kernel holds; FNODE_PINNED: saturated (a FORGET's
	 * count is 64 bits, but real counts are small) */
	uint32_t nlookup;
	/* directories: listing changes sent (fs_dir_gen) */
	uint32_t gen;
	uint32_t mark, cmark;	/* the notifier's batch that last saw it */
	uint8_t kind;		/* enum tree_kind */
	uint8_t gcls;		/* enum tree_group; TG_NONE: in no chain */
	uint8_t flags;		/* FN_* */
	/* The name it was last looked up by, NUL-terminated, or (FN_EXT)
	 * a struct fnode_ext *, unaligned: memcpy it. */
	char area[FNODE_INLINE];
};

/* What does not fit a struct fnode (FN_EXT): one malloc, the node's. */
struct fnode_ext {
	int64_t id;		/* the object's id (struct tnode.id) */
	uint32_t tname;		/* offset in names of struct tnode.name, or 0:
				 * NULL (names[0] is the name's own byte) */
	char names[];		/* the name, NUL, then tnode.name, NUL */
};

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

/* The most queries under search/ the kernel is left to hold (queries.c). */
#define FS_QUERIES_MAX 256

/* A query name for the notifier to invalidate in search/ (queries.c). */
struct fs_evicted {
	struct fs_evicted *next;
	char name[];
};

/* A queued invalidation request (a copy of a sync change). */
struct pending {
	struct sync_change c;
	struct pending *next;
};

struct fs {
	struct driftfs *d;
	struct fuse_session *se;

	pthread_mutex_t lock;	/* guards the node table */
	/* The nodes (struct fnode): nblocks blocks of FNODE_BLOCK; nused
	 * slots were ever taken, the free ones chained from free_head. */
	struct fnode **blocks;
	uint32_t nblocks, nused, free_head;
	/* By inode number: open addressing, linear probing; a node's index
	 * or FNODE_NONE; nslots a power of two, at most 3/4 full. */
	uint32_t *slots;
	size_t nslots, count;
	/* By group (see group_of): the first node of each chain, or
	 * FNODE_NONE; ngheads a power of two (nslots / 4). */
	uint32_t *gheads;
	size_t ngheads;
	uint32_t batch;		/* notifier batches so far (fnode.mark) */

	pthread_mutex_t qlock;	/* guards the queue and evicted */
	pthread_cond_t qcond;
	/* Batches of changes queued and those whose invalidations the kernel
	 * has been sent (qlock; qdone signalled at each): what a ctl sync and
	 * the close() of a committed file wait for before they return
	 * (fs_notifier_drain). */
	pthread_cond_t qdone;
	uint64_t queued, invalidated;
	int single_thread;	/* -s: no drain (set before any thread) */
	struct pending *queue;
	struct fs_evicted *evicted;	/* query names to invalidate */
	/* The query names looked up last in search/, oldest first
	 * (queries.c); guarded by lock, the node table's. */
	char *qnames[FS_QUERIES_MAX];
	size_t nqnames;
	int stop;
	pthread_t notifier;
	int notifier_started;

	struct scratch *scratch;	/* guarded by lock */
	pthread_mutex_t hlock;	/* guards handles */
	struct handle *handles;	/* open files and directories */
	uint64_t scratch_next;

	/* Contacts this mount deleted in the last FS_TOMB_MS by unlinking
	 * contact.json (guarded by lock): "rm -r" goes on removing their
	 * parts after the contact itself has gone, and those removals
	 * succeed; its rmdir of the directory ends the tombstone. */
	struct tombstone {
		int64_t id;
		int64_t until_ms;
	} tombs[16];

	/* Listing generations of the fixed directories (see fs_dir_gen). */
	uint32_t fixed_gen[T__FIXED_END];

	/* Directory listings being read (see struct listing). */
	pthread_mutex_t llock;
	struct listing *listings;
	size_t nlistings;
	/* The kernel opens directories without asking us (no OPENDIR or
	 * RELEASEDIR round trips); readdir then carries no handle. */
	int no_opendir;
	/* A read-only mount (-o ro) where the kernel opens files without
	 * asking us too: reads carry no handle (see fs_read_unopened). */
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
	 * (fs_read_base_pick) rather than the cache, which may have moved on
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
		/* the process that took it (fs_caller_proc) */
		uint64_t proc;
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
	/* read-only: data not loaded yet (fs_op_read) */
	int unread;
	int fd;			/* read-only attachment: its file, read with
				 * pread, never loaded whole (or -1) */
	int dirty;		/* written (or truncated) since the commit */
	int undrained;		/* an fsync committed and could not wait for
				 * the notifier: the next flush does (atomic) */
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
				 * the first one notes it (fs_read_base_note) */
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

#define WRITE_MAX ((size_t)16 << 20)

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/*
 * fs.c: replies and error context shared by every handler (FUSE threads).
 */
double fs_attr_timeout(int kind);
/* How long the kernel keeps a name of this kind: LONG_TIMEOUT, or
 * SEARCH_TIMEOUT under search/ (results change with every sync). */
double fs_entry_timeout(int kind);
/* Fills st from a; takes the node table lock unless this thread holds it
 * (a directory's mtime carries its listing generation, fs_dir_gen). */
void fs_to_stat(struct fs *f, const struct tattr *a, struct stat *st);
/*
 * The one place a handler's result becomes an errno for the kernel: r is
 * 0 (success, for the requests whose reply is an error code) or -errno;
 * a positive r fails an assertion. Maps the network's ETIMEDOUT (and a
 * search's past its deadline) and ENETDOWN to EAGAIN and EFBIG to EIO.
 * No lock needed.
 */
void fs_reply_err(fuse_req_t req, int r);
/* Replies to a lookup or create with t's entry; forgets it again when the
 * kernel did not take the reply. Takes the node table lock. */
void fs_reply_entry(fuse_req_t req, struct fs *f, const struct tnode *t,
		    const struct tattr *a);
/* Sets this thread's error context to "op PATH" (built only if an error is
 * recorded). No lock taken here. */
void fs_set_context(struct fs *f, const char *op, uint64_t ino,
		    const char *name);

/*
 * nodes.c: the node table (the inodes the kernel holds) and tombstones.
 * _locked functions need the node table lock held; the others take it.
 */
extern __thread int fs_nodes_locked;
void fs_nodes_lock(struct fs *f);
void fs_nodes_unlock(struct fs *f);
/* fs_new's and fs_free's part: the empty table, and freeing it. */
int fs_nodes_init(struct fs *f);
void fs_nodes_release(struct fs *f);
struct fnode *fs_node_find_locked(struct fs *f, uint64_t ino);
/* The first node of group (cls, id)'s chain, and the next one; check
 * gcls and gid (a chain holds other groups too). */
struct fnode *fs_group_first_locked(struct fs *f, int cls, int64_t id);
struct fnode *fs_group_next_locked(struct fs *f, const struct fnode *n);
/* The node's tree node, with t->name (name-keyed kinds) borrowed from the
 * node: valid while the node table lock is held; copy it to keep it. */
void fs_fnode_tnode(const struct fnode *n, struct tnode *t);
int64_t fs_fnode_id(const struct fnode *n);
/* The name it was last looked up by in n->parent (same lifetime). */
const char *fs_fnode_name(const struct fnode *n);
int fs_node_ref(struct fs *f, const struct tnode *t, uint64_t ino,
		uint64_t parent, const char *name);
void fs_node_forget(struct fs *f, uint64_t ino, uint64_t nlookup);
/* The caller releases out (tree_node_release). -ESTALE: not in the table. */
int fs_node_get(struct fs *f, uint64_t ino, struct tnode *out);
uint32_t fs_dir_gen(struct fs *f, uint64_t ino);
/* The size of the buffers the request handlers give fs_node_path*() for a
 * node's path. */
#define FS_PATH_MAX 900
void fs_node_path_of(struct fs *f, uint64_t ino, const char *name, char *out,
		     size_t size, int try);
void fs_node_path(struct fs *f, uint64_t ino, const char *name, char *out,
		  size_t size);
/* Tombstones: contacts this mount deleted by unlinking their contact.json,
 * whose directory stays (as placeholders) until rm -r's rmdir of it ends
 * the tombstone, or for at most FS_TOMB_MS. fs_tomb_has and fs_in_tomb
 * answer 1 (a placeholder) or 0. Any thread; take the node table lock. */
#define FS_TOMB_MS 60000
void fs_tomb_add(struct fs *f, int64_t id);
void fs_tomb_end(struct fs *f, int64_t id);
int fs_tomb_has(struct fs *f, int64_t id);
int fs_in_tomb(struct fs *f, const struct tnode *dir, const char *name);

/*
 * scratch.c: scratch files (node table lock for the _locked ones), and the
 * handlers that make, find and rename them (FUSE threads).
 */
/* 1 when name is a scratch file and the lookup was replied to, 0 when it
 * is not (the caller goes on with the tree). */
int fs_lookup_scratch(fuse_req_t req, struct fs *f, uint64_t parent,
		      const char *name);
struct scratch *fs_scratch_by_ino_locked(struct fs *f, uint64_t ino);
void fs_scratch_attr(struct fs *f, const struct scratch *s, struct tattr *a);
void fs_scratch_forget_locked(struct fs *f, uint64_t ino);
void fs_scratch_free(struct scratch *s);
int fs_scratch_unlink(struct fs *f, uint64_t parent, const char *name);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname,
		  unsigned int flags);

/*
 * queries.c: the query names the kernel holds in search/, the last
 * FS_QUERIES_MAX. fs_query_seen: a FUSE thread's lookup of name in
 * search/ succeeded (no lock held; takes the node table lock, then the
 * queue lock). fs_queries_send: the notifier's, with no lock held: the
 * evicted names' invalidations, freeing ev. fs_queries_release: fs_free's.
 */
void fs_query_seen(struct fs *f, const char *name);
void fs_queries_send(struct fs *f, struct fs_evicted *ev);
void fs_queries_release(struct fs *f);

/* listing.c: directory listings and the directory handlers. */
void fs_listing_free(struct listing *l);
void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino,
		      struct fuse_file_info *fi);

/*
 * handle.c: open files and their handlers. A handle belongs to the kernel
 * from a successful open or create reply to its release; fs_handle_free
 * (NULL accepted) takes the handle list lock.
 */
struct handle *fs_handle_new(struct fs *f);
void fs_handle_free(struct handle *h);
/* For replies sent with no lock held: *out is the caller's to free (via
 * fs_reply_copy, which replies r or the bytes and frees them). */
int fs_slice_copy(const struct buf *src, size_t size, off_t off, char **out,
		  size_t *n);
void fs_reply_copy(fuse_req_t req, int r, char *copy, size_t n);
int fs_pread_copy(int fd, size_t size, off_t off, char **out, size_t *n);
int fs_buf_write_at(struct buf *b, const char *data, size_t size, off_t off);

/*
 * notify.c: waits, at most ms, until the changes queued before the call
 * have had their invalidations sent to the kernel. A FUSE thread, no lock
 * held (the notifier takes the node table lock and writes to /dev/fuse;
 * the bound keeps a kernel that holds a directory's lock while it waits
 * on this request from stalling it for long).
 */
#define CTL_DRAIN_MS 2000
void fs_notifier_drain(struct fs *f, int ms);
/* Batches of changes queued so far (takes qlock). */
uint64_t fs_notifier_queued(struct fs *f);
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size,
		 off_t off, struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);

/* read_base.c: the versions of writable files processes took (bllock). */
uint64_t fs_caller_proc(fuse_req_t req);
void fs_read_base_note(struct fs *f, uint64_t ino, uint64_t proc, int queued,
		       const char *data, size_t len);
int fs_read_base_pick(struct fs *f, uint64_t ino, uint64_t proc,
		      const char *data, size_t len, struct buf *out);

/* rendered.c: reads without a handle on a read-only mount (rlock). */
void fs_rendered_drop(struct fs *f, uint64_t ino);
void fs_read_unopened(struct fs *f, fuse_req_t req, fuse_ino_t ino, size_t size,
		      off_t off);

#endif
