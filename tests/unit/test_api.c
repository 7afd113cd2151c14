// SPDX-License-Identifier: MIT
/* test_api.c: unit tests of envelopes and paging (api.h) on a fake server. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "api.h"
#include "buf.h"
#include "http.h"
#include "unit.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The fake Drift server: one thread on 127.0.0.1 (port chosen by the
 * kernel) that answers one request a connection, in order, from a table of
 * canned answers keyed by method and exact target (path?query). Anything
 * else gets a 404 in Drift's error shape, so a wrong request shows up both
 * in the request log and as an error from the client.
 *
 * Every buffer is bounded, every socket has a timeout, and after
 * FAKE_BUDGET requests everything is answered 404: a client that walks
 * pages forever fails in bounded time instead of hanging the test.
 */
#define FAKE_HEAD_MAX 16384	/* request line and headers, bytes */
#define FAKE_BUDGET 64		/* requests answered from the table */
#define FAKE_IO_TIMEOUT_S 5

struct canned {
	const char *target;	/* "/path?query", matched exactly */
	int status;
	const char *body;
	size_t len;		/* body bytes; 0 means strlen(body) */
};

/* A canned answer whose body is a C string. */
#define ANSWER(target, status, body) { (target), (status), (body), 0 }

struct fake {
	int lfd;			/* listening socket */
	int wake[2];			/* written by fake_close() */
	pthread_t thread;
	char base_url[64];
	char host[32];			/* the Host header we expect */
	const struct canned *table;
	size_t ntable;
	pthread_mutex_t lock;		/* guards the fields below */
	char *targets[FAKE_BUDGET];	/* requested targets, in order */
	size_t nreq;			/* requests seen, past the budget too */
	size_t bad_auth;		/* requests without our bearer token */
	size_t bad_host;		/* requests naming another Host */
	size_t bad_method;		/* requests other than GET */
};

static const char not_found[] =
	"{\"error\":{\"type\":\"not_found\",\"message\":\"no canned answer\"}}";

static const char too_large[] = "HTTP/1.1 431 Too Large\r\n"
				"Content-Length: 0\r\n"
				"Connection: close\r\n\r\n";

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	default:
		return "Status";
	}
}

/* Sends all of data; gives up quietly when the client has gone. */
static int send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Whether the header block head contains "name: value" (name any case). */
static int has_header(const char *head, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value);

	for (const char *p = strstr(head, "\r\n"); p;
	     p = strstr(p + 2, "\r\n")) {
		const char *h = p + 2;

		if (!strncasecmp(h, name, nl) && h[nl] == ':') {
			h += nl + 1;
			while (*h == ' ')
				h++;
			if (!strncmp(h, value, vl) &&
			    !strncmp(h + vl, "\r\n", 2))
				return 1;
		}
	}
	return 0;
}

