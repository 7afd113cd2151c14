// SPDX-License-Identifier: MIT
/* test_auth.c: unit tests of the credentials file and token answers (auth.h). */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth.h"
#include "unit.h"

static char tmpdir[64]; /* this run's scratch directory (mkdtemp) */

static const char *path_of(const char *leaf)
{
	static char path[160];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, leaf);
	return path;
}

static int write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);
	return chmod(path, mode);
}

static int read_from(const char *text, mode_t mode, struct auth_creds *c)
{
	const char *p = path_of("creds");
	int r;

	if (write_text(p, text, mode))
		return -EIO;
	unit_quiet(1);
	r = auth_creds_read(p, c);
	unit_quiet(0);
	return r;
}

static void test_read_forms(void)
{
	struct auth_creds c;

	CHECK_EQ_INT(read_from("bare-token==\n", 0600, &c), 0);
	CHECK_EQ_STR(c.access_token, "bare-token==");
	CHECK(c.refresh_token == NULL);
	CHECK_EQ_INT(c.expires_at, 0);
	auth_creds_release(&c);

	CHECK_EQ_INT(read_from("# by driftctl\naccess_token = A1\n"
			       "refresh_token=R1\nexpires_at = 1795428005\n"
			       "client_id = cid\nclient_secret = sec\n",
			       0600, &c),
		     0);
	CHECK_EQ_STR(c.access_token, "A1");
	CHECK_EQ_STR(c.refresh_token, "R1");
	CHECK_EQ_INT(c.expires_at, 1795428005);
	CHECK_EQ_STR(c.client_id, "cid");
	CHECK_EQ_STR(c.client_secret, "sec");
	auth_creds_release(&c);
	CHECK(c.access_token == NULL);

	/* A refresh token alone is enough: the source refreshes first. */
	CHECK_EQ_INT(read_from("refresh_token = R2\nclient_id=a\n", 0600, &c),
		     0);
	CHECK(c.access_token == NULL);
	CHECK_EQ_STR(c.refresh_token, "R2");
	auth_creds_release(&c);

	CHECK_EQ_INT(read_from("# nothing\n\n", 0600, &c), -ENOKEY);
	CHECK_EQ_INT(read_from("access_token =\n", 0600, &c), -ENOKEY);
	CHECK_EQ_INT(read_from("tok\n", 0640, &c), -EACCES);
	CHECK(c.access_token == NULL);
	CHECK_EQ_INT(read_from("tok\n", 0604, &c), -EACCES);
	unit_quiet(1);
	CHECK_EQ_INT(auth_creds_read(path_of("missing"), &c), -ENOENT);
	unit_quiet(0);
}

/*
 * The token a source made from a credentials file holding text (mode mode)
 * hands out, in *token (caller frees); -errno when auth_new() or
 * auth_token() refuses.
 */
static int source_token(const char *text, mode_t mode, char **token)
{
	const char *p = path_of("source-creds");
	struct config cfg;
	struct auth *a;
	int r;

	*token = NULL;
	if (write_text(p, text, mode) || config_defaults(&cfg))
		return -EIO;
	free(cfg.credentials);
	cfg.credentials = strdup(p);
	unit_quiet(1);
	a = auth_new(&cfg);
	r = a ? auth_token(a, NULL, token) : -errno;
	unit_quiet(0);
	auth_free(a);
	config_release(&cfg);
	return r;
}

