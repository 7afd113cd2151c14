/* SPDX-License-Identifier: MIT */
/*
 * commit: what the bytes written to a file of the tree mean to the API.
 *
 * DESIGN.md §4 as code: each writable node kind has a parser and validator
 * that turn the new content into the minimal API call(s), which go through
 * the outbox. Invalid content (bad JSON, a read-only or unknown field, a
 * wrong type) is refused with -EINVAL before anything is stored or sent,
 * with an error line naming the field and the reason.
 *
 * The planners are pure (commit_plan.c, commit_edit.c with its table of
 * edit rules, commit_lines.c); commit.c carries a write out; what happens
 * after a send is commit_landed.c's. How Drift spells each call is
 * api_write.h's. Functions return 0 or -errno unless said otherwise.
 */
#ifndef DRIFTFS_COMMIT_H
#define DRIFTFS_COMMIT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "buf.h"
#include "driftfs.h"
#include "store.h"
#include "tree.h"

/* One API call a write turns into. */
struct commit_call {
	const char *kind;	/* outbox kind: "message", "tag_add", ... */
	const char *method;	/* POST, PATCH or DELETE */
	char *api_path;
	cJSON *body;		/* NULL for none */
	/*
	 * The object the call changes, whose writes must keep their order:
	 * the conversation, contact or user id; the hash of an account's id
	 * or of the email a new contact or conversation is for; 0 for the
	 * org's one unsubscribe list. With the kind's class of object it
	 * makes the outbox row's ordering key (outbox_row.object).
	 */
	int64_t target;
};

/* The calls of one write, in the order they must be sent. */
struct commit_plan {
	struct commit_call *calls;
	size_t n;
};

/* A write: the node written, the new bytes, what they replace. */
struct commit_input {
	int kind;		/* enum tnode_kind */
	int64_t id;		/* the node's object id */
	int64_t conv;		/* T_MESSAGE_JSON: the message's conversation */
	const char *data;
	size_t len;
	const char *stored;	/* edits: the stored object (or tags file) */
	size_t stored_len;
	/*
	 * Edits: the version the writer read, which the new content is
	 * compared with (DESIGN §4: a field the writer left alone is never
	 * sent, whatever Drift did to it meanwhile). NULL when not known:
	 * the stored object stands in.
	 */
	const char *base;
	size_t base_len;
};

/*
 * The validation and parsing behind commit_write(), with no store, HTTP or
 * lock (any thread; the fuzzer calls it):
 * the calls that data means (none when nothing changed). -EINVAL (with an
 * error line) for invalid content, -EIO for an edit whose stored object is
 * not an object, -EACCES for a kind that cannot be written.
 */
int commit_plan(const struct commit_input *in, struct commit_plan *out);
void commit_plan_release(struct commit_plan *p);

/*
 * Commits data as the new content of node n (found at path). base is the
 * version of the file the writer read (see commit_input), or NULL when that
 * is not known. Returns 0 when accepted (sent, or queued after a transient
 * failure), -EINVAL when invalid, the mapped errno of an API refusal,
 * -EACCES/-EPERM for a node that cannot be written. When queued is not
 * NULL, *queued tells (on 0) whether a call was left in the outbox, which
 * may still refuse it: the API has not taken that content yet.
 *
 * Called on a FUSE thread: from close() and fsync() (src/fs/handle.c)
 * with that handle's lock held, from rename() onto a file
 * (src/fs/scratch.c) and truncate(2) (src/fs/ops.c) with no FUSE-side
 * lock held. Takes the outbox's send_lock inside (outbox_submit()) and
 * may wait on the API up to its deadline.
 */
int commit_write(struct driftfs *d, const struct tnode *n, const char *path,
		 const char *data, size_t len, const struct buf *base,
		 int *queued);
/*
 * How far the content a of a file lies from b, to tell which of the
 * versions of it readers took a writer read (the closest to what it
 * writes: that one differs only in what the writer changed, a later one in
 * what Drift changed too). Smaller is closer. Version markers a writer
 * cannot change (a contact's _END_USER_VERSION and kin, a user's updatedAt,
 * an account's updateDateTime) weigh more than any number of other
 * differences; then the fields of JSON objects (at any depth of nested
 * objects) that differ, or for other text (tags) the lines that are in one
 * and not the other. Pure: no store, no error line.
 */