static void fake_serve(struct fake *f, int fd)
{
	struct timeval tv = { FAKE_IO_TIMEOUT_S, 0 };
	char head[FAKE_HEAD_MAX + 1], reply[256];
	const struct canned *c = NULL;
	const char *body = not_found;
	char *sp1, *sp2;
	size_t len = 0, blen;
	int status = 404, in_budget;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	head[0] = '\0';
	while (!strstr(head, "\r\n\r\n")) {
		ssize_t n;

		if (len == FAKE_HEAD_MAX) {
			send_all(fd, too_large, sizeof(too_large) - 1);
			return;
		}
		n = recv(fd, head + len, FAKE_HEAD_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;	/* the client went away or stalled */
		len += (size_t)n;
		head[len] = '\0';
	}
	/* "METHOD SP target SP HTTP/1.1" */
	sp1 = strchr(head, ' ');
	sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
	if (!sp2 || strncmp(sp2 + 1, "HTTP/1.", 7))
		return;
	*sp1 = '\0';
	*sp2 = '\0';

	pthread_mutex_lock(&f->lock);
	in_budget = f->nreq < FAKE_BUDGET;
	if (in_budget)
		f->targets[f->nreq] = strdup(sp1 + 1);
	f->nreq++;
	f->bad_auth += !has_header(sp2 + 1, "Authorization", "Bearer t");
	f->bad_host += !has_header(sp2 + 1, "Host", f->host);
	f->bad_method += strcmp(head, "GET") != 0;
	pthread_mutex_unlock(&f->lock);

	for (size_t i = 0; in_budget && !strcmp(head, "GET") && i < f->ntable;
	     i++) {
		if (!strcmp(f->table[i].target, sp1 + 1)) {
			c = &f->table[i];
			break;
		}
	}
	if (c) {
		status = c->status;
		body = c->body;
	}
	blen = c && c->len ? c->len : strlen(body);
	snprintf(reply, sizeof(reply),
		 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		 status, reason(status), blen);
	if (!send_all(fd, reply, strlen(reply)))
		send_all(fd, body, blen);
	shutdown(fd, SHUT_WR);
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;

	for (;;) {
		struct pollfd p[2] = { { f->lfd, POLLIN, 0 },
				       { f->wake[0], POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		fake_serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_close_fds(struct fake *f)
{
	if (f->lfd >= 0)
		close(f->lfd);
	if (f->wake[0] >= 0)
		close(f->wake[0]);
	if (f->wake[1] >= 0)
		close(f->wake[1]);
}

/* Starts the server and a client pointed at it; NULL on failure. */
static struct http *fake_open(struct fake *f, const struct canned *table,
			      size_t ntable)
{
	struct sockaddr_in a = { 0 };
	socklen_t alen = sizeof(a);
	struct http_opts o = { 0 };
	struct http *h;

	memset(f, 0, sizeof(*f));
	f->wake[0] = f->wake[1] = -1;
	f->table = table;
	f->ntable = ntable;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(f->lfd, 16) ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &alen) ||
	    pipe2(f->wake, O_CLOEXEC))
		goto fail;
	snprintf(f->host, sizeof(f->host), "127.0.0.1:%u",
		 (unsigned)ntohs(a.sin_port));
	snprintf(f->base_url, sizeof(f->base_url), "http://%s", f->host);
	pthread_mutex_init(&f->lock, NULL);
	if (pthread_create(&f->thread, NULL, fake_main, f)) {
		pthread_mutex_destroy(&f->lock);
		goto fail;
	}
	o.base_url = f->base_url;
	o.token = "t";
	o.timeout = 5;
	o.rate = 0;
	o.max_inflight = 2;
	h = http_new(&o);
	if (!h) {
		if (write(f->wake[1], "x", 1) != 1)
			pthread_cancel(f->thread);
		pthread_join(f->thread, NULL);
		pthread_mutex_destroy(&f->lock);
		goto fail;
	}
	return h;
fail:
	printf("fake server: could not start: %s\n", strerror(errno));
	fake_close_fds(f);
	return NULL;
}

/*
 * Stops the client and the server; returns the targets requested, one a
 * line (caller frees). Checks that every request was a GET to our own host
 * with our token.
 */
static char *fake_close(struct fake *f, struct http *h)
{
	struct buf b = BUF_INIT;
	char *log;

	http_free(h);
	if (write(f->wake[1], "x", 1) != 1)
		pthread_cancel(f->thread);
	pthread_join(f->thread, NULL);
	fake_close_fds(f);
	for (size_t i = 0; i < f->nreq && i < FAKE_BUDGET; i++) {
		buf_adds(&b, f->targets[i] ? f->targets[i] : "(oom)");
		buf_addc(&b, '\n');
		free(f->targets[i]);
	}
	if (f->nreq > FAKE_BUDGET)
		buf_printf(&b, "... and %zu more\n", f->nreq - FAKE_BUDGET);
	CHECK_EQ_INT(f->bad_auth, 0);
	CHECK_EQ_INT(f->bad_host, 0);
	CHECK_EQ_INT(f->bad_method, 0);
	pthread_mutex_destroy(&f->lock);
	log = buf_detach(&b, NULL);
	buf_release(&b);
	return log;
}

/* What the callbacks saw. Fixed arrays: a short walk leaves zeroes. */
#define MAX_ROWS 16

struct conv_row {
	int64_t id, contact_id, created, updated;
	char status[16];
};

struct conv_rows {
	size_t n;
	struct conv_row row[MAX_ROWS];
	int stop_after;		/* > 0: return -ECANCELED after that many */
};

static int on_conversation(void *ctx, const struct api_conversation *c)
{
	struct conv_rows *s = ctx;

	if (s->n < MAX_ROWS) {
		struct conv_row *r = &s->row[s->n];

		r->id = c->id;
		r->contact_id = c->contact_id;
		r->created = c->created;
		r->updated = c->updated;
		memcpy(r->status, c->status, sizeof(r->status));
	}
	s->n++;
	if (s->stop_after && s->n >= (size_t)s->stop_after)
		return -ECANCELED;
	return 0;
}

/* Pages like sync.c does, but gives up after max_calls calls. */
static int walk(struct http *h, struct api_cursor *cur, struct conv_rows *rows,
		unsigned max_calls, unsigned *calls)
{
	int r = 0;

	*calls = 0;
	while (!cur->done && *calls < max_calls) {
		(*calls)++;
		r = api_conversations_page(h, cur, on_conversation, rows);
		if (r)
			break;
	}
	return r;
}

struct msg_rows {
	size_t n;
	struct api_message m[MAX_ROWS];	/* owned: taken from the callback */
	int stop_after;
};

/* Takes ownership the way api.h allows: copy, then zero the original. */
static int on_message(void *ctx, struct api_message *m)
{
	struct msg_rows *s = ctx;

	if (s->n < MAX_ROWS) {
		s->m[s->n] = *m;
		memset(m, 0, sizeof(*m));
	}
	s->n++;
	if (s->stop_after && s->n >= (size_t)s->stop_after)
		return -ECANCELED;
	return 0;
}

static void msg_rows_release(struct msg_rows *s)
{
	for (size_t i = 0; i < MAX_ROWS; i++)
		api_message_release(&s->m[i]);
}

struct contact_rows {
	size_t n;
	int64_t id[MAX_ROWS];
	char email[MAX_ROWS][64];
};

static int on_contact(void *ctx, const struct api_contact *c)
{
	struct contact_rows *s = ctx;

	if (s->n < MAX_ROWS) {
		s->id[s->n] = c->id;
		snprintf(s->email[s->n], sizeof(s->email[0]), "%s",
			 c->email ? c->email : "(null)");
	}
	s->n++;
	return 0;
}

struct user_rows {
	size_t n;
	int64_t id[MAX_ROWS], mtime[MAX_ROWS];
	int bot[MAX_ROWS];
	char name[MAX_ROWS][32];
};

static int on_user(void *ctx, const struct api_user *u)
{
	struct user_rows *s = ctx;

	if (s->n < MAX_ROWS) {
		s->id[s->n] = u->id;
		s->mtime[s->n] = u->mtime;
		s->bot[s->n] = u->bot;
		snprintf(s->name[s->n], sizeof(s->name[0]), "%s",
			 u->name ? u->name : "(null)");
	}
	s->n++;
	return 0;
}

struct object_rows {
	size_t n;
	int64_t id[MAX_ROWS], mtime[MAX_ROWS];
	char key[MAX_ROWS][32];
	int has_json[MAX_ROWS];
};

static int on_object(void *ctx, const struct api_object *o)
{
	struct object_rows *s = ctx;

	if (s->n < MAX_ROWS) {
		s->id[s->n] = o->id;
		s->mtime[s->n] = o->mtime;
		snprintf(s->key[s->n], sizeof(s->key[0]), "%s",
			 o->key ? o->key : "(null)");
		s->has_json[s->n] = o->json.len > 0;
	}
	s->n++;
	return 0;
}

/* 1. Legacy paging: limit=100 first, then limit=50&next=<cursor>. */
static void test_conversations_legacy_paging(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":1,\"status\":\"OPEN\","
		  "\"contactId\":17035536800,\"createdAt\":1700000001000,"
		  "\"updatedAt\":1700000009000},"
		  "{\"id\":9007199254740993,\"status\":\"closed\","
		  "\"createdAt\":1700000002000}],"
		  "\"pagination\":{\"more\":true,\"next\":\"abc\"}}"),
		ANSWER("/conversations/list?limit=50&next=abc", 200,
		  "{\"data\":[{\"id\":3,\"status\":\"bulk_sent\","
		  "\"createdAt\":5,\"updatedAt\":6}]}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;
	int r;

	REQUIRE(h);
	r = walk(h, &cur, &rows, 10, &calls);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(calls, 2);
	CHECK(cur.done);
	CHECK(!cur.legacy_limit);
	CHECK_EQ_INT(cur.pages, 2);
	CHECK(cur.next == NULL);
	/* Once done, a page call is a no-op: no request. */
	CHECK_EQ_INT(api_conversations_page(h, &cur, on_conversation, &rows),
		     0);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/list?limit=50&next=abc\n");
	free(log);

	CHECK_EQ_INT(rows.n, 3);
	CHECK_EQ_INT(rows.row[0].id, 1);
	CHECK_EQ_STR(rows.row[0].status, "open");
	CHECK_EQ_INT(rows.row[0].contact_id, 17035536800LL);
	CHECK_EQ_INT(rows.row[0].created, 1700000001000LL);
	CHECK_EQ_INT(rows.row[0].updated, 1700000009000LL);
	/* Above 2^53: a double would have made this ...992. */
	CHECK_EQ_INT(rows.row[1].id, 9007199254740993LL);
	CHECK_EQ_STR(rows.row[1].status, "closed");
	CHECK_EQ_INT(rows.row[1].contact_id, 0);
	CHECK_EQ_INT(rows.row[1].updated, 1700000002000LL);
	CHECK_EQ_INT(rows.row[2].id, 3);
	CHECK_EQ_STR(rows.row[2].status, "bulk_sent");
	api_cursor_release(&cur);
}

/* 2. A legacy server refusing limit=100: retry with 50 and carry on. */
static void test_conversations_legacy_limit(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/list?limit=100", 400,
		  "{\"error\":{\"type\":\"validation_error\","
		  "\"message\":\"limit must be at most 50\"}}"),
		ANSWER("/conversations/list?limit=50", 200,
		  "{\"data\":[{\"id\":10}],"
		  "\"pagination\":{\"more\":true,\"next\":\"n2\"}}"),
		ANSWER("/conversations/list?limit=50&next=n2", 200,
		  "{\"data\":[{\"id\":11}]}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;
	int r;

	REQUIRE(h);
	unit_quiet(1);
	r = walk(h, &cur, &rows, 10, &calls);
	unit_quiet(0);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(calls, 2);
	CHECK(cur.done);
	CHECK(cur.legacy_limit);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/list?limit=50\n"
			  "/conversations/list?limit=50&next=n2\n");
	free(log);
	CHECK_EQ_INT(rows.n, 2);
	CHECK_EQ_INT(rows.row[0].id, 10);
	CHECK_EQ_INT(rows.row[1].id, 11);
	api_cursor_release(&cur);
}

/* 3. page_token style: links.next names another host; we take its path. */
static void test_conversations_page_token(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":20}],\"links\":{"
		  "\"self\":\"https://api.drift.com/conversations/list\","
		  "\"next\":\"https://api.drift.com/conversations/list"
		  "?page_token=XYZ\"}}"),
		ANSWER("/conversations/list?page_token=XYZ", 200,
		  "{\"data\":[{\"id\":21},{\"id\":22}],\"links\":{"
		  "\"self\":\"https://api.drift.com/conversations/list"
		  "?page_token=XYZ\"}}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;
	int r;

	REQUIRE(h);
	r = walk(h, &cur, &rows, 10, &calls);
	CHECK_EQ_INT(r, 0);
	CHECK_EQ_INT(calls, 2);
	CHECK(cur.done);
	/* fake_close() also checks every request came to our host. */
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/list?page_token=XYZ\n");
	free(log);
	CHECK_EQ_INT(rows.n, 3);
	CHECK_EQ_INT(rows.row[0].id, 20);
	CHECK_EQ_INT(rows.row[1].id, 21);
	CHECK_EQ_INT(rows.row[2].id, 22);
	api_cursor_release(&cur);
}

/* 4. A cursor that comes back unchanged ends the walk with -EIO. */
static void test_conversations_cursor_repeats(void)
{
	static const struct canned legacy[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":30}],"
		  "\"pagination\":{\"more\":true,\"next\":\"abc\"}}"),
		ANSWER("/conversations/list?limit=50&next=abc", 200,
		  "{\"data\":[{\"id\":31}],"
		  "\"pagination\":{\"more\":true,\"next\":\"abc\"}}"),
	};
	static const struct canned token[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":40}],\"links\":{\"next\":"
		  "\"https://api.drift.com/conversations/list"
		  "?page_token=P\"}}"),
		ANSWER("/conversations/list?page_token=P", 200,
		  "{\"data\":[{\"id\":41}],\"links\":{\"next\":"
		  "\"https://api.drift.com/conversations/list"
		  "?page_token=P\"}}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, legacy, ARRAY_SIZE(legacy));
	unsigned calls;
	char *log;
	int r;

	REQUIRE(h);
	unit_quiet(1);
	r = walk(h, &cur, &rows, 10, &calls);
	unit_quiet(0);
	CHECK_EQ_INT(r, -EIO);
	CHECK_EQ_INT(calls, 2);
	CHECK(cur.done);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/list?limit=50&next=abc\n");
	free(log);
	/* The next page is judged before rows are handed out. */
	CHECK_EQ_INT(rows.n, 1);
	CHECK_EQ_INT(rows.row[0].id, 30);
	api_cursor_release(&cur);

	memset(&rows, 0, sizeof(rows));
	h = fake_open(&f, token, ARRAY_SIZE(token));
	REQUIRE(h);
	unit_quiet(1);
	r = walk(h, &cur, &rows, 10, &calls);
	unit_quiet(0);
	CHECK_EQ_INT(r, -EIO);
	CHECK_EQ_INT(calls, 2);
	CHECK(cur.done);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/list?page_token=P\n");
	free(log);
	CHECK_EQ_INT(rows.n, 1);
	CHECK_EQ_INT(rows.row[0].id, 40);
	api_cursor_release(&cur);
}

/*
 * A cursor that comes back two pages later (A, B, A, ...) repeats as
 * surely as one that comes back at once; api.h promises an error, not a
 * walk of MAX_PAGES requests.
 */
static void test_conversations_cursor_cycle(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":50}],"
		  "\"pagination\":{\"more\":true,\"next\":\"A\"}}"),
		ANSWER("/conversations/list?limit=50&next=A", 200,
		  "{\"data\":[{\"id\":51}],"
		  "\"pagination\":{\"more\":true,\"next\":\"B\"}}"),
		ANSWER("/conversations/list?limit=50&next=B", 200,
		  "{\"data\":[{\"id\":52}],"
		  "\"pagination\":{\"more\":true,\"next\":\"A\"}}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;
	int r;

	REQUIRE(h);
	unit_quiet(1);
	r = walk(h, &cur, &rows, 10, &calls);
	unit_quiet(0);
	CHECK_EQ_INT(r, -EIO);
	CHECK(cur.done);
	CHECK(calls <= 4);
	log = fake_close(&f, h);
	free(log);
	api_cursor_release(&cur);
}

/* One page of the list from body; returns the walk's result. */
static int one_page(const char *body, struct conv_rows *rows, int *done)
{
	struct canned t[] = { { "/conversations/list?limit=100", 200, body,
				0 } };
	struct api_cursor cur = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;
	int r;

	if (!h)
		return -ENOTCONN;
	unit_quiet(1);
	r = walk(h, &cur, rows, 10, &calls);
	unit_quiet(0);
	*done = cur.done;
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n");
	free(log);
	api_cursor_release(&cur);
	return r;
}

/* 5. Wrong shapes are -EIO; rows without a usable id are skipped. */
static void test_conversations_wrong_shapes(void)
{
	static const char *const bad[] = {
		"{\"data\": {\"id\": 1}}",
		"{\"data\": [",
		"{\"data\": null}",
		"{\"error\": {\"type\": \"x\", \"message\": \"y\"}}",
		"[{\"id\": 1}]",
		"",
	};
	struct conv_rows rows;
	int done;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&rows, 0, sizeof(rows));
		done = 0;
		unit_ctx = bad[i];
		CHECK_EQ_INT(one_page(bad[i], &rows, &done), -EIO);
		CHECK(done);
		CHECK_EQ_INT(rows.n, 0);
	}
	unit_ctx = NULL;

	memset(&rows, 0, sizeof(rows));
	done = 0;
	CHECK_EQ_INT(one_page("{\"data\": [{\"status\": \"open\"},"
			      " {\"id\": \"123\"}, {\"id\": {}},"
			      " {\"id\": 41}, {\"id\": null}, {\"id\": 1.5},"
			      " {\"id\": -3}, {\"id\": 0}, {\"id\": \"12a\"},"
			      " 7, null, [], {\"id\": \"9007199254740993\"}]}",
			      &rows, &done),
		     0);
	CHECK(done);
	CHECK_EQ_INT(rows.n, 3);
	CHECK_EQ_INT(rows.row[0].id, 123);
	CHECK_EQ_INT(rows.row[1].id, 41);
	CHECK_EQ_INT(rows.row[2].id, 9007199254740993LL);
}

