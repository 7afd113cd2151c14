/* SPDX-License-Identifier: MIT */
/*
 * api: the Drift REST endpoints driftfs uses, parsed into plain rows.
 *
 * This is the only module that knows Drift's endpoint paths, envelopes
 * (which differ from endpoint to endpoint, see drift-api.md §3.1) and
 * paging styles. Every response is treated as untrusted: wrong shapes,
 * missing ids and repeating cursors are errors (logged, -EIO), never
 * crashes or endless loops. cJSON trees stay inside the api_*.c files;
 * callers get rows whose `json` member is the object's canonical rendering,
 * ready to store.
 *
 * Files: api.c (what every endpoint shares: the bounded GET, envelopes,
 * escaping, paging), api_contact.c, api_conversation.c (with messages and
 * attachments), api_lists.c (users, playbooks, accounts), api_auth.c (the
 * token exchange, token_info, the org lookup). Writes are api_write.c's.
 *
 * Contract, for every function below unless it says otherwise:
 * - Returns 0 or -errno: -ENOENT for a 404, -EACCES for 401/403, -EIO for
 *   an answer of the wrong shape, and whatever else http.h maps a status or
 *   a transport error to. Functions that return a pointer return NULL and
 *   set errno.
 * - Threads: any thread, any number at once. The api keeps no state of its
 *   own (no lock, no cache); a struct http is safe to share between threads
 *   (http.h: pool, governor and token source are locked inside it). A
 *   struct api_cursor belongs to one walk and is not shared.
 * - Blocking: a fetcher blocks its thread for the request, its retries and
 *   their pauses, within the client's deadline. Call none with a lock held
 *   that another thread needs meanwhile (sync never holds the store's write
 *   transaction across one).
 * - Callbacks run on the calling thread, synchronously, once per row, after
 *   the answer has arrived (no http or api lock is held). They receive rows
 *   that live only for the call; they return 0 to go on or -errno to stop
 *   the walk (the walk then returns that value).
 * - Ownership: a row filled by a fetcher (out) belongs to the caller, who
 *   releases it with its *_release() even when the call failed. Release
 *   functions accept zeroed rows. Strings the caller passes in are only
 *   read.
 */
#ifndef DRIFTFS_API_H
#define DRIFTFS_API_H

#include <stdint.h>

#include "buf.h"
#include "http.h"

/* ---- Rows ------------------------------------------------------------ */

struct api_contact {
	int64_t id;
	int64_t created;	/* ms */
	char *email;		/* may be NULL */
	char *external_id;	/* may be NULL */
	char *name;		/* may be NULL */
	struct buf json;	/* canonical GET /contacts/{id} data object */
	struct buf tags;	/* the tags file: one name a line */
};

struct api_user {
	int64_t id;
	int64_t mtime;		/* updatedAt, else createdAt, ms */
	char *email;
	char *name;
	int bot;
	int64_t org;		/* orgId; 0 when absent */
	struct buf json;
};

struct api_conversation {
	int64_t id;
	int64_t contact_id;	/* 0 when unknown */
	int64_t created;
	int64_t updated;	/* updatedAt, else createdAt */
	char status[16];	/* open, closed, pending, bulk_sent or "" */
	struct buf json;	/* full object (empty for list summaries) */
};

struct api_attachment {
	int64_t id;
	char *file_name;
	char *mime;
};

struct api_message {
	int64_t id;
	int64_t conversation_id;
	int64_t created;
	int64_t author_id;
	char author_type[16];	/* "contact" or "user" */
	int bot;
	char type[24];		/* chat, private_note, ... */
	char *body;		/* HTML as sent by the API */
	struct buf json;
	struct api_attachment *att;
	size_t natt;
};

/* Playbooks (numeric id) and accounts (string id). */
struct api_object {
	int64_t id;
	char *key;		/* string id; NULL for playbooks */
	int64_t mtime;
	struct buf json;
};

/* Where a conversation walk is; zero it to start from the newest. */
struct api_cursor {
	char *next;		/* path of the next page, NULL before the first */
	char *mark;		/* a recent cursor, to catch cycles */
	int done;		/* no more pages */
	int legacy_limit;	/* the server refused limit=100: use 50 */
	unsigned pages;
};

typedef int (*api_contact_cb)(void *ctx, const struct api_contact *c);
typedef int (*api_user_cb)(void *ctx, const struct api_user *u);
typedef int (*api_conversation_cb)(void *ctx,
				   const struct api_conversation *c);