/* What a source hands out before any refresh: the file's, or DRIFT_TOKEN. */
static void test_source_token(void)
{
	struct config cfg;
	char *tok = NULL;

	unsetenv("DRIFT_TOKEN");
	CHECK_EQ_INT(source_token("bare-token-123\n", 0600, &tok), 0);
	CHECK_EQ_STR(tok, "bare-token-123");
	free(tok);
	CHECK_EQ_INT(source_token("# saved\n\n  tok456  \n", 0600, &tok), 0);
	CHECK_EQ_STR(tok, "tok456");
	free(tok);
	CHECK_EQ_INT(source_token("refresh_token = RRR\naccess_token = AAA\n"
				  "expires_at = 1795428005\nclient_id=cid\n",
				  0600, &tok),
		     0);
	CHECK_EQ_STR(tok, "AAA");
	free(tok);
	CHECK_EQ_INT(source_token("access_token=BBB", 0400, &tok), 0);
	CHECK_EQ_STR(tok, "BBB");
	free(tok);

	/* Readable by others: refused, and nothing handed out. */
	CHECK_EQ_INT(source_token("leaky\n", 0644, &tok), -EACCES);
	CHECK(tok == NULL);
	CHECK_EQ_INT(source_token("leaky\n", 0640, &tok), -EACCES);
	CHECK(tok == NULL);

	/* No token in it, or a refresh token that cannot be used. */
	CHECK(source_token("# nothing\n\n", 0600, &tok) < 0);
	CHECK(tok == NULL);
	CHECK(source_token("refresh_token = RRR\n", 0600, &tok) < 0);
	CHECK(tok == NULL);

	/* DRIFT_TOKEN wins over the file; an empty one does not count. */
	setenv("DRIFT_TOKEN", "from-env", 1);
	CHECK_EQ_INT(source_token("access_token = AAA\n", 0600, &tok), 0);
	CHECK_EQ_STR(tok, "from-env");
	free(tok);
	CHECK_EQ_INT(source_token("leaky\n", 0644, &tok), 0);
	CHECK_EQ_STR(tok, "from-env");
	free(tok);
	setenv("DRIFT_TOKEN", "", 1);
	CHECK_EQ_INT(source_token("filetok\n", 0600, &tok), 0);
	CHECK_EQ_STR(tok, "filetok");
	free(tok);
	unsetenv("DRIFT_TOKEN");

	/* No file at all. */
	REQUIRE(config_defaults(&cfg) == 0);
	free(cfg.credentials);
	cfg.credentials = strdup(path_of("no-such-file"));
	unit_quiet(1);
	errno = 0;
	CHECK(auth_new(&cfg) == NULL);
	CHECK_EQ_INT(errno, ENOENT);
	unit_quiet(0);
	config_release(&cfg);
}