/* A callback's -errno stops the walk and is what the walk returns. */
static void test_callback_stops_walk(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":1},{\"id\":2}],"
		  "\"pagination\":{\"more\":true,\"next\":\"x\"}}"),
		ANSWER("/conversations/7/messages", 200,
		  "{\"data\":{\"messages\":[{\"id\":1},{\"id\":2}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"50\"}}"),
	};
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { .stop_after = 1 };
	struct msg_rows msgs = { .stop_after = 1 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	unsigned calls;
	char *log;

	REQUIRE(h);
	CHECK_EQ_INT(walk(h, &cur, &rows, 10, &calls), -ECANCELED);
	CHECK_EQ_INT(calls, 1);
	CHECK(cur.done);
	CHECK_EQ_INT(rows.n, 1);
	CHECK_EQ_INT(api_messages(h, 7, on_message, &msgs), -ECANCELED);
	CHECK_EQ_INT(msgs.n, 1);
	CHECK_EQ_INT(msgs.m[0].id, 1);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/list?limit=100\n"
			  "/conversations/7/messages\n");
	free(log);
	msg_rows_release(&msgs);
	api_cursor_release(&cur);
}

/* 6. Messages: both last-page shapes, attachments, HTML, authors. */
static void test_messages(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/5/messages", 200,
		  "{\"data\":{\"messages\":["
		  "{\"id\":101,\"conversationId\":5,\"orgId\":1,"
		  "\"body\":\"<p>Hi <b>there</b> &amp; \\\"you\\\"</p>\","
		  "\"author\":{\"type\":\"contact\",\"id\":17035536800,"
		  "\"bot\":false},\"type\":\"chat\","
		  "\"createdAt\":1700000000001,"
		  "\"attachments\":[{\"id\":7,\"fileName\":\"a/b.txt\","
		  "\"mimeType\":\"text/plain\","
		  "\"url\":\"https://cdn.example/files/a%2Fb.txt\"}]},"
		  "{\"id\":102,"
		  "\"body\":\"<div class=\\\"driftiwyg\\\">bot</div>\","
		  "\"author\":{\"type\":\"user\",\"id\":243266,\"bot\":true},"
		  "\"type\":\"private_note\",\"createdAt\":1700000000002,"
		  "\"attachment\":{\"fileName\":\"c.png\","
		  "\"mimeType\":\"image/png\","
		  "\"url\":\"https://driftapi.com/attachments/99/data\"}}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"50\"}}"),
		ANSWER("/conversations/5/messages?next=50", 200,
		  "{\"data\":{\"messages\":[{\"id\":9007199254740995,"
		  "\"conversationId\":5,\"body\":\"last\","
		  "\"author\":{\"type\":\"user\",\"id\":3},"
		  "\"createdAt\":1700000000003}]},"
		  "\"pagination\":{\"more\":false}}"),
		ANSWER("/conversations/6/messages", 200,
		  "{\"data\":{\"messages\":[{\"id\":201,\"body\":\"a\"}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"p 2\"}}"),
		ANSWER("/conversations/6/messages?next=p%202", 200,
		  "{\"data\":{\"messages\":[{\"id\":202,\"body\":\"b\"}]}}"),
	};
	struct msg_rows a = { 0 }, b = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	struct api_message *m;
	char *log;

	REQUIRE(h);
	CHECK_EQ_INT(api_messages(h, 5, on_message, &a), 0);
	CHECK_EQ_INT(api_messages(h, 6, on_message, &b), 0);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/5/messages\n"
			  "/conversations/5/messages?next=50\n"
			  "/conversations/6/messages\n"
			  "/conversations/6/messages?next=p%202\n");
	free(log);

	CHECK_EQ_INT(a.n, 3);
	m = &a.m[0];
	CHECK_EQ_INT(m->id, 101);
	CHECK_EQ_INT(m->conversation_id, 5);
	CHECK_EQ_INT(m->created, 1700000000001LL);
	CHECK_EQ_STR(m->body, "<p>Hi <b>there</b> &amp; \"you\"</p>");
	CHECK_EQ_STR(m->author_type, "contact");
	CHECK_EQ_INT(m->author_id, 17035536800LL);
	CHECK_EQ_INT(m->bot, 0);
	CHECK_EQ_STR(m->type, "chat");
	CHECK(m->json.len > 0);
	CHECK_EQ_INT(m->natt, 1);
	if (m->natt == 1) {
		CHECK_EQ_INT(m->att[0].id, 7);
		CHECK_EQ_STR(m->att[0].file_name, "a/b.txt");
		CHECK_EQ_STR(m->att[0].mime, "text/plain");
	}
	m = &a.m[1];
	CHECK_EQ_INT(m->id, 102);
	CHECK_EQ_INT(m->conversation_id, 5);	/* from the request */
	CHECK_EQ_STR(m->body, "<div class=\"driftiwyg\">bot</div>");
	CHECK_EQ_STR(m->author_type, "user");
	CHECK_EQ_INT(m->author_id, 243266);
	CHECK_EQ_INT(m->bot, 1);
	CHECK_EQ_STR(m->type, "private_note");
	CHECK_EQ_INT(m->natt, 1);
	if (m->natt == 1) {
		CHECK_EQ_INT(m->att[0].id, 99);
		CHECK_EQ_STR(m->att[0].file_name, "c.png");
		CHECK_EQ_STR(m->att[0].mime, "image/png");
	}
	m = &a.m[2];
	CHECK_EQ_INT(m->id, 9007199254740995LL);
	CHECK_EQ_STR(m->body, "last");
	CHECK_EQ_STR(m->type, "chat");	/* the default */
	CHECK_EQ_INT(m->author_id, 3);
	CHECK_EQ_INT(m->bot, 0);
	CHECK_EQ_INT(m->natt, 0);

	CHECK_EQ_INT(b.n, 2);
	CHECK_EQ_INT(b.m[0].id, 201);
	CHECK_EQ_INT(b.m[0].conversation_id, 6);
	CHECK_EQ_STR(b.m[0].author_type, "");
	CHECK_EQ_INT(b.m[1].id, 202);
	CHECK_EQ_STR(b.m[1].body, "b");
	msg_rows_release(&a);
	msg_rows_release(&b);
}

