// SPDX-License-Identifier: MIT
/*
 * store_search.c: the full-text index in cache.db (what it holds:
 * include/search.h): its three contentless FTS5 tables, the writers that
 * keep them in the transaction of the rows they cover, the background
 * build's steps, the merges (after erased text, and as the index
 * doubles), and the text of each indexed row (store_search_int.h). The
 * queries: store_search_query.c.
 *
 * Contentless tables hold no copy of the text (the messages' index, which
 * keeps no positions, measures about 0.4 of the text it covers:
 * BENCHMARKS.md). The price: a row is removed by giving FTS5 the
 * very text it indexed ('delete'), so every writer here derives the text
 * from what the row stores (a message's JSON body, a conversation's JSON
 * tags, a contact's columns and JSON phone), before and after, the same
 * way. Every row is indexed, one with no text too (it adds no words, only
 * a row): so each table's index holds as many rows as the table, which
 * store_search_setup checks at open against FTS5's own count and the
 * writers' count in meta ("search_rows_<table>"); a cache written behind
 * the index's back (an older version) has its index rebuilt.
 *
 * The build of an older cache's index goes by table (contacts, then
 * conversations, then messages) in ascending id order, with the highest
 * id done in meta ("search_upto_<table>"). The invariant, kept under
 * SQLite's write lock: the index holds exactly the rows with an id up to
 * that mark. The writers index and unindex a row only below it; the build
 * indexes the rows above it that exist when it gets there. INT64_MAX:
 * complete.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "clock.h"
#include "json.h"
#include "log.h"
#include "render.h"
#include "search_index.h"
#include "store_search_int.h"

/* The indexed tables, in build order. */
enum { SI_CONTACTS, SI_CONVS, SI_MSGS, SI__COUNT };

static const char *const upto_key[SI__COUNT] = {
	"search_upto_contacts", "search_upto_conversations",
	"search_upto_messages"
};
static const char *const fts_name[SI__COUNT] = {
	"search_contact", "search_conv", "search_msg"
};
/* The rows each table's index holds, as its writers counted them. */
static const char *const rows_key[SI__COUNT] = {
	"search_rows_contacts", "search_rows_conversations",
	"search_rows_messages"
};
static const char *const src_name[SI__COUNT] = { "contacts", "conversations",
						 "messages" };

/* Set by a command that only reads, before store_open (search.h). */
static int read_only;

void search_open_read_only(int on)
{
	read_only = on;
}

/*
 * unicode61 folds case and (remove_diacritics 2) accents, and splits on
 * anything not a letter or digit. columnsize=0: no row of sizes per
 * document (a fifth of the index on short chat messages); hits are ranked
 * in C, without lengths (store_search_query.c). The messages' index keeps
 * no positions (detail=none): it says which messages hold a token, at
 * about half the size (0.41 of the text against 0.79, BENCHMARKS.md); a
 * phrase, NEAR() or ^ is checked on the candidates it finds
 * (store_search_query.c). So do the contacts' (their tokens are mostly
 * their own: emails, phones, ids, so positions cost about as much again)
 * and the tags'. FTS5's check of a query's syntax runs on the (empty)
 * checking table, which keeps them.
 */
