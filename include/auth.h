/* SPDX-License-Identifier: MIT */
/*
 * auth: the credentials file, the OAuth token exchange, and the token source
 * that keeps an OAuth access token fresh for http.c.
 *
 * Tokens come from DRIFT_TOKEN (a fixed token: never refreshed, never
 * written) or from the credentials file, which holds either one bare token
 * line or "name = value" lines: access_token, refresh_token, expires_at
 * (epoch seconds), client_id, client_secret (DESIGN.md §1).
 *
 * The token source (struct auth) refreshes the access token at
 * <api_url>/oauth2/token shortly before expires_at and once when the API
 * answers 401, and writes the new tokens back to the file. driftfs and
 * driftctl may share one file: a refresh happens under an flock on
 * "<credentials>.lock" and first re-reads the file, so a token another
 * process already refreshed is adopted rather than refreshed again (Drift's
 * refresh tokens work once). A running mount also picks up a new
 * `driftctl login` this way, on its next 401 or refresh.
 *
 * The file also records the org the token belongs to (org_id, written by
 * driftctl login), which picks the cache offline (account.h). A source
 * pinned to an org (auth_pin_org) does not take up a file that a later login
 * filled with another org's token: a mount keeps serving the org it started
 * with, and never writes over the new login.
 *
 * Tokens and secrets never reach the log, argv or error messages; memory
 * that held them is scrubbed before it is freed.
 *
 * Lock order: the source's lock is taken before http's governor and pool
 * locks (a refresh calls http_call() while holding it), and http never holds
 * one of its own locks while calling the source.
 *
 * Threads: the mains make the source (auth_new) on their main thread before
 * the HTTP client that uses its hooks, and free it (auth_free) after that
 * client. Everything else may be called from any thread: the hooks from
 * whichever thread sends a request, the rest from account.c and driftctl
 * status; each takes the source's lock inside and none holds it on
 * return. The auth_creds_* functions touch no shared state. Functions
 * return 0 or -errno; auth_new() returns NULL and sets errno.
 */
#ifndef DRIFTFS_AUTH_H
#define DRIFTFS_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "http.h"

/*
 * The longest line of a credentials file auth_creds_read() reads at once
 * (tokens are short; anything longer is not a token), and so the longest
 * token line driftctl login accepts.
 */
#define AUTH_LINE_MAX 8192

/* What a credentials file holds. Strings are owned; NULL when absent. */
struct auth_creds {
	char *access_token;
	char *refresh_token;
	int64_t expires_at;	/* epoch seconds; 0 = does not expire/unknown */
	char *client_id;
	char *client_secret;
	int64_t org_id;		/* the Drift org (file: org_id); 0 = unknown */
	int64_t lifetime;	/* expires_in of a token answer, seconds */
};

/* Scrubs and frees every member; leaves c zeroed. Accepts a zeroed c. */
void auth_creds_release(struct auth_creds *c);

/*
 * Reads a credentials file (either form). Returns 0; -ENOENT when it does
 * not exist; -EACCES when group or others may read it (logged, naming the
 * chmod to run); -ENOKEY when it holds neither an access nor a refresh
 * token; -EINVAL for a line that is neither a known name nor a bare token.
 */
int auth_creds_read(const char *path, struct auth_creds *c);

/*
 * Writes c to path atomically: a temporary file (0600) in the same
 * directory, fsync, rename, fsync of the directory. A missing directory is
 * created 0700; an existing one is tightened to 0700 when tighten is set,
 * and refused when others may write to it. Values holding control
 * characters or spaces are refused (-EINVAL). Returns 0 or -errno.
 */
int auth_creds_write(const char *path, const struct auth_creds *c,
		     int tighten);

/*
 * Parses the JSON answer of /oauth2/token (snake_case or camelCase:
 * access_token/accessToken, refresh_token/refreshToken,
 * expires_in/expiresIn, orgId) into out, with expires_at = now_s +
 * expires_in. expires_in is seconds; values of 10^6 and more are taken as
 * milliseconds (Drift's docs disagree on the unit). -EINVAL without an
 * access token.
 */
int auth_parse_token_answer(const char *body, size_t len, int64_t now_s,
			    struct auth_creds *out);

/* One request to the token endpoint. */
struct auth_grant {
	const char *grant_type;		/* authorization_code, refresh_token */
	const char *client_id;
	const char *client_secret;
	const char *code;		/* authorization_code */
	const char *refresh_token;	/* refresh_token */
	const char *redirect_uri;	/* optional */
};

/*
 * POSTs the grant, form-urlencoded, to /oauth2/token (no Authorization
 * header) and parses the answer into out. why (size n) receives a
 * secret-free description of a failure. Returns 0 or -errno (-EACCES when
 * the API refused the grant with 400 or 401).
 */
int auth_exchange(struct http *h, const struct auth_grant *g,
		  struct auth_creds *out, char *why, size_t n);

/* The token source. */
struct auth;

/*
 * A source for cfg: DRIFT_TOKEN when set, else the credentials file.
 * NULL with errno set (ENOENT, EACCES, ENOKEY, ENOMEM) after logging what
 * to do about it.
 */
struct auth *auth_new(const struct config *cfg);
/* Scrubs the tokens it holds and frees a; NULL is accepted. */
void auth_free(struct auth *a);

/* The hooks to put in struct http_opts.auth; lives as long as a. */
const struct http_auth *auth_http(struct auth *a);

/*
 * The current access token (caller scrubs and frees), refreshed first if it
 * is about to expire, as http would send it. Returns 0 or -errno.
 */
int auth_token(struct auth *a, struct http *h, char **token);

/* What the source knows, without any secret (for driftctl status). */
struct auth_info {
	int fixed;		/* the token is DRIFT_TOKEN's */
	int refreshable;	/* refresh token and client credentials held */
	int refused;		/* the last refresh was refused: log in again */
	int64_t expires_at;	/* epoch seconds, 0 = no expiry known */
};
void auth_get_info(struct auth *a, struct auth_info *out);

/* The org the credentials file records for the token; 0 when unknown (no
 * org_id line, or DRIFT_TOKEN). */
int64_t auth_org(struct auth *a);
/* From now on, refuse a credentials file that names another org than org
 * (see the top of this file). */
void auth_pin_org(struct auth *a, int64_t org);

#endif
