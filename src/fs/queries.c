// SPDX-License-Identifier: MIT
/*
 * queries.c: the queries the kernel holds under search/, kept few. Every
 * name looked up in search/ is a query with its nodes (the query's
 * directory, and its conversations/, contacts/ and hits.txt once used),
 * and the kernel forgets a name only under memory pressure, not when its
 * second of entry timeout ends: a script looking up 100 000 order
 * numbers would leave 100 000 queries' nodes in the daemon. So the last
 * FS_QUERIES_MAX names looked up are remembered, most recent last; the
 * oldest one beyond them is handed to the notifier thread, which
 * invalidates its entry (fuse_lowlevel_notify_inval_entry on search/),
 * and the kernel, dropping the unused dentry and those under it, FORGETs
 * their nodes. A name still in use (an open hits.txt, a shell's working
 * directory) only loses its dentry: its nodes go when it is let go.
 *
 * Threads and locks: fs_query_seen runs on FUSE threads after a lookup's
 * fs_node_ref, with no lock held; it takes the node table lock for the
 * names (struct fs.qnames), then, released, the queue lock to hand an
 * evicted name over (struct fs.evicted): the two are never held together,
 * and no FUSE notification is sent from a request.
 */
#include "fs_int.h"

#include <stdlib.h>
#include <string.h>

void fs_query_seen(struct fs *f, const char *name)
{
	struct fs_evicted *ev = NULL;
	char *gone = NULL;
	size_t i;

	fs_nodes_lock(f);
	for (i = 0; i < f->nqnames; i++)
		if (!strcmp(f->qnames[i], name))
			break;
	if (i < f->nqnames) {
		/* Seen again: to the most recent end. */
		char *s = f->qnames[i];

		memmove(f->qnames + i, f->qnames + i + 1,
			(f->nqnames - i - 1) * sizeof(*f->qnames));
		f->qnames[f->nqnames - 1] = s;
	} else {
		char *s = strdup(name);

		/* No memory: the name goes unremembered; the kernel still
		 * forgets it under memory pressure. */
		if (s) {
			if (f->nqnames == FS_QUERIES_MAX) {
				gone = f->qnames[0];
				memmove(f->qnames, f->qnames + 1,
					(f->nqnames - 1) * sizeof(*f->qnames));
				f->nqnames--;
			}
			f->qnames[f->nqnames++] = s;
		}
	}
	fs_nodes_unlock(f);
	if (!gone)
		return;
	ev = malloc(sizeof(*ev) + strlen(gone) + 1);
	if (ev) {
		strcpy(ev->name, gone);
		pthread_mutex_lock(&f->qlock);
		ev->next = f->evicted;
		f->evicted = ev;
		pthread_cond_signal(&f->qcond);
		pthread_mutex_unlock(&f->qlock);
	}
	free(gone);
}

void fs_queries_send(struct fs *f, struct fs_evicted *ev)
{
	while (ev) {
		struct fs_evicted *next = ev->next;

		fuse_lowlevel_notify_inval_entry(f->se, T_SEARCH, ev->name,
						 strlen(ev->name));
		free(ev);
		ev = next;
	}
}

void fs_queries_release(struct fs *f)
{
	for (size_t i = 0; i < f->nqnames; i++)
		free(f->qnames[i]);
	f->nqnames = 0;
	while (f->evicted) {
		struct fs_evicted *ev = f->evicted;

		f->evicted = ev->next;
		free(ev);
	}
}