const char store_search_schema[] =
	"CREATE VIRTUAL TABLE IF NOT EXISTS search_msg USING fts5(body,"
	" content='', columnsize=0, detail=none,"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE VIRTUAL TABLE IF NOT EXISTS search_conv USING fts5(tags,"
	" content='', columnsize=0, detail=none,"
	" tokenize='unicode61 remove_diacritics 2');"
	"CREATE VIRTUAL TABLE IF NOT EXISTS search_contact USING fts5(name,"
	" email, external_id, phone, content='', columnsize=0, detail=none,"
	" tokenize='unicode61 remove_diacritics 2');";

const char store_search_drop[] =
	"DROP TABLE IF EXISTS search_msg; DROP TABLE IF EXISTS search_conv;"
	"DROP TABLE IF EXISTS search_contact;";

static const char *const ssql[SS__COUNT] = {
    [SS_UPTO] = "SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?1",
    [SS_SET_META] = "INSERT OR REPLACE INTO meta(key, value)"
		    " VALUES(?1, CAST(?2 AS TEXT))",
    [SS_ADD_META] = "INSERT INTO meta(key, value) VALUES(?1, CAST(?2 AS TEXT))"
		    " ON CONFLICT(key) DO UPDATE SET value ="
		    " CAST(CAST(value AS INTEGER) + ?2 AS TEXT)",
    [SS_OR_META] = "INSERT INTO meta(key, value) VALUES(?1, CAST(?2 AS TEXT))"
		   " ON CONFLICT(key) DO UPDATE SET value ="
		   " CAST(CAST(value AS INTEGER) | ?2 AS TEXT)",
    [SS_MSG_INS] = "INSERT INTO search_msg(rowid, body) VALUES(?1, ?2)",
    [SS_MSG_DEL] = "INSERT INTO search_msg(search_msg, rowid, body)"
		   " VALUES('delete', ?1, ?2)",
    [SS_MSG_OLD] = "SELECT json FROM messages WHERE id = ?1",
    [SS_MSGS_OF_CONV] = "SELECT id, json FROM messages"
			" WHERE conversation_id = ?1 ORDER BY id",
    [SS_CONV_INS] = "INSERT INTO search_conv(rowid, tags) VALUES(?1, ?2)",
    [SS_CONV_DEL] = "INSERT INTO search_conv(search_conv, rowid, tags)"
		    " VALUES('delete', ?1, ?2)",
    [SS_CONV_OLD] = "SELECT json FROM conversations WHERE id = ?1",
    [SS_CONTACT_INS] = "INSERT INTO search_contact(rowid, name, email,"
		       " external_id, phone) VALUES(?1, ?2, ?3, ?4, ?5)",
    [SS_CONTACT_DEL] = "INSERT INTO search_contact(search_contact, rowid,"
		       " name, email, external_id, phone)"
		       " VALUES('delete', ?1, ?2, ?3, ?4, ?5)",
    [SS_CONTACT_OLD] = "SELECT name, email, external_id, json FROM contacts"
		       " WHERE id = ?1",
    [SS_BUILD_CONTACTS] = "SELECT id, name, email, external_id, json"
			  " FROM contacts WHERE id > ?1 ORDER BY id LIMIT ?2",
    [SS_BUILD_CONVS] = "SELECT id, json FROM conversations WHERE id > ?1"
		       " ORDER BY id LIMIT ?2",
    [SS_BUILD_MSGS] = "SELECT id, json FROM messages WHERE id > ?1"
		      " ORDER BY id LIMIT ?2",
    /* The FTS table drives each query (a MATCH, then primary keys); the
     * cap keeps the newest (highest ids). */
    [SS_Q_MSG_CONVS] = "SELECT DISTINCT m.conversation_id FROM search_msg"
		       " CROSS JOIN messages AS m ON m.id = search_msg.rowid"
		       " WHERE search_msg MATCH ?1 ORDER BY 1 DESC LIMIT ?2",
    [SS_Q_TAG_CONVS] = "SELECT c.id FROM search_conv"
		       " CROSS JOIN conversations AS c"
		       " ON c.id = search_conv.rowid"
		       " WHERE search_conv MATCH ?1 ORDER BY 1 DESC LIMIT ?2",
    [SS_Q_CONTACTS] = "SELECT c.id FROM search_contact"
		      " CROSS JOIN contacts AS c ON c.id = search_contact.rowid"
		      " WHERE search_contact MATCH ?1"
		      " ORDER BY 1 DESC LIMIT ?2",
    /* The messages (contacts) a relaxed query finds, newest first: the
     * candidates, a batch at a time (batch_fill). */
    [SS_Q_CAND] = "SELECT m.id, m.conversation_id, m.created_at, m.json"
		  " FROM search_msg CROSS JOIN messages AS m"
		  " ON m.id = search_msg.rowid WHERE search_msg MATCH ?1"
		  " ORDER BY search_msg.rowid DESC",
    [SS_Q_CONTACT_CAND] = "SELECT c.id, c.name, c.email, c.external_id,"
			  " c.json FROM search_contact CROSS JOIN contacts"
			  " AS c ON c.id = search_contact.rowid"
			  " WHERE search_contact MATCH ?1"
			  " ORDER BY search_contact.rowid DESC",
    [SS_Q_TAG_CAND] = "SELECT c.id, c.json FROM search_conv"
		      " CROSS JOIN conversations AS c"
		      " ON c.id = search_conv.rowid WHERE search_conv MATCH ?1"
		      " ORDER BY search_conv.rowid DESC",
};

sqlite3_stmt *store_search_prep(struct db *d, enum sstmt w)
{
	return store_prep(d, &d->search[w], ssql[w]);
}

/* ---- The text of each indexed row ------------------------------------ */

/* A message's indexed text: its body as transcript.txt shows it. */
static int body_text(const char *html, struct buf *out)
{
	return render_html_text(html ? html : "", out);
}

/*
 * The body of a stored message's JSON without parsing all of it, which
 * was most of what checking a candidate cost. The JSON stored is
 * json_render()'s: an object, each of its keys on a line of its own
 * indented two spaces, deeper ones more, and every newline in a string
 * escaped, so "\n  \"body\": " can only be the message's own key (the
 * renderer sorts keys, and json_parse() refuses a key given twice). A
 * string value with only the escapes for quote, backslash, slash, b, f,
 * n, r and t decodes here as cJSON decodes it; anything else (a \u
 * escape, a NUL, JSON not shaped so) is left to the parse: 0. 1 with
 * the body in *html, or -ENOMEM.
 *
 * JSON that json_render() did not make (a damaged cache) can still be
 * shaped so and give another body here than the parse: so only readers
 * use this (store_search_body_text_read), never what the index's rows
 * are written or removed by.
 */
static int canonical_body(const char *json, size_t len, struct buf *html)
{
	static const char key[] = "\n  \"body\": \"";
	const char *p, *end;
	int r = 0;

	if (!json || len < 8 || memcmp(json, "{\n  \"", 5) ||
	    memcmp(json + len - 3, "\n}\n", 3))
		return 0;
	p = memmem(json, len, key, sizeof(key) - 1);
	if (!p)
		return 0;
	end = json + len;
	for (p += sizeof(key) - 1; p < end && !r; p++) {
		const char *q = p;
		char c;

		/* The bytes up to the next quote or backslash, at once. */
		while (q < end && *q != '"' && *q != '\\' && *q)
			q++;
		r = buf_add(html, p, (size_t)(q - p));
		/* No closing quote, or a NUL: the parse's to judge. */
		if (r || q == end || !*q)
			return r ? r : 0;
		if (*q == '"')
			return 1;
		if (q + 1 == end)	/* defensive: the layout ends "\n}\n" */
			return 0;
		switch (q[1]) {
		case '"': c = '"'; break;
		case '\\': c = '\\'; break;
		case '/': c = '/'; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		default: return 0;	/* \u, or not JSON */
		}
		r = buf_addc(html, c);
		p = q + 1;	/* the loop steps past the escape's letter */
	}
	return r;
}

/* From a stored message's JSON (always the canonical rendering of what
 * the API sent; JSON it cannot be has no text, as its body would have). */
int store_search_body_text(const void *json, size_t len, struct buf *out)
{
	cJSON *v = json_parse(json ? json : "", len);
	int r;

	if (!v)
		return errno == ENOMEM ? -ENOMEM : 0;
	r = body_text(json_get_str(v, "body"), out);
	cJSON_Delete(v);
	return r;
}

/*
 * Whether a message's body, as parse_message() took it from the API's
 * object, is byte for byte what json_parse() of the JSON json_render()
 * made of that object gives back, so its text need not be parsed out of
 * that JSON again (that parse was a tenth of a cold sync's instructions).
 * The text indexed must be what a removal reads from the stored JSON
 * (store_search_put_message), and these bodies make the round trip:
 * json_parse() refuses an object with a key twice, and render_string()
 * writes every byte raw or as an escape that cJSON decodes to the same
 * bytes. Control bytes other than tab, newline and return are left to
 * the parse, since a string that starts with \x01 is how json_parse()
 * marks its big integers (json.c).
 */
static int body_round_trips(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') ||
		    *p == 0x7f)
			return 0;
	return 1;
}

int store_search_body_text_read(const void *json, size_t len, struct buf *out)
{
	struct buf html = BUF_INIT;
	int r = canonical_body(json, len, &html);

	if (!r) {
		buf_release(&html);
		return store_search_body_text(json, len, out);
	}
	if (r > 0)
		r = body_text(html.data, out);
	buf_release(&html);
	return r;
}

/* A conversation's tags (conversationTags), one a line. */
int store_search_tags_text(const void *json, size_t len, struct buf *out)
{
	cJSON *v, *t;
	int r = 0;

	if (!len)
		return 0;
	v = json_parse(json, len);
	if (!v)
		return errno == ENOMEM ? -ENOMEM : 0;
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(
				      v, "conversationTags")) {
		const char *name = json_tag_name(t);

		if (!name || !*name)
			continue;
		r = out->len ? buf_addc(out, '\n') : 0;
		r = r ? r : buf_adds(out, name);
		if (r)
			break;
	}
	cJSON_Delete(v);
	return r;
}

