// SPDX-License-Identifier: MIT
/* ctl.c: .driftfs/status, stats, errors and ctl commands (see ctl.h). */
#include "ctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "http.h"
#include "log.h"
#include "search.h"
#include "stats.h"
#include "store.h"
#include "sync.h"

int64_t ctl_mtime(struct driftfs *d)
{
	int64_t t = d->started_ms, v;

	v = http_last_activity(d->http);
	t = v > t ? v : t;
	v = log_errors_last_ms();
	t = v > t ? v : t;
	v = sync_last_event(d->sync);
	return v > t ? v : t;
}

int ctl_status(struct driftfs *d, struct buf *out)
{
	int64_t counts[STORE_COUNTS];
	char state[64];
	long failing = http_failing(d->http);
	int r;

	/* The first word is "online" or "offline": scripts (and driftctl
	 * users) read just that. */
	if (http_offline(d->http))
		snprintf(state, sizeof(state),
			 "offline (offline mode: serving the cache)");
	else if (!http_reachable(d->http))
		snprintf(state, sizeof(state),
			 "offline (API unreachable: serving the cache)");
	else if (failing)
		snprintf(state, sizeof(state),
			 "offline (API failing: HTTP %ld; serving the cache)",
			 failing);
	else
		snprintf(state, sizeof(state), "online");
	r = buf_printf(out, "state: %s\napi_url: %s\n", state,
		       d->cfg.api_url);
	r = r ? r : account_status_render(d->account, out);
	r = r ? r : sync_status_render(d->sync, out);
	if (!r && !store_counts(d->store, counts))
		for (size_t i = 0; i < STORE_COUNTS && !r; i++)
			r = buf_printf(out, "%s: %lld\n", store_count_names[i],
				       (long long)counts[i]);
	r = r ? r : search_status(d->store, out);
	r = r ? r : http_governor_render(d->http, out);
	r = r ? r : buf_printf(out, "errors: %lu\n", log_errors_total());
	return r;
}

int ctl_stats(struct driftfs *d, struct buf *out)
{
	(void)d;
	return stats_render(out);
}

int ctl_errors(struct driftfs *d, struct buf *out)
{
	(void)d;
	return log_errors_render(out);
}

/* "sync PATH": refetch the object a tree path names. */
static int sync_path(struct driftfs *d, const char *path)
{
	long long id;
	char rest;

	while (*path == '/')
		path++;
	if (sscanf(path, "contacts/%lld%c", &id, &rest) >= 1 && id > 0)
		return sync_fetch_contact(d->sync, id);
	if (sscanf(path, "conversations/%lld%c", &id, &rest) >= 1 && id > 0)
		return sync_fetch_conversation(d->sync, id);
	if (sscanf(path, "users/%lld%c", &id, &rest) >= 1 && id > 0)
		return sync_fetch_user(d->sync, id);
	if (!*path || !strcmp(path, ".") || !strncmp(path, "playbooks", 9) ||
	    !strncmp(path, "accounts", 8) || !strcmp(path, "users") ||
	    !strcmp(path, "conversations") || !strcmp(path, "contacts"))
		return sync_request(d->sync, CTL_SYNC_WAIT_MS);
	log_error_event("ctl: sync %s: not a path this command can refresh",
			path);
	return -EINVAL;
}

static int one_command(struct driftfs *d, char *line)
{
	char *arg;

	while (*line == ' ' || *line == '\t')
		line++;
	arg = line + strcspn(line, " \t");
	if (*arg) {
		*arg++ = '\0';
		while (*arg == ' ' || *arg == '\t')
			arg++;
	}
	if (!*line)
		return 0;
	if (!strcmp(line, "sync"))
		return *arg ? sync_path(d, arg) : sync_request(d->sync, CTL_SYNC_WAIT_MS);
	if (!strcmp(line, "offline") && !*arg) {
		http_set_offline(d->http, 1);
		log_info("offline mode on");
		return 0;
	}
	if (!strcmp(line, "online") && !*arg) {
		http_set_offline(d->http, 0);
		log_info("offline mode off");
		return 0;
	}
	log_error_event("ctl: unknown command '%s' (known: sync, sync PATH, "
			"offline, online)",
			line);
	return -EINVAL;
}

int ctl_command(struct driftfs *d, const char *text, size_t len)
{
	char *copy = strndup(text, len), *save = NULL;
	int first = 0;

	if (!copy)
		return -ENOMEM;
	log_context_set(".driftfs/ctl");
	for (char *line = strtok_r(copy, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		int r;

		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			line[--n] = '\0';
		r = one_command(d, line);
		if (r && !first)
			first = r;
	}
	free(copy);
	return first;
}
