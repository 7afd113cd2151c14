// SPDX-License-Identifier: MIT
/* test_commit.c: unit tests of write validation and planning (commit.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "commit.h"
#include "json.h"
#include "log.h"
#include "tree.h"
#include "unit.h"

/* Plans data written to a node of kind (id 42) over stored. */
static int plan(int kind, const char *data, size_t len, const char *stored,
		struct commit_plan *out)
{
	struct commit_input in = { .kind = kind, .id = 42, .conv = 7,
				   .data = data, .len = len,
				   .stored = stored,
				   .stored_len = stored ? strlen(stored) : 0 };

	return commit_plan(&in, out);
}

static void test_tags_add_and_delete(void)
{
	static const char data[] = "vip\r\nnew one\n\n";
	struct commit_plan p;
	char *body;

	REQUIRE(!plan(T_CONTACT_TAGS, data, strlen(data), "vip\nold\n", &p));
	REQUIRE(p.n == 2);
	CHECK_EQ_STR(p.calls[0].kind, "tag_add");
	CHECK_EQ_STR(p.calls[0].api_path, "/contacts/42/tags");
	body = cJSON_PrintUnformatted(p.calls[0].body);
	CHECK_EQ_STR(body, "[{\"name\":\"new one\"}]");
	free(body);
	CHECK_EQ_STR(p.calls[1].kind, "tag_delete");
	CHECK_EQ_STR(p.calls[1].method, "DELETE");
	CHECK_EQ_STR(p.calls[1].api_path, "/contacts/42/tags/old");
	CHECK(!p.calls[1].body);
	commit_plan_release(&p);
}

/*
 * The tags file shows each tag %XX-escaped ('%' too): a line is decoded
 * before it is compared with the version read or sent, so removing the
 * line "a%0Ab" deletes the tag "a\nb" (not "a%250Ab"), and a line that is
 * no valid escaping is refused.
 */
static void test_tags_escaped_lines(void)
{
	static const char was[] = "a%0Ab\n%E2%80%AEevil\n50%25off\nkeep\n";
	static const char *const bad[] = { "keep\n50%off\n", "x%0\n",
					   "%00\n" };
	struct commit_plan p;
	char *body;

	/* Unchanged lines are no change. */
	REQUIRE(!plan(T_CONTACT_TAGS, was, strlen(was), was, &p));
	CHECK_EQ_INT(p.n, 0);
	commit_plan_release(&p);
	/* Every escaped tag removed, one added as an escape. */
	REQUIRE(!plan(T_CONTACT_TAGS, "keep\nx%0Ay%25\n", 14, was, &p));
	REQUIRE(p.n == 4);
	CHECK_EQ_STR(p.calls[0].kind, "tag_add");
	body = cJSON_PrintUnformatted(p.calls[0].body);
	CHECK_EQ_STR(body, "[{\"name\":\"x\\ny%\"}]");
	free(body);
	CHECK_EQ_STR(p.calls[1].api_path, "/contacts/42/tags/a%0Ab");
	CHECK_EQ_STR(p.calls[2].api_path, "/contacts/42/tags/%E2%80%AEevil");
	CHECK_EQ_STR(p.calls[3].api_path, "/contacts/42/tags/50%25off");
	commit_plan_release(&p);
	unit_quiet(1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unit_ctx = bad[i];
		CHECK_EQ_INT(plan(T_CONTACT_TAGS, bad[i], strlen(bad[i]), was,
				  &p),
			     -EINVAL);
		CHECK_EQ_INT(p.n, 0);
	}
	unit_quiet(0);
}

/*
 * A NUL byte in a line (found by tests/fuzz/fuzz_commit.c): the line was
 * cut there, so "\0x" added a tag with an empty name. Refused now, in
 * every one-a-line file.
 */
