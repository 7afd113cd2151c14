// SPDX-License-Identifier: MIT
/* commit_edit.c: the planners of edits of stored JSON objects (contact.json,
 * users/<id>.json, messages/<id>.json, accounts/<id>.json): the new
 * content against the version the writer read. Pure: no store, no HTTP. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_write.h"
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

/* A number: json_parse() keeps an integer of more than 15 digits as a Raw
 * node of its digits (json.h). */
static int is_number(const cJSON *v)
{
	return cJSON_IsNumber(v) || cJSON_IsRaw(v);
}

/* The JSON type of v in words, for error lines (true and false: one). */
static const char *json_type_word(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (is_number(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "true or false";
	if (cJSON_IsObject(v))
		return "an object";
	if (cJSON_IsArray(v))
		return "a list";
	return "null";
}

/* Whether a and b have one JSON type (true and false: one). */
static int same_json_type(const cJSON *a, const cJSON *b)
{
	return (a->type & 0xff) == (b->type & 0xff) ||
	       (cJSON_IsBool(a) && cJSON_IsBool(b)) ||
	       (is_number(a) && is_number(b));
}

static int has_tag(const cJSON *list, const char *name)
{
	for (const cJSON *t = cJSON_IsArray(list) ? list->child : NULL; t;
	     t = t->next)
		if (json_tag_name(t) && !strcmp(json_tag_name(t), name))
			return 1;
	return 0;
}

/*
 * The edit rules: what an edit may do to each field of a stored object, one
 * table a file kind, walked by edit_check(). A field the table does not
 * name takes its last entry (name NULL).
 */
enum {
	EF_EDITABLE = 1 << 0,	/* may change; else read-only */
	EF_KNOWN = 1 << 1,	/* must be in the version read, else unknown */
	EF_STRING = 1 << 2,	/* a string (one of values, when given) */
	EF_SAME_TYPE = 1 << 3,	/* of the type it had (true and false: one) */
	EF_ALWAYS = 1 << 4,	/* checked even when unchanged */
	EF_OWN = 1 << 5,	/* left to the planner */
};

struct edit_field {
	const char *name;	/* NULL: every field not named before */
	unsigned rules;		/* EF_* */
	const char *const *values;	/* EF_STRING: those allowed, NULL-ended;
					 * NULL for any */
};

struct edit_rules {
	const struct edit_field *fields;
	const char *read_only_note;	/* ends "field '%s' is read-only" */
	int keep_all;		/* no field read may be removed */
};

/* contact.json: only the attributes change (checked by the planner). */
static const struct edit_field contact_fields[] = {
	{ "attributes", EF_OWN, NULL },
	{ NULL, 0, NULL },
};

/* users/<id>.json. */
static const char *const availability[] = { "AVAILABLE", "OFFLINE", NULL };
static const struct edit_field user_fields[] = {
	{ "name", EF_EDITABLE | EF_STRING, NULL },
	{ "alias", EF_EDITABLE | EF_STRING, NULL },
	{ "email", EF_EDITABLE | EF_STRING, NULL },
	{ "phone", EF_EDITABLE | EF_STRING, NULL },
	{ "locale", EF_EDITABLE | EF_STRING, NULL },
	{ "avatarUrl", EF_EDITABLE | EF_STRING, NULL },
	{ "availability", EF_EDITABLE | EF_STRING, availability },
	{ NULL, 0, NULL },
};

/* messages/<id>.json: only the body may change. */
static const struct edit_field message_fields[] = {
	{ "body", EF_EDITABLE | EF_STRING | EF_ALWAYS, NULL },
	{ NULL, 0, NULL },
};

/* accounts/<id>.json: any field it has, as the type it has, but these. */
static const struct edit_field account_fields[] = {
	{ "accountId", 0, NULL },
	{ "createDateTime", 0, NULL },
	{ "updateDateTime", 0, NULL },
	{ "deleted", 0, NULL },
	{ NULL, EF_EDITABLE | EF_KNOWN | EF_SAME_TYPE, NULL },
};

static const struct edit_rules contact_rules = { contact_fields, "", 0 };
static const struct edit_rules user_rules = { user_fields, "", 1 };
static const struct edit_rules message_rules = {
	message_fields, " (only 'body' can be edited)", 0
};
static const struct edit_rules account_rules = { account_fields, "", 0 };

static const struct edit_field *edit_field(const struct edit_rules *rules,
					   const char *name)
{
	const struct edit_field *e = rules->fields;

	while (e->name && strcmp(e->name, name))
		e++;
	return e;
}

/* Whether s is one of values (NULL-ended); *text gets them as prose. */
static int one_of(const char *s, const char *const *values, char *text,
		  size_t size)
{
	size_t n = 0, used = 0;
	int found = 0;

	while (values[n])
		found |= !strcmp(s, values[n++]);
	text[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(text + used, size - used, "%s%s",
					 !i ? "" : i + 1 == n ? " or " : ", ",
					 values[i]);
	return found;
}

/*
 * Checks the fields of now (the new content) against old (the version the
 * writer read) by rules, in now's order, the first broken rule refused
 * (commit_invalid()). The changed editable fields are copied to patch,
 * when not NULL, and counted in *changed.
 */
static int edit_check(const struct edit_rules *rules, const cJSON *now,
		      const cJSON *old, cJSON *patch, int *changed)
{
	const cJSON *f;

	for (f = now->child; f; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(old, f->string);
		const struct edit_field *e = edit_field(rules, f->string);
		int same = o && cJSON_Compare(o, f, 1);
		char values[128];

		if ((e->rules & EF_OWN) || (same && !(e->rules & EF_ALWAYS)))
			continue;
		if (!(e->rules & EF_EDITABLE) && (o || e->name))
			return commit_invalid("field '%s' is read-only%s",
					      f->string, rules->read_only_note);
		if (!(e->rules & EF_EDITABLE) ||
		    ((e->rules & EF_KNOWN) && !o))
			return commit_invalid("unknown field '%s'", f->string);
		if ((e->rules & EF_STRING) && !cJSON_IsString(f))
			return commit_invalid("field '%s' must be a string",
					      f->string);
		if ((e->rules & EF_STRING) && e->values &&
		    !one_of(f->valuestring, e->values, values, sizeof(values)))
			return commit_invalid("field '%s' must be %s",
					      f->string, values);
		if ((e->rules & EF_SAME_TYPE) &&
		    (o->type & 0xff) != (f->type & 0xff) &&
		    !(cJSON_IsBool(o) && cJSON_IsBool(f)))
			return commit_invalid("field '%s' has the wrong type",
					      f->string);
		if (same)
			continue;
		if (patch)
			cJSON_AddItemToObject(patch, f->string,
					      cJSON_Duplicate(f, 1));
		(*changed)++;
	}
	for (f = rules->keep_all ? old->child : NULL; f; f = f->next)
		if (!cJSON_GetObjectItemCaseSensitive(now, f->string))
			return commit_invalid("field '%s' cannot be removed",
					      f->string);
	return 0;
}

/* contact.json: a PATCH of the changed attributes, plus tag calls. */
int commit_plan_contact_json(const struct commit_input *in,
			     struct commit_plan *p)
{
	struct api_write_req req;
	cJSON *v = NULL, *old = NULL, *patch = NULL;
	const cJSON *na, *oa, *f;
	char **add = NULL, **del = NULL;
	size_t nadd = 0, ndel = 0;
	int r, changed = 0;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	r = edit_check(&contact_rules, v, old, NULL, &changed);
	if (r)
		goto out;
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
		/* DESIGN §4: a value of the wrong type fails the close(). A
		 * scalar stays the scalar it was; null clears any. */
		if (o && !cJSON_IsNull(o) && !cJSON_IsNull(f) &&
		    !same_json_type(o, f)) {
			r = commit_invalid("attribute '%s' must be %s, not %s",
					   f->string, json_type_word(o),
					   json_type_word(f));
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

		if (!json_tag_name(t)) {
			r = commit_invalid("a tag without a name");
			goto out;
		}
		if (!has_tag(ot, json_tag_name(t)) &&
		    !(add[nadd] = strdup(json_tag_name(t)))) {
			r = -ENOMEM;
			goto out;
		}
		if (add[nadd])
			nadd++;
	}
	f = cJSON_GetObjectItemCaseSensitive(oa, "tags");
	for (const cJSON *t = cJSON_IsArray(f) ? f->child : NULL; t; t = t->next) {
		const cJSON *nt = cJSON_GetObjectItemCaseSensitive(na, "tags");

		if (json_tag_name(t) && !has_tag(nt, json_tag_name(t)) &&
		    (del[ndel] = strdup(json_tag_name(t))))
			ndel++;
	}
	if (cJSON_GetArraySize(patch) > 0) {
		cJSON *attrs = patch;

		patch = NULL;
		r = commit_plan_add(
		    p, "contact_patch", in->id,
		    api_write_contact_patch(in->id, attrs, &req), &req);
	}
	if (!r)
		r = commit_plan_tag_changes(p, in->id, add, nadd, del, ndel);
out:
	commit_free_list(add, nadd);
	commit_free_list(del, ndel);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* Whether v fits an attribute of the given type (see commit_int.h). */
static int fits_attribute_type(const char *type, const cJSON *v)
{
	if (cJSON_IsNull(v))
		return 1;
	if (!strcmp(type, "STRING"))
		return cJSON_IsString(v);
	if (!strcmp(type, "NUMERIC"))
		return is_number(v);
	if (!strcmp(type, "BOOLEAN"))
		return cJSON_IsBool(v);
	if (!strcmp(type, "DATE") || !strcmp(type, "DATETIME"))
		return is_number(v) || cJSON_IsString(v);
	return 1;
}

int commit_check_attribute_defs(const struct commit_input *in,
				const char *defs, size_t defs_len)
{
	cJSON *v = NULL, *old = NULL, *d;
	const cJSON *na, *oa, *props, *f;
	int r;

	d = json_parse(defs, defs_len);
	props = cJSON_GetObjectItemCaseSensitive(d, "properties");
	if (!cJSON_IsArray(props)) {
		cJSON_Delete(d);
		return 0;	/* none cached, or not understood */
	}
	r = commit_parse_edit(in, &v, &old);
	if (r) {
		cJSON_Delete(d);
		return r;
	}
	na = cJSON_GetObjectItemCaseSensitive(v, "attributes");
	oa = cJSON_GetObjectItemCaseSensitive(old, "attributes");
	for (f = cJSON_IsObject(na) ? na->child : NULL; f && !r; f = f->next) {
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(oa, f->string);

		if (o && !cJSON_IsNull(o))
			continue;	/* typed by its old value instead */
		for (const cJSON *pr = props->child; pr; pr = pr->next) {
			const char *name = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(pr, "name"));
			const char *type = cJSON_GetStringValue(
			    cJSON_GetObjectItemCaseSensitive(pr, "type"));

			if (!name || !type || strcmp(name, f->string))
				continue;
			if (!fits_attribute_type(type, f))
				r = commit_invalid(
				    "attribute '%s' is %s, not %s", f->string,
				    !strcmp(type, "STRING")    ? "a string"
				    : !strcmp(type, "NUMERIC") ? "a number"
				    : !strcmp(type, "BOOLEAN")
					? "true or false"
					: "a date (a number or a string)",
				    json_type_word(f));
			break;
		}
	}
	cJSON_Delete(d);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* users/<id>.json: PATCH the changed editable fields. */
int commit_plan_user(const struct commit_input *in, struct commit_plan *p)
{
	struct api_write_req req;
	cJSON *v, *old = NULL, *patch = NULL;
	int r, changed = 0;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	r = edit_check(&user_rules, v, old, patch, &changed);
	if (r || cJSON_GetArraySize(patch) == 0)
		goto out;
	r = commit_plan_add(p, "user_patch", in->id,
			    api_write_user_patch(in->id, patch, &req), &req);
	patch = NULL;
out:
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}

/* messages/<id>.json: only the body may change (an edit of replace_body). */
int commit_plan_message_json(const struct commit_input *in,
			     struct commit_plan *p)
{
	cJSON *v, *old = NULL, *msg = NULL;
	const cJSON *f;
	int r, changed = 0;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	r = edit_check(&message_rules, v, old, NULL, &changed);
	if (r)
		goto out;
	f = cJSON_GetObjectItemCaseSensitive(v, "body");
	if (!f || cJSON_Compare(f, cJSON_GetObjectItemCaseSensitive(old, "body"),
				1))
		goto out;
	msg = api_write_message_edit(in->id, "replace_body", f->valuestring);
	r = commit_plan_message(p, in->conv, msg);
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
int commit_plan_account(const struct commit_input *in, struct commit_plan *p)
{
	struct api_write_req req;
	cJSON *v, *old = NULL, *patch = NULL, *cur = NULL;
	const cJSON *f = NULL;
	int64_t target;
	int r, changed = 0;

	r = commit_parse_edit(in, &v, &old);
	if (r)
		return r;
	patch = cJSON_CreateObject();
	if (!patch) {
		r = -ENOMEM;
		goto out;
	}
	r = edit_check(&account_rules, v, old, patch, &changed);
	if (r || !changed)
		goto out;
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
	}
	target = account_target(old);
	r = commit_plan_add(
	    p, "account_patch", target,
	    api_write_account_patch(
		patch, cJSON_GetObjectItemCaseSensitive(old, "accountId"), f,
		&req),
	    &req);
	patch = NULL;
out:
	cJSON_Delete(cur);
	cJSON_Delete(patch);
	cJSON_Delete(old);
	cJSON_Delete(v);
	return r;
}