static void test_write_roundtrip(void)
{
	struct auth_creds w = { 0 }, r;
	char dir[160], path[200];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/new/deeper", tmpdir);
	snprintf(path, sizeof(path), "%s/credentials", dir);
	w.access_token = "at-1";
	w.refresh_token = "rt-1";
	w.expires_at = 1795428005;
	w.client_id = "app";
	w.client_secret = "s3cret";
	CHECK_EQ_INT(auth_creds_write(path, &w, 0), 0);
	REQUIRE(stat(path, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0600);
	REQUIRE(stat(dir, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
	CHECK_EQ_INT(auth_creds_read(path, &r), 0);
	CHECK_EQ_STR(r.access_token, "at-1");
	CHECK_EQ_STR(r.refresh_token, "rt-1");
	CHECK_EQ_INT(r.expires_at, 1795428005);
	CHECK_EQ_STR(r.client_id, "app");
	CHECK_EQ_STR(r.client_secret, "s3cret");
	auth_creds_release(&r);

	/* Overwriting leaves no temporary file behind. */
	w.access_token = "at-2";
	w.refresh_token = NULL;
	w.expires_at = 0;
	CHECK_EQ_INT(auth_creds_write(path, &w, 0), 0);
	CHECK_EQ_INT(auth_creds_read(path, &r), 0);
	CHECK_EQ_STR(r.access_token, "at-2");
	CHECK(r.refresh_token == NULL);
	CHECK_EQ_INT(r.expires_at, 0);
	auth_creds_release(&r);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd),
			 "test $(ls -A %s | wc -l) -eq 1", dir);
		CHECK_EQ_INT(system(cmd), 0);
	}

	/* A value that would not read back the same is refused. */
	w.access_token = "two words";
	CHECK_EQ_INT(auth_creds_write(path, &w, 0), -EINVAL);
	w.access_token = "line\nbreak";
	CHECK_EQ_INT(auth_creds_write(path, &w, 0), -EINVAL);
	CHECK_EQ_INT(auth_creds_read(path, &r), 0);
	CHECK_EQ_STR(r.access_token, "at-2");
	auth_creds_release(&r);

	/* A directory others may write to is refused; ours is tightened
	 * only when asked. */
	snprintf(dir, sizeof(dir), "%s/open", tmpdir);
	mkdir(dir, 0777);
	chmod(dir, 0777);
	snprintf(path, sizeof(path), "%s/credentials", dir);
	w.access_token = "at-3";
	unit_quiet(1);
	CHECK_EQ_INT(auth_creds_write(path, &w, 0), -EACCES);
	unit_quiet(0);
	CHECK_EQ_INT(auth_creds_write(path, &w, 1), 0);
	REQUIRE(stat(dir, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
}

static void test_token_answer(void)
{
	struct auth_creds c;
	static const char snake[] =
		"{\"access_token\":\"AT\",\"refresh_token\":\"RT\","
		"\"token_type\":\"bearer\",\"expires_in\":7200,"
		"\"orgId\":1351205}";
	static const char camel[] =
		"{\"accessToken\":\"AT2\",\"refreshToken\":\"RT2\","
		"\"expiresIn\":\"3600\"}";
	static const char ms[] = "{\"access_token\":\"AT3\",\"expires_in\":"
				 "7200000}";
	static const char install[] = "{\"access_token\":\"AT4\","
				      "\"expires_in\":0}";

	CHECK_EQ_INT(auth_parse_token_answer(snake, sizeof(snake) - 1, 1000,
					     &c),
		     0);
	CHECK_EQ_STR(c.access_token, "AT");
	CHECK_EQ_STR(c.refresh_token, "RT");
	CHECK_EQ_INT(c.expires_at, 8200);
	CHECK_EQ_INT(c.lifetime, 7200);
	CHECK_EQ_INT(c.org_id, 1351205);
	auth_creds_release(&c);

	CHECK_EQ_INT(auth_parse_token_answer(camel, sizeof(camel) - 1, 0, &c),
		     0);
	CHECK_EQ_STR(c.access_token, "AT2");
	CHECK_EQ_STR(c.refresh_token, "RT2");
	CHECK_EQ_INT(c.expires_at, 3600);
	auth_creds_release(&c);

	/* Milliseconds, as one Drift page says. */
	CHECK_EQ_INT(auth_parse_token_answer(ms, sizeof(ms) - 1, 0, &c), 0);
	CHECK_EQ_INT(c.expires_at, 7200);
	CHECK(c.refresh_token == NULL);
	auth_creds_release(&c);

	CHECK_EQ_INT(auth_parse_token_answer(install, sizeof(install) - 1, 5,
					     &c),
		     0);
	CHECK_EQ_INT(c.expires_at, 0);
	auth_creds_release(&c);

	CHECK_EQ_INT(auth_parse_token_answer("{}", 2, 0, &c), -EINVAL);
	CHECK_EQ_INT(auth_parse_token_answer("[1]", 3, 0, &c), -EINVAL);
	CHECK_EQ_INT(auth_parse_token_answer("{\"access_token\":\"a b\"}", 22,
					     0, &c),
		     -EINVAL);
	CHECK_EQ_INT(auth_parse_token_answer("{\"access_token\":5}", 18, 0,
					     &c),
		     -EINVAL);
	CHECK_EQ_INT(auth_parse_token_answer("nope", 4, 0, &c), -EINVAL);
	CHECK(c.access_token == NULL);
}

/*
 * A fake OAuth API on 127.0.0.1, one request a connection: POST
 * /oauth2/token trades the one valid refresh token for a new pair (refresh
 * tokens work once, as Drift's do); any other path answers 200 to the one
 * valid access token and 401 to anything else.
 */
struct oauth_fake {
	int lfd, wake[2];
	pthread_t thread;
	char base_url[64];
	pthread_mutex_t lock;	/* guards the fields below */
	char access[32];	/* the access token accepted now */
	char refresh[32];	/* the refresh token accepted now */
	int issued;		/* pairs issued so far */
	int token_calls;	/* POST /oauth2/token requests */
	int api_calls;		/* other requests */
	int posts;		/* other requests that were POSTs */
	int unauthorized;	/* 401 answers */
};

static void fake_reply(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, strlen(body));

	if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n)
		send(fd, body, strlen(body), MSG_NOSIGNAL);
}

