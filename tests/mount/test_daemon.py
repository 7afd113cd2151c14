# SPDX-License-Identifier: MIT
"""driftfs as a daemon (without -f), as fstab, systemd and most users start
it: the fork must not cost the cache its SQLite locks."""
import os
import sqlite3
import subprocess
import time

from helpers import DRIFTFS, TOKEN, VALGRIND, cache_file, wait_for

import pytest


def count_outbox(path):
    """What another process (driftctl, a backup) sees: one open and close
    of the database, as SQLite does it."""
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM outbox").fetchone()[0]
    finally:
        db.close()


def test_a_daemon_keeps_its_wal_when_another_process_opens_the_cache(
        mounts, emulator, tmp_path):
    # SQLite's locks are fcntl locks, which a fork does not pass on: a
    # daemon that opened the cache before fuse_daemonize() held none, so
    # another process's close took itself for the last one, checkpointed
    # and removed the WAL the daemon went on writing to. A write queued
    # after that was in no file anyone else could read (and lost on a
    # crash): the outbox looked empty from outside.
    if VALGRIND:
        pytest.skip("SKIP: valgrind cannot follow a daemon that forks "
                    "away; the plain and sanitizer runs test it")
    first = mounts(emulator.url, str(tmp_path / "first"))
    conv = str(emulator.data()["conversations"][0]["id"])
    cache = first.cache
    outbox = cache_file(first, "outbox.db")
    first.unmount()
    mnt = tmp_path / "daemon"
    mnt.mkdir()
    env = dict(os.environ, DRIFT_TOKEN=TOKEN,
               XDG_CONFIG_HOME=str(tmp_path / "config"))
    opts = ["api_url=" + emulator.url, "cache_dir=" + cache, "offline"]
    subprocess.run([DRIFTFS, "-o", ",".join(opts), str(mnt)], env=env,
                   check=True, timeout=60)
    try:
        wait_for(lambda: os.path.ismount(str(mnt)), 20, "the mount")
        assert count_outbox(outbox) == 0      # opened and closed elsewhere
        with open(os.path.join(str(mnt), "conversations", conv, "reply"),
                  "w") as f:
            f.write("queued while offline\n")
        assert len(os.listdir(os.path.join(str(mnt), ".driftfs",
                                           "outbox"))) == 1
        assert count_outbox(outbox) == 1
        assert os.path.exists(outbox + "-wal")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        # The daemon exits once unmounted; give it the time to close.
        deadline = time.time() + 20
        while time.time() < deadline and subprocess.run(
                ["pgrep", "-f", str(mnt)], capture_output=True).returncode == 0:
            time.sleep(0.1)
        if os.path.ismount(str(mnt)):
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    # What it queued is in the outbox after it stopped, too.
    assert count_outbox(outbox) == 1
