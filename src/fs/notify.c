// SPDX-License-Identifier: MIT
/*
 * notify.c: the notifier thread, which turns sync changes into the
 * kernel's invalidations of exactly the inodes and entries they touch,
 * from outside any request handler and with no lock of the FUSE side
 * held; and the outbox's listing invalidation (fs_outbox_changed).
 */
#include "fs_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "stats.h"
#include "tree.h"

void fs_on_change(void *ctx, const struct sync_change *c, size_t n)
{
	struct fs *f = ctx;

	tree_search_changed();	/* search results kept are stale */
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
	f->queued++;
	pthread_cond_signal(&f->qcond);
	pthread_mutex_unlock(&f->qlock);
}

void fs_outbox_changed(struct fs *f)
{
	if (!f || !f->se)
		return;
	fs_nodes_lock(f);
	f->fixed_gen[T_OUTBOX]++;
	fs_nodes_unlock(f);
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
	int orphan;		/* TG_ORPHAN: its conversation unknown */
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
	struct tnode t;

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
	fs_fnode_tnode(n, &t);
	if (tree_node_copy(&c->t, &t))
		return;
	c->name = n->parent ? strdup(fs_fnode_name(n)) : NULL;
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
		if (tree_access(n->kind) == TA_DIR)
			n->gen++;
	}
	if (gone && n->parent)
		inval_add(l, n->parent, fs_fnode_name(n));
}

/* Every node of group (cls, id), each once per batch. */
#define FOR_GROUP(f, n, cls, id)                                               \
	for (struct fnode *n = fs_group_first_locked(f, cls, id); n;           \
	     n = fs_group_next_locked(f, n))                                   \
		if (n->gcls == (cls) && n->gid == (id))

/* What change c does to node n, found by a rule of group: its inode and
 * entry, and a query for later (each once per batch). */
static void touch_locked(struct fs *f, const struct sync_change *c,
			 int group, struct fnode *n, struct inval_list *l,
			 struct cand_list *cl)
{
	struct tnode t;
	unsigned act;

	fs_fnode_tnode(n, &t);
	act = tree_touch_node(c, group, &t);

	if (act & (TOUCH_INODE | TOUCH_ENTRY))
		hit_locked(f, n, (act & TOUCH_ENTRY) != 0, l);
	if ((act & TOUCH_QUERY) && n->cmark != f->batch) {
		n->cmark = f->batch;
		cand_add_locked(cl, n, group == TG_ORPHAN,
				(act & TOUCH_INODE) != 0);
	}
}

/*
 * The nodes one change touches (tree_touch_rules), under the node lock.
 * *once holds the rules' once bits the batch has applied already.
 */
static void change_locked(struct fs *f, const struct sync_change *c,
			  int *once, struct inval_list *l,
			  struct cand_list *cl, struct notify_cost *cost)
{
	struct tree_touch_rule rules[TREE_TOUCH_RULES_MAX];
	size_t nrules = tree_touch_rules(c, rules);
	int seen = *once;

	for (size_t i = 0; i < nrules; i++) {
		const struct tree_touch_rule *r = &rules[i];

		if (r->once & seen)
			continue;
		*once |= r->once;
		if (r->group == TG_NONE) {
			struct fnode *n =
			    fs_node_find_locked(f, tree_ino(&r->node));

			if (n && n->kind == r->node.kind &&
			    fs_fnode_id(n) == r->node.id) {
				cost->visits++;
				touch_locked(f, c, r->group, n, l, cl);
			}
			continue;
		}
		FOR_GROUP(f, n, r->group, r->id) {
			cost->visits++;
			touch_locked(f, c, r->group, n, l, cl);
		}
	}
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
		int gone, mine;

		cost->queries++;
		mine = tree_touch_query(f->d, &c->t, c->orphan, convs, nconvs,
					&gone);
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
	struct cand_list cl = { 0 };
	struct notify_cost cost = { 0, 0 };
	const int *lists = NULL;
	int64_t *convs = NULL;
	size_t nconvs = 0, total = 0, nlists = 0;
	int once = 0;

