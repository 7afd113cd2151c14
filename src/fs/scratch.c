// SPDX-License-Identifier: MIT
/*
 * scratch.c: scratch files, the names that are not part of the tree
 * (editors' swap files, sed's and rsync's temporaries): their bytes in
 * memory, and the handlers that create, find, unlink and rename them; a
 * rename over a tree file commits the content there. Guarded by the node
 * table lock (fs_int.h).
 */
#include "fs_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "commit.h"
#include "http.h"
#include "names.h"
#include "tree.h"

static struct scratch *scratch_by_name_locked(struct fs *f, uint64_t parent,
					      const char *name)
{
	for (struct scratch *s = f->scratch; s; s = s->next)
		if (s->parent == parent && s->name && !strcmp(s->name, name))
			return s;
	return NULL;
}

struct scratch *fs_scratch_by_ino_locked(struct fs *f, uint64_t ino)
{
	for (struct scratch *s = f->scratch; s; s = s->next)
		if (s->ino == ino)
			return s;
	return NULL;
}

void fs_scratch_free(struct scratch *s)
{
	free(s->name);
	buf_release(&s->data);
	tree_node_release(&s->alias);
	free(s);
}

/* Drops a scratch file the kernel has forgotten and no name reaches. */
void fs_scratch_forget_locked(struct fs *f, uint64_t ino)
{
	for (struct scratch **p = &f->scratch; *p; p = &(*p)->next) {
		struct scratch *s = *p;

		if (s->ino == ino && !s->name) {
			*p = s->next;
			fs_scratch_free(s);
			return;
		}
	}
}

void fs_scratch_attr(struct fs *f, const struct scratch *s, struct tattr *a)
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

/* Looks name up among the scratch files; replies and returns 1 if found. */
int fs_lookup_scratch(fuse_req_t req, struct fs *f, uint64_t parent,
		      const char *name)
{
	struct tnode t = { T_SCRATCH, 0, NULL };
	struct scratch *s;
	struct tattr a;

	fs_nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		fs_scratch_attr(f, s, &a);
		t.id = tree_ino_id(s->ino);
	}
	fs_nodes_unlock(f);
	if (!s)
		return 0;
	if (fs_node_ref(f, &t, a.ino, parent, name))
		fs_reply_err(req, -EIO);
	else
		fs_reply_entry(req, f, &t, &a);
	return 1;
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi)
{
	struct fs *f = fs_of(req);
	struct scratch *s = NULL;
	struct handle *h = NULL;
	struct tnode dir = { 0 }, t = { T_SCRATCH, 0, NULL };
	struct tattr a;
	int r;

	(void)mode;
	r = fs_node_get(f, parent, &dir);
	if (!r && tree_access(dir.kind) != TA_DIR)
		r = -ENOTDIR;
	/* search/ and its queries are read-only (0555). */
	if (!r && (dir.kind == T_SEARCH || tree_search_kind(dir.kind)))
		r = -EACCES;
	tree_node_release(&dir);
	if (!r && strlen(name) > NAMES_MAX)
		r = -ENAMETOOLONG;
	if (r)
		goto fail;
	s = calloc(1, sizeof(*s));
	h = fs_handle_new(f);
	if (!s || !h || !(s->name = strdup(name))) {
		r = -ENOMEM;
		goto fail;
	}
	buf_init(&s->data, WRITE_MAX);
	s->parent = parent;
	s->mtime_ms = clock_wall_ms();
	fs_nodes_lock(f);
	if (scratch_by_name_locked(f, parent, name)) {
		fs_nodes_unlock(f);
		r = -EEXIST;
		goto fail;
	}
	t.id = (int64_t)++f->scratch_next;
	s->ino = tree_ino(&t);
	s->next = f->scratch;
	f->scratch = s;
	fs_scratch_attr(f, s, &a);
	fs_nodes_unlock(f);
	s = NULL;
	r = fs_node_ref(f, &t, a.ino, parent, name);
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
		fs_to_stat(f, &a, &e.attr);
		if (fuse_reply_create(req, &e, fi)) {
			fs_node_forget(f, a.ino, 1);
			fs_handle_free(h);
		}
	}
	return;