static void test_nul_in_lines_refused(void)
{
	static const char tags[] = "vip\n\0x\n";
	static const char timeline[] = "signed up\nb\0ad\n";
	static const char unsub[] = "a@example.com\0b@example.com\n";
	struct commit_plan p;

	unit_quiet(1);
	CHECK_EQ_INT(plan(T_CONTACT_TAGS, tags, sizeof(tags) - 1, "vip\n", &p),
		     -EINVAL);
	CHECK_EQ_INT(p.n, 0);
	CHECK_EQ_INT(plan(T_CONTACT_TIMELINE, timeline, sizeof(timeline) - 1,
			  NULL, &p),
		     -EINVAL);
	CHECK_EQ_INT(plan(T_UNSUBSCRIBE, unsub, sizeof(unsub) - 1, NULL, &p),
		     -EINVAL);
	unit_quiet(0);
}

/*
 * Deleting a tag whose escaped name is long (found by fuzz_commit): the
 * path was cut at 1023 bytes, so the DELETE named another tag, or half an
 * escape. The path now holds the whole name.
 */
static void test_long_tag_delete(void)
{
	char name[401], want[2000];
	struct commit_plan p;
	size_t o;

	for (size_t i = 0; i < 400; i += 2)
		memcpy(name + i, "\xc3\xa9", 2);
	name[400] = '\0';
	o = (size_t)snprintf(want, sizeof(want), "/contacts/42/tags/");
	for (size_t i = 0; i < 400; i += 2)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%%C3%%A9");
	REQUIRE(!plan(T_CONTACT_TAGS, "", 0, name, &p));
	REQUIRE(p.n == 1);
	CHECK_EQ_STR(p.calls[0].kind, "tag_delete");
	CHECK_EQ_INT(strlen(p.calls[0].api_path), 18 + 1200);
	CHECK_EQ_STR(p.calls[0].api_path, want);
	commit_plan_release(&p);
}

/*
 * An account whose stored copy has a key twice, written back unchanged
 * (found by fuzz_commit): the second "domain" was compared with the first
 * and sent as a change. Such JSON has no one meaning and is refused.
 */
static void test_duplicate_key_refused(void)
{
	static const char acct[] = "{\"accountId\": \"a1\", \"ownerId\": 5, "
				   "\"domain\": \"x.example\", "
				   "\"domain\": \"y.example\"}";
	struct commit_plan p;

	unit_quiet(1);
	CHECK_EQ_INT(plan(T_ACCOUNT_JSON, acct, strlen(acct), acct, &p),
		     -EINVAL);
	CHECK_EQ_INT(p.n, 0);
	unit_quiet(0);
}

/*
 * conversations/new whose message.attributes is not an object (found by
 * fuzz_commit's invariant): integrationSource was added under a string and
 * silently dropped from the request. Refused now.
 */
static void test_new_conversation_attributes(void)
{
	static const char bad[] = "{\"email\": \"a@b.c\", \"message\": "
				  "{\"body\": \"x\", \"attributes\": \"s\"}, "
				  "\"integrationSource\": \"api\"}";
	static const char good[] = "{\"email\": \"a@b.c\", \"message\": "
				   "{\"body\": \"x\", \"attributes\": "
				   "{\"k\": 1}}, \"integrationSource\": "
				   "\"api\"}";
	struct commit_plan p;
	const cJSON *a;

	unit_quiet(1);
	CHECK_EQ_INT(plan(T_CONVS_NEW, bad, strlen(bad), NULL, &p), -EINVAL);
	unit_quiet(0);
	REQUIRE(!plan(T_CONVS_NEW, good, strlen(good), NULL, &p));
	REQUIRE(p.n == 1);
	a = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(p.calls[0].body, "message"),
		"attributes");
	CHECK_EQ_STR(json_get_str(a, "integrationSource"), "api");
	CHECK(cJSON_GetObjectItemCaseSensitive(a, "k") != NULL);
	commit_plan_release(&p);
}

/*
 * Every write has a real target (the outbox orders writes by it): account
 * edits and creations had target 0, which the outbox did not order, so a
 * queued account PATCH landed after a newer one and undid it.
 */