/* Message paging ends on a repeating cursor and on wrong shapes. */
static void test_messages_bad_paging(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/1/messages", 200,
		  "{\"data\":{\"messages\":[{\"id\":1}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"50\"}}"),
		ANSWER("/conversations/1/messages?next=50", 200,
		  "{\"data\":{\"messages\":[{\"id\":2}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"50\"}}"),
		ANSWER("/conversations/2/messages", 200,
		  "{\"data\":{\"message\":[]}}"),
		ANSWER("/conversations/3/messages", 200,
		       "{\"data\":{\"messages\":"),
	};
	struct msg_rows a = { 0 }, b = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	char *log;

	REQUIRE(h);
	unit_quiet(1);
	CHECK_EQ_INT(api_messages(h, 1, on_message, &a), -EIO);
	CHECK_EQ_INT(api_messages(h, 2, on_message, &b), -EIO);
	CHECK_EQ_INT(api_messages(h, 3, on_message, &b), -EIO);
	unit_quiet(0);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/conversations/1/messages\n"
			  "/conversations/1/messages?next=50\n"
			  "/conversations/2/messages\n"
			  "/conversations/3/messages\n");
	free(log);
	CHECK_EQ_INT(a.n, 2);
	CHECK_EQ_INT(b.n, 0);
	msg_rows_release(&a);
	msg_rows_release(&b);
}