void store_search_contact_release(struct store_search_contact *c)
{
	for (int i = 0; i < 4; i++)
		free(c->f[i]);
	memset(c, 0, sizeof(*c));
}

int store_search_contact_fill(struct store_search_contact *c,
			      const char *name, const char *email,
			      const char *ext, const void *json, size_t len)
{
	const char *src[3] = { name, email, ext };
	cJSON *v = len ? json_parse(json, len) : NULL;
	const char *phone = NULL;
	int r = 0;

	memset(c, 0, sizeof(*c));
	if (v) {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(v,
								  "attributes");

		phone = json_get_str(a ? a : v, "phone");
	}
	for (int i = 0; i < 4 && !r; i++) {
		const char *s = i < 3 ? src[i] : phone;

		if (s && *s && !(c->f[i] = strdup(s)))
			r = -ENOMEM;
	}
	cJSON_Delete(v);
	if (r)
		store_search_contact_release(c);
	return r;
}

static int contact_text_same(const struct store_search_contact *a,
			     const struct store_search_contact *b)
{
	for (int i = 0; i < 4; i++)
		if ((!a->f[i]) != (!b->f[i]) ||
		    (a->f[i] && strcmp(a->f[i], b->f[i])))
			return 0;
	return 1;
}

static size_t contact_text_len(const struct store_search_contact *c)
{
	size_t n = 0;

	for (int i = 0; i < 4; i++)
		n += c->f[i] ? strlen(c->f[i]) : 0;
	return n;
}

/* ---- This thread's transaction: what commits with it ----------------- */

/*
 * The messages store_clear_messages() removed, still indexed: those the
 * transaction stores again with the same JSON stay indexed as they are
 * (a refetch of a conversation changes nothing in the index), the others
 * leave it at store_search_flush(), before the COMMIT. Also the change of
 * the text's bytes and the tables from which text left (dirty bits).
 */
struct cleared {
	int64_t id;
	char *json;
	size_t len;
	int used;	/* stored again: its removal is done (or not needed) */
};

/*
 * An index statement of this transaction not yet run: the row's texts
 * (up to four, at off[] in tx.text) wait for store_search_flush(), where
 * they run after every other statement of the transaction. FTS5 writes
 * its pending rows out as a new segment at each statement journal
 * ("savepoint") a later statement opens, and every INSERT OR REPLACE of
 * store_write.c opens one: run at once, each message became a segment of
 * its own (half the index's cost in a cold sync), run last, a
 * conversation's rows are one segment written at the COMMIT.
 */
struct pend {
	int64_t id;
	size_t off[4], len[4];
	unsigned char null[4];	/* a field with no text: bound as NULL */
	unsigned char t, del, n;
};

/* Pending texts past which they run mid-transaction (a conversation of
 * 100k messages): about what FTS5 holds in memory before it writes. */
#define PEND_TEXT_MAX ((size_t)1 << 20)
#define PEND_ROWS_MAX ((size_t)16384)

static __thread struct {
	int64_t conv;
	struct cleared *v;
	size_t n, alloc;
	struct pend *pv;
	size_t pn, palloc;
	struct buf text;	/* the pending rows' texts */
	int64_t text_delta;
	int64_t rows[SI__COUNT];	/* rows added less rows removed */
	int dirty;
	int broken;	/* FTS5 found the index inconsistent */
} tx;

static void cleared_drop(void)
{
	for (size_t i = 0; i < tx.n; i++)
		free(tx.v[i].json);
	free(tx.v);
	tx.v = NULL;
	tx.n = tx.alloc = 0;
	tx.conv = 0;
}

static void pend_drop(void)
{
	free(tx.pv);
	tx.pv = NULL;
	tx.pn = tx.palloc = 0;
	buf_release(&tx.text);
}

void store_search_discard(void)
{
	cleared_drop();
	pend_drop();
	tx.text_delta = 0;
	memset(tx.rows, 0, sizeof(tx.rows));
	tx.dirty = 0;
	tx.broken = 0;
}

/* A meta value as an integer, on d (0 when there is none). */
static int64_t meta_get(struct db *d, const char *key)
{
	sqlite3_stmt *s = store_search_prep(d, SS_UPTO);
	int64_t v = 0;

	if (!s)
		return 0;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return v;
}

/* The build's mark for table t (INT64_MAX: complete). */
static int64_t upto(struct store *st, struct db *d, int t)
{
	if (__atomic_load_n(&st->search_ready, __ATOMIC_ACQUIRE))
		return INT64_MAX;
	return meta_get(d, upto_key[t]);
}

static int meta_i64(struct db *d, enum sstmt w, const char *key, int64_t v)
{
	sqlite3_stmt *s = store_search_prep(d, w);

	if (s) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, v);
	}
	return store_step_done(d, s);
}

/* Runs an index statement: the id and up to four texts. */
static int fts_row(struct db *d, enum sstmt w, int64_t id,
		   const char *const *text, const size_t *len, int n)
{
	sqlite3_stmt *s = store_search_prep(d, w);
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	for (int i = 0; i < n; i++)
		if (text[i])
			sqlite3_bind_text(s, i + 2, text[i], (int)len[i],
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(s, i + 2);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_DONE)
		return 0;
	/*
	 * A row to remove that the index does not hold (its text was not
	 * what was indexed: a cache written by another version): the rows
	 * must still be stored, so the index is rebuilt from them at the
	 * next open instead (store_search_setup).
	 */
	if ((rc & 0xff) == SQLITE_CORRUPT) {
		if (!tx.broken)
			log_err("cache: the search index is inconsistent (%s);"
				" it is rebuilt at the next start",
				sqlite3_errmsg(d->sql));
		tx.broken = 1;
		return 0;
	}
	log_error_event("cache: %s", sqlite3_errmsg(d->sql));
	return store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
}

/* Each table's statements: [table][del]. */
static const enum sstmt fts_stmt[SI__COUNT][2] = {
	[SI_CONTACTS] = { SS_CONTACT_INS, SS_CONTACT_DEL },
	[SI_CONVS] = { SS_CONV_INS, SS_CONV_DEL },
	[SI_MSGS] = { SS_MSG_INS, SS_MSG_DEL },
};

/* Runs the pending index statements, in the order they came, and drops
 * them. */