static void test_every_write_has_a_target(void)
{
	static const char acct[] = "{\"accountId\": \"a1\", \"ownerId\": 5, "
				   "\"name\": \"Old\"}";
	static const char acct2[] = "{\"accountId\": \"a1\", \"ownerId\": 5, "
				    "\"name\": \"New\"}";
	static const char other[] = "{\"accountId\": \"a2\", \"ownerId\": 5, "
				    "\"name\": \"New\"}";
	static const char *const other_old = "{\"accountId\": \"a2\", "
					     "\"ownerId\": 5, "
					     "\"name\": \"Old\"}";
	static const char c1[] = "{\"email\": \"Ann@X.example\"}";
	static const char c2[] = "{\"attributes\": {\"email\": "
				 "\"ann@x.example\"}}";
	static const char conv[] = "{\"email\": \"ann@x.example\", "
				   "\"message\": \"hi\"}";
	struct commit_plan p, q;
	int64_t t;

	REQUIRE(!plan(T_ACCOUNT_JSON, acct2, strlen(acct2), acct, &p));
	REQUIRE(p.n == 1);
	CHECK_EQ_STR(p.calls[0].kind, "account_patch");
	CHECK(p.calls[0].target != 0);
	CHECK(p.calls[0].target == store_account_hash("a1"));
	REQUIRE(!plan(T_ACCOUNT_JSON, other, strlen(other), other_old, &q));
	REQUIRE(q.n == 1);
	CHECK(q.calls[0].target != p.calls[0].target);
	commit_plan_release(&p);
	commit_plan_release(&q);

	/* A new contact: the email it is for, whatever its case. */
	REQUIRE(!plan(T_CONTACTS_NEW, c1, strlen(c1), NULL, &p));
	REQUIRE(!plan(T_CONTACTS_NEW, c2, strlen(c2), NULL, &q));
	REQUIRE(p.n == 1 && q.n == 1);
	t = p.calls[0].target;
	CHECK(t != 0);
	CHECK(q.calls[0].target == t);
	commit_plan_release(&p);
	commit_plan_release(&q);
	REQUIRE(!plan(T_CONVS_NEW, conv, strlen(conv), NULL, &p));
	REQUIRE(p.n == 1);
	CHECK(p.calls[0].target == t);
	commit_plan_release(&p);
}

/*
 * A message that may have landed is recognised by its text, not its bytes:
 * the API may store the HTML otherwise than it was sent.
 */
static void test_message_text(void)
{
	static const char *const same[][2] = {
		{ "Tea &amp; cake<br>at  four",
		  "<p>Tea &amp; cake<br/>at four</p>" },
		{ "a &lt;b&gt;", "a &#60;b&#x3e;" },
		{ "<b>bold</b> move", "bold\n move " },
		{ "x&nbsp;y", "x y" },
	};
	static const char *const differ[][2] = {
		{ "ok", "ok!" },
		{ "ab", "a b" },
		{ "Tea &amp; cake", "Tea &amp;amp; cake" },
	};
	struct buf a = BUF_INIT, b = BUF_INIT;

	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		unit_ctx = same[i][1];
		buf_reset(&a);
		buf_reset(&b);
		REQUIRE(!commit_message_text(same[i][0], &a));
		REQUIRE(!commit_message_text(same[i][1], &b));
		CHECK_EQ_STR(a.data, b.data);
	}
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		unit_ctx = differ[i][1];
		buf_reset(&a);
		buf_reset(&b);
		REQUIRE(!commit_message_text(differ[i][0], &a));
		REQUIRE(!commit_message_text(differ[i][1], &b));
		CHECK(strcmp(a.data, b.data) != 0);
	}
	unit_ctx = NULL;
	buf_reset(&a);
	REQUIRE(!commit_message_text(" <p>Tea &amp; cake<br>\n at four </p> ",
				     &a));
	CHECK_EQ_STR(a.data, "Tea & cake at four");
	buf_reset(&a);
	REQUIRE(!commit_message_text("<br> ", &a));
	CHECK_EQ_INT(a.len, 0);
	buf_release(&a);
	buf_release(&b);
}

