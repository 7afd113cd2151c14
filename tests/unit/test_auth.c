// SPDX-License-Identifier: MIT
/* test_auth.c: unit tests of the credentials file and token answers (auth.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
	UNIT_RUN(test_write_roundtrip);
	UNIT_RUN(test_token_answer);
	r = unit_summary();
	{
		char cmd[100];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd))
			r = 1;
	}
	return r;
}
