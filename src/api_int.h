/* SPDX-License-Identifier: MIT */
/*
 * api_int.h: what the api_*.c files share and nobody else sees: the GET
 * with the JSON size bound, the envelope parse, the logged shape errors,
 * and the paging-cursor helpers. The contract for callers is include/api.h.
 *
 * cJSON trees never leave the api_*.c files; these helpers are the only
 * place besides them that sees one. All are safe on any thread (they touch
 * no shared state; the GET is as thread-safe as http.h says).
 */
#ifndef DRIFTFS_API_INT_H
#define DRIFTFS_API_INT_H

#include <stdint.h>

#include "api.h"
#include "json.h"

/* Pages a walk follows at most (a server that pages forever is an error). */
#define MAX_PAGES 100000

/* GETs path; the body (or a failure) in *resp, released by the caller. */
int api_get_body(struct http *h, const char *path, struct http_response *resp);
/* Parses a response body. NULL (and *err, -EIO) when it is not JSON; the
 * caller deletes the tree. */
cJSON *api_parse_body(const char *where, const char *body, size_t len,
		      int *err);
/* Logs "unexpected response shape: what" for the request; returns -EIO. */
int api_shape_error(const char *path, const char *what);
/* A next-page link api_next_path() refused: -ENOMEM, or why, logged. */
int api_next_refused(const char *path, const char *field);
/* A non-negative integer member (ms since the epoch); 0 when absent. */
int64_t api_get_ms(const cJSON *obj, const char *key);
/* A paging cursor as a string (caller frees); NULL when absent. */
char *api_cursor_string(const cJSON *next);
/* 1 when a paging cursor repeats (see api.c), 0 otherwise, -ENOMEM;
 * *mark is the caller's, freed by it. */
int api_cursor_cycles(char **mark, unsigned page, const char *next);

#endif