/* Same promise as for the conversation list: A, B, A is an error. */
static void test_messages_cursor_cycle(void)
{
	static const struct canned t[] = {
		ANSWER("/conversations/1/messages", 200,
		  "{\"data\":{\"messages\":[{\"id\":1}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"A\"}}"),
		ANSWER("/conversations/1/messages?next=A", 200,
		  "{\"data\":{\"messages\":[{\"id\":2}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"B\"}}"),
		ANSWER("/conversations/1/messages?next=B", 200,
		  "{\"data\":{\"messages\":[{\"id\":3}]},"
		  "\"pagination\":{\"more\":true,\"next\":\"A\"}}"),
	};
	struct msg_rows a = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	char *log;
	int r;

	REQUIRE(h);
	/* The fake's request budget ends a runaway walk with a 404. */
	unit_quiet(1);
	r = api_messages(h, 1, on_message, &a);
	unit_quiet(0);
	log = fake_close(&f, h);
	CHECK_EQ_INT(r, -EIO);
	CHECK(f.nreq <= 4);
	free(log);
	msg_rows_release(&a);
}

/* An opaque cursor is sent whole, however long, or not at all. */
static void test_messages_long_cursor(void)
{
	static char page1[1024], target[1024];
	struct canned t[2] = {
		{ "/conversations/8/messages", 200, page1, 0 },
		{ target, 200, "{\"data\":{\"messages\":[{\"id\":2}]}}", 0 },
	};
	char cursor[601], *log, *want = NULL;
	struct msg_rows a = { 0 };
	struct fake f;
	struct http *h;
	int r;

	memset(cursor, 'x', sizeof(cursor) - 1);
	cursor[sizeof(cursor) - 1] = '\0';
	snprintf(page1, sizeof(page1),
		 "{\"data\":{\"messages\":[{\"id\":1}]},"
		 "\"pagination\":{\"more\":true,\"next\":\"%s\"}}",
		 cursor);
	snprintf(target, sizeof(target), "/conversations/8/messages?next=%s",
		 cursor);
	h = fake_open(&f, t, ARRAY_SIZE(t));
	REQUIRE(h);
	unit_quiet(1);
	r = api_messages(h, 8, on_message, &a);
	unit_quiet(0);
	log = fake_close(&f, h);
	/* Refusing the cursor (-EIO) would keep the promise too. */
	if (r == -EIO) {
		CHECK_EQ_INT(a.n, 1);
		CHECK_EQ_STR(log, "/conversations/8/messages\n");
	} else {
		CHECK_EQ_INT(r, 0);
		CHECK_EQ_INT(a.n, 2);
		if (asprintf(&want, "/conversations/8/messages\n%s\n",
			     target) < 0)
			want = NULL;
		CHECK_EQ_STR(log, want);
	}
	free(want);
	free(log);
	msg_rows_release(&a);
}