/* Plans an edit of kind read as base, stored now as stored. */
static int plan_edit(int kind, const char *data, const char *base,
		     const char *stored, struct commit_plan *out)
{
	struct commit_input in = { .kind = kind, .id = 42, .conv = 7,
				   .data = data, .len = strlen(data),
				   .stored = stored,
				   .stored_len = strlen(stored),
				   .base = base, .base_len = strlen(base) };

	return commit_plan(&in, out);
}

static char *body_of(const struct commit_plan *p, size_t i)
{
	return cJSON_PrintUnformatted(p->calls[i].body);
}

/*
 * DESIGN §4: only what the writer changed against the version it read is
 * sent. A field Drift changed since (phone, a tag, the account's name and
 * owner, its updateDateTime) is neither sent back nor refused.
 */
static void test_edits_diff_against_the_version_read(void)
{
	static const char c_base[] =
		"{\"id\":42,\"attributes\":{\"name\":\"A\","
		"\"phone\":\"1\",\"tags\":[\"t1\",\"t2\"]}}";
	static const char c_now[] =
		"{\"id\":42,\"attributes\":{\"name\":\"A\","
		"\"phone\":\"2\",\"tags\":[\"t1\",\"t2\",\"t3\"]}}";
	static const char c_new[] =
		"{\"id\":42,\"attributes\":{\"name\":\"B\","
		"\"phone\":\"1\",\"tags\":[\"t2\"]}}";
	static const char c_id[] =
		"{\"id\":43,\"attributes\":{\"name\":\"A\","
		"\"phone\":\"1\",\"tags\":[\"t1\",\"t2\"]}}";
	static const char a_base[] =
		"{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"N\","
		"\"targeted\":false,\"updateDateTime\":5}";
	static const char a_now[] =
		"{\"accountId\":\"x\",\"ownerId\":2,\"name\":\"M\","
		"\"targeted\":false,\"updateDateTime\":6}";
	static const char a_new[] =
		"{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"N\","
		"\"targeted\":true,\"updateDateTime\":5}";
	struct commit_plan p;
	char *body;

	REQUIRE(!plan_edit(T_CONTACT_JSON, c_new, c_base, c_now, &p));
	REQUIRE(p.n == 2);
	body = body_of(&p, 0);
	CHECK_EQ_STR(body, "{\"attributes\":{\"name\":\"B\"}}");
	free(body);
	CHECK_EQ_STR(p.calls[1].api_path, "/contacts/42/tags/t1");
	commit_plan_release(&p);

	REQUIRE(!plan_edit(T_CONTACT_TAGS, "t1\nt2\nt4\n", "t1\nt2\n",
			   "t1\nt2\nt3\n", &p));
	REQUIRE(p.n == 1);
	body = body_of(&p, 0);
	CHECK_EQ_STR(body, "[{\"name\":\"t4\"}]");
	free(body);
	commit_plan_release(&p);

	REQUIRE(!plan_edit(T_ACCOUNT_JSON, a_new, a_base, a_now, &p));
	REQUIRE(p.n == 1);
	body = body_of(&p, 0);
	CHECK_EQ_STR(body, "{\"targeted\":true,\"accountId\":\"x\","
			   "\"ownerId\":2}");
	free(body);
	commit_plan_release(&p);

	/* Read-only fields are checked against the version read too. */
	unit_quiet(1);
	CHECK_EQ_INT(plan_edit(T_CONTACT_JSON, c_id, c_base, c_base, &p),
		     -EINVAL);
	unit_quiet(0);
}

static uint64_t dist(const char *a, const char *b)
{
	return commit_base_distance(a, strlen(a), b, strlen(b));
}

/*
 * Which version a writer read: the one closest to what it writes. A
 * version marker (updatedAt) outweighs any number of fields; tags compare
 * as sets of lines; the writer's own version wins over a later one that
 * also holds a change of Drift's.
 */