uint64_t commit_base_distance(const char *a, size_t alen, const char *b,
			      size_t blen);
/* Deletes the object behind n (unlink/rmdir; a FUSE thread, as
 * commit_write()). -EPERM for a node the API cannot delete. */
int commit_delete(struct driftfs *d, const struct tnode *n, const char *path);

/*
 * The functions from here to commit_landed() are the outbox's hooks
 * (outbox.h, wired by main.c): they run on the outbox worker or inside
 * commit_write(), with send_lock held (all but commit_object_key(), which
 * outbox_start() calls with the store's outbox lock held instead, and
 * which is pure), and call no outbox function.
 */
/* After the API accepted row: bring the cache up to date at once (store
 * writes, and refetches of the objects it changed over HTTP on this
 * thread, through the sync's on-demand fetchers). */
/*
 * The API answered 404 for row (outbox_hooks.gone): refetches the object
 * it was about, whose own 404 removes it from the cache (sync_fetch_*).
 * A 404 may be about a part (a tag, a message), so nothing is removed on
 * the row's 404 alone. Same thread and locks as commit_applied().
 */
void commit_gone(struct driftfs *d, const struct outbox_row *row);
void commit_applied(struct driftfs *d, const struct outbox_row *row,
		    const struct buf *response);
/*
 * The object key of a call of this kind about target ("<class>:<id>", see
 * outbox_row.object); malloc'd, NULL when out of memory.
 */
char *commit_object_key(const char *kind, int64_t target);
/*
 * Whether sending row again does no harm whether or not it landed: PATCH,
 * DELETE, and message edits and deletes (an edit sets the body it sets; a
 * delete of a gone message changes nothing).
 */
int commit_idempotent(const struct outbox_row *row);
/* Whether row deletes something (a 404 on a resend means it is done). */
int commit_is_delete(const struct outbox_row *row);
/*
 * Whether a POST that may have landed is checked (commit_landed()) before
 * it is sent again: new messages and new contacts. Other POSTs are
 * idempotent, or cannot be recognised and stay at-least-once.
 */
int commit_checked(const struct outbox_row *row);
/*
 * For a row that may have landed (its request left, no answer came):
 * 1 if the API shows it did (then, when found is not NULL, an answer
 * holding the found object's id is appended to it, for commit_applied()),
 * 0 if it shows it did not, -errno if that cannot be told now (-ENOENT:
 * the conversation is gone; -EACCES: the API refused the check (403);
 * -EKEYREJECTED: it refused the token (401), not the check).
 */
int commit_landed(struct driftfs *d, const struct outbox_row *row,
		  struct buf *found);

/* What a new message is recognised by (commit_message_matches()). */
struct landed_match {
	const char *text;	/* commit_message_text() of its body */
	const char *type;	/* chat, private_note, private_prompt */
	int64_t user;		/* the userId it was sent with, else 0 */
	int64_t since;		/* created no earlier than this (ms, the
				 * local clock less a margin for skew) */
	int64_t after_created;	/* and newer than this message... */
	int64_t after_id;	/* (outbox_row.after_*) */
	int64_t exclude;	/* and not the message an earlier row of the
				 * conversation posted (created:message),
				 * which the marks may predate */
};

struct api_message;
/*
 * Whether m may be the message w describes: created after the newest
 * message cached when it was queued (or, with none, after since), of its
 * type, by the author the API gives a post with that userId (a post
 * without one: the org's bot user; a contact's message never matches),
 * with the same text.
 */
int commit_message_matches(const struct landed_match *w,
			   const struct api_message *m);
/*
 * Appends the text a message is recognised by when looking for one that
 * may have landed: its HTML as plain text (render_html_text()), every run
 * of white space one space, none at the ends. The API may store the HTML
 * otherwise than it was sent (<br/>, a <p> around it, other entities).
 */
int commit_message_text(const char *html, struct buf *out);

#endif
