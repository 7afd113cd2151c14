/* SPDX-License-Identifier: MIT */
/*
 * store_search_int.h: what the index's two files share (store_search.c:
 * the index, its writers, build and merges; store_search_query.c: the
 * queries): the statements of each connection, and the text of an
 * indexed row, made the same way by the writers, the build and the check
 * of a query's candidates. Private to those two files.
 *
 * Threads: as store_int.h's struct db: a connection's statements are its
 * owner's. The text functions are pure.
 */
#ifndef DRIFTFS_STORE_SEARCH_INT_H
#define DRIFTFS_STORE_SEARCH_INT_H

#include <stddef.h>

#include "buf.h"
#include "store_int.h"

/* The index's statements, per connection (store_search.c's ssql). */
enum sstmt {
	SS_UPTO,
	SS_SET_META,
	SS_ADD_META,
	SS_OR_META,
	SS_MSG_INS,
	SS_MSG_DEL,
	SS_MSG_OLD,
	SS_MSGS_OF_CONV,
	SS_CONV_INS,
	SS_CONV_DEL,
	SS_CONV_OLD,
	SS_CONTACT_INS,
	SS_CONTACT_DEL,
	SS_CONTACT_OLD,
	SS_BUILD_CONTACTS,
	SS_BUILD_CONVS,
	SS_BUILD_MSGS,
	SS_Q_MSG_CONVS,
	SS_Q_TAG_CONVS,
	SS_Q_CONTACTS,
	SS_Q_CAND,
	SS_Q_CONTACT_CAND,
	SS_Q_TAG_CAND,
	SS__COUNT
};

_Static_assert(SS__COUNT <= STORE_SEARCH_STMTS, "struct db's search slots");

/* Statement w of d, prepared on first use (NULL: failed, logged). */
sqlite3_stmt *store_search_prep(struct db *d, enum sstmt w);

/*
 * A message's indexed text from its stored JSON: its body as
 * transcript.txt shows it (JSON it cannot be has no text). Appended to
 * out; 0 or -ENOMEM.
 */
int store_search_body_text(const void *json, size_t len, struct buf *out);
/*
 * The same for readers (a query's candidates, snippets), faster: the body
 * is read out of json_render()'s layout where that is exact, parsed
 * otherwise. JSON json_render() did not make may give other text than
 * store_search_body_text(), so the index's writers never use it.
 */
int store_search_body_text_read(const void *json, size_t len,
				struct buf *out);
/* A conversation's tags (conversationTags of its JSON), one a line. */
int store_search_tags_text(const void *json, size_t len, struct buf *out);

/* A contact's indexed fields; phone from its JSON (attributes.phone). */
struct store_search_contact {
	char *f[4];		/* name, email, external_id, phone */
};

/*
 * A contact's indexed fields from its columns and JSON (its phone), each
 * malloc'd or NULL when empty: released by store_search_contact_release
 * (also after a failure, which releases them itself). 0 or -ENOMEM.
 */
int store_search_contact_fill(struct store_search_contact *c,
			      const char *name, const char *email,
			      const char *ext, const void *json, size_t len);
void store_search_contact_release(struct store_search_contact *c);

#endif
