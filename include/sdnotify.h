/* SPDX-License-Identifier: MIT */
/*
 * sdnotify: systemd's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram of "NAME=value" lines to the AF_UNIX socket that
 * $NOTIFY_SOCKET names (a path, or '@' for an abstract name). A leaf: no
 * other module but log.
 *
 * Any thread may call it; it holds no lock and keeps no descriptor.
 */
#ifndef DRIFTFS_SDNOTIFY_H
#define DRIFTFS_SDNOTIFY_H

/*
 * Sends state (e.g. "READY=1") to $NOTIFY_SOCKET. Returns 0 (also when the
 * variable is unset: nobody listens) or -errno; -EAFNOSUPPORT for a kind of
 * address it does not know (vsock), -ENAMETOOLONG for one that does not fit
 * a unix socket address (107 bytes for a path, 108 for "@name"), never cut
 * short: both logged once, naming the variable.
 */
int sdnotify_send(const char *state);

#endif