/* May take ownership of *m by copying it and zeroing the original. */
typedef int (*api_message_cb)(void *ctx, struct api_message *m);
typedef int (*api_object_cb)(void *ctx, const struct api_object *o);

void api_contact_release(struct api_contact *c);
void api_user_release(struct api_user *u);
void api_conversation_release(struct api_conversation *c);
void api_message_release(struct api_message *m);
void api_object_release(struct api_object *o);
void api_cursor_release(struct api_cursor *cur);

/* ---- Shared: escaping and paging (api.c) ----------------------------- */

/* Percent-encodes s for a query string value (caller frees); the api's
 * name for text_percent_encode(). */
char *api_query_escape(const char *s);

/*
 * The path (and query) of a next-page URL from a response, absolute or
 * relative, for the configured server: the host and scheme it names are
 * dropped, so a token never goes elsewhere. NULL with errno EINVAL when it
 * is not a URL or holds a byte RFC 3986 does not allow anywhere (a control,
 * space, DEL, non-ASCII, '"' or '\\'), ENOMEM when out of memory. The
 * caller frees the path.
 */
char *api_next_path(const char *url);

/*
 * The parsers behind the fetchers below (api_parse_*): a response body in,
 * rows out, no I/O (the fetchers are these plus a GET; the fuzzer calls
 * them directly). where names the request in log lines. Malformed JSON and
 * wrong shapes are -EIO, as from the fetchers.
 */

/* ---- Contacts (api_contact.c) ---------------------------------------- */

int api_contact_get(struct http *h, int64_t id, struct api_contact *out);
int api_contacts_by_email(struct http *h, const char *email, api_contact_cb cb,
			  void *ctx);
int api_contacts_by_external_id(struct http *h, const char *ext,
				api_contact_cb cb, void *ctx);
/* The custom attribute definitions, rendered canonically, appended to
 * *json (the caller's buffer, released by it). */
int api_contact_attributes(struct http *h, struct buf *json);

int api_parse_contact(const char *where, const char *body, size_t len,
		      struct api_contact *out);
int api_parse_contact_list(const char *where, const char *body, size_t len,
			   api_contact_cb cb, void *ctx);
int api_parse_attributes(const char *where, const char *body, size_t len,
			 struct buf *json);

/* ---- Conversations, messages, attachments (api_conversation.c) -------- */

/*
 * One page of the conversation list, newest updatedAt first, in whichever
 * paging style the server answers with (legacy `next` or `page_token`).
 * Sets cur->done after the last page (and after an error). The caller
 * releases cur with api_cursor_release() once the walk is over.
 */
int api_conversations_page(struct http *h, struct api_cursor *cur,
			   api_conversation_cb cb, void *ctx);
int api_conversation_get(struct http *h, int64_t id,
			 struct api_conversation *out);
/*
 * How many conversations the account has (GET /conversations/stats,
 * drift-api.md V4): the sum of the counts by status in
 * {"conversationCount": {"OPEN": n, ...}} (also under "data", or one
 * number). The shape is unconfirmed: an answer of any other shape is
 * -ENODATA, logged nowhere (the caller goes on without a total). One
 * attempt, no retries: only progress depends on it. Any thread.
 */
int api_conversation_stats(struct http *h, int64_t *total);
/* Every message of a conversation, oldest first, all pages. */
int api_messages(struct http *h, int64_t conversation_id, api_message_cb cb,
		 void *ctx);
/*
 * The bytes of an attachment, at most max bytes, written to fd (from
 * offset 0, truncated first, and again before a retry) as they arrive, so
 * no more than a small buffer of them is in memory. *size gets their
 * number. -EFBIG past max; a local write error (-ENOSPC...) as it is. fd
 * stays the caller's.
 */
int api_attachment_save(struct http *h, int64_t id, size_t max, int fd,
			int64_t *size);

/*
 * One page of the conversation list: counts it in cur, sets cur->next to
 * the next page's path (or cur->done), refuses a cursor that repeats.
 */
int api_parse_conversations_page(const char *where, const char *body,
				 size_t len, struct api_cursor *cur,
				 api_conversation_cb cb, void *ctx);
int api_parse_conversation(const char *where, const char *body, size_t len,
			   struct api_conversation *out);
