// SPDX-License-Identifier: MIT
/*
 * fuzz_api.c: API response bodies into rows (api.h), and the rows into the
 * cache (store.h).
 *
 * Input: a selector byte for the envelope, then the body:
 *   0 contact  1 contact lookup list  2 custom attributes  3 user list
 *   4 user  5 conversation list page  6 conversation  7 messages page
 *   8 playbooks  9 accounts page  10 OAuth token answer
 * Checked for every row handed out: a positive id, no negative times, short
 * fields NUL-terminated, a json member that is a canonical rendering (it
 * parses back to the same bytes), a tags file of one clean line per tag,
 * attachments with ids and names. Each row is then stored in a real SQLite
 * cache (a temporary directory, one transaction rolled back per input): the
 * store accepts it, gives back the very bytes, and storing it again changes
 * nothing. The parser itself may only fail with -EIO (a wrong shape) or
 * -ENOMEM. A token answer gives one access token (and at most one refresh
 * token) that a credentials line can hold, or -EINVAL.
 */
#include <dirent.h>
#include <errno.h>
#include <unistd.h>

#include "api.h"
#include "fuzz.h"
#include "store.h"

static struct store *st;
static char dir[] = "/tmp/driftfs-fuzz-api-XXXXXX";

static void cleanup(void)
{
	DIR *d;
	struct dirent *e;

	store_close(st);
	st = NULL;
	d = opendir(dir);
	while (d && (e = readdir(d))) {
		char path[sizeof(dir) + 256];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet();
	if (!mkdtemp(dir) || !(st = store_open(dir))) {
		perror("fuzz_api: a temporary cache");
		abort();
	}
	atexit(cleanup);
	return 0;
}

static void check_json(const char *what, const struct buf *json)
{
	FUZZ_ASSERT(json->len > 0, "%s: no json", what);
	fuzz_assert_canonical(what, json->data, json->len);
}

/* The stored blob of q for id is exactly want. */
static void check_blob(const char *what, enum store_query q, int64_t id,
		       const struct buf *want)
{
	struct buf got = BUF_INIT;
	int r = store_blob(st, q, id, NULL, &got);

	FUZZ_ASSERT(!r, "%s %lld: not stored (%d)", what, (long long)id, r);
	FUZZ_ASSERT(got.len == want->len &&
			    !memcmp(got.data ? got.data : "",
				    want->data ? want->data : "", got.len),
		    "%s %lld: stored bytes differ", what, (long long)id);
	buf_release(&got);
}

static void check_cstr(const char *what, const char *s, size_t cap)
{
	FUZZ_ASSERT(memchr(s, '\0', cap), "%s: not NUL-terminated", what);
}

static int on_contact(void *ctx, const struct api_contact *c)
{
	struct buf old = BUF_INIT;
	int changed = 0, before;

	(void)ctx;
	FUZZ_ASSERT(c->id > 0 && c->created >= 0, "contact %lld at %lld",
		    (long long)c->id, (long long)c->created);
	check_json("contact", &c->json);
	for (size_t i = 0; i < c->tags.len; i++) {
		unsigned char b = (unsigned char)c->tags.data[i];

		FUZZ_ASSERT(b >= 0x20 || b == '\n', "tag byte 0x%02x", b);
		FUZZ_ASSERT(b != 0x7f, "DEL in a tag");
	}
	FUZZ_ASSERT(!c->tags.len || c->tags.data[c->tags.len - 1] == '\n',
		    "the tags file does not end a line");
	/* A list may hold the same contact twice: new is "not stored yet". */
	before = store_blob(st, Q_CONTACT, c->id, NULL, &old);
	buf_release(&old);
	FUZZ_ASSERT(!store_put_contact(st, c, &changed), "put contact");
	FUZZ_ASSERT(changed || before != -ENOENT,
		    "a new contact did not change the store");
	check_blob("contact", Q_CONTACT, c->id, &c->json);
	check_blob("contact tags", Q_CONTACT_TAGS, c->id, &c->tags);
	FUZZ_ASSERT(!store_put_contact(st, c, &changed) && !changed,
		    "storing the same contact again changed it");
	return 0;
}

static int on_user(void *ctx, const struct api_user *u)
{
	int changed = 0;

	(void)ctx;
	FUZZ_ASSERT(u->id > 0 && u->mtime >= 0, "user %lld",
		    (long long)u->id);
	check_json("user", &u->json);
	FUZZ_ASSERT(!store_put_user(st, u, 1, &changed), "put user");
	check_blob("user", Q_USER, u->id, &u->json);
	FUZZ_ASSERT(!store_put_user(st, u, 1, &changed) && !changed,
		    "storing the same user again changed it");
	return 0;
}

static void check_conversation(const struct api_conversation *c, int full)
{
	struct buf transcript = BUF_INIT;
	int changed = 0;

	FUZZ_ASSERT(c->id > 0 && c->contact_id >= 0 && c->created >= 0 &&
			    c->updated >= 0,
		    "conversation %lld", (long long)c->id);
	check_cstr("status", c->status, sizeof(c->status));
	for (const char *s = c->status; *s; s++)
		FUZZ_ASSERT(*s < 'A' || *s > 'Z', "status '%s' not lowercase",
			    c->status);
	if (!full)
		return;
	check_json("conversation", &c->json);
	buf_adds(&transcript, "[t] x (agent, chat):\n\n");
	FUZZ_ASSERT(!store_put_conversation(st, c, &transcript, &changed),
		    "put conversation");
	check_blob("conversation", Q_CONV, c->id, &c->json);
	check_blob("transcript", Q_TRANSCRIPT, c->id, &transcript);
	buf_release(&transcript);
}

static int on_conversation(void *ctx, const struct api_conversation *c)
{
	(void)ctx;
	check_conversation(c, 0);
	return 0;
}

static int on_message(void *ctx, struct api_message *m)
{
	(void)ctx;
	FUZZ_ASSERT(m->id > 0 && m->created >= 0, "message %lld",
		    (long long)m->id);
	FUZZ_ASSERT(m->body, "message without a body string");
	check_cstr("author_type", m->author_type, sizeof(m->author_type));
	check_cstr("type", m->type, sizeof(m->type));
	check_json("message", &m->json);
	for (size_t i = 0; i < m->natt; i++)
		FUZZ_ASSERT(m->att[i].id > 0 && m->att[i].file_name,
			    "attachment %zu", i);
	FUZZ_ASSERT(!store_put_message(st, m), "put message");
	check_blob("message", Q_MESSAGE, m->id, &m->json);
	return 0;
}

static int on_object(void *ctx, const struct api_object *o)
{
	int changed = 0;

	(void)ctx;
	check_json("object", &o->json);
	FUZZ_ASSERT(o->mtime >= 0, "mtime");
	if (o->key) {
		FUZZ_ASSERT(o->key[0], "an account with an empty id");
		FUZZ_ASSERT(!store_put_account(st, o, 1, &changed),
			    "put account");
	} else {
		FUZZ_ASSERT(o->id > 0, "playbook %lld", (long long)o->id);
		FUZZ_ASSERT(!store_put_playbook(st, o, 1, &changed),
			    "put playbook");
		check_blob("playbook", Q_PLAYBOOK, o->id, &o->json);
	}
	return 0;
}

/* A token fit for a credentials line: not empty, no control or space. */
static void check_token(const char *what, const char *tok)
{
	FUZZ_ASSERT(tok && tok[0], "%s: empty", what);
	for (const unsigned char *p = (const unsigned char *)tok; *p; p++)
		FUZZ_ASSERT(*p > 0x20 && *p != 0x7f, "%s: byte %u", what, *p);
}

/* The OAuth token answer: -EINVAL is its refusal, not -EIO. */
static int oauth_token(const char *body, size_t len)
{
	struct api_oauth_token tok;
	int r = api_parse_oauth_token(body, len, &tok);

	if (!r) {
		check_token("access token", tok.access_token);
		if (tok.refresh_token)
			check_token("refresh token", tok.refresh_token);
		FUZZ_ASSERT(tok.expires_in >= 0, "expires_in %lld",
			    (long long)tok.expires_in);
	} else {
		FUZZ_ASSERT(!tok.access_token && !tok.refresh_token,
			    "a refused answer left tokens");
	}
	api_oauth_token_release(&tok);
	return r == -EINVAL ? -EIO : r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct api_contact c;
	struct api_user u;
	struct api_conversation conv;
	struct api_cursor cur = { 0 };
	struct buf attrs = BUF_INIT;
	char *next = NULL;
	int r = 0;

	if (size < 1 || size > 65536)
		return 0;
	FUZZ_ASSERT(!store_begin(st), "begin");
	switch (data[0] % 12) {
	case 0:
		r = api_parse_contact("fuzz", body, len, &c);
		if (!r)
			on_contact(NULL, &c);
		api_contact_release(&c);
		break;
	case 1:
		r = api_parse_contact_list("fuzz", body, len, on_contact, NULL);
		break;
	case 2:
		r = api_parse_attributes("fuzz", body, len, &attrs);
		if (!r)
			check_json("attributes", &attrs);
		break;
	case 3:
		r = api_parse_users("fuzz", body, len, on_user, NULL);
		break;
	case 4:
		r = api_parse_user("fuzz", body, len, &u);
		if (!r)
			on_user(NULL, &u);
		api_user_release(&u);
		break;
	case 5:
		r = api_parse_conversations_page("fuzz", body, len, &cur,
						 on_conversation, NULL);
		break;
	case 6:
		r = api_parse_conversation("fuzz", body, len, &conv);
		if (!r)
			check_conversation(&conv, 1);
		api_conversation_release(&conv);
		break;
	case 7:
		r = api_parse_messages_page("fuzz", body, len, 7, on_message,
					    NULL, &next);
		FUZZ_ASSERT(!next || next[0], "an empty cursor");
		break;
	case 8:
		r = api_parse_playbooks("fuzz", body, len, on_object, NULL);
		break;
	case 9:
		r = api_parse_accounts_page("fuzz", body, len, on_object, NULL,
					    &next);
		break;
	case 10:
		r = oauth_token(body, len);
		break;
	case 11: {
		int64_t total = -1;

		r = api_parse_conversation_stats(body, len, &total);
		FUZZ_ASSERT(r || total >= 0, "a negative total %lld",
			    (long long)total);
		if (r == -ENODATA)
			r = 0;	/* no total: the shape is unconfirmed */
		break;
	}
	}
	FUZZ_ASSERT(!r || r == -EIO || r == -ENOMEM, "result %d", r);
	store_rollback(st);
	api_cursor_release(&cur);
	buf_release(&attrs);
	free(next);
	return 0;
}