/* 7. Contacts: envelopes, id mismatch, error statuses, lookups. */
static void test_contacts(void)
{
	static const struct canned t[] = {
		ANSWER("/contacts/17035536800", 200,
		  "{\"data\":{\"id\":17035536800,\"createdAt\":1686303243241,"
		  "\"attributes\":{\"email\":\"ada@example.com\","
		  "\"name\":\"Ada Lovelace\",\"externalId\":\"cust-7f3a9\","
		  "\"tags\":[{\"name\":\"VIP\",\"color\":\"fff\"},"
		  "\"b\\nc\",\"d\\u009b2J\\u001b]0;t\","
		  "\"\\u202eevil\",\"50%off\"]}}}"),
		ANSWER("/contacts/2", 200,
		  "{\"data\":{\"id\":3,\"attributes\":{\"email\":\"x@y\"}}}"),
		ANSWER("/contacts/4", 200, "{\"data\":[{\"id\":4}]}"),
		ANSWER("/contacts/404", 404,
		  "{\"error\":{\"type\":\"not_found\","
		  "\"message\":\"no such contact\"}}"),
		ANSWER("/contacts/401", 401,
		  "{\"error\":{\"type\":\"authentication_error\",\"message\":"
		  "\"The access token is invalid or has expired\"}}"),
		ANSWER("/contacts?email=nobody%40example.com", 200,
		       "{\"data\": []}"),
		ANSWER("/contacts?email=ada%2Bx%40example.com", 200,
		  "{\"data\":{\"id\":17035536801,"
		  "\"attributes\":{\"email\":\"ada+x@example.com\"}}}"),
		ANSWER("/contacts?idType=external&id=a%26b", 200,
		  "{\"data\":[{\"id\":5,\"attributes\":{\"email\":\"e@f\"}},"
		  "{\"attributes\":{}},{\"id\":6,\"attributes\":7}]}"),
	};
	struct api_contact c = { 0 };
	struct contact_rows none = { 0 }, one = { 0 }, ext = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	char *log;

	REQUIRE(h);
	CHECK_EQ_INT(api_contact_get(h, 17035536800LL, &c), 0);
	CHECK_EQ_INT(c.id, 17035536800LL);
	CHECK_EQ_INT(c.created, 1686303243241LL);
	CHECK_EQ_STR(c.email, "ada@example.com");
	CHECK_EQ_STR(c.name, "Ada Lovelace");
	CHECK_EQ_STR(c.external_id, "cust-7f3a9");
	/* Controls, C1 ones (U+009B is CSI) included, are escaped. */
	CHECK_EQ_STR(c.tags.data, "VIP\nb%0Ac\nd%C2%9B2J%1B]0;t\n"
				  "%E2%80%AEevil\n50%25off\n");
	CHECK(c.json.len > 0);
	api_contact_release(&c);

	unit_quiet(1);
	CHECK_EQ_INT(api_contact_get(h, 2, &c), -EIO);
	api_contact_release(&c);
	CHECK_EQ_INT(api_contact_get(h, 4, &c), -EIO);
	api_contact_release(&c);
	CHECK_EQ_INT(api_contact_get(h, 404, &c), -ENOENT);
	api_contact_release(&c);
	CHECK_EQ_INT(api_contact_get(h, 401, &c), -EACCES);
	api_contact_release(&c);
	unit_quiet(0);

	CHECK_EQ_INT(api_contacts_by_email(h, "nobody@example.com", on_contact,
					   &none),
		     0);
	CHECK_EQ_INT(none.n, 0);
	CHECK_EQ_INT(api_contacts_by_email(h, "ada+x@example.com", on_contact,
					   &one),
		     0);
	CHECK_EQ_INT(one.n, 1);
	CHECK_EQ_INT(one.id[0], 17035536801LL);
	CHECK_EQ_STR(one.email[0], "ada+x@example.com");
	unit_quiet(1);
	CHECK_EQ_INT(api_contacts_by_external_id(h, "a&b", on_contact, &ext),
		     0);
	unit_quiet(0);
	CHECK_EQ_INT(ext.n, 2);
	CHECK_EQ_INT(ext.id[0], 5);
	CHECK_EQ_STR(ext.email[0], "e@f");
	CHECK_EQ_INT(ext.id[1], 6);
	CHECK_EQ_STR(ext.email[1], "(null)");

	log = fake_close(&f, h);
	/* One request each: 4xx answers are not retried. */
	CHECK_EQ_STR(log, "/contacts/17035536800\n"
			  "/contacts/2\n"
			  "/contacts/4\n"
			  "/contacts/404\n"
			  "/contacts/401\n"
			  "/contacts?email=nobody%40example.com\n"
			  "/contacts?email=ada%2Bx%40example.com\n"
			  "/contacts?idType=external&id=a%26b\n");
	free(log);
}

