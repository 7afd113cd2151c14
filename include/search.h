/* SPDX-License-Identifier: MIT */
/*
 * search: the full-text index of the cache (DESIGN.md §3.1) and the
 * queries that read it, for search/<query>/ and `driftctl search`.
 *
 * The index lives in cache.db as three contentless FTS5 tables
 * (store_search.c): message text as transcript.txt shows it (the body
 * with HTML removed and entities decoded: render_html_text), conversation
 * tags, and a contact's name, email, externalId and phone. The tables
 * keep no positions (detail=none), so each query is planned first
 * (search_expr.h): a phrase, NEAR() or ^ is checked by FTS5 on the
 * messages (contacts, tags) its words find. The tokenizer is
 * unicode61 with remove_diacritics 2: words match in any case and without
 * their accents. The store's writers keep it in the same transaction as
 * the rows it covers (store_put_message, store_clear_messages,
 * store_forget_conversation, store_put_conversation, store_put_contact,
 * store_delete_contact), so what a transcript shows is what a search
 * finds, and text that leaves the cache leaves the index: the segments
 * that held it are merged away (store_search_purge) before the sync's
 * checkpoint, so that secure_delete zeroes their pages. The same merge
 * compacts the index each time its rows have doubled.
 *
 * A cache of an older version gets its index built in the background
 * (search_build_start): chunks of rows in ascending id order, each its own
 * short transaction, with the progress in meta, so it resumes after a
 * restart. While it runs a query answers from what is indexed so far, and
 * .driftfs/status says "search_index: building N/M messages".
 *
 * Queries are FTS5 syntax, made lenient first (search_query_prepare): a
 * word holding characters FTS5 does not allow in a bareword (an email, an
 * order number like #1234, a/b) is searched as a phrase of its words
 * instead of failing. Results are capped (SEARCH_MAX_*).
 *
 * Threads: every function may be called from any thread once the store is
 * open, with no lock of the caller's held but those before the store's in
 * driftfs.h's order; they take the store's pool lock for a connection and
 * return 0 or -errno. -EINVAL means the query is invalid; why (the
 * caller's buffer) then says why, in FTS5's words or driftfs's (a limit,
 * a short prefix, nesting), cleaned to one line; -ETIMEDOUT that it ran
 * past its deadline (why says so too).
 */
#ifndef DRIFTFS_SEARCH_H
#define DRIFTFS_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "search_index.h"

struct store;

/* The most conversations, contacts and hits one query returns. */
#define SEARCH_MAX_CONVS 1000
#define SEARCH_MAX_CONTACTS 1000
#define SEARCH_MAX_HITS 1000
/* The most bytes of a query. */
#define SEARCH_QUERY_MAX 1024
/*
 * What one query may cost (search_query_prepare refuses more): the terms
 * (words, and the words of a phrase; not OR, AND, NOT, NEAR), the
 * prefix* terms among them, and the characters of a prefix (a one-letter
 * prefix matches a large part of the index: SEARCH_PREFIX_MIN, in
 * search_index.h, where the index's keeper checks it too, on the prefix
 * as its tokenizer folds it). A query that passes and
 * still runs longer than about 2 s fails with -ETIMEDOUT
 * (store_search_query.c).
 */
#define SEARCH_MAX_TERMS 32
#define SEARCH_MAX_PREFIXES 8
/* The size of a why buffer that holds any reason. */
#define SEARCH_WHY_MAX 256

/*
 * The FTS5 query for a user's query text (what was typed, or an entry
 * name decoded), appended to out (the caller's). -EINVAL (why says so)
 * for an empty or too long one, or one over the limits above.
 */
int search_query_prepare(const char *text, struct buf *out, char *why,
			 size_t whylen);

/* One matching message, as hits.txt and driftctl show it. */
struct search_hit {
	int64_t conv;
	int64_t msg;
	int64_t created;	/* ms */
	char *name;		/* the author as the transcript names it */
	char *snippet;		/* one line, cleaned */
};

/* What a query found. Owned by the caller: search_result_release(). */
struct search_result {
	int64_t *convs;		/* ascending */
	size_t nconvs;
	int64_t *contacts;	/* ascending */
	size_t ncontacts;
	struct search_hit *hits;	/* best match first (store.h) */
	size_t nhits;
};

#define SEARCH_CONVS 1u
#define SEARCH_CONTACTS 2u
#define SEARCH_HITS 4u
/* Only whether the query runs (store_search_check): no results. */
#define SEARCH_CHECK 8u

/*
 * Runs the user's query text (search_query_prepare) for what (a mask of
 * SEARCH_*), at most limit hits (0 or more than SEARCH_MAX_HITS: that
 * many), from the cache alone. res is zeroed first; on failure it holds
 * nothing.
 */
int search_run(struct store *st, const char *text, unsigned what,
	       size_t limit, struct search_result *res, char *why,
	       size_t whylen);
void search_result_release(struct search_result *res);
/* Whether id is in the ascending ids: 1 or 0. */
int search_has(const int64_t *ids, size_t n, int64_t id);

/*
 * hits.txt: for each hit
 *   conversations/<cid>/messages/<mid>.json<TAB>[time] Name: snippet
 * appended to out.
 */
int search_hits_text(const struct search_result *res, struct buf *out);

/*
 * The index's state for .driftfs/status and driftctl status:
 *   search_index: ready | building N/M messages | failing: <reason>
 *     (the background build's last chunk failed; it retries, backing
 *     off to 5 minutes)
 *   search_index_bytes: the bytes of the index's pages
 *   search_text_bytes: the bytes of the text it covers
 * appended to out.
 */
int search_status(struct store *st, struct buf *out);

/*
 * The background build of the index of a cache made by an older version
 * (store_search_build_step until it is done). search_build_start starts
 * its thread when there is work (NULL when there is none, or it could not
 * start: logged); search_build_stop (NULL is fine) stops and joins it,
 * before the store closes. Called by driftfs's main thread.
 */
struct search_build;
struct search_build *search_build_start(struct store *st);
void search_build_stop(struct search_build *b);

#endif
