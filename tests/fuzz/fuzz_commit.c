// SPDX-License-Identifier: MIT
/*
 * fuzz_commit.c: what a user writes, validated and turned into API calls
 * (commit_plan() of commit.h), without a store or server.
 *
 * Input: a selector byte for the file written (reply, note, messages/new,
 * contacts/new, contact.json, tags, timeline, unsubscribe, users/<id>.json,
 * conversations/new, messages/<id>.json, accounts/<id>.json), the new
 * content, FUZZ_SEP, and the stored copy it replaces (for edits; made
 * canonical as the store holds it).
 * Refusals are -EINVAL (bad content) or -EIO (a stored copy that is not an
 * object); accepted content becomes calls that are checked:
 * - every call: a known method, a path of printable URL bytes for this
 *   object, a JSON body (object or list) exactly when the method takes one;
 * - per file, the call kinds and body shapes of DESIGN.md §4: no read-only
 *   attribute in a patch, tag calls that add exactly the new names and
 *   delete exactly the dropped ones (the path names the tag, whole), one
 *   timeline call a line, fields the user gave carried over;
 * - an edit that changes nothing sends nothing.
 */
#include <errno.h>

#include "api.h"
#include "commit.h"
#include "fuzz.h"
#include "names.h"
#include "tree.h"

#define ID 42
#define CONV 7

static const int kinds[] = { T_REPLY,	      T_NOTE,
			     T_MESSAGES_NEW,  T_CONTACTS_NEW,
			     T_CONTACT_JSON,  T_CONTACT_TAGS,
			     T_CONTACT_TIMELINE, T_UNSUBSCRIBE,
			     T_USER_JSON,     T_CONVS_NEW,
			     T_MESSAGE_JSON,  T_ACCOUNT_JSON };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	return 0;
}

/* A set of names: the lines of a file or the tags of a contact. */
struct names {
	char **v;
	size_t n;
};

static void names_add(struct names *s, const char *p, size_t len)
{
	s->v = realloc(s->v, (s->n + 1) * sizeof(*s->v));
	if (!s->v)
		abort();
	s->v[s->n++] = fuzz_dup(p, len);
}

static int names_has(const struct names *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i], name))
			return 1;
	return 0;
}

