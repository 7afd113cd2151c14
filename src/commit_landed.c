// SPDX-License-Identifier: MIT
/* commit_landed.c: after a call is sent: whether it may be sent again, whether
 * one whose answer was lost landed (asking the API), and the cache brought
 * up to date once it was applied (see commit.h). */
#include "commit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_write.h"
#include "commit_int.h"
#include "http.h"
#include "json.h"
#include "render.h"
#include "sync.h"

/* The id (and createdAt) in the API's answer to row (api_write.h). */
static int64_t answer_id(const struct buf *response, int64_t *created)
{
	return api_write_answer_id(response->data, response->len, created);
}

void commit_applied(struct driftfs *d, const struct outbox_row *row,
		    const struct buf *response)
{
	int64_t id;

	if (!strcmp(row->kind, "message")) {
		int64_t created = 0;

		sync_note_write(d->sync, SO_CONVERSATION, row->target);
		id = answer_id(response, &created);
		/* The later rows of the conversation look for theirs after
		 * this one: an identical earlier message is never theirs.
		 * Not an edit's answer (an edit posts no message). */
		if (id && !commit_idempotent(row)) {
			char key[64];

			snprintf(key, sizeof(key), "created:message:%lld",
				 (long long)row->target);
			store_meta_set_i64(d->store, key, id);
		}
		if (id && created && !commit_idempotent(row) && row->object &&
		    row->object[0])
			store_outbox_advance(d->store, row->seq, row->object,
					     created, id);
		sync_fetch_conversation(d->sync, row->target);
	} else if (!strcmp(row->kind, "contact_create")) {
		id = answer_id(response, NULL);
		if (id) {
			store_meta_set_i64(d->store, "created:contact", id);
			sync_fetch_contact(d->sync, id);
		}
	} else if (!strcmp(row->kind, "conversation_create")) {
		id = answer_id(response, NULL);
		if (id) {
			store_meta_set_i64(d->store, "created:conversation", id);
			sync_fetch_conversation(d->sync, id);
		}
	} else if (!strcmp(row->kind, "contact_delete")) {
		sync_note_write(d->sync, SO_CONTACT, row->target);
		sync_forget_contact(d->sync, row->target);
	} else if (!strcmp(row->kind, "contact_patch") ||
		   !strcmp(row->kind, "tag_add") ||
		   !strcmp(row->kind, "tag_delete")) {
		sync_note_write(d->sync, SO_CONTACT, row->target);
		sync_fetch_contact(d->sync, row->target);
	} else if (!strcmp(row->kind, "user_patch")) {
		sync_note_write(d->sync, SO_USER, row->target);
		sync_fetch_user(d->sync, row->target);
	} else if (!strcmp(row->kind, "account_patch")) {
		sync_refresh_accounts(d->sync);
	}
}

void commit_gone(struct driftfs *d, const struct outbox_row *row)
{
	if (row->target <= 0)
		return;		/* a creation or unsubscribe: no object yet */
	if (!strcmp(row->kind, "message"))
		sync_fetch_conversation(d->sync, row->target);
	else if (!strcmp(row->kind, "contact_patch") ||
		 !strcmp(row->kind, "tag_add") ||
		 !strcmp(row->kind, "tag_delete") ||
		 !strcmp(row->kind, "timeline") ||
		 !strcmp(row->kind, "contact_delete"))
		sync_fetch_contact(d->sync, row->target);
	else if (!strcmp(row->kind, "user_patch"))
		sync_fetch_user(d->sync, row->target);
	else if (!strcmp(row->kind, "account_patch"))
		sync_refresh_accounts(d->sync);
}

int commit_message_text(const char *html, struct buf *out)
{
	struct buf t = BUF_INIT;
	size_t start = out->len;
	int r = render_html_text(html ? html : "", &t), space = 0;

	for (size_t i = 0; !r && i < t.len; i++) {
		unsigned char c = (unsigned char)t.data[i];

		/* White space, U+00A0 (&nbsp;) included, counts as one. */
		if (c == 0xc2 && i + 1 < t.len &&
		    (unsigned char)t.data[i + 1] == 0xa0) {
			i++;
			space = 1;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
			   c == '\f' || c == '\v') {
			space = 1;
		} else {
			if (space && out->len > start)
				r = buf_addc(out, ' ');
			space = 0;
			r = r ? r : buf_addc(out, (char)c);
		}
	}
	buf_release(&t);
	return r;
}

/* Whether html reads as text (a commit_message_text()). */
static int same_text(const char *html, const char *text)
{
	struct buf t = BUF_INIT;
	int same = !commit_message_text(html, &t) && t.len &&
		   !strcmp(t.data, text);

	buf_release(&t);
	return same;
}

#define LANDED_SKEW_MS (5 * 60 * 1000)

struct landed_ctx {
	const char *text;	/* commit_message_text() of the body */
	const char *type;	/* the message's type: chat, private_note... */
	int64_t user;		/* the userId it was posted with, else 0 */
	int64_t since;		/* nothing created before this (ms) */
	int64_t after_created, after_id;	/* outbox_row.after_* */
	int64_t exclude;	/* an earlier row's message, else 0 */
	int64_t found;		/* the id of the one found, else 0 */
	int64_t found_created;
};

/*
 * Whether m may be the message a row posted: newer than the newest message
 * the cache held when it was queued (and than the clock window), of the
 * same type, written by the author the API gives our posts (the userId
 * sent, else the org's bot user: a contact's message never counts), and
 * with the same text.
 */