static void test_base_distance(void)
{
	static const char v0[] =
		"{\"id\":1,\"updatedAt\":5,\"name\":\"A\",\"phone\":\"1\"}";
	static const char v1[] =
		"{\"id\":1,\"updatedAt\":6,\"name\":\"A\",\"phone\":\"2\"}";
	static const char w[] =
		"{\"id\":1,\"updatedAt\":5,\"name\":\"B\",\"phone\":\"1\"}";
	static const char w2[] =
		"{\"id\":1,\"updatedAt\":5,\"name\":\"B\",\"phone\":\"2\"}";
	static const char c0[] =
		"{\"attributes\":{\"name\":\"A\",\"x\":[1],"
		"\"_END_USER_VERSION\":4}}";
	static const char c1[] =
		"{\"attributes\":{\"name\":\"A\",\"x\":[2],"
		"\"_END_USER_VERSION\":5}}";
	static const char cw[] =
		"{\"attributes\":{\"name\":\"C\",\"x\":[1],"
		"\"_END_USER_VERSION\":4}}";

	CHECK_EQ_U64(dist(v0, v0), 0);
	CHECK_EQ_U64(dist(w, v0), 1);
	CHECK(dist(w, v0) < dist(w, v1));
	/* The writer changed the phone as Drift did, and the name: its
	 * version has its marker, so it is still the closer. */
	CHECK(dist(w2, v0) < dist(w2, v1));
	CHECK_EQ_U64(dist(cw, c0), 1);
	CHECK(dist(cw, c0) < dist(cw, c1));
	/* A field only one side has counts too. */
	CHECK_EQ_U64(dist("{\"a\":1}", "{\"a\":1,\"b\":2}"), 1);
	/* Tags: lines, in any order, \r and blank lines aside. */
	CHECK_EQ_U64(dist("a\nb\n", "b\r\n\na\n"), 0);
	CHECK_EQ_U64(dist("a\nb\nw\n", "a\nb\n"), 1);
	CHECK_EQ_U64(dist("a\nb\nw\n", "a\nb\nd\n"), 2);
	CHECK_EQ_U64(dist("", ""), 0);
	CHECK_EQ_U64(dist("a\n", ""), 1);
}

/*
 * A JSON line of timeline with a \u0000 escape: cJSON decoded it into a
 * NUL and the event was cut there. Refused, like a raw NUL; an escaped
 * backslash before u0000 is still text, and a text line is text.
 */
static void test_timeline_json_nul_escape_refused(void)
{
	static const char bad[] = "{\"event\": \"signed\\u0000 up\"}\n";
	static const char text[] = "typed \\u0000 as text\n"
				   "{\"event\": \"a \\\\u0000 b\"}\n";
	struct commit_plan p;

	unit_quiet(1);
	CHECK_EQ_INT(plan(T_CONTACT_TIMELINE, bad, strlen(bad), NULL, &p),
		     -EINVAL);
	CHECK_EQ_INT(p.n, 0);
	unit_quiet(0);
	REQUIRE(!plan(T_CONTACT_TIMELINE, text, strlen(text), NULL, &p));
	CHECK_EQ_INT(p.n, 2);
	commit_plan_release(&p);
}

static struct api_message msg(int64_t id, int64_t created, const char *type,
			      const char *author, int64_t author_id, int bot,
			      const char *body)
{
	struct api_message m;

	memset(&m, 0, sizeof(m));
	m.id = id;
	m.created = created;
	snprintf(m.type, sizeof(m.type), "%s", type);
	snprintf(m.author_type, sizeof(m.author_type), "%s", author);
	m.author_id = author_id;
	m.bot = bot;
	m.body = (char *)body;
	return m;
}

/*
 * The landed check took any message of the conversation with equal text
 * for the one a row posted: the contact's "ok", a note for a reply, our
 * own earlier "Yes". Only a newer message of the same type by the author
 * the API gives our posts counts.
 */