/* The total of an answer of GET /conversations/stats; -ENODATA (or
 * -ENOMEM) when it has none. Logs nothing. */
int api_parse_conversation_stats(const char *body, size_t len,
				 int64_t *total);
/* *next: the cursor of the next page (caller frees), NULL after the last. */
int api_parse_messages_page(const char *where, const char *body, size_t len,
			    int64_t conversation_id, api_message_cb cb,
			    void *ctx, char **next);

/* ---- Users, playbooks, accounts (api_lists.c) ------------------------- */

int api_users_list(struct http *h, api_user_cb cb, void *ctx);
int api_user_get(struct http *h, int64_t id, struct api_user *out);
int api_playbooks(struct http *h, api_object_cb cb, void *ctx);
/* Every page of the accounts list. */
int api_accounts(struct http *h, api_object_cb cb, void *ctx);

int api_parse_users(const char *where, const char *body, size_t len,
		    api_user_cb cb, void *ctx);
int api_parse_user(const char *where, const char *body, size_t len,
		   struct api_user *out);
int api_parse_playbooks(const char *where, const char *body, size_t len,
			api_object_cb cb, void *ctx);
/* *next_path: the next page's path (caller frees), NULL after the last. */
int api_parse_accounts_page(const char *where, const char *body, size_t len,
			    api_object_cb cb, void *ctx, char **next_path);

/* ---- The token and its org (api_auth.c) ------------------------------- */

/* One grant for the token endpoint; strings are the caller's, only read. */
struct api_oauth_grant {
	const char *grant_type;		/* authorization_code, refresh_token */
	const char *client_id;
	const char *client_secret;
	const char *code;		/* authorization_code */
	const char *refresh_token;	/* refresh_token */
	const char *redirect_uri;	/* optional */
};

/* What the token endpoint answered. Strings are owned: release with
 * api_oauth_token_release(), which scrubs them. */
struct api_oauth_token {
	char *access_token;	/* never NULL after success */
	char *refresh_token;	/* NULL when none came */
	int64_t expires_in;	/* seconds; 0 = no expiry given */
	int64_t org;		/* orgId; 0 when absent */
};

/* Scrubs and frees the strings; leaves t zeroed. Accepts NULL and zeroed. */
void api_oauth_token_release(struct api_oauth_token *t);

/*
 * POSTs the grant, form-urlencoded, to /oauth2/token (no Authorization
 * header, so it needs no token source; auth.c calls it to log in and to
 * refresh) and parses the answer into out. why (size n) receives a
 * secret-free description of a failure. Returns 0 or -errno (-EACCES when
 * the API refused the grant with 400 or 401). out is zeroed on failure.
 */
int api_oauth_token(struct http *h, const struct api_oauth_grant *g,
		    struct api_oauth_token *out, char *why, size_t n);
/*
 * Parses the JSON answer of /oauth2/token (snake_case or camelCase:
 * access_token/accessToken, refresh_token/refreshToken,
 * expires_in/expiresIn, orgId). expires_in is seconds; values of 10^6 and
 * more are taken as milliseconds (Drift's docs disagree on the unit).
 * -EINVAL without an access token, or when a token holds a control, a
 * space or DEL; out is zeroed then.
 */
int api_parse_oauth_token(const char *body, size_t len,
			  struct api_oauth_token *out);

/*
 * Drift's OAuth authorize address (drift-api.md §2.2) asking for a code
 * for client_id, sent back to redirect_uri (NULL: the app's registered
 * one) with state; the values percent-encoded. A new string the caller
 * frees; NULL with errno ENOMEM.
 */
char *api_oauth_authorize_url(const char *client_id, const char *redirect_uri,
			      const char *state);

/* What POST /app/token_info says about a token (drift-api.md §2.3). */
struct api_token_info {
	long status;		/* HTTP status; 0 when no answer arrived */
	int64_t org;		/* from authenticated_userid "orgId:<n>" (or a
				 * top-level orgId); 0 when it names none */
	int64_t expires_in;	/* as answered; 0 for install tokens */
	char scope[512];	/* space-separated, "" when absent */
	char message[256];	/* the API's error message, if any */
};

/*
 * Asks the API about token (sent in the body; the bearer is http's). Returns
 * 0 when a JSON answer arrived (out->org may still be 0), else -errno with
 * out->status and out->message saying what happened. timeout_ms > 0 makes
 * it one try with that deadline (a check a start must not wait on); 0 is
 * the client's deadline, with retries.
 */
