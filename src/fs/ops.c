// SPDX-License-Identifier: MIT
/*
 * ops.c: the table of low-level operations given to libfuse (fs_ops), the
 * connection's setup (op_init), and the handlers of names and attributes:
 * lookup, forget, getattr, setattr, readlink, statfs, mkdir, symlink,
 * link, unlink and rmdir. Open files are handle.c's, directories
 * listing.c's, scratch files (create, rename) scratch.c's.
 */
#include "fs_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "commit.h"
#include "log.h"
#include "names.h"
#include "outbox.h"
#include "tree.h"

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *f = userdata;

	f->no_opendir = !!(conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
	/*
	 * On a read-only mount nothing is committed at close(), so files
	 * need no OPEN, FLUSH or RELEASE either: fs_op_open and fs_op_flush
	 * answer ENOSYS once, and a warm cat or grep then makes no request at
	 * all. A read-write mount cannot: FLUSH is where close() commits.
	 */
	f->no_open = f->d->read_only &&
		     (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	/*
	 * Always readdirplus: one request lists and stats a directory.
	 * AUTO_INVAL_DATA: the kernel checks a directory's mtime when a pass
	 * through its cached listing starts, if an invalidation made its
	 * attributes stale (see fs_dir_gen).
	 */
	conn->want |= conn->capable &
		      (FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS |
		       FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_PARALLEL_DIROPS |
		       FUSE_CAP_AUTO_INVAL_DATA);
	conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *f = fs_of(req);
	struct fuse_entry_param e;
	struct tnode dir = { 0 }, child = { 0 };
	struct tattr a;
	int r;

	if (fs_lookup_scratch(req, f, parent, name))
		return;
	r = fs_node_get(f, parent, &dir);
	if (r)
		goto fail;
	fs_set_context(f, "lookup", parent, name);
	r = tree_lookup(f->d, &dir, name, &child, &a);
	if (r == -ENOENT && fs_in_tomb(f, &dir, name))
		r = tree_lookup_deleted(&dir, name, &child, &a);
	if (r)
		goto fail;
	r = fs_node_ref(f, &child, a.ino, parent, name);
	if (r)
		goto fail;
	if (child.kind == T_SEARCH_QUERY)
		fs_query_seen(f, name);	/* the oldest ones go */
	memset(&e, 0, sizeof(e));
	e.ino = a.ino;
	e.generation = 1;
	e.attr_timeout = fs_attr_timeout(child.kind);
	e.entry_timeout = fs_entry_timeout(child.kind);
	fs_to_stat(f, &a, &e.attr);
	if (fuse_reply_entry(req, &e))
		fs_node_forget(f, a.ino, 1);
	goto out;
fail:
	fs_reply_err(req, r);
out:
	tree_node_release(&dir);
	tree_node_release(&child);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fs_node_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_node_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
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
	r = fs_node_get(f, ino, &t);
	if (!r && t.kind == T_SCRATCH) {
		struct scratch *s;

		fs_nodes_lock(f);
		s = fs_scratch_by_ino_locked(f, ino);
		if (s)
			fs_scratch_attr(f, s, &a);
		fs_nodes_unlock(f);
		r = s ? 0 : -ENOENT;
	} else if (!r) {
		fs_set_context(f, "getattr", ino, NULL);
		r = tree_getattr(f->d, &t, &a);
		/* Parts of a contact deleted a moment ago (rm -r is not done
		 * with them): placeholders, so the kernel lets it finish. */
		if (r == -ENOENT && t.kind >= T_CONTACT &&
		    t.kind <= T_CONTACT_CONVS && t.kind != T_CONTACT_JSON &&
		    fs_tomb_has(f, t.id)) {
			tree_attr_deleted(&t, &a);
			r = 0;
		}
	}
	if (r) {
		fs_reply_err(req, r);
	} else {
		fs_to_stat(f, &a, &st);
		fuse_reply_attr(req, &st, fs_attr_timeout(t.kind));
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

	r = fs_node_get(f, ino, &t);
	if (r)
		goto out;
	if (t.kind == T_SCRATCH) {
		struct scratch *s;

		/* Scratch files take any mode, owner or time, and keep ours. */
		fs_nodes_lock(f);
		s = fs_scratch_by_ino_locked(f, ino);
		if (s && (to_set & FUSE_SET_ATTR_SIZE) && !s->alias.kind) {
			if ((size_t)attr->st_size <= s->data.len) {
				s->data.len = (size_t)attr->st_size;
				if (s->data.data)
					s->data.data[s->data.len] = '\0';
			} else {
				r = fs_buf_write_at(&s->data, "", 0,
						    attr->st_size);
			}
		}
		if (s)
			fs_scratch_attr(f, s, &a);
		fs_nodes_unlock(f);
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
	     (attr->st_mode & 07777) !=
		 (a.mode & 07777 & ~(mode_t)f->d->cfg.umask)) ||
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
				r = fs_buf_write_at(&h->data, "", 0,
						    attr->st_size);
			}
			h->dirty = 1;
			pthread_mutex_unlock(&h->lock);
		} else if (acc == TA_RW) {
			/* truncate(2) on a path: commit the shortened bytes. */
			struct buf b = BUF_INIT;
			char path[FS_PATH_MAX];

			r = tree_content(f->d, &t, &b);
			if (!r && (size_t)attr->st_size < b.len)
				b.len = (size_t)attr->st_size;
			fs_node_path(f, ino, NULL, path, sizeof(path));
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
		fs_reply_err(req, r);
	} else {
		fs_to_stat(f, &a, &st);
		fuse_reply_attr(req, &st,
				t.kind == T_SCRATCH ? 0
						    : fs_attr_timeout(t.kind));
	}
	tree_node_release(&t);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *f = fs_of(req);
	struct tnode t = { 0 };
	struct buf b = BUF_INIT;
	int r = fs_node_get(f, ino, &t);

	r = r ? r : tree_readlink(f->d, &t, &b);
	if (r)
		fs_reply_err(req, r);
	else
		fuse_reply_readlink(req, b.data ? b.data : "");
	buf_release(&b);
	tree_node_release(&t);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = NAMES_MAX;
	fuse_reply_statfs(req, &sv);
}