	for (struct pending *p = batch; p; p = p->next) {
		if (!nlists)
			nlists = tree_touch_lists(&p->c, &lists);
		total++;
	}
	/* Without it (no memory), every orphan is invalidated: too many,
	 * never too few. */
	convs = malloc((total ? total : 1) * sizeof(*convs));
	for (struct pending *p = batch; p && convs; p = p->next)
		if (p->c.what == SO_CONVERSATION)
			convs[nconvs++] = p->c.id;
	if (convs)
		tree_touch_sort(convs, nconvs);
	fs_nodes_lock(f);
	if (!++f->batch)
		f->batch = 1;	/* 0 is no batch's (fresh nodes) */
	for (size_t i = 0; i < nlists; i++) {
		inval_add(l, (uint64_t)lists[i], NULL);
		f->fixed_gen[lists[i]]++;
	}
	for (struct pending *p = batch; p; p = p->next)
		change_locked(f, &p->c, &once, l, &cl, &cost);
	fs_nodes_unlock(f);

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

/*
 * DRIFTFS_TEST_NOTIFY_DELAY_MS: the notifier waits this long before each
 * batch's invalidations (0 to 10000; default none), so that a test can
 * tell an answer that waited for them from one that raced them. Like
 * DRIFTFS_TEST_BUSY_MS it is read in every build, and only delays.
 */
static long notify_delay_ms(void)
{
	const char *v = getenv("DRIFTFS_TEST_NOTIFY_DELAY_MS");
	long n = v && *v ? strtol(v, NULL, 10) : 0;

	return n > 0 && n <= 10000 ? n : 0;
}

static void *notifier(void *arg)
{
	struct fs *f = arg;
	long delay = notify_delay_ms();

	pthread_mutex_lock(&f->qlock);
	while (!f->stop) {
		struct pending *batch;
		struct fs_evicted *ev;
		struct inval_list l = { 0 };
		uint64_t taken = f->queued;

		if (!f->queue && !f->evicted) {
			f->invalidated = taken;
			pthread_cond_broadcast(&f->qdone);
			pthread_cond_wait(&f->qcond, &f->qlock);
			continue;
		}
		batch = f->queue;
		f->queue = NULL;
		ev = f->evicted;
		f->evicted = NULL;
		pthread_mutex_unlock(&f->qlock);

		/* Old queries first (queries.c): no lock held. */
		fs_queries_send(f, ev);
		if (!batch) {
			pthread_mutex_lock(&f->qlock);
			continue;
		}

		if (delay) {
			struct timespec ts = { delay / 1000,
					       (delay % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		collect(f, batch, &l);
		for (size_t i = 0; i < l.n; i++) {
			if (l.v[i].name)
				fuse_lowlevel_notify_inval_entry(
					f->se, l.v[i].ino, l.v[i].name,
					strlen(l.v[i].name));
			else {
				fs_rendered_drop(f, l.v[i].ino);
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
		/* Every batch counted when this one was taken is sent: a
		 * drain need not wait for the notifier to go idle. */
		f->invalidated = taken;
		pthread_cond_broadcast(&f->qdone);
	}
	pthread_mutex_unlock(&f->qlock);
	return NULL;
}

void fs_set_single_thread(struct fs *f, int single)
{
	f->single_thread = single;
}

void fs_notifier_drain(struct fs *f, int ms)
{
	struct timespec ts;
	uint64_t target;

	if (!f->notifier_started)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->qlock);
	target = f->queued;
	while (!f->stop && f->invalidated < target)
		if (pthread_cond_timedwait(&f->qdone, &f->qlock, &ts)) {
			/* The notifier is held up (a kernel lock a waiting
			 * request holds): the write or close returns
			 * anyway. */
			stats_add("notifier drain timeouts", 1);
			break;
		}
	pthread_mutex_unlock(&f->qlock);
}

uint64_t fs_notifier_queued(struct fs *f)
{
	uint64_t n;

	pthread_mutex_lock(&f->qlock);
	n = f->queued;
	pthread_mutex_unlock(&f->qlock);
	return n;
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
	pthread_cond_broadcast(&f->qdone);
	pthread_mutex_unlock(&f->qlock);
	pthread_join(f->notifier, NULL);
	f->notifier_started = 0;
}