static void oauth_serve(struct oauth_fake *f, int fd)
{
	struct timeval tv = { 5, 0 };
	char req[8192], body[512], *end, *auth, *cl;
	size_t len = 0, want;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	req[0] = '\0';
	while (!(end = strstr(req, "\r\n\r\n"))) {
		n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
	}
	cl = strcasestr(req, "\r\nContent-Length:");
	want = (size_t)(end + 4 - req) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
	while (len < want && len < sizeof(req) - 1) {
		n = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		req[len] = '\0';
	}
	pthread_mutex_lock(&f->lock);
	if (!strncmp(req, "POST /oauth2/token ", 19)) {
		char *rt = strstr(end + 4, "refresh_token=");
		size_t vl = rt ? strcspn(rt + 14, "&") : 0;

		f->token_calls++;
		if (rt && vl == strlen(f->refresh) &&
		    !strncmp(rt + 14, f->refresh, vl) &&
		    strstr(end + 4, "grant_type=refresh_token") &&
		    strstr(end + 4, "client_id=app") &&
		    strstr(end + 4, "client_secret=sec")) {
			f->issued++;
			snprintf(f->access, sizeof(f->access), "at-%d", f->issued);
			snprintf(f->refresh, sizeof(f->refresh), "rt-%d",
				 f->issued);
			snprintf(body, sizeof(body),
				 "{\"access_token\":\"%s\",\"refresh_token\":"
				 "\"%s\",\"expires_in\":7200}",
				 f->access, f->refresh);
			pthread_mutex_unlock(&f->lock);
			fake_reply(fd, 200, body);
			return;
		}
		pthread_mutex_unlock(&f->lock);
		fake_reply(fd, 400, "{\"error\":{\"type\":\"invalid_grant\","
				    "\"message\":\"invalid refresh token\"}}");
		return;
	}
	f->api_calls++;
	f->posts += !strncmp(req, "POST ", 5);
	auth = strcasestr(req, "\r\nAuthorization: Bearer ");
	if (auth && !strncmp(auth + 24, f->access, strlen(f->access)) &&
	    auth[24 + strlen(f->access)] == '\r') {
		pthread_mutex_unlock(&f->lock);
		fake_reply(fd, 200, "{\"ok\":true}");
		return;
	}
	f->unauthorized++;
	pthread_mutex_unlock(&f->lock);
	fake_reply(fd, 401, "{\"error\":{\"type\":\"authentication_error\","
			    "\"message\":\"The access token is invalid or has "
			    "expired\"}}");
}

static void *oauth_main(void *arg)
{
	struct oauth_fake *f = arg;

	for (;;) {
		struct pollfd p[2] = { { f->lfd, POLLIN, 0 },
				       { f->wake[0], POLLIN, 0 } };
		int fd;

		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		oauth_serve(f, fd);
		close(fd);
	}
	return NULL;
}

static int oauth_start(struct oauth_fake *f)
{
	struct sockaddr_in a = { 0 };
	socklen_t alen = sizeof(a);

	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->access, sizeof(f->access), "at-0");
	snprintf(f->refresh, sizeof(f->refresh), "rt-0");
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(f->lfd, 64) ||
	    getsockname(f->lfd, (struct sockaddr *)&a, &alen) ||
	    pipe2(f->wake, O_CLOEXEC))
		return -1;
	snprintf(f->base_url, sizeof(f->base_url), "http://127.0.0.1:%u",
		 (unsigned)ntohs(a.sin_port));
	return pthread_create(&f->thread, NULL, oauth_main, f) ? -1 : 0;
}