int api_token_info(struct http *h, const char *token, long timeout_ms,
		   struct api_token_info *out);
/*
 * The org of the account's users (GET /users/list, the first user carrying
 * an orgId > 0): the other place the API names the org. -ENOENT when no
 * user names one. timeout_ms as for api_token_info().
 */
int api_users_org(struct http *h, long timeout_ms, int64_t *org);


/* ----------------------------------------------------------------------
 * Reports
 *
 * The conversation report (POST /reports/conversations, drift-api.md V5),
 * in src/api_report.c: a request of filters and metrics, and its answer,
 * {"count": N, "data": [{"conversationId": ID, "metrics": [V, ...]}]}
 * with each row's values in the order the metrics were asked. Only that
 * file knows these shapes; its cJSON trees stay inside struct api_report.
 *
 * Caller: driftctl report, on its main thread. A struct api_report is for
 * one thread at a time; nothing here takes a lock but http_call()'s. The
 * functions return 0 or -errno unless said otherwise.
 * -------------------------------------------------------------------- */

/* The reports a minute Drift allows (drift-api.md §3.5). */
#define API_REPORT_LIMIT 60
/* The report's method and path, for messages. */
#define API_REPORT_REQUEST "POST /reports/conversations"

/* A report's request and, once api_report_parse() took it, its answer. */
struct api_report;

/* An empty request; NULL with errno ENOMEM. The caller frees it. */
struct api_report *api_report_new(void);
/* Frees the request and its answer; accepts NULL. */
void api_report_free(struct api_report *rp);

/*
 * Adds the filter {property, operation, values} (strings copied; no check
 * of the operation or of the number of values). A value of 1 to 18 digits
 * without a leading 0 goes as a JSON number with its exact digits, any
 * other as a string; with nvalues 0 the filter has no values. -ENOMEM.
 */
int api_report_add_filter(struct api_report *rp, const char *property,
			  const char *operation, char *const *values,
			  size_t nvalues);
/* Adds a metric (name copied); the answer's values follow this order. */
int api_report_add_metric(struct api_report *rp, const char *name);
size_t api_report_metric_count(const struct api_report *rp);
/* Metric i's name (i < count, else NULL), owned by rp. */
const char *api_report_metric_name(const struct api_report *rp, size_t i);

/* The request's body, JSON (the caller frees it); NULL with errno ENOMEM. */
char *api_report_body(const struct api_report *rp);
/*
 * Sends body (api_report_body()'s) as the report request. A report
 * changes nothing, so it is sent as idempotent: a 429 or a 5xx is waited
 * out and retried as http.h says. As
 * http_call(): 0 for a 2xx, else -errno; *resp (status, body, the API's
 * message) is filled either way and the caller releases it.
 */
int api_report_post(struct http *h, const char *body,
		    struct http_response *resp);

/*
 * Takes the answer's body into rp (replacing an earlier answer): -EINVAL
 * for bad JSON, -ENOMEM, -EIO when it is not a JSON object. Nothing else
 * of its shape is checked here.
 */
int api_report_parse(struct api_report *rp, const char *body, size_t len);
/* Appends the canonical rendering (json.h) of the whole answer. */
int api_report_render(const struct api_report *rp, struct buf *out);

/* One metric value of a row of the answer. */
struct api_report_value {
	/*
	 * NULL when the row has none, or not a number, boolean or string;
	 * else a number's digits (a big integer's exact ones), "true",
	 * "false", or (is_string) the API's string as it came: untrusted,
	 * for the caller to sanitise.
	 */
	const char *text;
	int is_string;
};

/* A row of the answer; lives only for the callback. */
struct api_report_row {
	int64_t conversation_id;
	const struct api_report_value *values;	/* api_report_metric_count() */
};

typedef int (*api_report_row_cb)(void *ctx, const struct api_report_row *row);

/*
 * Calls cb for each row of the answer's data, in order, on the caller's
 * thread. -EIO when data is not an array or a row has no conversationId
 * (cb has had the rows before it); cb's nonzero return stops the walk and
 * is returned; -EINVAL before an answer was parsed; -ENOMEM.
 */
int api_report_rows(const struct api_report *rp, api_report_row_cb cb,
		    void *ctx);

#endif
