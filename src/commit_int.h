/* SPDX-License-Identifier: MIT */
/*
 * commit_int.h: what the files of commit (commit*.c) share and nobody else
 * sees. The planners (commit_plan.c, commit_edit.c, commit_lines.c) are
 * pure: no store, no HTTP, no lock; they run on the caller's thread (a
 * FUSE thread in close(), the fuzzer). Each returns 0 or -errno: -EINVAL
 * after an error line (commit_invalid()) for content it refuses, -ENOMEM.
 * A cJSON body handed to one is consumed, also on failure.
 */
#ifndef DRIFTFS_COMMIT_INT_H
#define DRIFTFS_COMMIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api_write.h"
#include "commit.h"

/* Logs why content was refused ("refused, nothing sent: ...", in the
 * thread's context) and returns -EINVAL. */
int commit_invalid(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * The target of a call about an object named by a string (an account id,
 * the email of a contact or conversation to create): its hash; fold: the
 * string compares without case (emails). -1 when out of memory.
 */
int64_t commit_string_target(const char *s, int fold);
/*
 * Appends the call req (of kind, about target) to the plan; r is what
 * built req (api_write.h), returned as it is when not 0. req is consumed.
 */
int commit_plan_add(struct commit_plan *p, const char *kind, int64_t target,
		    int r, struct api_write_req *req);
/* A POST of msg to conversation conv's messages (kind "message"). */
int commit_plan_message(struct commit_plan *p, int64_t conv, cJSON *msg);
/* data as a JSON object (the caller frees), or NULL with *err set. */
cJSON *commit_parse(const char *data, size_t len, int *err);
/* The version an edit is compared with: the one the writer read, if known. */
const char *commit_edit_base(const struct commit_input *in, size_t *len);
/*
 * An edit of a stored file: *now the new content, *old the version the
 * writer read; the caller frees both on success. -EIO when that version is
 * no object.
 */
int commit_parse_edit(const struct commit_input *in, cJSON **now,
		      cJSON **old);
/* Frees the n strings of v, and v. */
void commit_free_list(char **v, size_t n);
/* Refuses a \u0000 escape in JSON text; where prefixes the error line. */
int commit_refuse_nul_escape(const char *data, size_t len, const char *where);
/* Whether name is a version counter the API bumps on every change. */
int commit_attribute_counter(const char *name);

/* Tag changes of contact id: one call adding add[], one per del[]. */
int commit_plan_tag_changes(struct commit_plan *p, int64_t id, char **add,
			    size_t nadd, char **del, size_t ndel);

/*
 * contact.json: each attribute new in data (absent or null in the version
 * read) against its definition in defs, the cached contacts/attributes.json
 * ({"properties": [{"name", "type"}, ...]}, untrusted): STRING a string,
 * NUMERIC a number, BOOLEAN true or false, DATE and DATETIME a number or a
 * string; null always. An attribute defs does not name, or of another
 * type, is not checked. 0, -EINVAL after an error line, -ENOMEM. Pure, as
 * the planners (commit_write() reads defs from the store).
 */
int commit_check_attribute_defs(const struct commit_input *in,
				const char *defs, size_t defs_len);

/* The planner of each writable file kind (commit_plan() dispatches). */
int commit_plan_contact_json(const struct commit_input *in,
			     struct commit_plan *p);
int commit_plan_user(const struct commit_input *in, struct commit_plan *p);
int commit_plan_message_json(const struct commit_input *in,
			     struct commit_plan *p);
int commit_plan_account(const struct commit_input *in, struct commit_plan *p);
int commit_plan_tags(const struct commit_input *in, struct commit_plan *p);
int commit_plan_timeline(const struct commit_input *in, struct commit_plan *p);
int commit_plan_unsubscribe(const struct commit_input *in,
			    struct commit_plan *p);

#endif