static void test_landed_message_must_be_ours_and_new(void)
{
	struct landed_match w = { "Yes", "chat", 0, 1000, 5000, 50, 0 };
	struct landed_match u = { "Yes", "chat", 77, 1000, 5000, 50, 0 };
	struct api_message m;

	m = msg(60, 6000, "chat", "user", 1, 1, "<p>Yes</p>");
	CHECK(commit_message_matches(&w, &m));
	/* Not newer than the newest message cached at queue time. */
	m = msg(50, 5000, "chat", "user", 1, 1, "<p>Yes</p>");
	CHECK(!commit_message_matches(&w, &m));
	m = msg(40, 4000, "chat", "user", 1, 1, "<p>Yes</p>");
	CHECK(!commit_message_matches(&w, &m));
	/* Same ms as the newest cached, a higher id: newer. */
	m = msg(51, 5000, "chat", "user", 1, 1, "<p>Yes</p>");
	CHECK(commit_message_matches(&w, &m));
	/* Before the clock window. */
	m = msg(60, 900, "chat", "user", 1, 1, "Yes");
	w.after_created = 0;
	CHECK(!commit_message_matches(&w, &m));
	w.after_created = 5000;
	/* The contact's message, a note, a human user's, other text. */
	m = msg(61, 6000, "chat", "contact", 9, 0, "Yes");
	CHECK(!commit_message_matches(&w, &m));
	m = msg(62, 6000, "private_note", "user", 1, 1, "Yes");
	CHECK(!commit_message_matches(&w, &m));
	m = msg(63, 6000, "chat", "user", 77, 0, "Yes");
	CHECK(!commit_message_matches(&w, &m));
	m = msg(64, 6000, "chat", "user", 1, 1, "Yes!");
	CHECK(!commit_message_matches(&w, &m));
	/* Not the message an earlier row of the conversation posted,
	 * even when the marks predate it. */
	w.exclude = 60;
	m = msg(60, 6000, "chat", "user", 1, 1, "<p>Yes</p>");
	CHECK(!commit_message_matches(&w, &m));
	w.exclude = 0;
	/* The clock window applies with the marks too (a stale cache's
	 * marks let an identical older message through). */
	w.since = 100000;
	m = msg(65, 6000, "chat", "user", 1, 1, "Yes");
	CHECK(!commit_message_matches(&w, &m));
	w.since = 1000;
	/* Posted with a userId: that user wrote it, not the bot. */
	m = msg(66, 6000, "chat", "user", 77, 0, "Yes");
	CHECK(commit_message_matches(&u, &m));
	m = msg(67, 6000, "chat", "user", 1, 1, "Yes");
	CHECK(!commit_message_matches(&u, &m));
}

/* The text of the last refusal logged ("refused, nothing sent: <it>"). */
static char *last_refusal(void)
{
	struct buf b = BUF_INIT;
	const char *m;
	char *s = NULL;

	if (!log_errors_render(&b) && b.len) {
		b.data[--b.len] = '\0';
		m = strrchr(b.data, '\n');
		m = strstr(m ? m : b.data, "refused, nothing sent: ");
		s = m ? strdup(m + strlen("refused, nothing sent: ")) : NULL;
	}
	buf_release(&b);
	return s;
}

/*
 * The edit rules (commit_edit.c), each met and broken: a refusal's error
 * line, or the one call an accepted edit makes (its path and body).
 */