/* 8. Playbooks come as a bare array; accounts page by data.next. */
static void test_playbooks_and_accounts(void)
{
	static const struct canned t[] = {
		ANSWER("/playbooks/list", 200,
		  "[{\"id\":1122498147,\"name\":\"Welcome\",\"orgId\":123,"
		  "\"createdAt\":1,\"updatedAt\":1700000000000,"
		  "\"goals\":[{\"id\":\"f4c5\",\"message\":\"Thanks!\"}]},"
		  "{\"name\":\"no id\"},"
		  "{\"id\":2,\"createdAt\":5}]"),
		ANSWER("/accounts?index=0&size=65", 200,
		  "{\"data\":{\"accounts\":["
		  "{\"accountId\":\"123458_acme.example\",\"ownerId\":21965,"
		  "\"createDateTime\":1531159572668,"
		  "\"updateDateTime\":1533243683493},"
		  "{\"ownerId\":1},"
		  "{\"accountId\":\"b\",\"createDateTime\":7}],"
		  "\"total\":3,\"next\":\"/accounts?index=65&size=65\"}}"),
		ANSWER("/accounts?index=65&size=65", 200,
		  "{\"data\":{\"accounts\":[{\"accountId\":\"c\"}],"
		  "\"total\":3}}"),
	};
	struct object_rows pb = { 0 }, acc = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	char *log;

	REQUIRE(h);
	unit_quiet(1);
	CHECK_EQ_INT(api_playbooks(h, on_object, &pb), 0);
	CHECK_EQ_INT(api_accounts(h, on_object, &acc), 0);
	unit_quiet(0);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/playbooks/list\n"
			  "/accounts?index=0&size=65\n"
			  "/accounts?index=65&size=65\n");
	free(log);

	CHECK_EQ_INT(pb.n, 2);
	CHECK_EQ_INT(pb.id[0], 1122498147);
	CHECK_EQ_INT(pb.mtime[0], 1700000000000LL);
	CHECK_EQ_STR(pb.key[0], "(null)");
	CHECK(pb.has_json[0]);
	CHECK_EQ_INT(pb.id[1], 2);
	CHECK_EQ_INT(pb.mtime[1], 5);

	CHECK_EQ_INT(acc.n, 3);
	CHECK_EQ_STR(acc.key[0], "123458_acme.example");
	CHECK_EQ_INT(acc.mtime[0], 1533243683493LL);
	CHECK(acc.has_json[0]);
	CHECK_EQ_STR(acc.key[1], "b");
	CHECK_EQ_INT(acc.mtime[1], 7);
	CHECK_EQ_STR(acc.key[2], "c");
	CHECK_EQ_INT(acc.mtime[2], 0);
}

/*
 * 8b. A next link holding a byte RFC 3986 does not allow (a control, space,
 * DEL, non-ASCII, '"', '\\') is refused, not followed: its path would be a
 * request line, a log line and a stats name.
 */
static void test_next_path_bytes(void)
{
	static const char *const bad[] = {
		"https://x/\x1b]52;c;ZXZpbA==\x07/list",
		"/list?page_token=a b",
		"/list\x7f",
		"/caf\xc3\xa9/list",
		"/list\x9b" "31m",
		"/a\"b",
		"/a\\b",
		"?page_token=\t",
		"https://x",
		"list",
	};
	static const struct canned t[] = {
		ANSWER("/accounts?index=0&size=65", 200,
		  "{\"data\":{\"accounts\":[{\"accountId\":\"a\"}],"
		  "\"next\":\"/accounts?index=65\\u001b[2J\"}}"),
		ANSWER("/conversations/list?limit=100", 200,
		  "{\"data\":[{\"id\":1}],\"links\":{\"next\":"
		  "\"https://x/\\u001b]52;c;ZXZpbA==\\u0007/list\"}}"),
	};
	struct object_rows acc = { 0 };
	struct api_cursor cur = { 0 };
	struct conv_rows rows = { 0 };
	struct fake f;
	struct http *h;
	char *p, *log;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		unit_ctx = bad[i];
		errno = 0;
		p = api_next_path(bad[i]);
		CHECK(p == NULL);
		CHECK_EQ_INT(errno, EINVAL);
		free(p);
	}
	unit_ctx = NULL;
	p = api_next_path("https://api.drift.com/conversations/list"
			  "?page_token=Ab-_~%2F&x=1");
	CHECK_EQ_STR(p, "/conversations/list?page_token=Ab-_~%2F&x=1");
	free(p);

	h = fake_open(&f, t, ARRAY_SIZE(t));
	REQUIRE(h);
	unit_quiet(1);
	CHECK_EQ_INT(api_accounts(h, on_object, &acc), -EIO);
	CHECK_EQ_INT(api_conversations_page(h, &cur, on_conversation, &rows),
		     -EIO);
	unit_quiet(0);
	log = fake_close(&f, h);
	/* Neither link was followed. */
	CHECK_EQ_STR(log, "/accounts?index=0&size=65\n"
			  "/conversations/list?limit=100\n");
	free(log);
	CHECK(cur.done);
	CHECK(cur.next == NULL);
	api_cursor_release(&cur);
}

/* 9. Attachment bytes are bounded by max; binary bytes come intact. */
static void test_attachment_data(void)
{
	static char big[5000], small[600];
	static const struct canned t[] = {
		{ "/attachments/1/data", 200, big, sizeof(big) },
		{ "/attachments/2/data", 200, small, sizeof(small) },
	};
	char got[sizeof(small) + 1];
	struct fake f;
	struct http *h;
	int64_t size;
	FILE *out = tmpfile();
	char *log;

	REQUIRE(out);
	memset(big, 'a', sizeof(big));
	for (size_t i = 0; i < sizeof(small); i++)
		small[i] = (char)(i * 7);	/* NULs included */
	h = fake_open(&f, t, ARRAY_SIZE(t));
	REQUIRE(h);
	unit_quiet(1);
	CHECK_EQ_INT(api_attachment_save(h, 1, 1000, fileno(out), &size),
		     -EFBIG);
	unit_quiet(0);
	CHECK_EQ_INT(api_attachment_save(h, 2, 1000, fileno(out), &size), 0);
	log = fake_close(&f, h);
	/* Too big is not worth a retry. */
	CHECK_EQ_STR(log, "/attachments/1/data\n/attachments/2/data\n");
	free(log);
	CHECK_EQ_INT(size, sizeof(small));
	CHECK_EQ_INT(pread(fileno(out), got, sizeof(got), 0), sizeof(small));
	CHECK_EQ_MEM(got, sizeof(small), small, sizeof(small));
	fclose(out);
}

/*
 * 9a. A download whose bytes cannot be written here (a full disk; in the
 * test, a file size limit) fails with that error, and the API, which
 * answered, is not taken for unreachable: the sync's workers gave up the
 * rest of the pass for it.
 */
static void test_attachment_local_error(void)
{
	static const struct canned t[] = {
		{ "/attachments/3/data", 200, "bytes", 5 },
	};
	struct rlimit old, lim;
	struct fake f;
	struct http *h;
	int64_t size;
	FILE *out = tmpfile();
	char *log;
	int r;

	REQUIRE(out);
	REQUIRE(!getrlimit(RLIMIT_FSIZE, &old));
	h = fake_open(&f, t, ARRAY_SIZE(t));
	REQUIRE(h);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 2;
	REQUIRE(!setrlimit(RLIMIT_FSIZE, &lim));
	unit_quiet(1);
	r = api_attachment_save(h, 3, 1000, fileno(out), &size);
	unit_quiet(0);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	CHECK_EQ_INT(r, -EFBIG);
	CHECK(http_reachable(h));
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/attachments/3/data\n");
	free(log);
	fclose(out);
}