int commit_message_matches(const struct landed_match *w,
			   const struct api_message *m)
{
	/* Both bounds: the marks may predate messages the cache had not
	 * fetched yet, and the clock window (wide, for skew) keeps an
	 * identical older one of the same author out. */
	if (m->created < w->since || (w->exclude && m->id == w->exclude))
		return 0;
	if (m->created < w->after_created ||
	    (m->created == w->after_created && m->id <= w->after_id))
		return 0;
	if (strcmp(m->type, w->type) || strcmp(m->author_type, "user"))
		return 0;
	if (w->user ? m->author_id != w->user : !m->bot)
		return 0;
	return m->body && same_text(m->body, w->text);
}

static int message_matches(void *ctx, struct api_message *m)
{
	struct landed_ctx *l = ctx;
	struct landed_match w = { l->text, l->type, l->user, l->since,
				  l->after_created, l->after_id, l->exclude };

	/* The first match, oldest first, is the one that came of the row. */
	if (!l->found && commit_message_matches(&w, m)) {
		l->found = m->id;
		l->found_created = m->created;
	}
	return 0;
}

static int contact_matches(void *ctx, const struct api_contact *c)
{
	struct landed_ctx *l = ctx;

	if (c->created >= l->since &&
	    (!l->found || c->created > l->found_created)) {
		l->found = c->id;
		l->found_created = c->created;
	}
	return 0;
}

int commit_idempotent(const struct outbox_row *row)
{
	if (strcmp(row->method, "POST"))
		return 1;
	if (strcmp(row->kind, "message"))
		return 0;
	return api_write_message_kind_of(row->body.data, row->body.len) !=
	       API_MSG_NEW;
}

int commit_is_delete(const struct outbox_row *row)
{
	if (!strcmp(row->method, "DELETE"))
		return 1;
	if (strcmp(row->kind, "message"))
		return 0;
	return api_write_message_kind_of(row->body.data, row->body.len) ==
	       API_MSG_DELETE;
}

int commit_checked(const struct outbox_row *row)
{
	if (!strcmp(row->kind, "contact_create"))
		return 1;
	return !strcmp(row->kind, "message") && !commit_idempotent(row);
}

/*
 * A check refused with -EACCES: by a 403 (the API will not show it) or by
 * a 401 (the token is refused; it would show it to a good one). The same
 * request once more tells which: -EKEYREJECTED for a 401, else -EACCES.
 */
static int refusal(struct driftfs *d, const char *path)
{
	struct http_response resp;
	int r;

	r = http_call(d->http, "GET", path, NULL, NULL, 0, 0, HTTP_NO_RETRY,
		      &resp);
	r = resp.status == 401 || (r == -EACCES && !resp.attempts)
		    ? -EKEYREJECTED
		    : -EACCES;
	http_response_release(&resp);
	return r;
}

int commit_landed(struct driftfs *d, const struct outbox_row *row,
		  struct buf *found)
{
	char *probe = NULL;

	/* LANDED_SKEW_MS: how far the local clock may be ahead of the
	 * API's before a landed message is missed (and sent again). */
	struct landed_ctx l = { NULL, NULL, 0, row->created - LANDED_SKEW_MS,
				row->after_created, row->after_id, 0, 0, 0 };
	int r = 0;

	if (!commit_checked(row))
		return 0;
	if (!strcmp(row->kind, "message")) {
		/* Compared as text: the API may store the HTML otherwise. A
		 * message with no text (buttons only) cannot be told from
		 * another: it is sent again. */
		struct buf t = BUF_INIT;
		struct api_write_post post;
		char key[64];

		snprintf(key, sizeof(key), "created:message:%lld",
			 (long long)row->target);
		l.exclude = store_meta_i64(d->store, key);
		r = api_write_post_parse(row->body.data, row->body.len, &post);
		l.type = post.type;
		l.user = post.user;
		r = r ? r : commit_message_text(post.html, &t);
		l.text = t.data;
		if (!r && t.len)
			r = api_messages(d->http, row->target, message_matches,
					 &l);
		/* A refused check is asked again to tell a refused token
		 * from a 403; without memory for the probe the row stays
		 * "sending" (-ENOMEM), never dropped as refused. */
		if (r == -EACCES) {
			probe = api_write_messages_probe(row->target);
			r = probe ? refusal(d, probe) : -ENOMEM;
		}
		free(probe);
		buf_release(&t);
		api_write_post_release(&post);
	} else {
		char *email = NULL;

		r = api_write_contact_email(row->body.data, row->body.len,
					    &email);
		/* A contact has no marks: the clock window alone, kept
		 * narrow (someone else's contact of that email, made a
		 * little earlier, is not ours). */
		l.since = row->created - 120000;
		if (email)
			r = api_contacts_by_email(d->http, email,
						  contact_matches, &l);
		if (r == -EACCES) {
			probe = api_write_contacts_probe(email);
			r = probe ? refusal(d, probe) : -ENOMEM;
		}
		free(probe);
		free(email);
		/* No contact with that email: not created. */
		if (r == -ENOENT)
			r = 0;
	}
	if (r)
		return r;
	/* What commit_applied() reads the new object's id from. */
	if (l.found && found && l.found_created && !strcmp(row->kind, "message"))
		r = buf_printf(found, "{\"id\":%lld,\"createdAt\":%lld}",
			       (long long)l.found, (long long)l.found_created);
	else if (l.found && found)
		r = buf_printf(found, "{\"id\":%lld}", (long long)l.found);
	return r ? r : l.found != 0;
}