static void oauth_stop(struct oauth_fake *f)
{
	if (write(f->wake[1], "x", 1) != 1)
		pthread_cancel(f->thread);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	close(f->wake[0]);
	close(f->wake[1]);
	pthread_mutex_destroy(&f->lock);
}

/* "Expires" the current access token on the server side. */
static void oauth_expire(struct oauth_fake *f)
{
	pthread_mutex_lock(&f->lock);
	snprintf(f->access, sizeof(f->access), "at-revoked-%d", f->issued);
	pthread_mutex_unlock(&f->lock);
}

static int oauth_count(struct oauth_fake *f, int *field)
{
	int v;

	pthread_mutex_lock(&f->lock);
	v = *field;
	pthread_mutex_unlock(&f->lock);
	return v;
}

/* A token source and client on the fake, reading credentials at path. */
static struct http *oauth_client(struct oauth_fake *f, const char *path,
				 struct auth **a)
{
	struct config cfg;
	struct http_opts o = { 0 };
	struct http *h;

	*a = NULL;
	if (config_defaults(&cfg))
		return NULL;
	free(cfg.credentials);
	cfg.credentials = strdup(path);
	cfg.timeout = 5;
	*a = auth_new(&cfg);
	config_release(&cfg);
	if (!*a)
		return NULL;
	o.base_url = f->base_url;
	o.auth = auth_http(*a);
	o.timeout = 5;
	o.max_inflight = 8;
	h = http_new(&o);
	if (!h) {
		auth_free(*a);
		*a = NULL;
	}
	return h;
}

static int get_thing(struct http *h, const char *method)
{
	struct http_response resp;
	int r = http_call(h, method, "/thing", NULL,
			  strcmp(method, "GET") ? "{}" : NULL,
			  strcmp(method, "GET") ? 2 : 0, 0, 0, &resp);

	http_response_release(&resp);
	return r;
}

static void *get_thread(void *arg)
{
	return (void *)(intptr_t)get_thing(arg, "GET");
}

static void test_source_refreshes(void)
{
	struct oauth_fake f;
	struct auth_creds w = { 0 }, r;
	struct auth *a = NULL;
	struct http *h = NULL;
	const char *path = path_of("oauth-creds");
	pthread_t th[8];
	int base;

	REQUIRE(oauth_start(&f) == 0);
	/* A token the server no longer takes, not yet expired by the
	 * clock: the first call meets a 401. */
	w.access_token = "at-stale";
	w.refresh_token = "rt-0";
	w.expires_at = time(NULL) + 3600;
	w.client_id = "app";
	w.client_secret = "sec";
	unlink(path);
	REQUIRE(auth_creds_write(path, &w, 0) == 0);
	h = oauth_client(&f, path, &a);
	REQUIRE(h != NULL);

	/* 401, one refresh, the same request again. */
	unit_quiet(1);
	CHECK_EQ_INT(get_thing(h, "GET"), 0);
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), 1);
	CHECK_EQ_INT(oauth_count(&f, &f.api_calls), 2);
	CHECK_EQ_INT(auth_creds_read(path, &r), 0);
	CHECK_EQ_STR(r.access_token, "at-1");
	CHECK_EQ_STR(r.refresh_token, "rt-1");
	CHECK_EQ_STR(r.client_id, "app");
	CHECK_EQ_STR(r.client_secret, "sec");
	CHECK(r.expires_at > time(NULL) + 7000);
	auth_creds_release(&r);

	/* A POST refused with 401 is sent once more too, once. */
	oauth_expire(&f);
	unit_quiet(1);
	CHECK_EQ_INT(get_thing(h, "POST"), 0);
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), 2);
	CHECK_EQ_INT(oauth_count(&f, &f.posts), 2);

	/* Eight threads meeting the same 401: one refresh between them. */
	oauth_expire(&f);
	base = oauth_count(&f, &f.token_calls);
	unit_quiet(1);
	for (int i = 0; i < 8; i++)
		REQUIRE(pthread_create(&th[i], NULL, get_thread, h) == 0);
	for (int i = 0; i < 8; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		CHECK_EQ_INT((intptr_t)ret, 0);
	}
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), base + 1);

	/* Another process refreshed and rewrote the file: its token is
	 * taken as it is, with no refresh and no 401. */
	oauth_expire(&f);
	pthread_mutex_lock(&f.lock);
	f.issued++;
	snprintf(f.access, sizeof(f.access), "at-%d", f.issued);
	snprintf(f.refresh, sizeof(f.refresh), "rt-%d", f.issued);
	w.access_token = f.access;
	w.refresh_token = f.refresh;
	pthread_mutex_unlock(&f.lock);
	REQUIRE(auth_creds_write(path, &w, 0) == 0);
	base = oauth_count(&f, &f.token_calls);
	{
		int unauth = oauth_count(&f, &f.unauthorized);

		CHECK_EQ_INT(get_thing(h, "GET"), 0);
		CHECK_EQ_INT(oauth_count(&f, &f.unauthorized), unauth);
	}
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), base);

	/* A refresh the server refuses: -EACCES, and no second try until
	 * the file changes. */
	oauth_expire(&f);
	pthread_mutex_lock(&f.lock);
	snprintf(f.refresh, sizeof(f.refresh), "rt-elsewhere");
	pthread_mutex_unlock(&f.lock);
	base = oauth_count(&f, &f.token_calls);
	unit_quiet(1);
	CHECK_EQ_INT(get_thing(h, "GET"), -EACCES);
	CHECK_EQ_INT(get_thing(h, "GET"), -EACCES);
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), base + 1);

	http_free(h);
	auth_free(a);
	oauth_stop(&f);
}

