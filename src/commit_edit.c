// SPDX-License-Identifier: MIT
/* commit_edit.c: the planners of edits of stored JSON objects (contact.json,
 * users/<id>.json, messages/<id>.json, accounts/<id>.json): the new
 * content against the version the writer read. Pure: no store, no HTTP. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "commit_int.h"
#include "json.h"

/*
 * Version counters the API bumps on every change: a copy edited while one
 * moved on still means the user's change, so they are ignored, not refused.
 */
int commit_attribute_counter(const char *name)
{
	return !strcmp(name, "_END_USER_VERSION") ||
	       !strcmp(name, "_end_user_version") ||
	       !strcmp(name, "_calculated_version");
}

/* Attributes the API manages; an edit may not change them. */
static int attribute_read_only(const char *name)
{
	static const char *const ro[] = { "_END_USER_VERSION",
					  "_end_user_version",
					  "_calculated_version", "events",
					  "socialProfiles", "start_date",
					  "external_id", "tags" };

	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (!strcmp(name, ro[i]))
			return 1;
	return 0;
}

static const char *tag_name(const cJSON *t)
{
	return cJSON_IsString(t) ? t->valuestring : json_get_str(t, "name");
}

static int has_tag(const cJSON *list, const char *name)
{
	for (const cJSON *t = cJSON_IsArray(list) ? list->child : NULL; t;
	     t = t->next)
		if (tag_name(t) && !strcmp(tag_name(t), name))
			return 1;
	return 0;
}

/* contact.json: a PATCH of the changed attributes, plus tag calls. */
int plan_contact_json(const struct commit_input *in,
		      struct commit_plan *p)
{
	cJSON *v = NULL, *old = NULL, *patch = NULL, *body;
	const cJSON *na, *oa, *f;
	char **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;
	int r;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "attributes"))
			continue;
		if (!o) {
			r = commit_invalid("unknown field '%s'", f->string);
			goto out;
		}
		if (!cJSON_Compare(o, f, 1)) {
			r = commit_invalid("field '%s' is read-only", f->string);
			goto out;
		}
	}
	na = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	oa = cJSON_GetObjectItemCaseSensitive(old, "attributes");
	if (!cJSON_IsObject(na)) {
		r = commit_invalid("field 'attributes' must be an object");
		goto out;
	}
	patch = cJSON_CreateObject();
	add = calloc((size_t)cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(na, "tags")) + 1,
		     sizeof(*add));
	del = calloc((size_t)cJSON_GetArraySize(
			     cJSON_GetObjectItemCaseSensitive(oa, "tags")) + 1,
		     sizeof(*del));
	if (!patch || !add || !del) {
		r = -ENOMEM;
		goto out;
	}
	for (f = na->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(oa, f->string);

		if ((o && cJSON_Compare(o, f, 1)) || commit_attribute_counter(f->string))
			continue;
		if (!strcmp(f->string, "tags")) {
			if (!cJSON_IsArray(f)) {
				r = commit_invalid("attribute 'tags' must be a "
						  "list");
				goto out;
			}
			continue;
		}
		if (attribute_read_only(f->string)) {
			r = commit_invalid("attribute '%s' is read-only",
				    f->string);
			goto out;
		}
		if (cJSON_IsObject(f) || cJSON_IsArray(f)) {
			if (!o || (cJSON_IsObject(o) != cJSON_IsObject(f))) {
				r = commit_invalid("attribute '%s' has the "
						  "wrong type",
					    f->string);
				goto out;
			}
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
	}
	for (f = oa ? oa->child : NULL; f; f = f->next) {
		if (cJSON_GetObjectItemCaseSensitive(na, f->string) ||
		    commit_attribute_counter(f->string))
			continue;
		if (attribute_read_only(f->string)) {
			r = commit_invalid("attribute '%s' is read-only and "
					  "cannot be removed",
				    f->string);
			goto out;
		}
		/* Removing an attribute clears it. */
		cJSON_AddItemToObject(patch, f->string, cJSON_CreateNull());
	}
	/* Tags: by name, whatever their shape (strings or objects). */
	f = cJSON_GetObjectItemCaseSensitive(na, "tags");
	for (const cJSON *t = cJSON_IsArray(f) ? f->child : NULL; t; t = t->next) {
		const cJSON *ot = cJSON_GetObjectItemCaseSensitive(oa, "tags");

		if (!tag_name(t)) {
			r = commit_invalid("a tag without a name");
			goto out;
		}
		if (!has_tag(ot, tag_name(t)) && !(add[nadd] = strdup(tag_name(t)))) {
			r = -ENOMEM;
			goto out;
		}
		if (add[nadd])
			nadd++;
	}
	f = cJSON_GetObjectItemCaseSensitive(oa, "tags");
	for (const cJSON *t = cJSON_IsArray(f) ? f->child : NULL; t; t = t->next) {
		const cJSON *nt = cJSON_GetObjectItemCaseSensitive(na, "tags");

		if (tag_name(t) && !has_tag(nt, tag_name(t)) &&
		    (del[ndel] = strdup(tag_name(t))))
			ndel++;
	}
	if (cJSON_GetArraySize(patch) > 0) {
		body = cJSON_CreateObject();
		if (!body) {
			r = -ENOMEM;
			goto out;
		}
		cJSON_AddItemToObject(body, "attributes", patch);
		patch = NULL;
		r = plan_add(p, "contact_patch", "PATCH", body, in->id,
			     "/contacts/%lld", (long long)in->id);
	}
	if (!r)
		r = plan_tag_changes(p, in->id, add, nadd, del, ndel);
out:
	commit_free_list(add, nadd);
	commit_free_list(del, ndel);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* users/<id>.json: PATCH the changed editable fields. */
int plan_user(const struct commit_input *in, struct commit_plan *p)
{
	static const char *const editable[] = { "name",	  "alias",
						"email",  "phone",
						"locale", "avatarUrl",
						"availability" };
	cJSON *v, *old = NULL, *patch = NULL;
	const cJSON *f;
	int r;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);
		int ok = 0;

		if (o && cJSON_Compare(o, f, 1))
			continue;
		for (size_t i = 0; i < sizeof(editable) / sizeof(*editable); i++)
			ok |= !strcmp(f->string, editable[i]);
		if (!ok) {
			r = commit_invalid(o ? "field '%s' is read-only"
					    : "unknown field '%s'",
				    f->string);
			goto out;
		}
		if (!cJSON_IsString(f)) {
			r = commit_invalid("field '%s' must be a string",
				    f->string);
			goto out;
		}
		if (!strcmp(f->string, "availability") &&
		    strcmp(f->valuestring, "AVAILABLE") &&
		    strcmp(f->valuestring, "OFFLINE")) {
			r = commit_invalid("field 'availability' must be "
					  "AVAILABLE or OFFLINE");
			goto out;
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
	}
	for (f = old->child; f; f = f->next)
		if (!cJSON_GetObjectItemCaseSensitive(v, f->string)) {
			r = commit_invalid("field '%s' cannot be removed",
				    f->string);
			goto out;
		}
	if (cJSON_GetArraySize(patch) == 0)
		goto out;
	r = plan_add(p, "user_patch", "PATCH", patch, in->id,
		     "/users/update?userId=%lld", (long long)in->id);
	patch = NULL;
out:
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* messages/<id>.json: only the body may change (an edit of replace_body). */
int plan_message_json(const struct commit_input *in,
		      struct commit_plan *p)
{
	cJSON *v, *old = NULL, *msg = NULL;
	const cJSON *f;
	int r;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (!strcmp(f->string, "body")) {
			if (!cJSON_IsString(f)) {
				r = commit_invalid("field 'body' must be a "
						  "string");
				goto out;
			}
			continue;
		}
		if (!o || !cJSON_Compare(o, f, 1)) {
			r = commit_invalid(o ? "field '%s' is read-only (only "
					      "'body' can be edited)"
					    : "unknown field '%s'",
				    f->string);
			goto out;
		}
	}
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (!f || cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(old, "body"),
				1))
		goto out;
	msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "type", "edit");
	cJSON_AddItemToObject(msg, "editedMessageId", commit_id_node(in->id));
	cJSON_AddStringToObject(msg, "editType", "replace_body");
	cJSON_AddStringToObject(msg, "body", f->valuestring);
	r = plan_message(p, in->conv, msg);