/*
 * unlink and rmdir: scratch files go; a contact or a message is deleted
 * through the API; .driftfs/outbox/<n>.json cancels a pending write; what
 * the API cannot delete is EPERM. Inside a contact that is already gone,
 * removing is a no-op, so "rm -r contacts/<id>" finishes cleanly; its last
 * step, the rmdir of contacts/<id>, ends the tombstone. rmdir is 1 for
 * rmdir(2), 0 for unlink(2). FUSE threads; no lock held.
 */
static void do_remove(fuse_req_t req, fuse_ino_t parent, const char *name,
		      int rmdir)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 }, child = { 0 };
	struct tattr a;
	char path[FS_PATH_MAX];
	int r;

	if (!fs_scratch_unlink(f, parent, name)) {
		fuse_reply_err(req, 0);
		return;
	}
	r = fs_node_get(f, parent, &dir);
	if (r)
		goto out;
	fs_set_context(f, rmdir ? "rmdir" : "unlink", parent, name);
	/* The contact went first (rm -r removed contact.json): its parts,
	 * and then its directory, go quietly. */
	if (fs_in_tomb(f, &dir, name)) {
		int64_t id = 0;

		if (rmdir && dir.kind == T_CONTACTS &&
		    !tree_parse_id(name, &id))
			fs_tomb_end(f, id);
		r = 0;
		goto out;
	}
	r = tree_lookup(f->d, &dir, name, &child, &a);
	if (r)
		goto out;
	fs_node_path(f, parent, name, path, sizeof(path));
	switch (child.kind) {
	case T_CONTACT:
		/* rmdir of the directory: gone with its parts at once. */
		r = commit_delete(f->d, &child, path);
		break;
	case T_CONTACT_JSON:
		/* The directory stays, emptied, for rm -r to finish. */
		r = commit_delete(f->d, &child, path);
		if (!r)
			fs_tomb_add(f, child.id);
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
	fs_reply_err(req, r);
	tree_node_release(&dir);
	tree_node_release(&child);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 0);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	do_remove(req, parent, name, 1);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	(void)parent;
	(void)name;
	(void)mode;
	fs_reply_err(req, -EPERM);
}

/* Names are the API's: no symlink or hard link can be made, EPERM as for
 * mkdir and rename (ENOSYS said the filesystem lacked the call). */
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fs_reply_err(req, -EPERM);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fs_reply_err(req, -EPERM);
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.releasedir = fs_op_releasedir,
	.open = fs_op_open,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.statfs = op_statfs,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.create = fs_op_create,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.link = op_link,
	.rename = fs_op_rename,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &ops;
}
