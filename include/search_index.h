/* SPDX-License-Identifier: MIT */
/*
 * search_index: what the search index's keeper (store_search.c) and its
 * users (search.c, driftctl, the tests) share about the index itself:
 * its format, and how a process that only reads opens it. A leaf: no
 * code of its own but search_open_read_only, in store_search.c.
 */
#ifndef DRIFTFS_SEARCH_INDEX_H
#define DRIFTFS_SEARCH_INDEX_H

/*
 * What a row's indexed text is made of, and how the index holds it
 * (store_search.c): bumped when that changes (how render.c turns HTML
 * into text, which fields are indexed, the tables' options), since a
 * row's removal must give FTS5 the very text it indexed. A cache indexed
 * by another format has its index dropped and built again. Format 3: the
 * indexes keep no positions (detail=none). tests/unit/
 * test_search.c holds a hash of render_html_text's output per format and
 * fails when the renderer changes without a bump.
 */
#define SEARCH_FORMAT 3

/*
 * The fewest characters of a prefix* token, as the index's tokenizer
 * folds it (search.h's limits; a shorter one matches much of the index).
 */
#define SEARCH_PREFIX_MIN 3

/*
 * Called by the main thread before store_open() by a command that only
 * reads the cache (driftctl search, status): its open never empties an
 * index found out of step for a rebuild, but marks it for the next
 * process that writes (the index then reads as not ready).
 */
void search_open_read_only(int on);

#endif