out:
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* An account's target: the hash of its id (a string, or a number). */
static int64_t account_target(const cJSON *account)
{
	const cJSON *id;
	char *num;
	int64_t t;

	id = cJSON_GetObjectItemCaseSensitive(account, "accountId");
	if (cJSON_IsString(id))
		return commit_string_target(id->valuestring, 0);
	num = id ? cJSON_PrintUnformatted(id) : NULL;
	t = commit_string_target(num, 0);
	free(num);
	return t;
}

/* accounts/<id>.json: PATCH with accountId and ownerId plus the changes. */
int plan_account(const struct commit_input *in, struct commit_plan *p)
{
	static const char *const ro[] = { "accountId", "createDateTime",
					  "updateDateTime", "deleted" };
	cJSON *v, *old = NULL, *patch = NULL, *cur = NULL;
	const cJSON *f;
	int r, changed = 0;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	for (f = v->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);

		if (o && cJSON_Compare(o, f, 1))
			continue;
		for (size_t i = 0; i < sizeof(ro) / sizeof(*ro); i++)
			if (!strcmp(f->string, ro[i])) {
				r = commit_invalid("field '%s' is read-only",
					    f->string);
				goto out;
			}
		if (!o) {
			r = commit_invalid("unknown field '%s'", f->string);
			goto out;
		}
		if ((o->type & 0xff) != (f->type & 0xff) &&
		    !(cJSON_IsBool(o) && cJSON_IsBool(f))) {
			r = commit_invalid("field '%s' has the wrong type",
				    f->string);
			goto out;
		}
		cJSON_AddItemToObject(patch, f->string, cJSON_Duplicate(f, 1));
		changed = 1;
	}
	if (!changed)
		goto out;
	f = cJSON_GetObjectItemCaseSensitive(old, "accountId");
	cJSON_AddItemToObject(patch, "accountId", cJSON_Duplicate(f, 1));
	/*
	 * The API wants ownerId in every PATCH: one the writer left alone
	 * is the stored one, since the owner read may have changed since.
	 */
	if (!cJSON_GetObjectItemCaseSensitive(patch, "ownerId")) {
		cur = in->stored ? json_parse(in->stored, in->stored_len)
				 : NULL;
		f = cJSON_GetObjectItemCaseSensitive(cur, "ownerId");
		if (!f)
			f = cJSON_GetObjectItemCaseSensitive(old, "ownerId");
		cJSON_AddItemToObject(patch, "ownerId", cJSON_Duplicate(f, 1));
	}
	r = plan_add(p, "account_patch", "PATCH", patch,
		     account_target(old), "/accounts/update");
	patch = NULL;
out:
	cJSON_Delete(cur);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}
