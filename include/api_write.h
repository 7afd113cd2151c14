/* SPDX-License-Identifier: MIT */
/*
 * api_write: how Drift spells the writes driftfs makes (drift-api.md):
 * the endpoint paths, the request bodies, and the answers and sent bodies
 * read back. commit decides what a write means and which calls it takes;
 * this file knows only how the API wants them. No I/O: the outbox sends
 * what is built here (api.h holds the reads).
 *
 * Pure, any thread, no lock. Builders fill *out (zeroed first) and return
 * 0 or -ENOMEM; a cJSON handed to one is consumed, also on failure. The
 * caller releases out with api_write_req_release().
 */
#ifndef DRIFTFS_API_WRITE_H
#define DRIFTFS_API_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* One request: what the outbox stores and sends. */
struct api_write_req {
	const char *method;	/* "POST", "PATCH" or "DELETE" (static) */
	char *path;		/* path and query, malloc'd */
	cJSON *body;		/* NULL for none */
};

void api_write_req_release(struct api_write_req *r);

/*
 * Message bodies (NULL when out of memory): a new message of type (chat,
 * private_note) with body html; an edit of message id (edit_type
 * "replace_body" or "delete") to body.
 */
cJSON *api_write_text_message(const char *type, const char *html);
cJSON *api_write_message_edit(int64_t id, const char *edit_type,
			      const char *body);
/* POSTs msg (a new message, or an edit) to conversation conv. */
int api_write_message(int64_t conv, cJSON *msg, struct api_write_req *out);
/*
 * A new conversation with the contact of email, opening with msg (an
 * object with a string body): source and assignee, when not NULL, are
 * copied into msg's attributes (an object, made when absent).
 */
int api_write_conversation_create(const char *email, cJSON *msg,
				  const cJSON *source, const cJSON *assignee,
				  struct api_write_req *out);

/* A new contact with these attributes. */
int api_write_contact_create(cJSON *attrs, struct api_write_req *out);
/* Sets the attributes in attrs of contact id (a null clears one). */
int api_write_contact_patch(int64_t id, cJSON *attrs,
			    struct api_write_req *out);
int api_write_contact_delete(int64_t id, struct api_write_req *out);
/* Adds the n tags names[] to contact id, in one call. */
int api_write_tags_add(int64_t id, char *const *names, size_t n,
		       struct api_write_req *out);
/* Removes the tag name from contact id (the name whole, escaped). */
int api_write_tag_delete(int64_t id, const char *name,
			 struct api_write_req *out);
/*
 * A timeline event's body: contact, event, and createdAt (ms) when at is
 * not 0. NULL when out of memory.
 */
cJSON *api_write_timeline_body(int64_t contact, const char *event,
			       int64_t at);
/* POSTs body (api_write_timeline_body(), or NULL for none). */
int api_write_timeline(cJSON *body, struct api_write_req *out);
/* Unsubscribes the n emails[], in one call. */
int api_write_unsubscribe(char *const *emails, size_t n,
			  struct api_write_req *out);
/* Sets the fields in patch of user id. */
int api_write_user_patch(int64_t id, cJSON *patch, struct api_write_req *out);
/*
 * Sets the fields in patch of the account whose accountId is account_id;
 * the API wants the account's ownerId in every such call: owner_id is
 * added when patch sets none. Both are copied (NULL: left out).
 */
int api_write_account_patch(cJSON *patch, const cJSON *account_id,
			    const cJSON *owner_id, struct api_write_req *out);

/*
 * The id (and createdAt, ms, when created is not NULL; 0 when none) of
 * the object in an answer to a write: data.id, the first of
 * data.messages[] (a message POST may answer either way), or a bare
 * object's id. 0 when none.
 */
int64_t api_write_answer_id(const char *body, size_t len, int64_t *created);

/* What the body of a message POST, as sent, does. */
enum api_write_msg { API_MSG_NEW, API_MSG_EDIT, API_MSG_DELETE };
int api_write_message_kind(const cJSON *msg);
int api_write_message_kind_of(const char *body, size_t len);
/* What a new message's body, as sent, is recognised by. */
struct api_write_post {
	char *type;		/* its type, "" when none */
	char *html;		/* its body, NULL when none */
	int64_t user;		/* the userId it names, else 0 */
};
/* 0 or -ENOMEM; release with api_write_post_release() either way. */
int api_write_post_parse(const char *body, size_t len,
			 struct api_write_post *out);
void api_write_post_release(struct api_write_post *p);
/*
 * The email of a new contact's body, as sent (*email malloc'd, NULL when
 * it names none). 0 or -ENOMEM.
 */
int api_write_contact_email(const char *body, size_t len, char **email);
/*
 * The reads that show whether a write landed, asked once more to tell a
 * refused check from a refused token (malloc'd; NULL when out of memory):
 * conversation conv's messages, the contacts of email.
 */
char *api_write_messages_probe(int64_t conv);
char *api_write_contacts_probe(const char *email);

#endif
