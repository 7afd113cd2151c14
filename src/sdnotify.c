// SPDX-License-Identifier: MIT
/* sdnotify.c: systemd's readiness datagram, by hand (see sdnotify.h). */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

/* Bytes of an address's sun_path: 108 on Linux. */
#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)NULL)->sun_path)

/* Set once the address has been said to be unusable: READY=1 and
 * STOPPING=1 would say it twice. __atomic access. */
static int told;

/* Says once why $NOTIFY_SOCKET names no address we can send to. */
static int refuse(const char *path, int err)
{
	if (__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED))
		return err;
	if (err == -ENAMETOOLONG)
		log_err("NOTIFY_SOCKET %s: %zu bytes, longer than a unix "
			"socket address holds (%zu for a path, %zu for an "
			"@abstract name, '@' included): systemd is not told "
			"the mount is ready",
			path, strlen(path), SUN_PATH_MAX - 1, SUN_PATH_MAX);
	else
		log_err("NOTIFY_SOCKET %s: neither a socket path (/...) nor "
			"an abstract name (@...): systemd is not told the "
			"mount is ready",
			path);
	return err;
}

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	size_t n;
	int fd, r = 0;

	if (!path || !*path)
		return 0;
	n = strlen(path);
	if (path[0] != '/' && path[0] != '@')
		return refuse(path, -EAFNOSUPPORT);
	/* A path needs its NUL in sun_path; an abstract name has none, and
	 * its '@' stands for the leading NUL: it may fill all of it. */
	if (n > SUN_PATH_MAX - (path[0] == '/'))
		return refuse(path, -ENAMETOOLONG);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	/* An abstract name: a leading NUL, and the length says where it
	 * ends (no trailing NUL is part of it). */
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			  (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL,
		   (const struct sockaddr *)&sa, len) < 0)
		r = -errno;
	close(fd);
	return r;
}