static void test_source_refreshes_before_expiry(void)
{
	struct oauth_fake f;
	struct auth_creds w = { 0 };
	struct auth *a = NULL;
	struct http *h = NULL;
	const char *path = path_of("oauth-creds2");

	REQUIRE(oauth_start(&f) == 0);
	/* Expired by the clock: refreshed before the first request. */
	w.access_token = "at-0";
	w.refresh_token = "rt-0";
	w.expires_at = time(NULL) - 1;
	w.client_id = "app";
	w.client_secret = "sec";
	unlink(path);
	REQUIRE(auth_creds_write(path, &w, 0) == 0);
	h = oauth_client(&f, path, &a);
	REQUIRE(h != NULL);
	oauth_expire(&f);
	unit_quiet(1);
	CHECK_EQ_INT(get_thing(h, "GET"), 0);
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), 1);
	CHECK_EQ_INT(oauth_count(&f, &f.api_calls), 1);
	CHECK_EQ_INT(oauth_count(&f, &f.unauthorized), 0);
	http_free(h);
	auth_free(a);

	/* DRIFT_TOKEN is fixed: a 401 is final, nothing is refreshed. */
	setenv("DRIFT_TOKEN", "at-fixed", 1);
	h = oauth_client(&f, path, &a);
	REQUIRE(h != NULL);
	unit_quiet(1);
	CHECK_EQ_INT(get_thing(h, "GET"), -EACCES);
	unit_quiet(0);
	CHECK_EQ_INT(oauth_count(&f, &f.token_calls), 1);
	unsetenv("DRIFT_TOKEN");
	http_free(h);
	auth_free(a);
	oauth_stop(&f);
}

int main(void)
{
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_auth.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	unsetenv("DRIFT_TOKEN");
	UNIT_RUN(test_read_forms);
	UNIT_RUN(test_source_token);
	UNIT_RUN(test_write_roundtrip);
	UNIT_RUN(test_token_answer);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	UNIT_RUN(test_source_refreshes);
	UNIT_RUN(test_source_refreshes_before_expiry);
	curl_global_cleanup();
	r = unit_summary();
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			r = 1;
	}
	return r;
}