fail:
	if (s) {
		free(s->name);
		free(s);
	}
	/* Listed by fs_handle_new: unlisted here, or fs_free meets it again. */
	fs_handle_free(h);
	fs_reply_err(req, r);
}

/* Removes a scratch name; 0, or -ENOENT when it is no scratch file. */
int fs_scratch_unlink(struct fs *f, uint64_t parent, const char *name)
{
	struct scratch *s;

	fs_nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		free(s->name);
		s->name = NULL;
		if (!fs_node_find_locked(f, s->ino))
			fs_scratch_forget_locked(f, s->ino);
	}
	fs_nodes_unlock(f);
	return s ? 0 : -ENOENT;
}

/*
 * rename: a scratch file renamed over a writable tree file commits its
 * content there (sed -i, rsync, editors that write a temporary and rename
 * it); scratch to another scratch name just moves it. Tree files are not
 * renamed (EPERM): their names come from the API.
 */
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		  fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *f = fs_of(req);
	struct tnode dir = { 0 }, target = { 0 };
	struct buf content = BUF_INIT, base = BUF_INIT;
	struct scratch *s, *old;
	struct tattr a;
	char path[FS_PATH_MAX];
	uint64_t ino = 0;
	int r, based, queued;

	if (flags & RENAME_EXCHANGE) {
		fs_reply_err(req, -EINVAL);
		return;
	}
	fs_nodes_lock(f);
	s = scratch_by_name_locked(f, parent, name);
	if (s) {
		ino = s->ino;
		r = buf_add(&content, s->data.data ? s->data.data : "",
			    s->data.len);
	} else {
		r = -EPERM;
	}
	fs_nodes_unlock(f);
	if (r)
		goto out;
	r = fs_node_get(f, newparent, &dir);
	if (r)
		goto out;
	fs_set_context(f, "rename", newparent, newname);
	r = tree_lookup(f->d, &dir, newname, &target, &a);
	if (r == -ENOENT) {
		/* Scratch to scratch: move the name (replacing any other). */
		fs_nodes_lock(f);
		old = scratch_by_name_locked(f, newparent, newname);
		if (old) {
			free(old->name);
			old->name = NULL;
		}
		s = fs_scratch_by_ino_locked(f, ino);
		if (s) {
			char *nm = strdup(newname);

			r = nm ? 0 : -ENOMEM;
			if (nm) {
				free(s->name);
				s->name = nm;
				s->parent = newparent;
			}
		}
		fs_nodes_unlock(f);
		goto out;
	}
	if (r)
		goto out;
	if (flags & RENAME_NOREPLACE) {
		r = -EEXIST;
		goto out;
	}
	fs_node_path(f, newparent, newname, path, sizeof(path));
	/*
	 * Whoever filled the scratch file read the target, if at all,
	 * through a descriptor of its own (vim and sed -i read it first,
	 * and rename from the same process): compare with the version it
	 * took (fs_read_base_pick), else the cache now. What it commits is its
	 * next version (marked while queued: see fs.bases).
	 */
	based = !fs_read_base_pick(f, a.ino, fs_caller_proc(req),
				   content.data ? content.data : "",
				   content.len, &base);
	r = commit_write(f->d, &target, path, content.data ? content.data : "",
			 content.len, based ? &base : NULL, &queued);
	if (r)
		goto out;
	if (tree_access(target.kind) == TA_RW)
		fs_read_base_note(f, a.ino, fs_caller_proc(req), queued,
				  content.data ? content.data : "",
				  content.len);
	/* The kernel now calls the scratch inode by the target's name. */
	fs_nodes_lock(f);
	s = fs_scratch_by_ino_locked(f, ino);
	if (s) {
		free(s->name);
		s->name = NULL;
		tree_node_release(&s->alias);
		tree_node_copy(&s->alias, &target);
	}
	fs_nodes_unlock(f);
out:
	fs_reply_err(req, r);
	buf_release(&content);
	buf_release(&base);
	tree_node_release(&dir);
	tree_node_release(&target);
}