static int pend_apply(struct db *d)
{
	int r = 0;

	for (size_t i = 0; i < tx.pn && !r; i++) {
		const struct pend *p = &tx.pv[i];
		const char *text[4];

		for (int k = 0; k < p->n; k++)
			text[k] = p->null[k] ? NULL
				  : tx.text.data ? tx.text.data + p->off[k]
						 : "";
		r = fts_row(d, fts_stmt[p->t][p->del], p->id, text, p->len,
			    p->n);
	}
	pend_drop();
	return r;
}

/* Queues an index statement of table t: the id and n texts (NULL: none),
 * copied. */
static int pend_add(struct db *d, int t, int del, int64_t id,
		    const char *const *text, const size_t *len, int n)
{
	struct pend *p;
	int r = 0;

	if (tx.pn == tx.palloc) {
		size_t na = tx.palloc ? tx.palloc * 2 : 32;
		struct pend *v = realloc(tx.pv, na * sizeof(*v));

		if (!v)
			return -ENOMEM;
		tx.pv = v;
		tx.palloc = na;
	}
	p = &tx.pv[tx.pn];
	p->id = id;
	p->t = (unsigned char)t;
	p->del = (unsigned char)del;
	p->n = (unsigned char)n;
	for (int k = 0; k < n && !r; k++) {
		p->null[k] = !text[k];
		p->off[k] = tx.text.len;
		p->len[k] = text[k] ? len[k] : 0;
		r = text[k] ? buf_add(&tx.text, text[k], len[k]) : 0;
	}
	if (r)
		return r;
	tx.pn++;
	/* Bounded in rows too: rows without text (an attachment alone)
	 * cost their entry and add no bytes. */
	return tx.text.len > PEND_TEXT_MAX || tx.pn >= PEND_ROWS_MAX
		       ? pend_apply(d)
		       : 0;
}

/*
 * What an index statement did: the text's bytes, the table's rows, and
 * (del with words) that words left the table's segments, to be merged
 * away (store_search_purge). keep: the words removed are all in the text
 * that replaces them (an edit that only added words): none left.
 */
static void indexed(int t, int del, size_t len, int keep)
{
	tx.text_delta += del ? -(int64_t)len : (int64_t)len;
	tx.rows[t] += del ? -1 : 1;
	if (del && len && !keep)
		tx.dirty |= 1 << t;
}

static int msg_index(struct db *d, int del, int64_t id, const struct buf *t,
		     int keep)
{
	const char *text = t->data ? t->data : "";
	size_t len = t->len;
	int r;

	r = pend_add(d, SI_MSGS, del, id, &text, &len, 1);
	if (!r)
		indexed(SI_MSGS, del, len, keep);
	return r;
}

static int msg_unindex_json(struct db *d, int64_t id, const void *json,
			    size_t len)
{
	struct buf t = BUF_INIT;
	int r = store_search_body_text(json, len, &t);

	r = r ? r : msg_index(d, 1, id, &t, 0);
	buf_release(&t);
	return r;
}

static int contact_index(struct db *d, int del, int64_t id,
			 const struct store_search_contact *c)
{
	const char *text[4];
	size_t len[4];
	int r;

	for (int i = 0; i < 4; i++) {
		text[i] = c->f[i];
		len[i] = c->f[i] ? strlen(c->f[i]) : 0;
	}
	r = pend_add(d, SI_CONTACTS, del, id, text, len, 4);
	if (!r)
		indexed(SI_CONTACTS, del, contact_text_len(c), 0);
	return r;
}

static int tags_index(struct db *d, int del, int64_t id, const struct buf *t)
{
	const char *text = t->data ? t->data : "";
	size_t len = t->len;
	int r;

	r = pend_add(d, SI_CONVS, del, id, &text, &len, 1);
	if (!r)
		indexed(SI_CONVS, del, len, 0);
	return r;
}

/* The cleared messages not stored again leave the index: queued. */
static int cleared_resolve(struct db *d)
{
	int r = 0;

	for (size_t i = 0; i < tx.n && !r; i++)
		if (!tx.v[i].used)
			r = msg_unindex_json(d, tx.v[i].id, tx.v[i].json,
					     tx.v[i].len);
	cleared_drop();
	return r;
}

int store_search_flush(struct db *d)
{
	int r = cleared_resolve(d);

	/* The counts first, the index's statements last (struct pend). */
	if (!r && tx.text_delta)
		r = meta_i64(d, SS_ADD_META, "search_text_bytes",
			     tx.text_delta);
	for (int t = 0; t < SI__COUNT && !r; t++)
		if (tx.rows[t])
			r = meta_i64(d, SS_ADD_META, rows_key[t], tx.rows[t]);
	if (!r && tx.dirty)
		r = meta_i64(d, SS_OR_META, "search_dirty", tx.dirty);
	r = r ? r : pend_apply(d);
	if (!r && tx.broken)
		r = meta_i64(d, SS_SET_META, "search_rebuild", 1);
	pend_drop();
	tx.text_delta = 0;
	memset(tx.rows, 0, sizeof(tx.rows));
	tx.dirty = 0;
	tx.broken = 0;
	return r;
}

/* A writer outside a transaction commits its index change at once. */
static int done(struct db *d, int r)
{
	if (store_pinned)
		return r;
	if (!r)
		return store_search_flush(d);
	store_search_discard();
	return r;
}

/* ---- Writers (store_write.c calls them on its connection) ------------ */

/* The entry of message id cleared and not yet stored again (one stored
 * again is used: a second put of it finds the row the first stored). */
static struct cleared *cleared_find(int64_t conv, int64_t id)
{
	size_t lo = 0, hi = tx.n;