static void test_edit_rules(void)
{
	static const char user[] =
		"{\"id\":1,\"name\":\"A\",\"availability\":\"OFFLINE\"}";
	static const char msg[] = "{\"id\":9,\"body\":\"x\",\"createdAt\":1}";
	static const char msg_num[] = "{\"id\":9,\"body\":1}";
	static const char acct[] = "{\"accountId\":\"x\",\"ownerId\":1,"
				   "\"name\":\"N\",\"deleted\":false,"
				   "\"targeted\":false}";
	static const char contact[] = "{\"id\":42,\"attributes\":"
				      "{\"name\":\"A\"}}";
	static const struct {
		int kind;
		const char *stored, *data;
		const char *want;	/* error text, or "path body" */
	} cases[] = {
		/* users: the editable fields, as strings. */
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":\"B\",\"availability\":\"OFFLINE\"}",
		  "/users/update?userId=42 {\"name\":\"B\"}" },
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":\"A\",\"availability\":\"OFFLINE\","
		  "\"phone\":\"1\"}",
		  "/users/update?userId=42 {\"phone\":\"1\"}" },
		{ T_USER_JSON, user,
		  "{\"id\":2,\"name\":\"A\",\"availability\":\"OFFLINE\"}",
		  "field 'id' is read-only" },
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":\"A\",\"availability\":\"OFFLINE\","
		  "\"zz\":1}",
		  "unknown field 'zz'" },
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":5,\"availability\":\"OFFLINE\"}",
		  "field 'name' must be a string" },
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":\"A\",\"availability\":\"AVAILABLE\"}",
		  "/users/update?userId=42 {\"availability\":\"AVAILABLE\"}" },
		{ T_USER_JSON, user,
		  "{\"id\":1,\"name\":\"A\",\"availability\":\"BUSY\"}",
		  "field 'availability' must be AVAILABLE or OFFLINE" },
		{ T_USER_JSON, user, "{\"id\":1,\"name\":\"A\"}",
		  "field 'availability' cannot be removed" },
		/* messages/<id>.json: the body alone, always a string. */
		{ T_MESSAGE_JSON, msg,
		  "{\"id\":9,\"body\":\"y\",\"createdAt\":1}",
		  "/conversations/7/messages {\"type\":\"edit\","
		  "\"editedMessageId\":42,\"editType\":\"replace_body\","
		  "\"body\":\"y\"}" },
		{ T_MESSAGE_JSON, msg, "{\"id\":9,\"body\":2,\"createdAt\":1}",
		  "field 'body' must be a string" },
		{ T_MESSAGE_JSON, msg_num, msg_num,
		  "field 'body' must be a string" },
		{ T_MESSAGE_JSON, msg,
		  "{\"id\":9,\"body\":\"x\",\"createdAt\":2}",
		  "field 'createdAt' is read-only (only 'body' can be "
		  "edited)" },
		{ T_MESSAGE_JSON, msg,
		  "{\"id\":9,\"body\":\"x\",\"createdAt\":1,\"zz\":1}",
		  "unknown field 'zz'" },
		/* accounts: the fields it has, as the types they have. */
		{ T_ACCOUNT_JSON, acct,
		  "{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"M\","
		  "\"deleted\":false,\"targeted\":true}",
		  "/accounts/update {\"name\":\"M\",\"targeted\":true,"
		  "\"accountId\":\"x\",\"ownerId\":1}" },
		{ T_ACCOUNT_JSON, acct,
		  "{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"N\","
		  "\"deleted\":true,\"targeted\":false}",
		  "field 'deleted' is read-only" },
		{ T_ACCOUNT_JSON, acct,
		  "{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"N\","
		  "\"deleted\":false,\"targeted\":false,"
		  "\"createDateTime\":5}",
		  "field 'createDateTime' is read-only" },
		{ T_ACCOUNT_JSON, acct,
		  "{\"accountId\":\"x\",\"ownerId\":1,\"name\":\"N\","
		  "\"deleted\":false,\"targeted\":false,\"zz\":1}",
		  "unknown field 'zz'" },
		{ T_ACCOUNT_JSON, acct,
		  "{\"accountId\":\"x\",\"ownerId\":1,\"name\":5,"
		  "\"deleted\":false,\"targeted\":false}",
		  "field 'name' has the wrong type" },
		/* contact.json: the attributes, checked by the planner. */
		{ T_CONTACT_JSON, contact,
		  "{\"id\":42,\"attributes\":{\"name\":\"B\"}}",
		  "/contacts/42 {\"attributes\":{\"name\":\"B\"}}" },
		{ T_CONTACT_JSON, contact,
		  "{\"id\":43,\"attributes\":{\"name\":\"A\"}}",
		  "field 'id' is read-only" },
		{ T_CONTACT_JSON, contact,
		  "{\"id\":42,\"attributes\":{\"name\":\"A\"},\"zz\":1}",
		  "unknown field 'zz'" },
		{ T_CONTACT_JSON, contact, "{\"id\":42,\"attributes\":5}",
		  "field 'attributes' must be an object" },
		{ T_CONTACT_JSON, contact, "{\"attributes\":5,\"zz\":1}",
		  "unknown field 'zz'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct commit_plan p;
		char *got = NULL, *body;
		int r;

		unit_ctx = cases[i].data;
		unit_quiet(1);
		r = plan_edit(cases[i].kind, cases[i].data, cases[i].stored,
			      cases[i].stored, &p);
		unit_quiet(0);
		if (r) {
			CHECK_EQ_INT(r, -EINVAL);
			got = last_refusal();
		} else if (p.n == 1) {
			body = body_of(&p, 0);
			if (asprintf(&got, "%s %s", p.calls[0].api_path,
				     body) < 0)
				got = NULL;
			free(body);
		}
		CHECK_EQ_STR(got ? got : "(none)", cases[i].want);
		free(got);
		commit_plan_release(&p);
	}
}