static void names_release(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

/* The non-empty lines of a file (a trailing \r is not part of a line). */
static void split(const char *p, size_t len, struct names *out)
{
	while (len) {
		const char *e = memchr(p, '\n', len);
		size_t l = e ? (size_t)(e - p) : len, n = l;

		while (n && p[n - 1] == '\r')
			n--;
		if (n)
			names_add(out, p, n);
		p += e ? l + 1 : l;
		len -= e ? l + 1 : l;
	}
}

/*
 * The tags a tags file names: its lines, each %XX-decoded (names.h). Only
 * for a plan that succeeded, so every line decodes.
 */
static void split_tags(const char *p, size_t len, struct names *out)
{
	struct names lines = { 0 };

	split(p, len, &lines);
	for (size_t i = 0; i < lines.n; i++) {
		struct buf b = BUF_INIT;
		int r = names_unescape_buf(&b, lines.v[i], strlen(lines.v[i]));

		FUZZ_ASSERT(!r, "line '%s' of a planned write does not decode",
			    lines.v[i]);
		names_add(out, b.data ? b.data : "", b.len);
		buf_release(&b);
	}
	names_release(&lines);
}

/* The tag names of a contact object's attributes.tags. */
static void tags_of(const cJSON *contact, struct names *out)
{
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(contact,
							      "attributes");
	const cJSON *tags = cJSON_GetObjectItemCaseSensitive(attrs, "tags");

	for (const cJSON *t = cJSON_IsArray(tags) ? tags->child : NULL; t;
	     t = t->next) {
		const char *n = cJSON_IsString(t) ? t->valuestring
						  : json_get_str(t, "name");

		if (n)
			names_add(out, n, strlen(n));
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The tag a DELETE path names, unescaped (caller frees). */
static char *deleted_tag(const char *api_path)
{
	char prefix[64], *out, *o;
	const char *p;

	snprintf(prefix, sizeof(prefix), "/contacts/%d/tags/", ID);
	FUZZ_ASSERT(!strncmp(api_path, prefix, strlen(prefix)),
		    "tag_delete path '%s'", api_path);
	p = api_path + strlen(prefix);
	out = o = fuzz_dup(p, strlen(p));
	for (; *p; p++) {
		if (*p == '%') {
			FUZZ_ASSERT(hexval(p[1]) >= 0 && hexval(p[2]) >= 0,
				    "a bad escape in '%s'", api_path);
			*o++ = (char)(hexval(p[1]) << 4 | hexval(p[2]));
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* The tag calls of a plan against the old and new sets of names. */
static void check_tag_calls(const struct commit_plan *plan, size_t from,
			    const struct names *was, const struct names *now)
{
	struct names added = { 0 }, deleted = { 0 };

	for (size_t i = from; i < plan->n; i++) {
		const struct commit_call *c = &plan->calls[i];

		if (!strcmp(c->kind, "tag_add")) {
			FUZZ_ASSERT(i == from && cJSON_IsArray(c->body),
				    "one tag_add, first, with a list");
			for (const cJSON *t = c->body->child; t; t = t->next) {
				const char *n = json_get_str(t, "name");

				FUZZ_ASSERT(n && *n, "an added tag without a name");
				FUZZ_ASSERT(names_has(now, n) && !names_has(was, n),
					    "added tag '%s' is not new", n);
				FUZZ_ASSERT(!names_has(&added, n),
					    "tag '%s' added twice", n);
				names_add(&added, n, strlen(n));
			}
		} else {
			char *n;

			FUZZ_ASSERT(!strcmp(c->kind, "tag_delete"),
				    "unexpected call %s", c->kind);
			n = deleted_tag(c->api_path);
			FUZZ_ASSERT(names_has(was, n) && !names_has(now, n),
				    "deleted tag '%s' was not dropped", n);
			names_add(&deleted, n, strlen(n));
			free(n);
		}
	}
	for (size_t i = 0; i < now->n; i++)
		FUZZ_ASSERT(names_has(was, now->v[i]) ||
				    names_has(&added, now->v[i]),
			    "new tag '%s' not added", now->v[i]);
	for (size_t i = 0; i < was->n; i++)
		FUZZ_ASSERT(names_has(now, was->v[i]) ||
				    names_has(&deleted, was->v[i]),
			    "dropped tag '%s' not deleted", was->v[i]);
	names_release(&added);
	names_release(&deleted);
}

static void check_call(const struct commit_call *c)
{
	char *text;
	cJSON *back;

	FUZZ_ASSERT(c->kind && c->method && c->api_path, "a call is incomplete");
	FUZZ_ASSERT(!strcmp(c->method, "POST") || !strcmp(c->method, "PATCH") ||
			    !strcmp(c->method, "DELETE"),
		    "method %s", c->method);
	FUZZ_ASSERT(c->api_path[0] == '/', "path '%s'", c->api_path);
	for (const char *p = c->api_path; *p; p++)
		FUZZ_ASSERT(*p > 0x20 && *p < 0x7f && *p != '#',
			    "byte 0x%02x in path '%s'", (unsigned char)*p,
			    c->api_path);
	FUZZ_ASSERT(!c->body == !strcmp(c->method, "DELETE"),
		    "%s %s: body %p", c->method, c->api_path, (void *)c->body);
	if (!c->body)
		return;
	FUZZ_ASSERT(cJSON_IsObject(c->body) || cJSON_IsArray(c->body),
		    "body not an object or list");
	text = cJSON_PrintUnformatted(c->body);
	FUZZ_ASSERT(text, "body does not print");
	back = json_parse(text, strlen(text));
	FUZZ_ASSERT(back, "body does not parse back: %s", text);
	cJSON_Delete(back);
	free(text);
}

/* A single call of this kind, method and path. */
static const struct commit_call *only(const struct commit_plan *plan,
				      const char *kind, const char *method,
				      const char *path)
{
	FUZZ_ASSERT(plan->n == 1, "%zu calls for %s", plan->n, kind);
	FUZZ_ASSERT(!strcmp(plan->calls[0].kind, kind) &&
			    !strcmp(plan->calls[0].method, method) &&
			    !strcmp(plan->calls[0].api_path, path),
		    "%s %s %s", plan->calls[0].kind, plan->calls[0].method,
		    plan->calls[0].api_path);
	return &plan->calls[0];
}

static void check_html(const char *html)
{
	for (const char *p = html; *p; p++) {
		if (*p == '<') {
			FUZZ_ASSERT(!strncmp(p, "<br>", 4), "markup in '%s'", html);
			p += 3;
		} else if (*p == '&') {
			FUZZ_ASSERT(!strncmp(p, "&amp;", 5) ||
					    !strncmp(p, "&lt;", 4) ||
					    !strncmp(p, "&gt;", 4),
				    "a raw & in '%s'", html);
		} else {
			FUZZ_ASSERT(*p != '>' && *p != '\r', "raw byte in '%s'",
				    html);
		}
	}
}

static void check_plan(const struct commit_input *in,
		       const struct commit_plan *plan)
{
	static const char *const ro_attrs[] = { "events", "socialProfiles",
						"start_date", "external_id",
						"tags" };
	static const char *const user_fields[] = { "name", "alias", "email",
						   "phone", "locale",
						   "avatarUrl",
						   "availability" };
	char path[96];
	const struct commit_call *c;
	cJSON *v = json_parse(in->data, in->len);
	cJSON *old = in->stored ? json_parse(in->stored, in->stored_len) : NULL;
	struct names was = { 0 }, now = { 0 };
	const cJSON *f;
	size_t from;

	for (size_t i = 0; i < plan->n; i++)
		check_call(&plan->calls[i]);
	switch (in->kind) {
	case T_REPLY:
	case T_NOTE:
		snprintf(path, sizeof(path), "/conversations/%d/messages", ID);
		c = only(plan, "message", "POST", path);
		FUZZ_ASSERT(!strcmp(json_get_str(c->body, "type"),
				    in->kind == T_REPLY ? "chat"
							: "private_note"),
			    "type");
		check_html(json_get_str(c->body, "body"));
		break;
	case T_MESSAGES_NEW:
		snprintf(path, sizeof(path), "/conversations/%d/messages", ID);
		c = only(plan, "message", "POST", path);
		for (f = c->body->child; f; f = f->next)
			FUZZ_ASSERT(!strcmp(f->string, "type") ||
					    !strcmp(f->string, "body") ||
					    !strcmp(f->string, "buttons") ||
					    !strcmp(f->string, "userId"),
				    "field %s", f->string);
		break;
	case T_CONTACTS_NEW:
		c = only(plan, "contact_create", "POST", "/contacts");
		f = cJSON_GetObjectItemCaseSensitive(c->body, "attributes");
		FUZZ_ASSERT(cJSON_IsObject(f) &&
				    cJSON_GetArraySize(c->body) == 1 &&
				    json_get_str(f, "email") &&
				    strchr(json_get_str(f, "email"), '@'),
			    "a contact without an email");
		break;
	case T_CONTACT_JSON:
		from = 0;
		snprintf(path, sizeof(path), "/contacts/%d", ID);
		if (plan->n && !strcmp(plan->calls[0].kind, "contact_patch")) {
			c = &plan->calls[0];
			FUZZ_ASSERT(!strcmp(c->method, "PATCH") &&
					    !strcmp(c->api_path, path),
				    "patch %s %s", c->method, c->api_path);
			f = cJSON_GetObjectItemCaseSensitive(c->body,
							     "attributes");
			FUZZ_ASSERT(cJSON_IsObject(f) && f->child,
				    "an empty patch");
			for (size_t i = 0; i < 5; i++)
				FUZZ_ASSERT(!cJSON_GetObjectItemCaseSensitive(
						    f, ro_attrs[i]),
					    "read-only %s patched", ro_attrs[i]);
			from = 1;
		}
		tags_of(old, &was);
		tags_of(v, &now);
		check_tag_calls(plan, from, &was, &now);
		break;
	case T_CONTACT_TAGS:
		split_tags(in->stored, in->stored_len, &was);
		split_tags(in->data, in->len, &now);
		check_tag_calls(plan, 0, &was, &now);
		break;
	case T_CONTACT_TIMELINE:
		split(in->data, in->len, &now);
		FUZZ_ASSERT(plan->n == now.n, "%zu calls for %zu lines", plan->n,
			    now.n);
		for (size_t i = 0; i < plan->n; i++) {
			int64_t id = 0, at = 1;
			const char *ev;

			c = &plan->calls[i];
			ev = json_get_str(c->body, "event");
			FUZZ_ASSERT(!strcmp(c->kind, "timeline") &&
					    !strcmp(c->api_path,
						    "/contacts/timeline"),
				    "timeline call");
			FUZZ_ASSERT(!json_get_i64(c->body, "contactId", &id) &&
					    id == ID,
				    "contactId");
			FUZZ_ASSERT(ev && *ev, "an event without a name");
			FUZZ_ASSERT(now.v[i][0] == '{' || !strcmp(ev, now.v[i]),
				    "event '%s' is not line '%s'", ev, now.v[i]);
			if (cJSON_GetObjectItemCaseSensitive(c->body,
							     "createdAt"))
				FUZZ_ASSERT(!json_get_i64(c->body, "createdAt",
							  &at) &&
						    at > 0,
					    "createdAt");
		}
		break;
	case T_UNSUBSCRIBE:
		c = only(plan, "unsubscribe", "POST", "/emails/unsubscribe");
		split(in->data, in->len, &now);
		FUZZ_ASSERT(cJSON_IsArray(c->body) &&
				    (size_t)cJSON_GetArraySize(c->body) == now.n,
			    "one address a line");
		for (f = c->body->child; f; f = f->next)
			FUZZ_ASSERT(cJSON_IsString(f) &&
					    names_has(&now, f->valuestring) &&
					    strchr(f->valuestring, '@') &&
					    !strchr(f->valuestring, ' '),
				    "address");
		break;
	case T_USER_JSON:
		if (!plan->n)
			break;
		snprintf(path, sizeof(path), "/users/update?userId=%d", ID);
		c = only(plan, "user_patch", "PATCH", path);
		for (f = c->body->child; f; f = f->next) {
			int ok = 0;

			for (size_t i = 0; i < 7; i++)
				ok |= !strcmp(f->string, user_fields[i]);
			FUZZ_ASSERT(ok && cJSON_IsString(f), "user field %s",
				    f->string);
		}
		break;
	case T_CONVS_NEW: {
		const cJSON *m, *a;

		c = only(plan, "conversation_create", "POST",
			 "/conversations/new");
		m = cJSON_GetObjectItemCaseSensitive(c->body, "message");
		a = cJSON_GetObjectItemCaseSensitive(m, "attributes");
		FUZZ_ASSERT(strchr(json_get_str(c->body, "email"), '@') &&
				    json_get_str(m, "body"),
			    "email and message.body");
		FUZZ_ASSERT(cJSON_IsObject(a), "message.attributes");
		for (size_t i = 0; i < 2; i++) {
			const char *k = i ? "autoAssigneeId"
					  : "integrationSource";
			f = cJSON_GetObjectItemCaseSensitive(v, k);
			FUZZ_ASSERT(!f || cJSON_Compare(
						  f,
						  cJSON_GetObjectItemCaseSensitive(a, k),
						  1),
				    "%s was not carried over", k);
		}
		break;
	}
	case T_MESSAGE_JSON: {
		int64_t id = 0;

		if (!plan->n)
			break;
		snprintf(path, sizeof(path), "/conversations/%d/messages", CONV);
		c = only(plan, "message", "POST", path);
		FUZZ_ASSERT(!strcmp(json_get_str(c->body, "type"), "edit") &&
				    !strcmp(json_get_str(c->body, "editType"),
					    "replace_body") &&
				    json_get_str(c->body, "body") &&
				    !json_get_i64(c->body, "editedMessageId",
						  &id) &&
				    id == ID,
			    "an edit of message %d", ID);
		break;
	}
	case T_ACCOUNT_JSON:
		if (!plan->n)
			break;
		c = only(plan, "account_patch", "PATCH", "/accounts/update");
		FUZZ_ASSERT(!cJSON_GetObjectItemCaseSensitive(c->body,
							      "createDateTime") &&
				    !cJSON_GetObjectItemCaseSensitive(
					    c->body, "updateDateTime") &&
				    !cJSON_GetObjectItemCaseSensitive(c->body,
								      "deleted"),
			    "read-only account field patched");
		f = cJSON_GetObjectItemCaseSensitive(old, "accountId");
		if (cJSON_IsString(f))
			FUZZ_ASSERT(cJSON_Compare(f,
						  cJSON_GetObjectItemCaseSensitive(
							  c->body, "accountId"),
						  1),
				    "accountId");
		break;
	}
	names_release(&was);
	names_release(&now);
	cJSON_Delete(v);
	cJSON_Delete(old);
}

/*
 * The stored copy as the store holds it: for an object, the canonical
 * rendering of what the API sent (api.c stores nothing else); bytes that
 * do not parse are kept, to exercise the -EIO path.
 */
static char *canonical_copy(int kind, const char *p, size_t *len)
{
	struct buf out = BUF_INIT;
	cJSON *v;
	char *s;

	if (kind == T_CONTACT_TAGS)
		return fuzz_dup(p, *len);
	v = json_parse(p, *len);
	if (!v || json_render(v, &out)) {
		cJSON_Delete(v);
		buf_release(&out);
		return fuzz_dup(p, *len);
	}
	cJSON_Delete(v);
	s = fuzz_dup(out.data, out.len);
	*len = out.len;
	buf_release(&out);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct commit_input in = { 0 };
	struct commit_plan plan;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	char *text, *stored;
	int r;

	if (size < 1 || size > 65536)
		return 0;
	in.kind = kinds[data[0] % (sizeof(kinds) / sizeof(kinds[0]))];
	in.id = ID;
	in.conv = CONV;
	in.data = fuzz_part(&p, &n, &in.len);
	in.stored = fuzz_part(&p, &n, &in.stored_len);
	/* Copies, so that reading past either part is caught. */
	text = fuzz_dup(in.data, in.len);
	stored = canonical_copy(in.kind, in.stored, &in.stored_len);
	in.data = text;
	in.stored = stored;
	r = commit_plan(&in, &plan);
	FUZZ_ASSERT(r == 0 || r == -EINVAL || r == -EIO || r == -ENOMEM,
		    "result %d", r);
	FUZZ_ASSERT(!r || (!plan.n && !plan.calls), "a refusal kept calls");
	if (!r)
		check_plan(&in, &plan);
	commit_plan_release(&plan);

	/* The stored copy written back unchanged: nothing to send. */
	if (in.kind == T_CONTACT_JSON || in.kind == T_CONTACT_TAGS ||
	    in.kind == T_USER_JSON || in.kind == T_MESSAGE_JSON ||
	    in.kind == T_ACCOUNT_JSON) {
		in.data = stored;
		in.len = in.stored_len;
		r = commit_plan(&in, &plan);
		FUZZ_ASSERT(r || !plan.n, "an unchanged file sent %zu calls",
			    plan.n);
		commit_plan_release(&plan);
	}
	free(text);
	free(stored);
	return 0;
}