/*
 * 9b. An attachment without an "id" takes the one in its URL, strictly:
 * not a number with junk after it, nor one past INT64_MAX (sscanf's %lld
 * saturated it to INT64_MAX, so two such attachments shared an id).
 */
static void test_attachment_id_from_url(void)
{
	static const char *const url[] = {
		"https://driftapi.com/attachments/42/data",
		"https://driftapi.com/attachments/42",
		"https://driftapi.com/attachments/99999999999999999999/data",
		"https://driftapi.com/attachments/12x/data",
		"https://driftapi.com/attachments/-3/data",
		"https://driftapi.com/attachments/ 5/data",
	};
	static const size_t natt[] = { 1, 1, 0, 0, 0, 0 };

	for (size_t i = 0; i < ARRAY_SIZE(url); i++) {
		struct msg_rows rows = { 0 };
		char body[512], *next = NULL;

		snprintf(body, sizeof(body),
			 "{\"data\":{\"messages\":[{\"id\":1,\"body\":\"x\","
			 "\"attachments\":[{\"fileName\":\"f\","
			 "\"url\":\"%s\"}]}]}}", url[i]);
		unit_quiet(1);
		CHECK_EQ_INT(api_parse_messages_page("t", body, strlen(body), 5,
						     on_message, &rows, &next),
			     0);
		unit_quiet(0);
		CHECK_EQ_INT(rows.n, 1);
		CHECK_EQ_INT(rows.m[0].natt, natt[i]);
		if (natt[i] && rows.m[0].natt)
			CHECK_EQ_INT(rows.m[0].att[0].id, 42);
		free(next);
		msg_rows_release(&rows);
	}
}

/* 10. /users/list as a map keyed by id, as the multi-get answers. */
static void test_users_map(void)
{
	static const struct canned t[] = {
		ANSWER("/users/list", 200,
		  "{\"data\":{\"1\":{\"id\":1,\"name\":\"Grace Hopper\","
		  "\"email\":\"grace@example.com\",\"createdAt\":3,"
		  "\"updatedAt\":1686303381300},"
		  "\"2\":{\"id\":2,\"alias\":\"Bot\",\"bot\":true,"
		  "\"createdAt\":7}}}"),
	};
	struct user_rows u = { 0 };
	struct fake f;
	struct http *h = fake_open(&f, t, ARRAY_SIZE(t));
	char *log;

	REQUIRE(h);
	CHECK_EQ_INT(api_users_list(h, on_user, &u), 0);
	log = fake_close(&f, h);
	CHECK_EQ_STR(log, "/users/list\n");
	free(log);
	CHECK_EQ_INT(u.n, 2);
	CHECK_EQ_INT(u.id[0], 1);
	CHECK_EQ_STR(u.name[0], "Grace Hopper");
	CHECK_EQ_INT(u.mtime[0], 1686303381300LL);
	CHECK_EQ_INT(u.bot[0], 0);
	CHECK_EQ_INT(u.id[1], 2);
	CHECK_EQ_STR(u.name[1], "Bot");
	CHECK_EQ_INT(u.mtime[1], 7);
	CHECK_EQ_INT(u.bot[1], 1);
}

/* 11. The org a user names, and the token endpoint's answer (no I/O). */
static void test_user_org_and_token_answer(void)
{
	static const char user[] = "{\"data\":{\"id\":5,\"orgId\":1351205}}";
	static const char plain[] = "{\"data\":{\"id\":6}}";
	static const char camel[] = "{\"accessToken\":\"A1\","
				    "\"refreshToken\":\"R1\","
				    "\"expiresIn\":7200000,\"orgId\":42}";
	static const char tab[] = "{\"access_token\":\"a\\tb\"}";
	struct api_oauth_token tok;
	struct api_user u;

	CHECK_EQ_INT(api_parse_user("t", user, sizeof(user) - 1, &u), 0);
	CHECK_EQ_INT(u.org, 1351205);
	api_user_release(&u);
	CHECK_EQ_INT(api_parse_user("t", plain, sizeof(plain) - 1, &u), 0);
	CHECK_EQ_INT(u.org, 0);
	api_user_release(&u);

	CHECK_EQ_INT(api_parse_oauth_token(camel, sizeof(camel) - 1, &tok), 0);
	CHECK_EQ_STR(tok.access_token, "A1");
	CHECK_EQ_STR(tok.refresh_token, "R1");
	CHECK_EQ_INT(tok.expires_in, 7200);	/* 7200000 ms */
	CHECK_EQ_INT(tok.org, 42);
	api_oauth_token_release(&tok);
	CHECK(!tok.access_token && !tok.refresh_token);
	/* A token a credentials line cannot hold is refused. */
	CHECK_EQ_INT(api_parse_oauth_token(tab, sizeof(tab) - 1, &tok),
		     -EINVAL);
	CHECK(!tok.access_token);
	api_oauth_token_release(NULL);
}

int main(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		printf("curl_global_init failed\n");
		return 1;
	}
	UNIT_RUN(test_conversations_legacy_paging);
	UNIT_RUN(test_conversations_legacy_limit);
	UNIT_RUN(test_conversations_page_token);
	UNIT_RUN(test_conversations_cursor_repeats);
	UNIT_RUN(test_conversations_cursor_cycle);
	UNIT_RUN(test_conversations_wrong_shapes);
	UNIT_RUN(test_callback_stops_walk);
	UNIT_RUN(test_messages);
	UNIT_RUN(test_messages_bad_paging);
	UNIT_RUN(test_messages_cursor_cycle);
	UNIT_RUN(test_messages_long_cursor);
	UNIT_RUN(test_contacts);
	UNIT_RUN(test_playbooks_and_accounts);
	UNIT_RUN(test_next_path_bytes);
	UNIT_RUN(test_attachment_data);
	UNIT_RUN(test_attachment_id_from_url);
	UNIT_RUN(test_attachment_local_error);
	UNIT_RUN(test_users_map);
	UNIT_RUN(test_user_org_and_token_answer);
	curl_global_cleanup();
	return unit_summary();
}