static struct outbox_row row_of(const char *kind, const char *method,
				const char *body)
{
	struct outbox_row r;

	memset(&r, 0, sizeof(r));
	r.kind = (char *)kind;
	r.method = (char *)method;
	r.body.data = (char *)body;
	r.body.len = body ? strlen(body) : 0;
	return r;
}

/* Edits and deletes are resent, not checked; new messages are checked. */
static void test_which_rows_are_checked(void)
{
	struct outbox_row r;

	r = row_of("message", "POST", "{\"type\":\"chat\",\"body\":\"x\"}");
	CHECK(commit_checked(&r) && !commit_idempotent(&r) &&
	      !commit_is_delete(&r));
	r = row_of("message", "POST", "{\"type\":\"edit\",\"editedMessageId\":"
		   "5,\"editType\":\"replace_body\",\"body\":\"x\"}");
	CHECK(!commit_checked(&r) && commit_idempotent(&r) &&
	      !commit_is_delete(&r));
	r = row_of("message", "POST", "{\"type\":\"edit\",\"editedMessageId\":"
		   "5,\"editType\":\"delete\",\"body\":\"\"}");
	CHECK(!commit_checked(&r) && commit_idempotent(&r) &&
	      commit_is_delete(&r));
	r = row_of("contact_create", "POST", "{\"attributes\":{}}");
	CHECK(commit_checked(&r) && !commit_idempotent(&r));
	r = row_of("contact_delete", "DELETE", NULL);
	CHECK(!commit_checked(&r) && commit_idempotent(&r) &&
	      commit_is_delete(&r));
	r = row_of("timeline", "POST", "{}");
	CHECK(!commit_checked(&r) && !commit_idempotent(&r));
}

int main(void)
{
	UNIT_RUN(test_tags_add_and_delete);
	UNIT_RUN(test_tags_escaped_lines);
	UNIT_RUN(test_nul_in_lines_refused);
	UNIT_RUN(test_long_tag_delete);
	UNIT_RUN(test_duplicate_key_refused);
	UNIT_RUN(test_new_conversation_attributes);
	UNIT_RUN(test_every_write_has_a_target);
	UNIT_RUN(test_message_text);
	UNIT_RUN(test_edits_diff_against_the_version_read);
	UNIT_RUN(test_edit_rules);
	UNIT_RUN(test_base_distance);
	UNIT_RUN(test_timeline_json_nul_escape_refused);
	UNIT_RUN(test_landed_message_must_be_ours_and_new);
	UNIT_RUN(test_which_rows_are_checked);
	return unit_summary();
}
