/* SPDX-License-Identifier: MIT */
/*
 * exit_status: the exit statuses driftfs and driftctl share, one table for
 * both programs (driftfs(1) and driftctl(1), EXIT STATUS). A leaf: no
 * code, no other module.
 *
 * driftfs uses 0, 1, 2 and 6 (it reports what the API does through the
 * mount, not through its status); driftctl all of them.
 */
#ifndef DRIFTFS_EXIT_STATUS_H
#define DRIFTFS_EXIT_STATUS_H

enum {
	DX_OK = 0,
	DX_USAGE = 1,	/* bad command line, option or config file */
	DX_AUTH = 2,	/* no token, token refused, login failed */
	DX_API = 3,	/* API unreachable or failing: network, 5xx */
	DX_REFUSED = 4,	/* the API refused the request: other 4xx */
	DX_RATE = 5,	/* rate limited (429 after retries, report limit) */
	DX_LOCAL = 6,	/* local failure: cache, files, mount, memory */
};

#endif