	if (tx.conv != conv)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (tx.v[mid].id == id)
			return tx.v[mid].used ? NULL : &tx.v[mid];
		if (tx.v[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int store_search_clear_messages(struct store *st, struct db *d, int64_t conv)
{
	int64_t mark = upto(st, d, SI_MSGS);
	sqlite3_stmt *s;
	int r = 0, rc;

	/* Another conversation's leftovers go first. */
	if (tx.n && tx.conv != conv) {
		r = cleared_resolve(d);
		if (r)
			return done(d, r);
	}
	cleared_drop();
	tx.conv = conv;
	if (mark <= 0)
		return 0;
	s = store_search_prep(d, SS_MSGS_OF_CONV);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, conv);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		const void *j = sqlite3_column_blob(s, 1);
		size_t len = (size_t)sqlite3_column_bytes(s, 1);
		struct cleared *c;

		if (id > mark)
			continue;
		if (tx.n == tx.alloc) {
			size_t na = tx.alloc ? tx.alloc * 2 : 32;
			struct cleared *p = realloc(tx.v, na * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			tx.v = p;
			tx.alloc = na;
		}
		c = &tx.v[tx.n];
		c->id = id;
		c->len = len;
		c->used = 0;
		c->json = malloc(len + 1);
		if (!c->json) {
			r = -ENOMEM;
			break;
		}
		memcpy(c->json, j ? j : "", len);
		c->json[len] = 0;
		tx.n++;
	}
	if (!r && rc != SQLITE_DONE)
		r = store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
	sqlite3_reset(s);
	return done(d, r);
}

/* An ASCII character unicode61 splits on (not a letter or digit). */
static int ascii_sep(unsigned char ch)
{
	return ch < 0x80 && !((ch >= '0' && ch <= '9') ||
			      ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'));
}

/*
 * Whether the words of old are all in now: now is old with words added
 * after it (the usual edit: a line appended), cut where unicode61 splits
 * (any ASCII character not a letter or digit). Otherwise words may have
 * left: 0.
 */
static int words_kept(const struct buf *old, const struct buf *now)
{
	unsigned char last, next;

	if (!old->len)
		return 1;
	if (now->len < old->len || memcmp(now->data, old->data, old->len))
		return 0;
	if (now->len == old->len)
		return 1;
	last = (unsigned char)old->data[old->len - 1];
	next = (unsigned char)now->data[old->len];
	return ascii_sep(last) || ascii_sep(next);
}

int store_search_put_message(struct store *st, struct db *d,
			     const struct api_message *m)
{
	struct cleared *c;
	struct buf old = BUF_INIT, now = BUF_INIT;
	const void *oj = NULL;
	size_t olen = 0;
	sqlite3_stmt *s = NULL;
	int r = 0, have = 0;

	if (m->id > upto(st, d, SI_MSGS))
		return 0;	/* the build gets to it */
	/* What it held: cleared by this transaction, or stored already. */
	c = cleared_find(m->conversation_id, m->id);
	if (c) {
		c->used = 1;
		have = 1;
		oj = c->json;
		olen = c->len;
	} else {
		s = store_search_prep(d, SS_MSG_OLD);
		if (!s)
			return done(d, -EIO);
		sqlite3_bind_int64(s, 1, m->id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			have = 1;
			oj = sqlite3_column_blob(s, 0);
			olen = (size_t)sqlite3_column_bytes(s, 0);
		}
	}
	/* The same JSON, or the same text from other JSON (a field that is
	 * not text changed): indexed as it is. */
	if (have && olen == m->json.len &&
	    !memcmp(oj ? oj : "", m->json.data ? m->json.data : "", olen)) {
		if (s)
			sqlite3_reset(s);
		return done(d, 0);
	}
	r = have ? store_search_body_text(oj, olen, &old) : 0;
	if (s)
		sqlite3_reset(s);
	/* What the JSON stored gives, as its removal will read it. */
	if (!r && m->body && body_round_trips(m->body))
		r = body_text(m->body, &now);
	else
		r = r ? r : store_search_body_text(m->json.data, m->json.len,
						   &now);
	if (!r && have &&
	    (old.len != now.len || (old.len && memcmp(old.data, now.data,
						      old.len))))
		r = msg_index(d, 1, m->id, &old, words_kept(&old, &now));
	else if (have)
		goto out;	/* the same text */
	r = r ? r : msg_index(d, 0, m->id, &now, 0);
out:
	buf_release(&old);
	buf_release(&now);
	return done(d, r);
}

int store_search_forget_conversation(struct store *st, struct db *d,
				     int64_t conv)
{
	struct buf t = BUF_INIT;
	sqlite3_stmt *s;
	int r, rc;

	/* Its messages: read and unindexed by the clear's flush. */
	r = store_search_clear_messages(st, d, conv);
	r = r ? r : cleared_resolve(d);
	if (r || conv > upto(st, d, SI_CONVS))
		return done(d, r);
	s = store_search_prep(d, SS_CONV_OLD);
	if (!s)
		return done(d, -EIO);
	sqlite3_bind_int64(s, 1, conv);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = store_search_tags_text(
			sqlite3_column_blob(s, 0),
			(size_t)sqlite3_column_bytes(s, 0), &t);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		r = r ? r : tags_index(d, 1, conv, &t);
	buf_release(&t);
	return done(d, r);
}

int store_search_put_conversation(struct store *st, struct db *d,
				  const struct api_conversation *c)
{
	struct buf old = BUF_INIT, now = BUF_INIT;
	sqlite3_stmt *s;
	int r = 0, have;

	if (c->id > upto(st, d, SI_CONVS))
		return 0;
	s = store_search_prep(d, SS_CONV_OLD);
	if (!s)
		return done(d, -EIO);
	sqlite3_bind_int64(s, 1, c->id);
	have = sqlite3_step(s) == SQLITE_ROW;
	if (have)
		r = store_search_tags_text(
			sqlite3_column_blob(s, 0),
			(size_t)sqlite3_column_bytes(s, 0), &old);
	sqlite3_reset(s);
	r = r ? r : store_search_tags_text(c->json.data, c->json.len, &now);
	if (!r && (!have || old.len != now.len ||
		   (old.len && memcmp(old.data, now.data, old.len)))) {
		r = have ? tags_index(d, 1, c->id, &old) : 0;
		r = r ? r : tags_index(d, 0, c->id, &now);
	}
	buf_release(&old);
	buf_release(&now);
	return done(d, r);
}

/* The indexed fields of the stored contact id (all NULL: none), and
 * whether it is stored (*have). */
static int contact_old(struct db *d, int64_t id, struct store_search_contact *c,
		       int *have)
{
	sqlite3_stmt *s = store_search_prep(d, SS_CONTACT_OLD);
	int r = 0;

	memset(c, 0, sizeof(*c));
	*have = 0;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, id);
	if ((*have = sqlite3_step(s) == SQLITE_ROW))
		r = store_search_contact_fill(c,
				      (const char *)sqlite3_column_text(s, 0),
				      (const char *)sqlite3_column_text(s, 1),
				      (const char *)sqlite3_column_text(s, 2),
				      sqlite3_column_blob(s, 3),
				      (size_t)sqlite3_column_bytes(s, 3));
	sqlite3_reset(s);
	return r;
}

int store_search_put_contact(struct store *st, struct db *d,
			     const struct api_contact *c)
{
	struct store_search_contact old, now;
	int r, have;

	if (c->id > upto(st, d, SI_CONTACTS))
		return 0;
	r = contact_old(d, c->id, &old, &have);
	if (r)
		return done(d, r);
	r = store_search_contact_fill(&now, c->name, c->email, c->external_id,
			      c->json.data, c->json.len);
	if (!r && (!have || !contact_text_same(&old, &now))) {
		r = have ? contact_index(d, 1, c->id, &old) : 0;
		r = r ? r : contact_index(d, 0, c->id, &now);
	}
	store_search_contact_release(&old);
	store_search_contact_release(&now);
	return done(d, r);
}

int store_search_delete_contact(struct store *st, struct db *d, int64_t id)
{
	struct store_search_contact old;
	int r, have;

	if (id > upto(st, d, SI_CONTACTS))
		return 0;
	r = contact_old(d, id, &old, &have);
	r = r || !have ? r : contact_index(d, 1, id, &old);
	store_search_contact_release(&old);
	return done(d, r);
}

/* ---- Setup, per connection and per file ------------------------------ */

static int count_rows(struct db *d, const char *table, int64_t *n)
{
	char sql[96];
	sqlite3_stmt *s = NULL;
	int rc;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	rc = sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : store_sql_errno(rc) ?: -EIO;
}

/* Whether every table's mark says complete. */
static int all_ready(struct db *d)
{
	sqlite3_stmt *s = store_search_prep(d, SS_UPTO);
	int ready = 1;

	for (int t = 0; t < SI__COUNT && s && ready; t++) {
		sqlite3_reset(s);
		sqlite3_bind_text(s, 1, upto_key[t], -1, SQLITE_STATIC);
		ready = sqlite3_step(s) == SQLITE_ROW &&
			sqlite3_column_int64(s, 0) == INT64_MAX;
	}
	if (s)
		sqlite3_reset(s);
	return s && ready;
}

/* The rows FTS5 counts in table t (its averages record: a varint). */
static int fts_rows(struct db *d, int t, int64_t *n)
{
	char sql[96];
	sqlite3_stmt *s = NULL;
	const unsigned char *p;
	uint64_t v = 0;
	int rc, len;

	*n = 0;
	snprintf(sql, sizeof(sql), "SELECT block FROM %s_data WHERE id = 1",
		 fts_name[t]);
	rc = sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		p = sqlite3_column_blob(s, 0);
		len = sqlite3_column_bytes(s, 0);
		/* SQLite's varint: 7 bits a byte, big-endian; a 9th byte
		 * gives 8. */
		for (int i = 0; i < len && i < 9; i++) {
			if (i == 8) {
				v = (v << 8) | p[i];
				break;
			}
			v = (v << 7) | (p[i] & 0x7f);
			if (!(p[i] & 0x80))
				break;
		}
		*n = (int64_t)v;
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0
						     : store_sql_errno(rc) ?: -EIO;
}

/*
 * Whether each table's index holds what its rows say (*ok): FTS5's count
 * of rows, the writers' count in meta and the table's rows up to the
 * build's mark all agree. A cache written behind the index's back (an
 * older version deleted or added rows) fails it. In d's transaction.
 */
static int index_in_step(struct db *d, int *ok)
{
	sqlite3_stmt *s = NULL;
	char sql[96];
	int r = 0, rc;

	*ok = 1;
	for (int t = 0; t < SI__COUNT && *ok && !r; t++) {
		int64_t fts, mine = meta_get(d, rows_key[t]), rows = 0;

		r = fts_rows(d, t, &fts);
		if (r)
			break;
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM %s WHERE id <= ?1", src_name[t]);
		rc = sqlite3_prepare_v2(d->sql, sql, -1, &s, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(s, 1, meta_get(d, upto_key[t]));
			rc = sqlite3_step(s);
		}
		if (rc == SQLITE_ROW)
			rows = sqlite3_column_int64(s, 0);
		else
			r = store_sql_errno(rc) ?: -EIO;
		sqlite3_finalize(s);
		s = NULL;
		if (!r && (fts != mine || fts != rows)) {
			log_warn("cache: the search index of %s is out of step"
				 " with it (%lld rows indexed, %lld counted,"
				 " %lld stored)",
				 src_name[t], (long long)fts, (long long)mine,
				 (long long)rows);
			*ok = 0;
		}
	}
	return r;
}

/*
 * At store_open(), on d outside any transaction: the tables, and for each
 * a mark when it has none (a new file: complete, for its rows are all to
 * come through the writers; a cache of an older version: 0, the build
 * indexes what it holds).
 */
int store_search_setup(struct store *st, struct db *d)
{
	int64_t fmt;
	int r = 0, bad, reset_done = 0;

	/* A reader (driftctl status, search) takes no write lock unless
	 * the tables are missing, and checks nothing: counting every row
	 * under a mount's long transaction would wait out the busy timeout,
	 * and what it found it could not repair anyway. */
	if (sqlite3_exec(d->sql, read_only ? "BEGIN" : "BEGIN IMMEDIATE",
			 NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	if (sqlite3_exec(d->sql, store_search_schema, NULL, NULL, NULL) !=
	    SQLITE_OK)
		goto fail;
	/*
	 * Found inconsistent, out of step with the rows, or made by another
	 * format: emptied, and built again in the background. Only by a
	 * process alone with the cache (another one's writers would go on
	 * as if it were complete) that may write (a command that only
	 * reads leaves it to the next that writes: search_rebuild).
	 */
	fmt = meta_get(d, "search_format");
	bad = meta_get(d, "search_rebuild") || (fmt && fmt != SEARCH_FORMAT);
	if (!bad && fmt && !read_only) {
		int ok;

		r = index_in_step(d, &ok);
		if (r)
			goto fail;
		if (!ok) {
			bad = 1;
			r = meta_i64(d, SS_SET_META, "search_rebuild", 1);
			if (r)
				goto fail;
		}
	}
	if (bad && st->alone && !read_only) {
		static const char reset[] =
			"INSERT INTO search_msg(search_msg) VALUES('delete-all');"
			"INSERT INTO search_conv(search_conv) VALUES('delete-all');"
			"INSERT INTO search_contact(search_contact)"
			" VALUES('delete-all');"
			"DELETE FROM meta WHERE key IN ('search_rebuild',"
			" 'search_format',"
			" 'search_text_bytes', 'search_dirty',"
			" 'search_rows_contacts', 'search_rows_conversations',"
			" 'search_rows_messages', 'search_rows_merged',"
			" 'search_upto_contacts', 'search_upto_conversations',"
			" 'search_upto_messages');";

		log_warn("cache %s: rebuilding the search index", st->path);
		/* Dropped and made again: another format may have made the
		 * tables with other options (format 2: positions). */
		if (sqlite3_exec(d->sql, store_search_drop, NULL, NULL,
				 NULL) != SQLITE_OK ||
		    sqlite3_exec(d->sql, store_search_schema, NULL, NULL,
				 NULL) != SQLITE_OK ||
		    sqlite3_exec(d->sql, reset, NULL, NULL, NULL) != SQLITE_OK)
			goto fail;
		reset_done = 1;
	}
	for (int t = 0; t < SI__COUNT && !r; t++) {
		sqlite3_stmt *s = store_search_prep(d, SS_UPTO);
		int have;
		int64_t n = 0;

		if (!s)
			goto fail;
		sqlite3_bind_text(s, 1, upto_key[t], -1, SQLITE_STATIC);
		have = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_reset(s);
		if (have)
			continue;
		r = count_rows(d, src_name[t], &n);
		r = r ? r : meta_i64(d, SS_SET_META, upto_key[t],
				     n ? 0 : INT64_MAX);
	}
	if (!r && !meta_get(d, "search_format"))
		r = meta_i64(d, SS_SET_META, "search_format", SEARCH_FORMAT);
	if (r || sqlite3_exec(d->sql, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* The emptied index's pages (zeroed: secure_delete) replace the old
	 * ones in the file now, not at some later checkpoint: the text of
	 * rows deleted behind its back leaves the cache (nobody else has it
	 * open: alone). */
	if (reset_done &&
	    sqlite3_wal_checkpoint_v2(d->sql, NULL, SQLITE_CHECKPOINT_TRUNCATE,
				      NULL, NULL) != SQLITE_OK)
		log_warn("cache %s: checkpoint: %s", st->path,
			 sqlite3_errmsg(d->sql));
	/* Pending a rebuild: not ready (driftctl search says so). */
	__atomic_store_n(&st->search_ready, !bad && all_ready(d),
			 __ATOMIC_RELEASE);
	return 0;
fail:
	log_err("cache %s: the search index: %s", st->path,
		sqlite3_errmsg(d->sql));
	r = store_sql_errno(sqlite3_errcode(d->sql)) ?: -EIO;
	sqlite3_exec(d->sql, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

/* ---- The background build -------------------------------------------- */

static int build_table(struct store *st, struct db *d, int t, size_t chunk,
		       int64_t mark)
{
	static const enum sstmt sel[SI__COUNT] = {
		SS_BUILD_CONTACTS, SS_BUILD_CONVS, SS_BUILD_MSGS
	};
	sqlite3_stmt *s = store_search_prep(d, sel[t]);
	struct buf text = BUF_INIT;
	size_t n = 0;
	int64_t last = mark;
	int r = 0, rc;

	(void)st;
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, mark);
	sqlite3_bind_int64(s, 2, (int64_t)chunk);
	while (!r && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		n++;
		last = id;
		buf_reset(&text);
		if (t == SI_CONTACTS) {
			struct store_search_contact c;

			r = store_search_contact_fill(
				&c, (const char *)sqlite3_column_text(s, 1),
				(const char *)sqlite3_column_text(s, 2),
				(const char *)sqlite3_column_text(s, 3),
				sqlite3_column_blob(s, 4),
				(size_t)sqlite3_column_bytes(s, 4));
			r = r ? r : contact_index(d, 0, id, &c);
			store_search_contact_release(&c);
		} else if (t == SI_CONVS) {
			r = store_search_tags_text(
				sqlite3_column_blob(s, 1),
				(size_t)sqlite3_column_bytes(s, 1), &text);
			r = r ? r : tags_index(d, 0, id, &text);
		} else {
			r = store_search_body_text(
				sqlite3_column_blob(s, 1),
				(size_t)sqlite3_column_bytes(s, 1), &text);
			r = r ? r : msg_index(d, 0, id, &text, 0);
		}
	}
	if (!r && rc != SQLITE_DONE)
		r = store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
	sqlite3_reset(s);
	buf_release(&text);
	/* Fewer than asked for: the table is done. */
	return r ? r : meta_i64(d, SS_SET_META, upto_key[t],
				n < chunk ? INT64_MAX : last);
}

int store_search_build_step(struct store *st, size_t chunk)
{
	struct db *d;
	int r, t;

	if (__atomic_load_n(&st->search_ready, __ATOMIC_ACQUIRE))
		return 0;
	r = store_begin(st);
	if (r)
		return r;
	d = store_pinned;
	for (t = 0; t < SI__COUNT; t++) {
		int64_t mark = upto(st, d, t);

		if (mark == INT64_MAX)
			continue;
		r = build_table(st, d, t, chunk, mark);
		break;
	}
	if (r) {
		store_rollback(st);
		return r;
	}
	r = store_commit(st);	/* flushes the text's bytes */
	if (r)
		return r;
	if (t < SI__COUNT)
		return 1;
	d = store_db_get(st);
	if (!d)
		return -errno;
	if (all_ready(d))
		__atomic_store_n(&st->search_ready, 1, __ATOMIC_RELEASE);
	store_db_put(st, d);
	return 0;
}

/* The bytes of the index's pages: each shadow table's b-tree, by name
 * (an equality dbstat reads that tree alone, not the whole file). The
 * tables hold no _docsize nor _content (columnsize=0, content=''): named
 * all the same, should a cache ever have them. */
static int64_t index_bytes(struct db *d)
{
	static const char *const sfx[] = { "_data", "_idx", "_config",
					   "_docsize", "_content" };
	sqlite3_stmt *s = NULL;
	int64_t total = 0;
	char name[64];

	if (sqlite3_prepare_v2(d->sql,
			       "SELECT pgsize FROM dbstat WHERE name = ?1"
			       " AND aggregate = 1",
			       -1, &s, NULL) != SQLITE_OK) {
		sqlite3_finalize(s);
		return 0;
	}
	for (int t = 0; t < SI__COUNT; t++)
		for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
			snprintf(name, sizeof(name), "%s%s", fts_name[t],
				 sfx[i]);
			sqlite3_reset(s);
			sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
			if (sqlite3_step(s) == SQLITE_ROW)
				total += sqlite3_column_int64(s, 0);
		}
	sqlite3_finalize(s);
	return total;
}

/*
 * index_bytes() reads every page of the index: done at most once a
 * minute (a status file is read often: polled, and by every rsync), and
 * after a purge. Racy by design: two threads may both compute it.
 */
#define INDEX_BYTES_TTL_MS 60000

static int64_t index_bytes_cached(struct store *st, struct db *d)
{
	int64_t now = clock_mono_ms(), v,
		at = __atomic_load_n(&st->search_bytes_ms, __ATOMIC_ACQUIRE);

	if (at && now - at < INDEX_BYTES_TTL_MS)
		return __atomic_load_n(&st->search_bytes, __ATOMIC_RELAXED);
	v = index_bytes(d);
	__atomic_store_n(&st->search_bytes, v, __ATOMIC_RELAXED);
	__atomic_store_n(&st->search_bytes_ms, now ? now : 1,
			 __ATOMIC_RELEASE);
	return v;
}

int store_search_progress(struct store *st, int64_t *done_msgs,
			  int64_t *total, int *ready, int64_t *index_b,
			  int64_t *text_bytes)
{
	struct db *d = store_db_get(st);
	sqlite3_stmt *s = NULL;
	int64_t mark;
	int r = 0, rc;

	*done_msgs = *total = *index_b = *text_bytes = 0;
	*ready = 0;
	if (!d)
		return -errno;
	mark = upto(st, d, SI_MSGS);
	/* Marked for a rebuild (by a process that could not do it): as
	 * good as nothing indexed. */
	*ready = all_ready(d) && !meta_get(d, "search_rebuild");
	if (!*ready && mark == INT64_MAX)
		mark = 0;
	/* The messages counted only while the build runs (a status file
	 * is read often: polled, and by every rsync). */
	rc = sqlite3_prepare_v2(d->sql,
				"SELECT CASE WHEN ?2 THEN 0 ELSE"
				"  (SELECT count(*) FROM messages) END,"
				" CASE WHEN ?2 THEN 0 ELSE"
				"  (SELECT count(*) FROM messages"
				"   WHERE id <= ?1) END,"
				" (SELECT CAST(value AS INTEGER) FROM meta"
				"  WHERE key = 'search_text_bytes')",
				-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, mark);
		sqlite3_bind_int(s, 2, *ready);
		rc = sqlite3_step(s);
	}
	if (rc == SQLITE_ROW) {
		*total = sqlite3_column_int64(s, 0);
		*done_msgs = sqlite3_column_int64(s, 1);
		*text_bytes = sqlite3_column_int64(s, 2);
		*index_b = index_bytes_cached(st, d);
	} else {
		r = store_sql_errno(rc) ? store_sql_errno(rc) : -EIO;
	}
	sqlite3_finalize(s);
	store_db_put(st, d);
	return r;
}

/*
 * The rows of all three indexes, as their writers counted them, and
 * whether they have doubled since the last merge of all of them (at
 * least GROWN_MIN): then each table's segments are merged towards one
 * (merge_grown). A first sync (0 to N rows) ends with one such merge, and
 * the merges' cost stays proportional to what was indexed: each rewrites
 * at most twice what the one before did. Between them FTS5's own
 * automerge keeps the segments few, not one.
 */
#define GROWN_MIN 1000
/* Pages one step of that merge writes (FTS5 'merge', -N), each step its
 * own transaction: the write lock is held for about a MB of index at a
 * time, not the whole index. */
#define GROWN_MERGE_PAGES 256
/* Steps per table at most (a writer adding segments meanwhile could
 * otherwise keep it going). */
#define GROWN_MERGE_STEPS 4096

static int64_t rows_now(struct store *st)
{
	int64_t n = 0;

	for (int t = 0; t < SI__COUNT; t++)
		n += store_meta_i64(st, rows_key[t]);
	return n;
}

static int grown(int64_t rows, int64_t merged)
{
	return rows >= GROWN_MIN && rows >= 2 * merged;
}

/* Merges each table's segments, a step a transaction, until FTS5 finds
 * nothing left to merge; then notes rows as merged. */
static int merge_grown(struct store *st, int64_t rows)
{
	char sql[128];
	int r = 0;

	for (int t = 0; t < SI__COUNT && !r; t++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %s(%s, rank) VALUES('merge', -%d)",
			 fts_name[t], fts_name[t], GROWN_MERGE_PAGES);
		for (int step = 0; step < GROWN_MERGE_STEPS && !r; step++) {
			struct db *d;
			int64_t before;
			int done;

			r = store_begin(st);
			if (r)
				break;
			d = store_pinned;
			before = sqlite3_total_changes64(d->sql);
			if (sqlite3_exec(d->sql, sql, NULL, NULL, NULL) !=
			    SQLITE_OK) {
				r = store_sql_errno(sqlite3_errcode(d->sql))
					?: -EIO;
				log_warn("cache: merging the search index: %s",
					 sqlite3_errmsg(d->sql));
				store_rollback(st);
				break;
			}
			/* FTS5: fewer than 2 changes, nothing was merged. */
			done = sqlite3_total_changes64(d->sql) - before < 2;
			r = store_commit(st);
			if (done)
				break;
		}
	}
	if (r)
		return r;
	r = store_begin(st);
	if (r)
		return r;
	r = meta_i64(store_pinned, SS_SET_META, "search_rows_merged", rows);
	if (r) {
		store_rollback(st);
		return r;
	}
	return store_commit(st);
}

int store_search_purge(struct store *st)
{
	struct db *d;
	int64_t dirty, rows;
	int r, purged = 0;

	if (store_pinned)
		return -EBUSY;
	rows = rows_now(st);
	if (grown(rows, store_meta_i64(st, "search_rows_merged"))) {
		r = merge_grown(st, rows);
		if (r)
			return r;
		purged = 1;
	}
	/* A look without the write lock first: mostly there is nothing. */
	if (!store_meta_i64(st, "search_dirty"))
		goto out;
	r = store_begin(st);
	if (r)
		return r;
	d = store_pinned;
	/* Read again under the lock: a bit set by a writer since stays
	 * set until its table is merged. */
	dirty = meta_get(d, "search_dirty");
	for (int t = 0; t < SI__COUNT && !r; t++) {
		char sql[128];

		if (!(dirty & (1 << t)))
			continue;
		snprintf(sql, sizeof(sql),
			 "INSERT INTO %s(%s) VALUES('optimize')", fts_name[t],
			 fts_name[t]);
		if (sqlite3_exec(d->sql, sql, NULL, NULL, NULL) != SQLITE_OK)
			r = store_sql_errno(sqlite3_errcode(d->sql)) ?: -EIO;
		purged |= 2;
	}
	r = r || !(purged & 2) ? r
			       : meta_i64(d, SS_SET_META, "search_dirty", 0);
	if (r) {
		log_warn("cache: merging the search index: %s",
			 sqlite3_errmsg(d->sql));
		store_rollback(st);
		return r;
	}
	r = store_commit(st);
	if (r)
		return r;
out:
	if (purged)	/* the index's size changed */
		__atomic_store_n(&st->search_bytes_ms, 0, __ATOMIC_RELAXED);
	return !!purged;
}
